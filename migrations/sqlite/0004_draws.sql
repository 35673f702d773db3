-- Draws registered with the beacon (docs/draws.md): each spec as registered (its canonical JSON,
-- whose SHA-512 is the draw's id) and the receipt the beacon signed for it. Append-only: a
-- receipt once given stays the answer for that draw.
CREATE TABLE draws (
    draw_id       BLOB    PRIMARY KEY,
    spec          TEXT    NOT NULL,
    receipt       TEXT    NOT NULL,
    target_ms     INTEGER NOT NULL,
    registered_ms INTEGER NOT NULL
);

CREATE TRIGGER draws_refuse_update BEFORE UPDATE ON draws
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: draws are append-only; UPDATE refused');
END;

CREATE TRIGGER draws_refuse_delete BEFORE DELETE ON draws
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: draws are append-only; DELETE refused');
END;
