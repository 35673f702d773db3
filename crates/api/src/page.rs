//! The web page: the beacon explorer (`crates/api/web/`), embedded in the binary.
//!
//! `/` is rendered here with the newest pulse already in it, every field under NIST's names, so
//! that it reads without JavaScript; the explorer's modules then take over: they verify the
//! pulse with the browser's own cryptography, navigate, and follow the SSE stream. Everything
//! they show comes from the public API.
//!
//! The scripts, the stylesheet and the icon are served under `/assets/{version}/`, where
//! `version` is a hash of all of them: a page names the assets it was made with, so they can be
//! kept for a year (a new binary makes a new version), and the modules' relative imports stay
//! inside one version.

use crate::error::ApiError;
use crate::reply::{revalidated, until_next, Reply, IMMUTABLE, NO_STORE};
use crate::state::Beacon;
use crate::xml::escape;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lavabeacon_format::Pulse;
use std::fmt::Write;
use std::sync::LazyLock;

/// One embedded file of the explorer.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static [u8],
}

/// Makes [`ASSETS`] and [`ASSET_NAMES`] from one list, so the route's description names
/// exactly the files that are served.
macro_rules! assets {
    ($($name:literal => $media_type:literal),* $(,)?) => {
        /// The explorer's files, served under `/assets/{version}/`.
        const ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            media_type: $media_type,
            body: include_bytes!(concat!("../web/", $name)),
        }),*];
        /// The names of [`ASSETS`], for the route's description.
        pub(crate) const ASSET_NAMES: &[&str] = &[$($name),*];
    };
}

assets! {
    "explorer.js" => "text/javascript; charset=utf-8",
    "verify.js" => "text/javascript; charset=utf-8",
    "x509.js" => "text/javascript; charset=utf-8",
    "charts.js" => "text/javascript; charset=utf-8",
    "draw.js" => "text/javascript; charset=utf-8",
    "log.js" => "text/javascript; charset=utf-8",
    "explorer.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
}

/// `/favicon.ico`: the icon at 32×32 (a PNG in an ICO), for clients that ask for it by that
/// name whatever the page says.
const FAVICON_ICO: &[u8] = include_bytes!("../web/favicon.ico");

const TEMPLATE: &str = include_str!("../web/index.html");

/// What the page may load and run: only this server's own files, no inline script or style,
/// requests only to this server (the API), and no framing. A page whose purpose is to check
/// the beacon's signatures must run no code but the code it names.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The assets' version: the first 16 hex digits of a SHA-512 over every name and body.
pub(crate) static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut parts: Vec<&[u8]> = Vec::new();
    for a in ASSETS {
        parts.extend([a.name.as_bytes(), b"\0", a.body, b"\0"]);
    }
    parts.push(TEMPLATE.as_bytes());
    lavabeacon_format::hash::sha512(&parts).to_hex_lower()[..16].to_string()
});

/// `/`: the explorer, with the newest pulse rendered in it. Cached like `/beacon/last` (until
/// the next pulse is due), revalidated by ETag.
pub(crate) async fn index(beacon: web::Data<Beacon>, req: HttpRequest) -> HttpResponse {
    // The page is served even while the store fails: it says so, and its scripts keep asking.
    let newest = crate::reply::newest(&beacon).await;
    let warning = beacon.test_warning();
    let (title, rows, cache, etag) = match &newest {
        Ok(Some(served)) => (
            format!(
                "Pulse {}-{} (newest)",
                served.pulse.chain_index, served.pulse.pulse_index
            ),
            pulse_rows(&served.pulse),
            until_next(&beacon, served.time_ms),
            Some(format!(
                "\"{}-{}-{}\"",
                *VERSION,
                &served.etag[1..33],
                u8::from(warning.is_some())
            )),
        ),
        Ok(None) => (
            "No pulse yet".to_string(),
            "<tr><td>The beacon has not published a pulse yet.</td></tr>".to_string(),
            NO_STORE.to_string(),
            None,
        ),
        Err(e) => (
            "The beacon's store does not answer".to_string(),
            format!("<tr><td>{}</td></tr>", escape(&e.to_string())),
            NO_STORE.to_string(),
            None,
        ),
    };
    // A client that has this page gets a 304 before anything is rendered.
    let mut response = match etag {
        Some(tag) => {
            let (mut response, fresh) = revalidated(&req, tag, &cache);
            if fresh {
                return response.finish();
            }
            response
        }
        None => {
            let mut response = HttpResponse::Ok();
            response.insert_header((header::CACHE_CONTROL, cache));
            response
        }
    };
    let test = match &warning {
        Some(w) => format!(
            "<p id=\"test\" class=\"banner test\" role=\"alert\">{}</p>",
            escape(w)
        ),
        None => "<p id=\"test\" class=\"banner test\" role=\"alert\" hidden></p>".to_string(),
    };
    let body = TEMPLATE
        .replace("{{version}}", &VERSION)
        .replace("{{test}}", &test)
        .replace(
            "{{test_why_hidden}}",
            if warning.is_some() { "" } else { "hidden" },
        )
        .replace(
            "{{verification}}",
            "Not checked: the explorer checks pulses with JavaScript, which is off here. \
             To check offline: lavabeacon verify (see below).",
        )
        .replace("{{title}}", &escape(&title))
        .replace("{{rows}}", &rows);
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// `/assets/{version}/{file}`: one of the explorer's files. The version the binary serves is
/// kept for a year; any other (a page made by the binary before an upgrade) gets today's file,
/// revalidated each time, rather than a 404 that would break that page.
pub(crate) async fn asset(path: web::Path<(String, String)>, req: HttpRequest) -> Reply {
    let (version, name) = path.into_inner();
    if version.len() != 16
        || !version
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ApiError::BadRequest(format!(
            "{} is not an assets version: 16 lower-case hex digits, as the page names them",
            version.chars().take(40).collect::<String>()
        )));
    }
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return Err(ApiError::NotFound(format!(
            "no such asset: {}; the explorer's files are {}",
            name.chars().take(100).collect::<String>(),
            ASSET_NAMES.join(", ")
        )));
    };
    let cache = if version == *VERSION {
        IMMUTABLE
    } else {
        "no-cache"
    };
    Ok(fixed(&req, asset.media_type, asset.body, cache))
}

/// `/favicon.ico`.
pub(crate) async fn favicon(req: HttpRequest) -> HttpResponse {
    fixed(&req, "image/x-icon", FAVICON_ICO, "public, max-age=86400")
}

/// A file built into the binary: its ETag is the assets' version, so a 304 answers a client
/// that has it.
fn fixed(req: &HttpRequest, media_type: &str, body: &'static [u8], cache: &str) -> HttpResponse {
    let (mut response, fresh) = revalidated(req, format!("\"{}\"", *VERSION), cache);
    if fresh {
        return response.finish();
    }
    response.content_type(media_type.to_string()).body(body)
}

/// The words for a cipher suite, as the explorer shows them.
fn suite_words(suite: u32) -> &'static str {
    match suite {
        0 => "RSA PKCS#1 v1.5 with SHA-512",
        1 => "RSA-PSS with a Sloth slow hash (CLCERT)",
        2 => "Ed25519",
        _ => "unknown",
    }
}

/// The words for a statusCode, as the explorer shows them.
fn status_words(code: u32) -> &'static str {
    match code {
        0 => "intact",
        1 => "first pulse of a new chain",
        2 => "after a gap",
        3 => "after a gap; the commitment before it was lost",
        _ => "unknown",
    }
}

/// The pulse's fields as table rows, in NIST's order and under NIST's names: what the page
/// shows without JavaScript (the explorer draws the same rows).
fn pulse_rows(p: &Pulse) -> String {
    let mut rows = Vec::new();
    let mut row = |name: &str, value: String, note: Option<String>| {
        rows.push((name.to_string(), value, note));
    };
    row("uri", p.uri.clone(), None);
    row("version", p.version.clone(), None);
    row(
        "cipherSuite",
        p.cipher_suite.to_string(),
        Some(suite_words(p.cipher_suite).into()),
    );
    row(
        "period",
        p.period.to_string(),
        Some(format!("{} s between pulses", f64::from(p.period) / 1000.0)),
    );
    row("certificateId", p.certificate_id.to_hex_lower(), None);
    row("chainIndex", p.chain_index.to_string(), None);
    row("pulseIndex", p.pulse_index.to_string(), None);
    row("timeStamp", p.time_stamp.clone(), None);
    row(
        "localRandomValue",
        p.local_random_value.to_hex_upper(),
        None,
    );
    for e in p.external.as_slice() {
        row("external.sourceId", e.source_id.to_hex_upper(), None);
        row("external.statusCode", e.status_code.to_string(), None);
        row("external.value", e.value.to_hex_upper(), None);
    }
    for l in &p.list_values {
        row(
            &format!("listValues: {}", l.kind),
            l.value.to_hex_upper(),
            Some(
                l.uri
                    .clone()
                    .unwrap_or_else(|| "none: first pulse of the chain".into()),
            ),
        );
    }
    row(
        "precommitmentValue",
        p.precommitment_value.to_hex_upper(),
        Some("SHA-512 of the next pulse's localRandomValue".into()),
    );
    row(
        "statusCode",
        p.status_code.to_string(),
        Some(status_words(p.status_code).into()),
    );
    row(
        "signatureValue",
        hex::encode_upper(&p.signature_value),
        None,
    );
    row("outputValue", p.output_value.to_hex_upper(), None);
    let mut html = String::new();
    for (name, value, note) in rows {
        let _ = write!(
            html,
            "<tr><th scope=\"row\">{}</th><td><code>{}</code>",
            escape(&name),
            escape(&value)
        );
        if let Some(note) = note {
            let _ = write!(html, "<small>{}</small>", escape(&note));
        }
        html.push_str("</td></tr>");
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_has_every_placeholder_the_renderer_fills_and_no_other() {
        let found: Vec<&str> = TEMPLATE
            .match_indices("{{")
            .map(|(i, _)| &TEMPLATE[i..i + TEMPLATE[i..].find("}}").unwrap() + 2])
            .collect();
        let mut unique = found.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique,
            [
                "{{rows}}",
                "{{test_why_hidden}}",
                "{{test}}",
                "{{title}}",
                "{{verification}}",
                "{{version}}"
            ]
        );
    }

    #[test]
    fn the_icon_is_a_32_pixel_png_in_an_ico_container() {
        // ICONDIR: reserved 0, type 1 (icon), one image; its entry says 32×32; the image is a PNG.
        assert_eq!(&FAVICON_ICO[..6], &[0, 0, 1, 0, 1, 0]);
        assert_eq!((FAVICON_ICO[6], FAVICON_ICO[7]), (32, 32));
        let offset = u32::from_le_bytes(FAVICON_ICO[18..22].try_into().unwrap()) as usize;
        assert_eq!(&FAVICON_ICO[offset..offset + 8], b"\x89PNG\r\n\x1a\n");
    }
}
