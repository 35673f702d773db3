-- Draws registered with the beacon (docs/draws.md): each spec as registered (its canonical JSON,
-- whose SHA-512 is the draw's id) and the receipt the beacon signed for it. Append-only: a
-- receipt once given stays the answer for that draw.
CREATE TABLE draws (
    draw_id       BYTEA  PRIMARY KEY,
    spec          TEXT   NOT NULL,
    receipt       TEXT   NOT NULL,
    target_ms     BIGINT NOT NULL,
    registered_ms BIGINT NOT NULL
);

CREATE TRIGGER draws_refuse_change BEFORE UPDATE OR DELETE ON draws
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER draws_refuse_truncate BEFORE TRUNCATE ON draws
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
