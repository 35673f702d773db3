-- The transparency log (docs/transparency.md); see migrations/sqlite/0005_log.sql for what each
-- table holds. Everything but a witness's own state is append-only.
CREATE TABLE log_entries (
    leaf_index  BIGINT PRIMARY KEY,
    entry       BYTEA  NOT NULL,
    chain_index BIGINT,
    pulse_index BIGINT,
    draw_id     BYTEA,
    UNIQUE (chain_index, pulse_index),
    UNIQUE (draw_id),
    CHECK ((chain_index IS NULL) = (pulse_index IS NULL)),
    CHECK ((chain_index IS NULL) <> (draw_id IS NULL))
);

CREATE TABLE log_hashes (
    level BIGINT   NOT NULL,
    idx   BIGINT   NOT NULL,
    hash  BYTEA    NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE log_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    note      TEXT   NOT NULL,
    signed_ms BIGINT NOT NULL
);

CREATE TABLE log_cosignatures (
    tree_size BIGINT NOT NULL,
    witness   TEXT   NOT NULL,
    line      TEXT   NOT NULL,
    added_ms  BIGINT NOT NULL,
    PRIMARY KEY (tree_size, witness)
);

CREATE TABLE witness_state (
    origin     TEXT   PRIMARY KEY,
    tree_size  BIGINT NOT NULL,
    root       BYTEA  NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE FUNCTION lavabeacon_witness_only_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'lavabeacon: a witness never forgets; DELETE refused';
    END IF;
    IF NEW.origin <> OLD.origin OR NEW.tree_size < OLD.tree_size
       OR (NEW.tree_size = OLD.tree_size AND NEW.root <> OLD.root) THEN
        RAISE EXCEPTION 'lavabeacon: a witness never goes back or forks; UPDATE refused';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER witness_state_only_forward BEFORE UPDATE OR DELETE ON witness_state
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_witness_only_forward();
CREATE TRIGGER witness_state_refuse_truncate BEFORE TRUNCATE ON witness_state
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();

CREATE TRIGGER log_entries_refuse_change BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_entries_refuse_truncate BEFORE TRUNCATE ON log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_hashes_refuse_change BEFORE UPDATE OR DELETE ON log_hashes
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_hashes_refuse_truncate BEFORE TRUNCATE ON log_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_checkpoints_refuse_change BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_checkpoints_refuse_truncate BEFORE TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_cosignatures_refuse_change BEFORE UPDATE OR DELETE ON log_cosignatures
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER log_cosignatures_refuse_truncate BEFORE TRUNCATE ON log_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();
