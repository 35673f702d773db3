-- The pulse chain. Hash values and signatures are binary, times Unix milliseconds.
-- List-value URIs are not stored when they follow the pulse URI pattern (only the referenced
-- index is); `extra` keeps, as JSON, whatever cannot be derived so that nothing is lost.
CREATE TABLE pulses (
    chain_index        BIGINT  NOT NULL,
    pulse_index        BIGINT  NOT NULL,
    time_ms            BIGINT  NOT NULL UNIQUE,
    uri                TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    cipher_suite       BIGINT  NOT NULL,
    period             BIGINT  NOT NULL,
    certificate_id     BYTEA   NOT NULL,
    local_random_value BYTEA   NOT NULL,
    ext_source_id      BYTEA,
    ext_status         BIGINT  NOT NULL,
    ext_value          BYTEA,
    previous_value     BYTEA   NOT NULL,
    hour_value         BYTEA   NOT NULL,
    day_value          BYTEA   NOT NULL,
    month_value        BYTEA   NOT NULL,
    year_value         BYTEA   NOT NULL,
    previous_index     BIGINT,
    hour_index         BIGINT,
    day_index          BIGINT,
    month_index        BIGINT,
    year_index         BIGINT,
    precommitment      BYTEA   NOT NULL,
    status_code        BIGINT  NOT NULL,
    signature          BYTEA   NOT NULL,
    output_value       BYTEA   NOT NULL,
    extra              TEXT,
    PRIMARY KEY (chain_index, pulse_index)
);

-- Append-only: a published pulse is never changed or removed, whoever asks.
CREATE FUNCTION lavabeacon_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lavabeacon: % are append-only; % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER pulses_refuse_change BEFORE UPDATE OR DELETE ON pulses
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER pulses_refuse_truncate BEFORE TRUNCATE ON pulses
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();

CREATE TABLE certificates (
    certificate_id BYTEA  PRIMARY KEY,
    der            BYTEA  NOT NULL,
    added_ms       BIGINT NOT NULL
);

CREATE TRIGGER certificates_refuse_change BEFORE UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER certificates_refuse_truncate BEFORE TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();

-- The per-pulse source manifest (JSON), written with its pulse.
CREATE TABLE source_manifests (
    chain_index BIGINT NOT NULL,
    pulse_index BIGINT NOT NULL,
    manifest    TEXT   NOT NULL,
    PRIMARY KEY (chain_index, pulse_index)
);

CREATE TRIGGER source_manifests_refuse_change BEFORE UPDATE OR DELETE ON source_manifests
    FOR EACH ROW EXECUTE FUNCTION lavabeacon_refuse_change();
CREATE TRIGGER source_manifests_refuse_truncate BEFORE TRUNCATE ON source_manifests
    FOR EACH STATEMENT EXECUTE FUNCTION lavabeacon_refuse_change();

-- Sealed secrets for pulses not yet published (the next localRandomValue). Only the engine
-- reads this table; the API never does.
CREATE TABLE pending_secrets (
    chain_index BIGINT NOT NULL,
    pulse_index BIGINT NOT NULL,
    sealed      BYTEA  NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (chain_index, pulse_index)
);
