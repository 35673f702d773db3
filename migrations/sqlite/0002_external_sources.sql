-- The descriptions of external sources: a pulse's external.sourceId is the SHA-512 of the
-- UTF-8 bytes of one of these, served at /beacon/2.0/externalSource/{sourceId} (NIST's
-- schema). Written by the engine before its first pulse that names it; append-only, as
-- certificates are, so a sourceId once published resolves for ever.
CREATE TABLE external_sources (
    source_id   BLOB    PRIMARY KEY,
    description TEXT    NOT NULL,
    added_ms    INTEGER NOT NULL
);

CREATE TRIGGER external_sources_refuse_update BEFORE UPDATE ON external_sources
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: external sources are append-only; UPDATE refused');
END;

CREATE TRIGGER external_sources_refuse_delete BEFORE DELETE ON external_sources
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: external sources are append-only; DELETE refused');
END;
