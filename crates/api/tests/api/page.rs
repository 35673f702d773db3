//! The web page and its files: the newest pulse rendered into `/` (readable without
//! JavaScript), caching by the API's rules, the assets under their version, the icon.

use super::*;

/// The assets' version the page names (`/assets/{version}/…`).
pub(super) fn assets_version() -> String {
    let body = get("/").body;
    let start = body.find("/assets/").expect("the page names its assets") + "/assets/".len();
    body[start..start + 16].to_string()
}

#[test]
fn the_page_renders_the_newest_pulse_with_every_field_and_is_cached_until_the_next_is_due() {
    let before = pulse_of(&get("/beacon/last"));
    let page = get("/");
    let after = pulse_of(&get("/beacon/last"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    // The newest pulse at the time (one may have been published between the requests).
    let shown = [before, after]
        .into_iter()
        .find(|p| page.body.contains(&p.output_value.to_hex_upper()))
        .expect("the page shows the newest pulse's outputValue");
    for (name, value) in [
        ("uri", shown.uri.clone()),
        ("certificateId", shown.certificate_id.to_hex_lower()),
        ("localRandomValue", shown.local_random_value.to_hex_upper()),
        ("signatureValue", hex::encode_upper(&shown.signature_value)),
        ("timeStamp", shown.time_stamp.clone()),
    ] {
        assert!(
            page.body.contains(&format!(
                "<th scope=\"row\">{name}</th><td><code>{value}</code>"
            )),
            "{name} is not rendered"
        );
    }
    assert!(page.body.contains("listValues: previous"));
    // Cached like /beacon/last: at most until the next pulse is due.
    let cache = page.header("Cache-Control").unwrap();
    let age: i64 = cache
        .strip_prefix("public, max-age=")
        .unwrap_or_else(|| panic!("{cache}"))
        .parse()
        .unwrap();
    assert!((0..=PERIOD / 1000).contains(&age), "{cache}");
    let etag = page.header("ETag").unwrap().to_string();
    let again = request("GET", "/", &[("If-None-Match", &etag)]);
    if again.header("ETag") == Some(etag.as_str()) {
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
    }
    // The test beacon's warning is in the page itself, as in every answer's header.
    let warning = page.header("Lavabeacon-Test").unwrap();
    assert!(page.body.contains(&format!(
        "<p id=\"test\" class=\"banner test\" role=\"alert\">{warning}</p>"
    )));
    // Without JavaScript, the verification says it did not run: never ok.
    assert!(page
        .body
        .contains("<div id=\"verification\" data-state=\"pending\" role=\"status\">Not checked"));
}

#[test]
fn assets_of_the_pages_version_are_kept_a_year_and_others_are_revalidated() {
    let version = assets_version();
    for (name, media) in [
        ("explorer.js", "text/javascript; charset=utf-8"),
        ("verify.js", "text/javascript; charset=utf-8"),
        ("x509.js", "text/javascript; charset=utf-8"),
        ("charts.js", "text/javascript; charset=utf-8"),
        ("draw.js", "text/javascript; charset=utf-8"),
        ("explorer.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let path = format!("/assets/{version}/{name}");
        let r = get(&path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some(media), "{path}");
        assert_eq!(
            r.header("Cache-Control"),
            Some("public, max-age=31536000, immutable")
        );
        assert!(!r.body.is_empty());
        let etag = r.header("ETag").unwrap();
        assert_eq!(
            request("GET", &path, &[("If-None-Match", etag)]).status,
            304
        );
        // A page from before an upgrade names another version: it still gets the file, but
        // not to keep.
        let old = get(&format!("/assets/0123456789abcdef/{name}"));
        assert_eq!(old.status, 200);
        assert_eq!(old.header("Cache-Control"), Some("no-cache"));
        assert_eq!(old.body, r.body);
    }
    let bad = get("/assets/latest/explorer.js");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not an assets version"));
    let missing = get(&format!("/assets/{version}/nothing.js"));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no such asset"));
}

#[test]
fn the_modules_import_only_files_that_are_served() {
    let version = assets_version();
    let js = get(&format!("/assets/{version}/explorer.js")).body;
    for line in js.lines().filter(|l| l.starts_with("import ")) {
        let file = line
            .rsplit_once("\"./")
            .and_then(|(_, f)| f.strip_suffix("\";"))
            .unwrap_or_else(|| panic!("an import of a relative file: {line}"));
        assert_eq!(
            get(&format!("/assets/{version}/{file}")).status,
            200,
            "{line}"
        );
    }
}

#[test]
fn the_favicon_is_an_icon_so_browsers_get_no_404() {
    let r = ureq::get(&format!("{}/favicon.ico", world().base))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Content-Type"), Some("image/x-icon"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    assert_eq!(&body[..4], &[0, 0, 1, 0], "an ICO");
}
