-- The signing-key schedule: from at_ms on, pulses are signed with the key labelled key_label
-- (its certificate stored in `certificates`, published before it is used) and belong to chain
-- chain_index (one more than before: a deliberate new chain). Every engine, leader or standby,
-- follows it, so a rotation costs no period and survives a failover. Written by
-- `lavabeacon keys rotate|switch` (or SIGHUP); a switch not yet taken may be replaced.
CREATE TABLE key_switches (
    at_ms          INTEGER PRIMARY KEY,
    chain_index    INTEGER NOT NULL,
    key_label      TEXT    NOT NULL,
    certificate_id BLOB    NOT NULL,
    added_ms       INTEGER NOT NULL
);
