-- The descriptions of external sources: a pulse's external.sourceId is the SHA-512 of the
-- UTF-8 bytes of one of these, served at /beacon/2.0/externalSource/{sourceId} (NIST's
-- schema). Written by the engine before its first pulse that names it; append-only, as
-- certificates are, so a sourceId once published resolves for ever.
CREATE TABLE external_sources (
    source_id   BYTEA  PRIMARY KEY,
    description TEXT   NOT NULL,
    added_ms    BIGINT NOT NULL
);

CREATE TRIGGER external_sources_refuse_change BEFORE UPDATE OR DELETE ON external_sources
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER external_sources_refuse_truncate BEFORE TRUNCATE ON external_sources
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
