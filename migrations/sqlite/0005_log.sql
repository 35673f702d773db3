-- The transparency log (docs/transparency.md): an RFC 6962 Merkle tree over every pulse, in
-- publication order, and every draw registration. Entries and tree hashes are written in the
-- transaction that stores the pulse or the draw, so the log and the chain never disagree.
-- Everything but a witness's own state is append-only.

-- The entries, by leaf index: a pulse's is its outputValue (chain and index say which pulse),
-- a draw's is "lavabeacon draw v1\n" ‖ id ‖ SHA-512(receipt message ‖ signature).
CREATE TABLE log_entries (
    leaf_index  INTEGER PRIMARY KEY,
    entry       BLOB    NOT NULL,
    chain_index INTEGER,
    pulse_index INTEGER,
    draw_id     BLOB,
    UNIQUE (chain_index, pulse_index),
    UNIQUE (draw_id),
    CHECK ((chain_index IS NULL) = (pulse_index IS NULL)),
    CHECK ((chain_index IS NULL) <> (draw_id IS NULL))
);

-- One hash per complete subtree: the 2^level leaves from idx << level (level 0: leaf hashes).
-- Each is written once, when its last leaf arrives. Tiles are runs of one level's rows.
CREATE TABLE log_hashes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- Checkpoints the log signed (signed notes), one per tree size.
CREATE TABLE log_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    note      TEXT    NOT NULL,
    signed_ms INTEGER NOT NULL
);

-- Witnesses' cosignature lines on those checkpoints.
CREATE TABLE log_cosignatures (
    tree_size INTEGER NOT NULL,
    witness   TEXT    NOT NULL,
    line      TEXT    NOT NULL,
    added_ms  INTEGER NOT NULL,
    PRIMARY KEY (tree_size, witness)
);

-- As a witness: the last checkpoint cosigned for each log. It only moves forward; a trigger
-- refuses a smaller size, another root at the same size, and deletion, so no bug and no
-- restart can make this witness cosign a fork of what it cosigned before.
CREATE TABLE witness_state (
    origin     TEXT    PRIMARY KEY,
    tree_size  INTEGER NOT NULL,
    root       BLOB    NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TRIGGER witness_state_only_forward BEFORE UPDATE ON witness_state
WHEN NEW.origin <> OLD.origin OR NEW.tree_size < OLD.tree_size
    OR (NEW.tree_size = OLD.tree_size AND NEW.root <> OLD.root)
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: a witness never goes back or forks; UPDATE refused');
END;

CREATE TRIGGER witness_state_refuse_delete BEFORE DELETE ON witness_state
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: a witness never forgets; DELETE refused');
END;

CREATE TRIGGER log_entries_refuse_update BEFORE UPDATE ON log_entries
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; UPDATE refused');
END;
CREATE TRIGGER log_entries_refuse_delete BEFORE DELETE ON log_entries
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; DELETE refused');
END;
CREATE TRIGGER log_hashes_refuse_update BEFORE UPDATE ON log_hashes
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; UPDATE refused');
END;
CREATE TRIGGER log_hashes_refuse_delete BEFORE DELETE ON log_hashes
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; DELETE refused');
END;
CREATE TRIGGER log_checkpoints_refuse_update BEFORE UPDATE ON log_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; UPDATE refused');
END;
CREATE TRIGGER log_checkpoints_refuse_delete BEFORE DELETE ON log_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; DELETE refused');
END;
CREATE TRIGGER log_cosignatures_refuse_update BEFORE UPDATE ON log_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; UPDATE refused');
END;
CREATE TRIGGER log_cosignatures_refuse_delete BEFORE DELETE ON log_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: the log is append-only; DELETE refused');
END;
