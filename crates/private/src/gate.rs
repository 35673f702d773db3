//! The checks every request passes, in the order the protocol fixes, each with its answer:
//! the custom header (403), the client's address (403), its Origin or Referer (403), then the
//! key, the signature, the date and the nonce (401). [`Registry`] is the clients file made
//! ready for this: keys decoded once, header names in lower case.
//!
//! The size, the rate and the daily quota come after, in [`crate::quota`] and
//! [`crate::answer`].

use crate::clients::{normalise_origin, ClientsFile};
use crate::protocol::{self, Signed, DATE_WINDOW_SECS};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A request's headers, looked up by name in any case.
pub trait Headers {
    /// The value of header `name`, if it was sent once as valid text.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What the checks see of a request.
pub struct Request<'a, H: Headers + ?Sized> {
    pub method: &'a str,
    /// The `Host` header (or HTTP/2 authority) as sent.
    pub host: &'a str,
    pub path: &'a str,
    /// Without the `?`.
    pub query: &'a str,
    pub headers: &'a H,
    /// The client's address: the peer, or what a trusted proxy said it was.
    pub peer: IpAddr,
    pub body: &'a [u8],
}

/// A refused request: its status, a word for the metrics, and a message for the client that
/// says what was wrong (never which byte, never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// A short fixed word: `header`, `address`, `origin`, `key`, `signature`, `date`, `nonce`,
    /// `size`, `rate`, `quota`, `entropy`, `request`.
    pub reason: &'static str,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Whether the answer carries `WWW-Authenticate`.
    pub fn is_unauthenticated(&self) -> bool {
        self.status == 401
    }
}

/// One client, ready for the checks.
pub struct Entry {
    pub name: String,
    header_name: String,
    header_value: Zeroizing<Vec<u8>>,
    allow_ip: Vec<IpNet>,
    allow_origin: Vec<String>,
    pub rate_per_minute: u32,
    pub bytes_per_day: u64,
}

/// The clients file made ready for the checks. Rebuilt on every reload; cheap to share.
pub struct Registry {
    clients: Vec<Entry>,
    /// Key id to (client, key).
    keys: HashMap<String, (usize, Zeroizing<Vec<u8>>)>,
}

/// Who a request came from, once every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub client: String,
    pub key_id: String,
}

impl Registry {
    /// `file` was checked when it was read, so every key decodes.
    pub fn new(file: &ClientsFile) -> Self {
        let mut keys = HashMap::new();
        let clients = file
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                for k in &c.keys {
                    if let Some(bytes) = protocol::decode_key(&k.hmac_key) {
                        keys.insert(k.id.clone(), (i, bytes));
                    }
                }
                Entry {
                    name: c.name.clone(),
                    header_name: c.header.name.to_ascii_lowercase(),
                    header_value: Zeroizing::new(c.header.value.as_bytes().to_vec()),
                    allow_ip: c.allow_ip.clone(),
                    allow_origin: c.allow_origin.clone(),
                    rate_per_minute: c.rate_per_minute,
                    bytes_per_day: c.bytes_per_day,
                }
            })
            .collect();
        Registry { clients, keys }
    }

    /// The clients, in the file's order.
    pub fn clients(&self) -> &[Entry] {
        &self.clients
    }

    /// The first check: the client whose custom header the request carries (its index in
    /// [`Registry::clients`]), else 403. Every client's header is compared, in constant time,
    /// whichever matches.
    pub fn identify<H: Headers + ?Sized>(&self, headers: &H) -> Result<usize, Refusal> {
        let mut found = None;
        for (i, c) in self.clients.iter().enumerate() {
            let sent = headers.get(&c.header_name).unwrap_or("");
            if bool::from(sent.as_bytes().ct_eq(&c.header_value)) && found.is_none() {
                found = Some(i);
            }
        }
        found.ok_or_else(|| {
            Refusal::new(
                403,
                "header",
                "the client's custom header is missing or wrong",
            )
        })
    }

    /// The checks after [`Registry::identify`] for client `i`, in order, up to and including
    /// the nonce; the nonce is recorded only when everything before it passed.
    pub fn admit<H: Headers + ?Sized>(
        &self,
        i: usize,
        r: &Request<H>,
        now_secs: i64,
        nonces: &Nonces,
    ) -> Result<Admitted, Refusal> {
        let forbidden = |reason, message: String| Refusal::new(403, reason, message);
        let unauthenticated = |reason, message: &str| Refusal::new(401, reason, message);
        let c = &self.clients[i];
        if !c.allow_ip.is_empty() && !c.allow_ip.iter().any(|n| n.contains(&r.peer)) {
            return Err(forbidden(
                "address",
                format!("requests from {} are not allowed for this client", r.peer),
            ));
        }
        if !c.allow_origin.is_empty() {
            let origin = r
                .headers
                .get("origin")
                .map(str::to_string)
                .or_else(|| r.headers.get("referer").and_then(origin_of));
            let allowed = origin
                .as_deref()
                .and_then(|o| normalise_origin(o).ok())
                .is_some_and(|o| c.allow_origin.contains(&o));
            if !allowed {
                return Err(forbidden(
                    "origin",
                    "the request's Origin (or Referer) is not one this client may use".into(),
                ));
            }
        }

        let key_id = r.headers.get(protocol::KEY_ID).unwrap_or("");
        let key = match self.keys.get(key_id) {
            Some((owner, key)) if *owner == i => key,
            _ => {
                return Err(unauthenticated(
                    "key",
                    "unknown or retired key id in Lavabeacon-Key-Id",
                ))
            }
        };
        let date = r.headers.get(protocol::DATE).unwrap_or("");
        let nonce = r.headers.get(protocol::NONCE).unwrap_or("");
        let signed = Signed {
            method: r.method,
            host: r.host,
            path: r.path,
            query: r.query,
            date,
            nonce,
            key_id,
            body: r.body,
        };
        let signature = r.headers.get(protocol::SIGNATURE).unwrap_or("");
        if !protocol::verify(key, &signed, signature) {
            return Err(unauthenticated(
                "signature",
                "Lavabeacon-Signature does not match the request (see docs/private-bytes.md for what is signed)",
            ));
        }
        let Some(sent) = protocol::parse_date(date) else {
            return Err(unauthenticated(
                "date",
                "Lavabeacon-Date must be Unix seconds",
            ));
        };
        if (sent - now_secs).abs() > DATE_WINDOW_SECS {
            return Err(Refusal::new(
                401,
                "date",
                format!(
                    "Lavabeacon-Date is {} s from the server's clock (at most {DATE_WINDOW_SECS} s allowed); the Date header of this answer has the server's time",
                    sent - now_secs
                ),
            ));
        }
        if !protocol::nonce_is_valid(nonce) {
            return Err(unauthenticated(
                "nonce",
                "Lavabeacon-Nonce must be 16 to 64 base64url characters",
            ));
        }
        nonces.record(&c.name, nonce, sent, now_secs, c.rate_per_minute)?;
        Ok(Admitted {
            client: c.name.clone(),
            key_id: key_id.to_string(),
        })
    }
}

/// `scheme://host[:port]` of a URL such as a Referer.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

/// The nonces seen, per client, each kept until its date leaves the window (after that the
/// date check refuses the request anyway). A client may hold only so many at once, four
/// minutes of its rate and then some: a client that sends more is refused (429) rather than
/// have an old nonce forgotten, which could let a replay in.
#[derive(Default)]
pub struct Nonces {
    seen: Mutex<HashMap<String, HashMap<String, i64>>>,
}

impl Nonces {
    fn record(
        &self,
        client: &str,
        nonce: &str,
        date: i64,
        now: i64,
        rate_per_minute: u32,
    ) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mine = seen.entry(client.to_string()).or_default();
        if mine.contains_key(nonce) {
            return Err(Refusal::new(
                401,
                "nonce",
                "this Lavabeacon-Nonce was already used; make a new one for every request",
            ));
        }
        let cap = 4 * rate_per_minute as usize + 256;
        if mine.len() >= cap {
            mine.retain(|_, until| *until >= now);
        }
        if mine.len() >= cap {
            let soonest = mine.values().min().copied().unwrap_or(now);
            return Err(
                Refusal::new(429, "rate", "too many requests within the date window")
                    .retry_after((soonest - now + 1).max(1) as u64),
            );
        }
        mine.insert(nonce.to_string(), date + DATE_WINDOW_SECS);
        Ok(())
    }

    /// Forgets nonces whose date has left the window; the server calls it now and then.
    pub fn prune(&self, now: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, mine| {
            mine.retain(|_, until| *until >= now);
            !mine.is_empty()
        });
    }
}
