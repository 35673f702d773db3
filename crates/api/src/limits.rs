//! Limits on long answers (SSE streams and bulk bodies): at most so many open per client, and
//! so many in all, so that no one client, and no crowd, can hold every worker and socket. A
//! client is its peer address (IPv4) or its /64 (IPv6, where one host has a whole /64 to pick
//! addresses from). Behind a reverse proxy every client is the proxy: raise the per-client
//! limit there and let the proxy limit per client.

use crate::error::ApiError;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Seconds a refused client is told to wait.
const RETRY_AFTER: u64 = 10;

#[derive(Default)]
struct Open {
    total: u32,
    by_client: HashMap<IpAddr, u32>,
}

/// The open streams, counted.
pub(crate) struct StreamLimits {
    per_client: u32,
    total: u32,
    open: Mutex<Open>,
}

/// One open stream; dropping it (when its response body is dropped) frees its place.
pub(crate) struct StreamSlot {
    limits: Arc<StreamLimits>,
    client: IpAddr,
}

/// The key a peer address is counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl StreamLimits {
    pub(crate) fn new(per_client: u32, total: u32) -> Arc<StreamLimits> {
        Arc::new(StreamLimits {
            per_client: per_client.max(1),
            total: total.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more stream from `peer` (no address: counted as one unknown client),
    /// or a 429.
    pub(crate) fn acquire(self: &Arc<Self>, peer: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let client = client_key(peer.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
        let mut open = self.open.lock().expect("stream limits lock");
        if open.total >= self.total {
            return Err(ApiError::TooManyStreams {
                message: format!(
                    "the server has its maximum of {} open streams; try again later",
                    self.total
                ),
                retry_after: RETRY_AFTER,
            });
        }
        let mine = open.by_client.entry(client).or_insert(0);
        if *mine >= self.per_client {
            return Err(ApiError::TooManyStreams {
                message: format!(
                    "at most {} open streams (SSE and bulk) per client; close one first",
                    self.per_client
                ),
                retry_after: RETRY_AFTER,
            });
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamSlot {
            limits: self.clone(),
            client,
        })
    }

    /// Streams open now.
    pub(crate) fn open(&self) -> u32 {
        self.open.lock().expect("stream limits lock").total
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().expect("stream limits lock");
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_the_server_its_total_and_dropping_frees_a_place() {
        let l = StreamLimits::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = l.acquire(Some(a)).unwrap();
        let _a2 = l.acquire(Some(a)).unwrap();
        assert!(matches!(
            l.acquire(Some(a)),
            Err(ApiError::TooManyStreams { .. })
        ));
        let _b1 = l.acquire(Some(b)).unwrap();
        assert!(
            l.acquire(Some(b)).is_err(),
            "the total is reached, whoever asks"
        );
        drop(a1);
        assert_eq!(l.open(), 2);
        l.acquire(Some(b)).unwrap();
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let l = StreamLimits::new(1, 10);
        let _x = l.acquire(Some("2001:db8:1:2::1".parse().unwrap())).unwrap();
        assert!(l
            .acquire(Some("2001:db8:1:2:ffff::9".parse().unwrap()))
            .is_err());
        let _v4 = l.acquire(Some("192.0.2.7".parse().unwrap())).unwrap();
        assert!(l
            .acquire(Some("::ffff:192.0.2.7".parse().unwrap()))
            .is_err());
    }
}
