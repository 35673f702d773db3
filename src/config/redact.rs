//! Messages that must not show a secret: errors in the configuration file (reported by line
//! and key, never with the value) and URLs that may carry a password.

use std::path::Path;

/// `file: line N: key: message`, without the offending line and without the value: a PIN or a
/// password typed into the file by mistake (an unquoted `pin_file = 548083359663` is a type
/// error) must not reach a terminal or a log through this message. serde's type errors quote
/// the value (``invalid type: integer `548083359663`, expected …``); only its kind and what was
/// expected are kept, whatever the key, so that no key with an unexpected name can leak.
pub(super) fn describe_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|s| s.start.min(text.len()));
    let line = at.map(|a| text[..a].lines().count().max(1));
    let key = at.and_then(|a| key_at(text, a));
    let message = without_values(e.message());
    let mut out = path.display().to_string();
    if let Some(l) = line {
        out.push_str(&format!(": line {l}"));
    }
    if let Some(k) = key {
        out.push_str(&format!(": {k}"));
    }
    out.push_str(&format!(": {message}"));
    out
}

/// The dotted name (`signer.pin_file`) of the key whose value starts at byte `at`: the key
/// left of the `=` on that line, under the last `[table]` header before it. Only names, never
/// what follows the `=`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..at];
    let (lhs, _) = before.rsplit_once('=')?;
    // In an inline table the key follows `{` or `,`.
    let key = lhs.rsplit(['{', ',']).next()?.trim();
    let plain = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '))
    };
    if !plain(key) {
        return None;
    }
    let key = key.replace(['"', ' '], "");
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']', ' ']).to_string());
    Some(match table {
        Some(t) if plain(&t) => format!("{}.{key}", t.replace(['"', ' '], "")),
        _ => key,
    })
}

/// A deserialiser's message with any quoted value taken out: "invalid type: integer
/// `548083359663`, expected path string" becomes "invalid type: integer, expected path
/// string (the value is not shown)", and "unknown variant `pkcs12`, expected `pkcs11` or
/// `software`" becomes "unknown value, expected `pkcs11` or `software` (the value is not
/// shown)". Messages that quote no value pass unchanged.
fn without_values(message: &str) -> String {
    let message = message.trim();
    // `unknown variant` is a wrong choice (`signer.kind`, `suite`, a source): the choices
    // accepted, which serde lists after "expected", are what helps.
    for head in [
        "invalid type: ",
        "invalid value: ",
        "invalid length ",
        "unknown variant ",
    ] {
        let Some(rest) = message.strip_prefix(head) else {
            continue;
        };
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        // The kind is what precedes the quoted value: `integer`, `string`, `floating point`.
        let kind = found
            .split(['`', '"'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches(':');
        // serde's "variant" is jargon here: for the reader it is one of the values allowed.
        let head = if head == "unknown variant " {
            "unknown value "
        } else {
            head
        };
        let mut out = format!("{head}{kind}").trim_end().to_string();
        if !expected.is_empty() {
            out.push_str(&format!(", expected {expected}"));
        }
        out.push_str(" (the value is not shown)");
        return out;
    }
    message.to_string()
}

/// `text` with every URL in it (a word holding `://`) passed through
/// [`lavabeacon_store::redact`]: for messages that quote a URL given by the user, or an
/// error of a library that names the URL it failed on, so that no password in it is shown.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The word around `://`: back to the last space, quote or bracket, on to the next.
        let stop =
            |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '`');
        let start = rest[..i].rfind(stop).map_or(0, |j| {
            j + rest[j..].chars().next().map_or(1, char::len_utf8)
        });
        let end = rest[i..].find(stop).map_or(rest.len(), |j| i + j);
        // A URL ends before trailing punctuation of the sentence.
        let word = rest[start..end].trim_end_matches([',', ';', '.', ':']);
        out.push_str(&rest[..start]);
        out.push_str(&lavabeacon_store::redact(word));
        rest = &rest[start + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_messages_are_redacted() {
        let m = redact_urls("error: http://u:pw1@host:1/x: Connection refused");
        assert!(
            !m.contains("pw1") && m.contains("host:1/x: Connection refused"),
            "{m}"
        );
        let m = redact_urls("no URL here");
        assert_eq!(m, "no URL here");
    }

    #[test]
    fn a_wrong_choice_lists_the_accepted_ones_without_the_value() {
        let m = without_values("unknown variant `s3cret`, expected `pkcs11` or `software`");
        assert_eq!(
            m,
            "unknown value, expected `pkcs11` or `software` (the value is not shown)"
        );
    }
}
