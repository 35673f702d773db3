//! `/openapi.json`, made from the same route table that registers the handlers
//! ([`crate::ROUTES`]): a route cannot be served without being described, or described without
//! being served.

use serde_json::{json, Map, Value};

/// One route's description.
#[derive(Debug)]
pub struct RouteDoc {
    /// The path, with `{name}` for path parameters.
    pub path: &'static str,
    /// What it answers.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// The content type of a success.
    pub produces: &'static str,
    /// The statuses it can answer with.
    pub statuses: &'static [u16],
}

/// One parameter.
#[derive(Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// `path`, `query` or `header`.
    pub location: &'static str,
    /// What to put there.
    pub description: &'static str,
}

fn status_text(s: u16) -> &'static str {
    match s {
        200 => "OK",
        304 => "Not Modified (If-None-Match matched the ETag)",
        400 => "Bad input; the message says what a good value looks like",
        404 => "Nothing there, or not public yet",
        405 => "Method not allowed (the beacon is read with GET)",
        425 => "Too Early: not published yet; see Retry-After",
        429 => "Too many open streams (SSE and bulk) from this client or in all; see Retry-After",
        503 => "The database is unavailable or did not answer within a second (or, for /health, the beacon is degraded)",
        _ => "",
    }
}

/// The OpenAPI 3.0 document of every route.
pub fn openapi(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": p.location,
                    "required": p.location == "path",
                    "description": p.description,
                    "schema": {"type": "string"},
                })
            })
            .collect();
        let mut responses = Map::new();
        for s in r.statuses {
            let mut resp = json!({"description": status_text(*s)});
            if *s == 200 {
                resp["content"] = json!({ r.produces: {} });
            } else if *s != 304 && r.path != "/health" {
                resp["content"] =
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
            }
            responses.insert(s.to_string(), resp);
        }
        paths.insert(
            r.path.to_string(),
            json!({"get": {"summary": r.summary, "parameters": params, "responses": responses}}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "lavabeacon",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A public randomness beacon in the NIST Randomness Beacon 2.0 format. See docs/api.md.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object",
            "properties": {"error": {"type": "object", "properties": {
                "status": {"type": "integer"}, "message": {"type": "string"}}}},
        }}},
    })
}
