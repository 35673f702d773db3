//! The JSON Schemas of every body the API answers with, for `/openapi.json`: the pulse (NIST's
//! `beacon-2.0.xsd` in JSON: every field, NIST's names, in signing order), the envelope it is
//! served in, the source manifest, health, errors, and the private answers. Exact on purpose
//! (`additionalProperties: false`, hex patterns, minimums): the contract tests in CI check every
//! answer against these, so a schema that is too loose would prove nothing.

use serde_json::{json, Value};

/// 512 bits as hex, as NIST writes them (upper case; lower case is read too).
const HEX_512: &str = "^[0-9A-Fa-f]{128}$";

fn hex_512(description: &str) -> Value {
    json!({"type": "string", "pattern": HEX_512, "description": description})
}

/// A whole number from `min`, at most `i64::MAX` (what the store keeps).
pub(crate) fn whole(min: i64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": i64::MAX})
}

/// The pulse, field by field as in NIST's `beacon-2.0.xsd` (JSON order = signing order).
fn pulse() -> Value {
    json!({
        "type": "object",
        "description": "A NIST Randomness Beacon 2.0 pulse (docs/pulse-format.md); members in NIST's order, which is the signing order",
        "additionalProperties": false,
        "required": ["uri", "version", "cipherSuite", "period", "certificateId", "chainIndex",
            "pulseIndex", "timeStamp", "localRandomValue", "external", "listValues",
            "precommitmentValue", "statusCode", "signatureValue", "outputValue"],
        "properties": {
            "uri": {"type": "string", "description": "This pulse's address"},
            "version": {"type": "string", "description": "\"2.0\" (NIST wrote \"Version 2.0\" until 2020); signed, never normalised"},
            "cipherSuite": {"type": "integer", "enum": [0, 1, 2], "description": "0: SHA-512 + RSA PKCS#1 v1.5 (NIST); 1: SHA3-512 + RSA-PSS (CLCERT); 2: SHA-512 + Ed25519 (lavabeacon)"},
            "period": {"type": "integer", "minimum": 1, "description": "Milliseconds between pulses"},
            "certificateId": hex_512("SHA-512 of the signing certificate's DER: GET /beacon/2.0/certificate/{certificateId}"),
            "chainIndex": whole(1),
            "pulseIndex": whole(1),
            "timeStamp": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$",
                "description": "UTC, as YYYY-MM-DDTHH:MM:SS.000Z in pulses this beacon makes; a multiple of period"},
            "localRandomValue": hex_512("512 bits made by the beacon for this pulse; its sources: GET /beacon/2.0/chain/{c}/pulse/{p}/sources"),
            "external": {
                "type": "object",
                "additionalProperties": false,
                "required": ["sourceId", "statusCode", "value"],
                "properties": {
                    "sourceId": hex_512("SHA-512 of a description of the external source (zeros: none)"),
                    "statusCode": {"type": "integer"},
                    "value": hex_512("SHA-512 of the external value (zeros: none)"),
                },
            },
            "listValues": {
                "type": "array",
                "description": "The skip list: previous, hour, day, month, year, in that order",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["uri", "type", "value"],
                    "properties": {
                        "uri": {"type": ["string", "null"]},
                        "type": {"type": "string", "enum": ["previous", "hour", "day", "month", "year"]},
                        "value": hex_512("The outputValue of the pulse uri names"),
                    },
                },
            },
            "precommitmentValue": hex_512("SHA-512 of the next pulse's localRandomValue"),
            "statusCode": {"type": "integer", "minimum": 0, "description": "0 chain intact, 1 first pulse of a chain, 2 gap before this pulse, 3 gap and the precommitment could not be honoured"},
            "signatureValue": {"type": "string", "pattern": "^([0-9A-Fa-f]{2})+$", "description": "The signature over the signed message, hex"},
            "outputValue": hex_512("SHA-512 of the signed message and the signature: the beacon's output"),
        },
    })
}

/// A test beacon's notice, beside (never inside) the signed pulse.
fn test_notice() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["test", "warning"],
        "properties": {"test": {"const": true}, "warning": {"type": "string"}},
        "description": "Present only on a test beacon: its pulses are not for use",
    })
}

/// A list of tree hashes, standard base64 of 32 bytes each (a proof has at most 64: one per
/// level of a tree of 2^64 entries; RFC 9162 allows no more).
fn proof_hashes(description: &str) -> Value {
    json!({
        "type": "array",
        "maxItems": 64,
        "description": description,
        "items": {"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"},
    })
}

/// The transparency log's answers.
fn log_schemas() -> Value {
    json!({
        "LogInclusion": {
            "type": "object",
            "additionalProperties": false,
            "required": ["leafIndex", "treeSize", "inclusionProof", "checkpoint"],
            "description": "An entry's inclusion in the transparency log (docs/transparency.md): the entry of a pulse is its 64-byte outputValue",
            "properties": {
                "leafIndex": whole(0),
                "treeSize": whole(1),
                "inclusionProof": proof_hashes("RFC 9162 2.1.3: from the leaf's hash, SHA-256(0x00 || entry), to the checkpoint's root"),
                "checkpoint": {"type": "string", "description": "The signed checkpoint of treeSize (C2SP tlog-checkpoint in a signed note), with the witnesses' cosignature lines"},
            },
        },
        "LogConsistency": {
            "type": "object",
            "additionalProperties": false,
            "required": ["from", "to", "consistencyProof"],
            "properties": {
                "from": whole(0),
                "to": whole(0),
                "consistencyProof": proof_hashes("RFC 9162 2.1.4: that the tree of `from` entries is a prefix of the tree of `to` (empty when from is 0 or equals to)"),
            },
        },
        "LogWitnesses": {
            "type": "object",
            "additionalProperties": false,
            "required": ["witnesses", "required"],
            "properties": {
                "witnesses": {"type": "array", "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "vkey", "url"],
                    "properties": {
                        "name": {"type": "string", "description": "The witness's key name, on its cosignature lines"},
                        "vkey": {"type": "string", "description": "Its cosignature/v1 verifier key (signature type 0x04)"},
                        "url": {"type": "string", "description": "Its tlog-witness submission prefix"},
                    },
                }},
                "required": {"type": "integer", "minimum": 0, "description": "How many witnesses must cosign a checkpoint"},
            },
        },
    })
}

/// Every component schema, by name.
pub(crate) fn components() -> Value {
    let mut all = every_but_the_logs();
    if let (Some(all), Value::Object(log)) = (all.as_object_mut(), log_schemas()) {
        all.extend(log);
    }
    all
}

/// Every component schema but [`log_schemas`] (one `json!` of them all is deeper than the
/// macro's recursion limit).
fn every_but_the_logs() -> Value {
    json!({
        "DrawSpec": {
            "type": "object",
            "description": "A draw spec (docs/draws.md); its id is SHA-512 of its RFC 8785 canonical bytes",
            "required": ["version", "title", "method", "operation", "count", "beacon", "targetTime"],
            "additionalProperties": false,
            "properties": {
                "version": {"const": 1},
                "title": {"type": "string"},
                "method": {"enum": ["rfc3797", "lavabeacon-v1"]},
                "operation": {"enum": ["pick", "shuffle", "weighted", "integers"]},
                "pool": {"type": "object"},
                "count": {"type": "integer", "minimum": 0},
                "weights": {"type": "array", "items": {"type": "string"}},
                "range": {"type": "object"},
                "sources": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                "beacon": {"type": "object", "required": ["baseUri", "chainIndex", "certificateId"]},
                "targetTime": {"type": "string"},
            },
        },
        "Draw": {
            "type": "object",
            "required": ["drawId", "spec", "receipt"],
            "additionalProperties": false,
            "properties": {
                "drawId": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
                "spec": {"$ref": "#/components/schemas/DrawSpec"},
                "receipt": {"type": "object", "required": ["version", "drawId", "registeredAt", "targetTime", "periodMs", "newest", "certificateId", "cipherSuite", "signatureValue"]},
            },
        },
        "DrawResult": {
            "type": "object",
            "required": ["drawId", "pulse", "selection"],
            "additionalProperties": false,
            "properties": {
                "drawId": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
                "pulse": {"$ref": "#/components/schemas/Pulse"},
                "previous": {"$ref": "#/components/schemas/Pulse"},
                "selection": {"type": "object"},
            },
        },
        "Pulse": pulse(),
        "PulseAnswer": {
            "type": "object",
            "additionalProperties": false,
            "required": ["pulse"],
            "properties": {"pulse": {"$ref": "#/components/schemas/Pulse"}, "lavabeacon": test_notice()},
        },
        "PulseEvent": {
            "type": "object",
            "description": "One Server-Sent Event: a new pulse",
            "required": ["event", "id", "data"],
            "properties": {
                "event": {"const": "pulse"},
                "id": {"type": "string", "pattern": "^[1-9][0-9]*-[1-9][0-9]*$", "description": "chainIndex-pulseIndex: send it back as Last-Event-ID to resume"},
                "data": {"type": "string", "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/PulseAnswer"}},
                "retry": {"type": "integer"},
            },
        },
        "Chain": {
            "type": "array",
            "minItems": 1,
            "description": "Every pulse from the start to the end, oldest first, each linked to the one before by its previous value",
            "items": {"$ref": "#/components/schemas/Pulse"},
        },
        "SkipPath": {
            "type": "array",
            "minItems": 1,
            "description": "Pulses from the start to the end, each linked to the one before by a skip-list value",
            "items": {"$ref": "#/components/schemas/Pulse"},
        },
        "SourceManifest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["version", "chainIndex", "pulseIndex", "sources"],
            "description": "What went into a pulse's localRandomValue: each source's digest, recombined by `lavabeacon replay` (docs/auditing.md)",
            "properties": {
                "version": {"type": "integer", "minimum": 1},
                "chainIndex": whole(1),
                "pulseIndex": whole(1),
                "sources": {"type": "array", "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "status", "creditedBits"],
                    "properties": {
                        "name": {"type": "string"},
                        "status": {"type": "string"},
                        "creditedBits": {"type": "integer", "minimum": 0},
                        "digest": {"type": "string"},
                    },
                }},
                "external": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["description", "url", "status"],
                    "properties": {
                        "description": {"type": "string"},
                        "url": {"type": "string"},
                        "status": {"type": "string"},
                        "uri": {"type": "string"},
                        "timeStamp": {"type": "string"},
                        "outputValue": {"type": "string"},
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "additionalProperties": false,
            "required": ["status", "test", "periodMs", "lateToleranceMs", "expectedTimeStamp", "lastPulse",
                "behindMs", "database", "hsm", "lastError", "sources", "certificate"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "test": {"type": ["string", "null"], "description": "A test beacon's warning"},
                "periodMs": {"type": "integer", "minimum": 1},
                "lateToleranceMs": {"type": "integer", "minimum": 0},
                "expectedTimeStamp": {"type": ["string", "null"], "description": "The pulse expected by now"},
                "lastPulse": {"oneOf": [{"type": "null"}, {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["chainIndex", "pulseIndex", "timeStamp"],
                    "properties": {"chainIndex": whole(1), "pulseIndex": whole(1), "timeStamp": {"type": "string"}},
                }]},
                "behindMs": {"type": ["integer", "null"]},
                "database": {"type": "string", "enum": ["ok", "unavailable"]},
                "hsm": {"type": "string", "enum": ["ok", "failing", "unknown"]},
                "lastError": {"type": ["string", "null"]},
                "sources": {"oneOf": [{"type": "null"}, {"type": "array", "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "status", "creditedBits"],
                    "properties": {"name": {"type": "string"}, "status": {"type": "string"}, "creditedBits": {"type": "integer", "minimum": 0}},
                }}]},
                "certificate": health_certificate(),
            },
        },
        "Error": {
            "type": "object",
            "additionalProperties": false,
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "additionalProperties": false,
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer", "minimum": 400, "maximum": 599},
                    "message": {"type": "string", "description": "What was wrong, and what a good request looks like"},
                },
            }},
        },
        "PrivateBytes": {
            "type": "object",
            "additionalProperties": false,
            "required": ["n", "hex"],
            "description": "format=json of /private/v1/bytes",
            "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 65536}, "hex": {"type": "string", "pattern": "^([0-9a-f]{2})+$"}, "test": {"const": true}},
        },
        "PrivateIntegers": {
            "type": "object",
            "additionalProperties": false,
            "required": ["count", "min", "max", "integers"],
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": 8192},
                "min": {"type": "integer"},
                "max": {"type": "integer"},
                "integers": {"type": "array", "items": {"type": "integer"}},
                "test": {"const": true},
            },
        },
    })
}

/// `/health`'s `certificate` (its own function: one `json!` this deep passes the macro
/// recursion limit).
fn health_certificate() -> Value {
    json!({"oneOf": [{"type": "null"}, {
        "type": "object",
        "additionalProperties": false,
        "description": "The certificate of the newest pulse: degraded once it has expired (or is not yet valid); expiring within the warning lead time (30 days unless configured)",
        "required": ["certificateId", "notBefore", "notAfter", "expiresInSeconds", "status"],
        "properties": {
            "certificateId": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
            "notBefore": {"type": ["string", "null"]},
            "notAfter": {"type": ["string", "null"]},
            "expiresInSeconds": {"type": "integer"},
            "status": {"type": "string", "enum": ["ok", "expiring", "expired", "not yet valid"]},
        },
    }]})
}
