//! Passwords never leave the store in a message: [`redact`] hides them in every form a database
//! URL or connection string can carry them, and `scrub` removes the passwords of every URL
//! this process opened from any text (driver errors sometimes echo the URL or the password).

use std::sync::Mutex;

const HIDDEN: &str = "***";

/// The text with every password replaced by `***`: the userinfo of a URL
/// (`postgres://user:pw@host/db`, where the password may contain `@`, `:` or `/`, since the
/// last `@` ends the userinfo, and may be percent-encoded), `password=` and `sslpassword=`
/// query parameters, and the same keys in `key=value` connection strings (quoted or not).
///
/// ```
/// use lavabeacon_store::redact;
/// assert_eq!(redact("postgres://beacon:hunter2@db/lb"), "postgres://beacon:***@db/lb");
/// assert_eq!(redact("postgres://beacon:p@ss:w@db/lb"), "postgres://beacon:***@db/lb");
/// assert_eq!(redact("postgres://db/lb?user=b&password=x"), "postgres://db/lb?user=b&password=***");
/// assert_eq!(redact("host=db password='a b' dbname=lb"), "host=db password=*** dbname=lb");
/// assert_eq!(redact("sqlite:data/lb.db"), "sqlite:data/lb.db");
/// ```
pub fn redact(text: &str) -> String {
    match text.find("://") {
        Some(i) => {
            let (scheme, rest) = (&text[..i], &text[i + 3..]);
            let rest = match rest.rfind('@') {
                // The last `@` ends the userinfo: a password may contain `@` itself.
                Some(at) => match rest[..at].split_once(':') {
                    Some((user, _)) => format!("{user}:{HIDDEN}@{}", &rest[at + 1..]),
                    None => rest.to_string(),
                },
                None => rest.to_string(),
            };
            format!("{scheme}://{}", hide_keys(&rest, true))
        }
        None => hide_keys(text, false),
    }
}

/// The passwords a URL or connection string carries, as written and percent-decoded.
pub(crate) fn secrets_of(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(i) = text.find("://") {
        let rest = &text[i + 3..];
        if let Some(at) = rest.rfind('@') {
            if let Some((_, pw)) = rest[..at].split_once(':') {
                found.push(pw.to_string());
            }
        }
    }
    let url = text.contains("://");
    for (start, end) in password_values(text, url) {
        let v = &text[start..end];
        found.push(v.to_string());
        if let Some(inner) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            found.push(inner.replace("\\'", "'").replace("\\\\", "\\"));
        }
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort();
    found.dedup();
    found
}

/// Every password of a URL this process opened, so that `scrub` can find them in any text.
static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers the passwords in `url` (the store calls it before it uses a URL).
pub(crate) fn remember(url: &str) {
    let mut known = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    for s in secrets_of(url) {
        if !known.contains(&s) {
            known.push(s);
        }
    }
    // Longest first, so that a password containing a shorter one is replaced whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with any URL in it redacted and every remembered password replaced by `***`.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = redact_urls(text);
    let known = SECRETS.lock().unwrap_or_else(|p| p.into_inner());
    for s in known.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), HIDDEN);
        }
    }
    out
}

/// Redacts each URL-looking word (`scheme://…` up to a space or a quote) inside `text`, and
/// any `password=` it carries outside a URL: for messages of other libraries that name the URL
/// they were given (an HTTP client's errors).
///
/// ```
/// use lavabeacon_store::redact_urls;
/// assert_eq!(
///     redact_urls("http://u:pw@host:1/x: Connection refused"),
///     "http://u:***@host:1/x: Connection refused"
/// );
/// ```
pub fn redact_urls(text: &str) -> String {
    if !text.contains("://") {
        return hide_keys(text, false);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the letters right before `://`.
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |p| p + 1);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .map_or(rest.len(), |p| i + p);
        out.push_str(&hide_keys(&rest[..start], false));
        out.push_str(&redact(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(&hide_keys(rest, false));
    out
}

/// `text` with the value of each `password=` / `sslpassword=` key replaced by `***`.
fn hide_keys(text: &str, url: bool) -> String {
    let spans = password_values(text, url);
    if spans.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push_str(HIDDEN);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// The byte spans of the values of `password` and `sslpassword` keys in `text`: in a URL the
/// value ends at `&` or `#`; in a `key=value` string at whitespace, or it is quoted `'…'`.
fn password_values(text: &str, url: bool) -> Vec<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(p) = lower[from..].find("password") {
        let key_start = from + p;
        let mut i = key_start + "password".len();
        from = i;
        // The key must start at a boundary (`sslpassword` counts, `mypassword` does not).
        let before = lower[..key_start]
            .strip_suffix("ssl")
            .unwrap_or(&lower[..key_start]);
        let boundary = before
            .chars()
            .last()
            .is_none_or(|c| matches!(c, '?' | '&' | ';' | ',') || c.is_whitespace());
        if !boundary {
            continue;
        }
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' && !url {
            i += 1;
        }
        let start = i;
        let end = if !url && bytes.get(i) == Some(&b'\'') {
            // A quoted value: up to the closing quote, `\'` and `\\` escaped inside.
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        } else {
            let stop = |c: char| {
                if url {
                    c == '&' || c == '#' || c.is_whitespace()
                } else {
                    c.is_whitespace()
                }
            };
            text[i..].find(stop).map_or(text.len(), |p| i + p)
        };
        if end > start {
            spans.push((start, end));
        }
        from = end.max(from);
    }
    spans
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_password_is_hidden() {
        assert_eq!(
            redact("postgres://beacon:hunter2@db.example:5432/lb"),
            "postgres://beacon:***@db.example:5432/lb"
        );
        assert_eq!(
            redact("postgresql://beacon:hunter2@db/lb"),
            "postgresql://beacon:***@db/lb"
        );
    }

    #[test]
    fn a_password_with_at_signs_colons_and_slashes_is_hidden_whole() {
        for url in [
            "postgres://beacon:p@ss@db/lb",
            "postgres://beacon:p:a@s:s@db/lb",
            "postgres://beacon:p/a@s?s@db/lb",
        ] {
            let r = redact(url);
            assert_eq!(r, "postgres://beacon:***@db/lb", "{url}");
        }
    }

    #[test]
    fn a_percent_encoded_password_is_hidden_and_known_decoded() {
        let url = "postgres://beacon:p%40ss%3Aw0rd@db/lb";
        assert_eq!(redact(url), "postgres://beacon:***@db/lb");
        let s = secrets_of(url);
        assert!(s.contains(&"p%40ss%3Aw0rd".to_string()), "{s:?}");
        assert!(s.contains(&"p@ss:w0rd".to_string()), "{s:?}");
    }

    #[test]
    fn password_query_parameters_are_hidden() {
        assert_eq!(
            redact("postgres://beacon@db/lb?password=hunter2"),
            "postgres://beacon@db/lb?password=***"
        );
        assert_eq!(
            redact("postgres://db/lb?sslmode=require&password=hunter2&application_name=x"),
            "postgres://db/lb?sslmode=require&password=***&application_name=x"
        );
        assert_eq!(
            redact("postgres://db/lb?sslpassword=keypw&sslkey=/k.pem"),
            "postgres://db/lb?sslpassword=***&sslkey=/k.pem"
        );
        assert_eq!(
            redact("postgres://db/lb?PASSWORD=hunter2"),
            "postgres://db/lb?PASSWORD=***"
        );
        // Both forms at once.
        assert_eq!(
            redact("postgres://u:one@db/lb?password=two"),
            "postgres://u:***@db/lb?password=***"
        );
    }

    #[test]
    fn key_value_connection_strings_are_hidden() {
        assert_eq!(
            redact("host=db user=beacon password=hunter2 dbname=lb"),
            "host=db user=beacon password=*** dbname=lb"
        );
        assert_eq!(
            redact("host=db password = 'hunter 2\\' x' dbname=lb"),
            "host=db password = *** dbname=lb"
        );
        assert_eq!(
            redact("password=hunter2 sslpassword=k"),
            "password=*** sslpassword=***"
        );
        // Not a key: the word inside another one, or without a value.
        assert_eq!(redact("mypassword=x"), "mypassword=x");
        assert_eq!(redact("wrong password for user"), "wrong password for user");
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for url in [
            "sqlite:data/lb.db",
            "sqlite:///var/lib/lb.db",
            "postgres://beacon@db/lb",
            "postgres://db:5432/lb?host=/var/run/postgresql",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn scrub_hides_urls_and_remembered_passwords_anywhere_in_a_message() {
        remember("postgres://beacon:Zq9-unusual@db/lb?sslpassword=Kx7-other");
        let msg = "error with configuration: postgres://beacon:Zq9-unusual@db/lb failed; \
                   password Zq9-unusual rejected, key Kx7-other, p%40 stays";
        let s = scrub(msg);
        assert!(!s.contains("Zq9-unusual"), "{s}");
        assert!(!s.contains("Kx7-other"), "{s}");
        assert!(s.contains("postgres://beacon:***@db/lb"), "{s}");
        assert!(s.contains("p%40 stays"), "{s}");
        // A URL that was never opened is still redacted.
        let s = scrub("connect to \"postgresql://x:never-seen@h/d\" refused");
        assert_eq!(s, "connect to \"postgresql://x:***@h/d\" refused");
    }
}
