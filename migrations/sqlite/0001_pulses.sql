-- The pulse chain. Hash values and signatures are binary, times Unix milliseconds.
-- List-value URIs are not stored when they follow the pulse URI pattern (only the referenced
-- index is); `extra` keeps, as JSON, whatever cannot be derived so that nothing is lost.
CREATE TABLE pulses (
    chain_index        INTEGER NOT NULL,
    pulse_index        INTEGER NOT NULL,
    time_ms            INTEGER NOT NULL UNIQUE,
    uri                TEXT    NOT NULL,
    version            TEXT    NOT NULL,
    cipher_suite       INTEGER NOT NULL,
    period             INTEGER NOT NULL,
    certificate_id     BLOB    NOT NULL,
    local_random_value BLOB    NOT NULL,
    ext_source_id      BLOB,
    ext_status         INTEGER NOT NULL,
    ext_value          BLOB,
    previous_value     BLOB    NOT NULL,
    hour_value         BLOB    NOT NULL,
    day_value          BLOB    NOT NULL,
    month_value        BLOB    NOT NULL,
    year_value         BLOB    NOT NULL,
    previous_index     INTEGER,
    hour_index         INTEGER,
    day_index          INTEGER,
    month_index        INTEGER,
    year_index         INTEGER,
    precommitment      BLOB    NOT NULL,
    status_code        INTEGER NOT NULL,
    signature          BLOB    NOT NULL,
    output_value       BLOB    NOT NULL,
    extra              TEXT,
    PRIMARY KEY (chain_index, pulse_index)
) WITHOUT ROWID;

-- Append-only: a published pulse is never changed or removed, whoever asks.
CREATE TRIGGER pulses_refuse_update BEFORE UPDATE ON pulses
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: pulses are append-only; UPDATE refused');
END;

CREATE TRIGGER pulses_refuse_delete BEFORE DELETE ON pulses
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: pulses are append-only; DELETE refused');
END;

CREATE TABLE certificates (
    certificate_id BLOB    PRIMARY KEY,
    der            BLOB    NOT NULL,
    added_ms       INTEGER NOT NULL
);

CREATE TRIGGER certificates_refuse_update BEFORE UPDATE ON certificates
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: certificates are append-only; UPDATE refused');
END;

CREATE TRIGGER certificates_refuse_delete BEFORE DELETE ON certificates
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: certificates are append-only; DELETE refused');
END;

-- The per-pulse source manifest (JSON), written with its pulse.
CREATE TABLE source_manifests (
    chain_index INTEGER NOT NULL,
    pulse_index INTEGER NOT NULL,
    manifest    TEXT    NOT NULL,
    PRIMARY KEY (chain_index, pulse_index)
) WITHOUT ROWID;

CREATE TRIGGER source_manifests_refuse_update BEFORE UPDATE ON source_manifests
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: source manifests are append-only; UPDATE refused');
END;

CREATE TRIGGER source_manifests_refuse_delete BEFORE DELETE ON source_manifests
BEGIN
    SELECT RAISE(ABORT, 'lavabeacon: source manifests are append-only; DELETE refused');
END;

-- Sealed secrets for pulses not yet published (the next localRandomValue). Only the engine
-- reads this table; the API never does.
CREATE TABLE pending_secrets (
    chain_index INTEGER NOT NULL,
    pulse_index INTEGER NOT NULL,
    sealed      BLOB    NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (chain_index, pulse_index)
) WITHOUT ROWID;
