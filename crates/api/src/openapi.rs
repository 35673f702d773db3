//! `/openapi.json`, an OpenAPI 3.1 document made from the same route table that registers the
//! handlers ([`crate::ROUTES`]): a route cannot be served without being described, or described
//! without being served. Each route says its parameters (typed: integers with bounds, hex
//! patterns, times as integers or `date-time`), the kind of answer it gives (whose JSON Schema
//! is in [`crate::schemas`]) and every status it can answer with; what every route shares (405,
//! 414, 431, the error body, the headers) is added here, once.
//!
//! Examples come from the chain being served ([`Examples`]), so a client or a contract tester
//! that follows them asks for pulses that exist.

use crate::schemas::{components, whole};
use lavabeacon_format::time::LATEST_MS;
use serde_json::{json, Map, Value};

/// One route's description.
#[derive(Debug)]
pub struct RouteDoc {
    /// The path, with `{name}` for path parameters.
    pub path: &'static str,
    /// GET (with HEAD), or POST with a JSON body.
    pub method: Verb,
    /// Its OpenAPI `operationId` (what links name).
    pub operation_id: &'static str,
    /// What it answers.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// The kind of its successful answer.
    pub answer: Answer,
    /// The statuses its handler can answer with (those every route shares are added).
    pub statuses: &'static [u16],
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// In the path.
    Path,
    /// In the query string.
    Query,
    /// A request header.
    Header,
}

/// What a parameter holds, which makes its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A chain or pulse index: a whole number from 1, written without sign or leading zeros.
    Index,
    /// A time: Unix milliseconds, or RFC 3339.
    Millis,
    /// A time: RFC 3339, Unix seconds (below 100,000,000,000) or Unix milliseconds.
    AnyTime,
    /// A SHA-512 in hex, 128 digits: a certificateId, an external sourceId.
    Sha512Hex,
    /// `true` or `false`.
    Flag,
    /// An SSE event id, `chain-pulse`.
    EventId,
    /// A whole number in a range.
    Range(i64, i64),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Free text matching this pattern.
    Pattern(&'static str),
}

/// What the examples of a parameter are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    /// No example.
    None,
    /// The example pulse's chainIndex.
    Chain,
    /// The example pulse's pulseIndex.
    Pulse,
    /// The example pulse's timeStamp, in Unix milliseconds.
    Time,
    /// The example pulse's certificateId.
    CertificateId,
    /// The example pulse's external.sourceId.
    SourceId,
    /// This value (where a pattern is too intricate for a client to make one up from).
    Text(&'static str),
}

/// One parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Where it goes.
    pub location: Location,
    /// Whether a request must carry it (path parameters always must).
    pub required: bool,
    /// What it holds.
    pub kind: Kind,
    /// What to put there.
    pub description: &'static str,
    /// Where its example comes from.
    pub example: Example,
}

/// A route's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET and HEAD.
    Get,
    /// POST, with a body: a draw spec (JSON), or a tlog-witness request (text).
    Post,
}

/// The kind of a route's successful answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The web page.
    Page,
    /// One of the explorer's files: JavaScript, CSS or SVG.
    Asset,
    /// The icon (`image/x-icon`).
    Icon,
    /// `/health`'s report (also the body of its 503).
    Health,
    /// Prometheus text.
    Metrics,
    /// This document.
    OpenApi,
    /// One pulse: `{"pulse": …}` as JSON, or NIST's XML when `Accept` asks for it.
    Pulse,
    /// A source manifest.
    Manifest,
    /// Source manifests as JSON Lines.
    ManifestLines,
    /// Pulses as JSON Lines, or NIST's XML `<response>` of pulses.
    PulseLines,
    /// A skip path: a JSON array of pulses, or NIST's XML `<skipList>`.
    SkipPath,
    /// Every pulse between two, linked by `previous`: a JSON array, or NIST's XML `<chain>`.
    Chain,
    /// An external source's description, plain text.
    ExternalSource,
    /// A certificate as PEM.
    Certificate,
    /// Server-Sent Events.
    Events,
    /// Private random bytes in the form asked for.
    PrivateBytes,
    /// Private random integers.
    PrivateIntegers,
    /// A registered draw: its spec and the beacon's signed receipt.
    Draw,
    /// A draw's result: the pulse that decided it and the selection.
    DrawResult,
    /// The transparency log's verifier key, plain text.
    LogKey,
    /// A checkpoint: a signed note, plain text.
    LogCheckpoint,
    /// A tlog-tiles tile: hashes or an entry bundle, bytes.
    LogTile,
    /// An inclusion proof with its checkpoint.
    LogInclusion,
    /// A consistency proof.
    LogConsistency,
    /// The log's witnesses.
    LogWitnesses,
    /// A witness's cosignature line(s), plain text (tlog-witness).
    Cosignature,
}

/// Values from the chain being served, for the document's examples.
#[derive(Debug, Default)]
pub struct Examples {
    /// A published pulse (its JSON answer), whose fields give the parameters' examples.
    pub pulse: Option<Value>,
    /// Its source manifest, if it has one.
    pub manifest: Option<Value>,
}

impl Examples {
    fn param(&self, which: Example) -> Option<Value> {
        if let Example::Text(t) = which {
            return Some(Value::from(t));
        }
        let p = self.pulse.as_ref()?.get("pulse")?;
        match which {
            Example::None | Example::Text(_) => None,
            Example::Chain => p.get("chainIndex").cloned(),
            Example::Pulse => p.get("pulseIndex").cloned(),
            Example::CertificateId => p.get("certificateId").cloned(),
            Example::SourceId => p.get("external")?.get("sourceId").cloned(),
            Example::Time => p
                .get("timeStamp")?
                .as_str()
                .and_then(|t| lavabeacon_format::time::parse_time_stamp(t).ok())
                .map(Value::from),
        }
    }
}

/// A time: an integer in milliseconds (or seconds, `seconds` says), or RFC 3339.
fn time_schema(seconds: bool) -> Value {
    let number = if seconds {
        "Unix seconds (below 100,000,000,000) or Unix milliseconds"
    } else {
        "Unix milliseconds (as NIST's paths take them)"
    };
    json!({"anyOf": [
        {"type": "integer", "minimum": 0, "maximum": LATEST_MS, "description": number},
        {"type": "string", "format": "date-time", "description": "RFC 3339; any offset"},
    ]})
}

fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Index => whole(1),
        Kind::Millis => time_schema(false),
        Kind::AnyTime => time_schema(true),
        Kind::Sha512Hex => json!({"type": "string", "pattern": "^[0-9A-Fa-f]{128}$"}),
        Kind::Flag => json!({"type": "boolean"}),
        // Empty is none, as EventSource means it.
        Kind::EventId => {
            json!({"type": "string", "pattern": "^([1-9][0-9]{0,18}-[1-9][0-9]{0,18})?$"})
        }
        Kind::Range(min, max) => json!({"type": "integer", "minimum": min, "maximum": max}),
        Kind::OneOf(words) => json!({"type": "string", "enum": words}),
        Kind::Pattern(p) => json!({"type": "string", "pattern": p}),
    }
}

fn error_body() -> Value {
    json!({
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        "application/xml": xml_form("<response><error><code>STATUS</code><description xml:lang=\"en\">…</description></error></response>, when Accept asks for XML"),
    })
}

/// The XML form of an answer, per NIST's beacon-2.0.xsd: described, as OpenAPI cannot carry
/// an XML Schema.
fn xml_form(what: &str) -> Value {
    json!({"schema": {
        "type": "string",
        "description": format!("NIST's beacon-2.0.xsd (namespace {}): {what}", crate::xml::NAMESPACE),
    }})
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// What a status means, on any route.
fn status_text(s: u16) -> &'static str {
    match s {
        200 => "OK",
        304 => "Not Modified: If-None-Match matched the ETag (weak comparison, RFC 9110)",
        400 => "Bad input; the message says what a good value looks like",
        401 => "Not authenticated: the signature, key, date or nonce is missing or wrong",
        403 => "Refused: this client may not ask from this address or origin (on /witness: the checkpoint is not signed by the log's key)",
        404 => "Nothing there, not public yet, or not served here",
        405 => "Method not allowed: the beacon is read with GET (and HEAD), except the paths that take POST; OPTIONS answers CORS preflights",
        409 => "Conflict: the old size is not the size this witness last cosigned for the log; the body is that size and a newline",
        413 => "More than this client may ask for at once (on /witness: a body over the limit)",
        422 => "Unprocessable: the checkpoint is not consistent with what this witness cosigned (the proof fails, or the same size came with another root)",
        414 => "The URL is longer than the server reads (8 KiB)",
        425 => "Too Early: not published yet; see Retry-After",
        429 => "Too many requests or open streams from this client or in all; see Retry-After",
        431 => "The request's headers are larger than the server reads (16 KiB)",
        503 => "The database is unavailable or did not answer in time; see Retry-After",
        _ => "",
    }
}

/// The 200 answer of a route: content types, schemas, examples, headers and links.
fn success(answer: Answer, examples: &Examples) -> Value {
    let etag = header(
        "The pulse's outputValue (with -xml for the XML form): send it back in If-None-Match",
        json!({"type": "string"}),
    );
    let cache = header("How long the answer may be kept", json!({"type": "string"}));
    let next = header(
        "rel=\"next\": the rest of the window asked for",
        json!({"type": "string"}),
    );
    let (description, content, headers, links): (&str, Value, Value, Value) = match answer {
        Answer::Page => (
            "The web page",
            json!({"text/html": {"schema": {"type": "string"}}}),
            json!({}),
            json!({}),
        ),
        Answer::Asset => (
            "The file",
            json!({
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            }),
            json!({"ETag": header("The assets' version", json!({"type": "string"})), "Cache-Control": cache}),
            json!({}),
        ),
        Answer::Icon => (
            "The icon",
            json!({"image/x-icon": {"schema": {"type": "string", "format": "binary"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::Draw => (
            "The draw: its spec and the receipt the beacon signed",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/Draw"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::DrawResult => (
            "The pulse that decided the draw, and what it selected",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/DrawResult"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogKey => (
            "The log's verifier key, <name>+<key id>+<base64 key>, and a newline",
            json!({"text/plain": {"schema": {"type": "string", "pattern": "^[^+\\s]+\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]+=*\n$"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogCheckpoint => (
            "The checkpoint note (origin, tree size, base64 root hash), a blank line, the log's signature line and each witness's cosignature line",
            json!({"text/plain": {"schema": {"type": "string"}}}),
            json!({"ETag": header("The note's digest: send it back in If-None-Match", json!({"type": "string"})), "Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogTile => (
            "The tile's bytes: 32-byte hashes, or entries each prefixed by its length (big-endian, 16 bits)",
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogInclusion => (
            "The entry's leaf index, the tree size, the proof (RFC 9162 2.1.3) and the signed checkpoint of that size",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/LogInclusion"}}}),
            json!({"ETag": header("The answer's digest: send it back in If-None-Match", json!({"type": "string"})), "Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogConsistency => (
            "The consistency proof (RFC 9162 2.1.4)",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/LogConsistency"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::LogWitnesses => (
            "The witnesses and how many cosignatures a checkpoint needs",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/LogWitnesses"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::Cosignature => (
            "The witness's cosignature/v1 line(s) on the checkpoint, each \u{2014} <name> <base64>: append them to the checkpoint note",
            json!({"text/plain": {"schema": {"type": "string"}}}),
            json!({}),
            json!({}),
        ),
        Answer::Health => (
            "The beacon is on time, the database answers, the HSM signs",
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}),
            json!({}),
            json!({}),
        ),
        Answer::Metrics => (
            "Prometheus metrics",
            json!({"text/plain": {"schema": {"type": "string"}}}),
            json!({}),
            json!({}),
        ),
        Answer::OpenApi => (
            "This document",
            json!({"application/json": {"schema": {"type": "object"}}}),
            json!({}),
            json!({}),
        ),
        Answer::Pulse => {
            let mut json_form = json!({"schema": {"$ref": "#/components/schemas/PulseAnswer"}});
            if let Some(p) = &examples.pulse {
                json_form["example"] = p.clone();
            }
            (
                "The pulse: JSON, or NIST's XML when Accept asks for application/xml or text/xml",
                json!({
                    "application/json": json_form,
                    "application/xml": xml_form("<response><pulse>…</pulse></response>"),
                }),
                json!({"ETag": etag, "Cache-Control": cache}),
                pulse_links(),
            )
        }
        Answer::Manifest => {
            let mut form = json!({"schema": {"$ref": "#/components/schemas/SourceManifest"}});
            if let Some(m) = &examples.manifest {
                form["example"] = m.clone();
            }
            (
                "The source manifest",
                json!({"application/json": form}),
                json!({"Cache-Control": cache}),
                json!({"pulse": {
                    "operationId": "getPulse",
                    "parameters": {"c": "$response.body#/chainIndex", "p": "$response.body#/pulseIndex"},
                    "description": "The pulse this manifest makes",
                }}),
            )
        }
        Answer::ManifestLines => (
            "One source manifest (a SourceManifest object) per line",
            json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
            json!({"Link": next}),
            json!({}),
        ),
        Answer::PulseLines => (
            "One pulse (a Pulse object) per line, oldest first; in XML, one <pulse> each (a window without pulses is 404 in XML, as the schema has no empty response)",
            json!({
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/xml": xml_form("<response><pulse>…</pulse><pulse>…</pulse>…</response>"),
            }),
            json!({"Link": next, "Cache-Control": cache}),
            json!({}),
        ),
        Answer::SkipPath => (
            "The skip path",
            json!({
                "application/json": {"schema": {"$ref": "#/components/schemas/SkipPath"}},
                "application/xml": xml_form("<response><skipList><pulse>…</pulse><pulse type=\"hour\">…</pulse>…</skipList></response>, each pulse after the first typed by the listValue that names the one before"),
            }),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::Chain => (
            "Every pulse from the start to the end, each linked to the one before by previous",
            json!({
                "application/json": {"schema": {"$ref": "#/components/schemas/Chain"}},
                "application/xml": xml_form("<response><chain><pulse>…</pulse><pulse type=\"previous\">…</pulse>…</chain></response>"),
            }),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::ExternalSource => (
            "The description, whose SHA-512 (of its UTF-8 bytes) is the sourceId",
            json!({"text/plain": {"schema": {"type": "string"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::Certificate => (
            "The X.509 certificate, PEM",
            json!({"application/x-pem-file": {"schema": {"type": "string"}}}),
            json!({"Cache-Control": cache}),
            json!({}),
        ),
        Answer::Events => (
            "event: pulse, id: chain-pulse, data: a PulseAnswer object; a comment every 15 s",
            // OpenAPI 3.1: the schema of an event stream describes one event.
            json!({"text/event-stream": {"schema": {"$ref": "#/components/schemas/PulseEvent"}}}),
            json!({}),
            json!({}),
        ),
        Answer::PrivateBytes => (
            "The bytes, in the form asked for",
            json!({
                "text/plain": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/PrivateBytes"}},
            }),
            json!({}),
            json!({}),
        ),
        Answer::PrivateIntegers => (
            "The integers, in the form asked for",
            json!({
                "application/json": {"schema": {"$ref": "#/components/schemas/PrivateIntegers"}},
                "text/csv": {"schema": {"type": "string"}},
            }),
            json!({}),
            json!({}),
        ),
    };
    let mut r = json!({"description": description, "content": content});
    if headers.as_object().is_some_and(|h| !h.is_empty()) {
        r["headers"] = headers;
    }
    if links.as_object().is_some_and(|l| !l.is_empty()) {
        r["links"] = links;
    }
    r
}

/// Where a pulse leads: its certificate, its sources, its neighbours, its chain's start.
fn pulse_links() -> Value {
    json!({
        "certificate": {
            "operationId": "getCertificate",
            "parameters": {"id": "$response.body#/pulse/certificateId"},
            "description": "The certificate that verifies this pulse's signature",
        },
        "sources": {
            "operationId": "getPulseSources",
            "parameters": {"c": "$response.body#/pulse/chainIndex", "p": "$response.body#/pulse/pulseIndex"},
            "description": "What went into this pulse's localRandomValue",
        },
        "self": {
            "operationId": "getPulse",
            "parameters": {"c": "$response.body#/pulse/chainIndex", "p": "$response.body#/pulse/pulseIndex"},
            "description": "This pulse at its permanent address",
        },
        "previous": {
            "operationId": "getPulseBefore",
            "parameters": {"t": "$response.body#/pulse/timeStamp"},
            "description": "The pulse before this one",
        },
        "next": {
            "operationId": "getPulseAfter",
            "parameters": {"t": "$response.body#/pulse/timeStamp"},
            "description": "The pulse after this one (404 until it is published)",
        },
        "chainFirst": {
            "operationId": "getChainFirst",
            "parameters": {"c": "$response.body#/pulse/chainIndex"},
            "description": "The first pulse of this pulse's chain",
        },
        "externalSource": {
            "operationId": "getExternalSource",
            "parameters": {"id": "$response.body#/pulse/external/sourceId"},
            "description": "The description of the external source this pulse used (404 for all zeros: none)",
        },
    })
}

/// The answer with status `s` (not 200) of route `r`.
fn other(r: &RouteDoc, s: u16) -> Value {
    let retry =
        json!({"Retry-After": header("Seconds to wait", json!({"type": "integer", "minimum": 0}))});
    let mut resp = json!({"description": status_text(s)});
    match s {
        304 => {
            resp["headers"] =
                json!({"ETag": header("The ETag matched", json!({"type": "string"}))});
        }
        405 => {
            resp["content"] = error_body();
            resp["headers"] =
                json!({"Allow": header("The methods this path takes", json!({"type": "string"}))});
        }
        425 | 429 => {
            resp["content"] = error_body();
            resp["headers"] = retry;
        }
        // tlog-witness: refusals are text, the 409's the witness's size; a beacon that is not a
        // witness, and the server's own errors, answer JSON as everywhere.
        409 if r.answer == Answer::Cosignature => {
            resp["content"] = json!({"text/x.tlog.size": {"schema": {"type": "string", "pattern": "^(0|[1-9][0-9]*)\n$"}}});
        }
        400 | 403 | 404 | 413 | 422 if r.answer == Answer::Cosignature => {
            let mut content = error_body();
            content["text/plain"] = json!({"schema": {"type": "string"}});
            resp["content"] = content;
        }
        503 if r.answer == Answer::Health => {
            resp["description"] = "The beacon is degraded: late, or its database or HSM is failing; the report says which".into();
            resp["content"] =
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}});
        }
        503 => {
            resp["content"] = error_body();
            resp["headers"] = retry;
        }
        _ => resp["content"] = error_body(),
    }
    resp
}

fn parameter(p: &Param, examples: &Examples) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": match p.location {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        },
        "required": p.required || p.location == Location::Path,
        "description": p.description,
        "schema": schema(p.kind),
    });
    if let Some(e) = examples.param(p.example) {
        v["example"] = e;
    }
    v
}

/// Statuses every route can answer with, whatever its handler does: other methods (405), a
/// URL or headers too long to read (414, 431).
const EVERY_ROUTE: [u16; 3] = [405, 414, 431];

/// A route's path as OpenAPI writes it: `{name}` for a parameter the route table writes
/// `{name:regex}` (a parameter that spans segments, such as a tile's path).
fn doc_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_regex = false;
    for c in path.chars() {
        match c {
            ':' if !in_regex && out.rfind('{') > out.rfind('}') => in_regex = true,
            '}' if in_regex => {
                in_regex = false;
                out.push(c);
            }
            _ if in_regex => {}
            _ => out.push(c),
        }
    }
    out
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi(routes: &[RouteDoc], examples: &Examples) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r.params.iter().map(|p| parameter(p, examples)).collect();
        let mut responses = Map::new();
        let mut statuses: Vec<u16> = r.statuses.iter().copied().chain(EVERY_ROUTE).collect();
        statuses.sort_unstable();
        statuses.dedup();
        for s in statuses {
            let resp = if s == 200 || s == 201 {
                success(r.answer, examples)
            } else {
                other(r, s)
            };
            responses.insert(s.to_string(), resp);
        }
        let mut operation = json!({
            "operationId": r.operation_id,
            "summary": r.summary,
            "parameters": params,
            "responses": responses,
        });
        let verb = match r.method {
            Verb::Get => "get",
            Verb::Post => {
                operation["requestBody"] = if r.answer == Answer::Cosignature {
                    json!({
                        "required": true,
                        "description": "C2SP tlog-witness: old <size>, up to 63 lines of base64 consistency proof hashes, a blank line, the signed checkpoint note",
                        "content": {"text/plain": {"schema": {"type": "string", "pattern": "^old (0|[1-9][0-9]*)\n([A-Za-z0-9+/]{43}=\n){0,63}\n"}}},
                    })
                } else {
                    json!({
                        "required": true,
                        "description": "The draw spec (docs/draws.md), signed as private-bytes requests are (docs/private-bytes.md: the body's SHA-256 is in the string to sign)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DrawSpec"}}},
                    })
                };
                "post"
            }
        };
        paths.insert(doc_path(r.path), json!({ verb: operation }));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lavabeacon",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "description": "A public randomness beacon in the NIST Randomness Beacon 2.0 format. \
                Every route is read with GET (HEAD too) but POST /draws and POST \
                /witness/add-checkpoint; OPTIONS answers CORS preflights with 204. \
                Every error the server makes has the Error body, or NIST's XML <error> when \
                Accept asks for application/xml (a witness's refusals are text, as C2SP \
                tlog-witness says); pulses, skip lists and chains are in NIST's \
                XML (beacon-2.0.xsd) when asked for too. Indexes in paths are written \
                without sign or leading zeros (others are 404). NIST's time paths take Unix \
                milliseconds: a number below 100,000,000,000 there is still read as milliseconds \
                (a 1970 time), and the answer says so in a Lavabeacon-Warning header. See docs/api.md.",
        },
        "paths": paths,
        "components": {"schemas": components()},
    })
}
