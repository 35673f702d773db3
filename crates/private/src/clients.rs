//! The clients file: who may ask for private bytes, with which secrets, from where, how often
//! and how much. It is JSON, written whole and atomically (a temporary file in the same folder,
//! mode 0600, synced, then renamed), and refused when others can read it.
//!
//! Secrets are made here (header name and value, 32-byte HMAC keys) and leave only once, in the
//! [`Credentials`] that `clients add` and `clients rotate` print. Nothing here implements
//! `Debug` with a secret in it.

use crate::protocol::{decode_key, encode_key, KEY_BYTES};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ipnet::IpNet;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

/// Requests a minute when `--rate` is not given.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60;
/// Bytes a UTC day when `--bytes-per-day` is not given: 16 MiB.
pub const DEFAULT_BYTES_PER_DAY: u64 = 16 << 20;
/// The version of the file's layout.
const VERSION: u32 = 1;
/// Live keys a client may hold at once: the current one and the one replacing it.
pub const MAX_LIVE_KEYS: usize = 2;

/// Why the clients file could not be read, written or changed. No variant holds a secret.
#[derive(Debug, Error)]
pub enum ClientsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a clients file: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}: readable by others (mode {mode:o}); run chmod 600 on it")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("a client name is 1 to 64 letters, digits, '-' or '_': {0:?} is not")]
    BadName(String),
    #[error("client {0:?} already exists")]
    Exists(String),
    #[error("no client {0:?}")]
    NoClient(String),
    #[error("no key {0:?}")]
    NoKey(String),
    #[error(
        "client {name:?} already has {} live keys ({ids}); retire one first",
        MAX_LIVE_KEYS
    )]
    TooManyKeys { name: String, ids: String },
    #[error("{0:?} is the client's only key; remove the client instead")]
    LastKey(String),
    #[error("{what} must be at least 1")]
    Zero { what: &'static str },
    #[error("{0:?} is not an origin such as https://example.org (scheme, host, optional port)")]
    BadOrigin(String),
}

/// The custom header a client must send (the firewall-style check before anything else).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

/// One HMAC key of a client.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Key {
    /// `NAME.N`.
    pub id: String,
    /// base64url, 32 bytes.
    pub hmac_key: String,
    /// When it was made, Unix seconds.
    pub created: i64,
}

/// One client.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    pub name: String,
    pub header: CustomHeader,
    pub keys: Vec<Key>,
    /// Addresses the client may connect from; empty: any.
    #[serde(default)]
    pub allow_ip: Vec<IpNet>,
    /// Origins a browser request may come from; empty: no Origin check.
    #[serde(default)]
    pub allow_origin: Vec<String>,
    pub rate_per_minute: u32,
    pub bytes_per_day: u64,
    /// The number of the newest key ever made, so a retired key's id is never reused.
    pub last_key: u32,
}

/// What is shown of a client: no secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    pub key_ids: Vec<String>,
    pub allow_ip: Vec<IpNet>,
    pub allow_origin: Vec<String>,
    pub rate_per_minute: u32,
    pub bytes_per_day: u64,
}

/// The whole file.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientsFile {
    pub version: u32,
    pub clients: Vec<Client>,
}

/// What a client is given once: the JSON object `clients add` and `clients rotate` print.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub client: String,
    pub key_id: String,
    pub header: CustomHeader,
    pub hmac_key: String,
}

impl Credentials {
    /// The HMAC key's bytes.
    pub fn key(&self) -> Option<Zeroizing<Vec<u8>>> {
        decode_key(&self.hmac_key)
    }
}

/// What `clients add` may set.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub allow_ip: Vec<IpNet>,
    pub allow_origin: Vec<String>,
    pub rate_per_minute: Option<u32>,
    pub bytes_per_day: Option<u64>,
}

fn random_text(bytes: usize) -> String {
    let mut b = Zeroizing::new(vec![0u8; bytes]);
    OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(&*b)
}

fn new_key(name: &str, number: u32, now: i64) -> Key {
    let mut k = Zeroizing::new([0u8; KEY_BYTES]);
    OsRng.fill_bytes(&mut *k);
    Key {
        id: format!("{name}.{number}"),
        hmac_key: encode_key(&*k),
        created: now,
    }
}

/// A client name: what a key id starts with, so no dot.
pub fn check_name(name: &str) -> Result<(), ClientsError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ClientsError::BadName(name.to_string()))
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, no path; kept in lower case.
pub fn normalise_origin(text: &str) -> Result<String, ClientsError> {
    let bad = || ClientsError::BadOrigin(text.to_string());
    let lower = text.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https")
        || rest.is_empty()
        || rest.contains(['/', '?', '#', '@', ' '])
    {
        return Err(bad());
    }
    Ok(lower)
}

impl Default for ClientsFile {
    fn default() -> Self {
        ClientsFile {
            version: VERSION,
            clients: Vec::new(),
        }
    }
}

impl ClientsFile {
    /// Reads `path`, refusing a file others can read. A missing file is an error here; use
    /// [`ClientsFile::load_or_new`] where a new file may be started.
    pub fn load(path: &Path) -> Result<Self, ClientsError> {
        let io = |source| ClientsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ClientsError::Exposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let file: ClientsFile =
            serde_json::from_str(&text).map_err(|e| ClientsError::Malformed {
                path: path.to_path_buf(),
                // Where, and what kind of fault, but not serde's own words: they may quote the
                // value found, and values here are secrets.
                reason: describe_json_error(&e),
            })?;
        file.check(path)?;
        Ok(file)
    }

    /// Reads `path`, or starts an empty file if there is none.
    pub fn load_or_new(path: &Path) -> Result<Self, ClientsError> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(Self::default())
        }
    }

    fn check(&self, path: &Path) -> Result<(), ClientsError> {
        let bad = |reason: String| ClientsError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        if self.version != VERSION {
            return Err(bad(format!(
                "version {} (this build reads {VERSION})",
                self.version
            )));
        }
        let mut names = std::collections::HashSet::new();
        for c in &self.clients {
            check_name(&c.name).map_err(|e| bad(e.to_string()))?;
            if !names.insert(c.name.as_str()) {
                return Err(bad(format!("client {:?} appears twice", c.name)));
            }
            if c.keys.is_empty() {
                return Err(bad(format!("client {:?} has no key", c.name)));
            }
            for k in &c.keys {
                let prefix_ok =
                    k.id.strip_prefix(c.name.as_str())
                        .and_then(|r| r.strip_prefix('.'))
                        .is_some_and(|n| n.parse::<u32>().is_ok());
                if !prefix_ok {
                    return Err(bad(format!("key {:?} is not named {}.N", k.id, c.name)));
                }
                if decode_key(&k.hmac_key).is_none_or(|b| b.len() != KEY_BYTES) {
                    return Err(bad(format!("key {:?} is not 32 bytes of base64url", k.id)));
                }
            }
            if c.header.name.is_empty() || c.header.value.is_empty() {
                return Err(bad(format!(
                    "client {:?} has an empty custom header",
                    c.name
                )));
            }
        }
        Ok(())
    }

    /// Writes the file whole: a temporary file beside it (mode 0600), synced, renamed over it,
    /// and the folder synced, so a crash leaves the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), ClientsError> {
        let io = |source| ClientsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(self).expect("serialisable"));
        let mut tmp = tempfile_in(&dir).map_err(io)?;
        tmp.1.write_all(text.as_bytes()).map_err(io)?;
        tmp.1.write_all(b"\n").map_err(io)?;
        tmp.1.sync_all().map_err(io)?;
        std::fs::rename(&tmp.0, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            io(e)
        })?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.clients.iter().position(|c| c.name == name)
    }

    /// Adds a client with a fresh custom header and key `NAME.1`; gives its credentials.
    pub fn add(
        &mut self,
        name: &str,
        opts: NewClient,
        now: i64,
    ) -> Result<Credentials, ClientsError> {
        check_name(name)?;
        if self.find(name).is_some() {
            return Err(ClientsError::Exists(name.to_string()));
        }
        let rate = opts.rate_per_minute.unwrap_or(DEFAULT_RATE_PER_MINUTE);
        if rate == 0 {
            return Err(ClientsError::Zero { what: "--rate" });
        }
        let bytes = opts.bytes_per_day.unwrap_or(DEFAULT_BYTES_PER_DAY);
        if bytes == 0 {
            return Err(ClientsError::Zero {
                what: "--bytes-per-day",
            });
        }
        let origins = opts
            .allow_origin
            .iter()
            .map(|o| normalise_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let header = CustomHeader {
            // A token (RFC 9110) that no proxy or library gives a meaning to.
            name: format!("X-Lb-{}", random_text(9).replace(['-', '_'], "0")),
            value: random_text(32),
        };
        let key = new_key(name, 1, now);
        let creds = Credentials {
            client: name.to_string(),
            key_id: key.id.clone(),
            header: header.clone(),
            hmac_key: key.hmac_key.clone(),
        };
        self.clients.push(Client {
            name: name.to_string(),
            header,
            keys: vec![key],
            allow_ip: opts.allow_ip,
            allow_origin: origins,
            rate_per_minute: rate,
            bytes_per_day: bytes,
            last_key: 1,
        });
        Ok(creds)
    }

    /// Gives client `name` a new key `NAME.N+1` beside the one it has; gives its credentials.
    pub fn rotate(&mut self, name: &str, now: i64) -> Result<Credentials, ClientsError> {
        let i = self
            .find(name)
            .ok_or_else(|| ClientsError::NoClient(name.to_string()))?;
        let c = &mut self.clients[i];
        if c.keys.len() >= MAX_LIVE_KEYS {
            let ids = c.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>();
            return Err(ClientsError::TooManyKeys {
                name: name.to_string(),
                ids: ids.join(", "),
            });
        }
        c.last_key += 1;
        let key = new_key(name, c.last_key, now);
        let creds = Credentials {
            client: name.to_string(),
            key_id: key.id.clone(),
            header: c.header.clone(),
            hmac_key: key.hmac_key.clone(),
        };
        c.keys.push(key);
        Ok(creds)
    }

    /// Retires key `NAME.N`: requests signed with it are refused from the next reload on.
    pub fn retire(&mut self, key_id: &str) -> Result<(), ClientsError> {
        let name = key_id.rsplit_once('.').map(|(n, _)| n).unwrap_or(key_id);
        let i = self
            .find(name)
            .ok_or_else(|| ClientsError::NoKey(key_id.to_string()))?;
        let c = &mut self.clients[i];
        let k = c
            .keys
            .iter()
            .position(|k| k.id == key_id)
            .ok_or_else(|| ClientsError::NoKey(key_id.to_string()))?;
        if c.keys.len() == 1 {
            return Err(ClientsError::LastKey(key_id.to_string()));
        }
        c.keys.remove(k);
        Ok(())
    }

    /// Removes client `name` and all its keys.
    pub fn remove(&mut self, name: &str) -> Result<(), ClientsError> {
        let i = self
            .find(name)
            .ok_or_else(|| ClientsError::NoClient(name.to_string()))?;
        self.clients.remove(i);
        Ok(())
    }

    /// Every client, without its secrets.
    pub fn list(&self) -> Vec<Summary> {
        self.clients
            .iter()
            .map(|c| Summary {
                name: c.name.clone(),
                key_ids: c.keys.iter().map(|k| k.id.clone()).collect(),
                allow_ip: c.allow_ip.clone(),
                allow_origin: c.allow_origin.clone(),
                rate_per_minute: c.rate_per_minute,
                bytes_per_day: c.bytes_per_day,
            })
            .collect()
    }
}

/// A JSON error's kind and place, without the value it was about.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not valid JSON",
        Category::Data => "a missing field or a value of the wrong kind",
        Category::Eof => "cut short",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// A new file in `dir`, created with mode 0600 (never readable by others, not even for a
/// moment), and its path.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    for _ in 0..16 {
        let path = dir.join(format!(".clients-{}.tmp", random_text(6)));
        match opts.open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}
