//! Who a request came from. The peer's address, unless the peer is one of the trusted proxies
//! (`[api] trusted_proxies`): only then are `Forwarded` (RFC 7239) or, without it,
//! `X-Forwarded-For` believed, read from the right, skipping the trusted proxies, so a client
//! cannot name an address of its choice by sending the header itself.

use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::IpAddr;

/// The client's address: the peer's, or what the trusted proxies in front of us say.
pub fn client_addr(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(through_proxies(peer, req, trusted))
}

fn is_trusted(addr: &IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(addr))
}

fn through_proxies(peer: IpAddr, req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(&peer, trusted) {
        return peer;
    }
    let headers = req.headers();
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let hops: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(forwarded_for)
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| parse_node(h.trim()))
            .collect()
    };
    // From the right: the nearest hop first. The first that is not one of ours is the client;
    // a hop we cannot read (obfuscated, "unknown") ends the walk at the proxy that added it.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(addr) if is_trusted(addr, trusted) => client = *addr,
            Some(addr) => return *addr,
            None => return client,
        }
    }
    client
}

/// The `for=` of one element of a `Forwarded` header.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("for") {
            parse_node(value.trim().trim_matches('"'))
        } else {
            None
        }
    })
}

/// An address, with or without a port, IPv6 in brackets or bare.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn client(peer: &str, headers: &[(&str, &str)], trusted: &[&str]) -> IpAddr {
        let mut req = TestRequest::default().peer_addr(peer.parse().unwrap());
        for (n, v) in headers {
            req = req.insert_header((*n, *v));
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_addr(&req.to_http_request(), &trusted).unwrap()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let xff = [("X-Forwarded-For", "203.0.113.9")];
        assert_eq!(
            client("198.51.100.1:5000", &xff, &[]),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client("198.51.100.1:5000", &xff, &["10.0.0.0/8"]),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client("10.0.0.2:5000", &xff, &["10.0.0.0/8"]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client_and_a_forged_left_part_is_ignored() {
        let chain = [("X-Forwarded-For", "1.2.3.4, 203.0.113.9, 10.0.0.7")];
        assert_eq!(
            client("10.0.0.2:5000", &chain, &["10.0.0.0/8"]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let fwd = [(
            "Forwarded",
            "for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.7",
        )];
        assert_eq!(
            client("10.0.0.2:5000", &fwd, &["10.0.0.0/8"]),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        let hidden = [("Forwarded", "for=203.0.113.9, for=_hidden, for=10.0.0.7")];
        assert_eq!(
            client("10.0.0.2:5000", &hidden, &["10.0.0.0/8"]),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client("10.0.0.2:5000", &[], &["10.0.0.0/8"]),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}
