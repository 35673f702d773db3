//! The transparency log's public routes (docs/transparency.md), in C2SP's formats so that
//! existing witnesses, monitors and verifiers can read the log: its key (`/log/key`), its newest
//! checkpoint with the witnesses' cosignatures (`/log/checkpoint`), tlog-tiles hash tiles and
//! entry bundles (`/log/tile/…`), and, for clients that do not walk tiles, a pulse's or a
//! draw's inclusion proof with the checkpoint it leads to, and consistency proofs. The log's
//! bytes and proofs are `lavabeacon_tlog`'s and the store's; this module only translates.
//!
//! Everything here answers 404 on a beacon that keeps no log ([`BeaconInfo::log`] unset).
//! A tile or a proof is served only for a tree the newest checkpoint covers: what the log has
//! not signed yet is not published.
//!
//! [`BeaconInfo::log`]: crate::BeaconInfo::log

use crate::error::ApiError;
use crate::reply::{revalidated, Reply, IMMUTABLE};
use crate::settings::LogInfo;
use crate::state::Beacon;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lavabeacon_store::{Log, StoreError};
use lavabeacon_tlog::note::{Note, MAX_SIGNATURES};
use lavabeacon_tlog::tile::{self, TileKind, TilePath};
use lavabeacon_tlog::Hash;

/// The content type of the key and the checkpoint, as tlog-tiles gives the checkpoint's.
const TEXT: &str = "text/plain; charset=utf-8";

/// `Cache-Control` of what changes only when the operator reconfigures the beacon (its log key,
/// its witnesses).
const CONFIGURED: &str = "public, max-age=300";

/// `Cache-Control` of an answer that names the newest checkpoint, which changes every period
/// (and gains cosignatures in between): kept, but asked again each time (ETag, 304).
/// tlog-tiles asks that a checkpoint not be cached beyond a few seconds.
const REVALIDATE: &str = "no-cache";

/// The path of a tile (after `/log/tile/`) as the route's description gives it: exactly the
/// spellings [`TilePath::parse`] accepts and that can name a tile of a tree this size (the
/// number at most 18 digits), so that every path that matches is answered 200 or 404, never
/// 400.
pub(crate) const TILE_PATTERN: &str = "^(entries|[0-7])/(x(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(x[0-9]{3}/){0,4})?[0-9]{3}(\\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$";

/// The log's description, or the 404 of a beacon that keeps none.
fn log_info(beacon: &Beacon) -> Result<&LogInfo, ApiError> {
    beacon
        .info()
        .log
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this beacon keeps no transparency log".into()))
}

/// The log as the store keeps it (after [`log_info`]: the beacon says it keeps one).
fn store_log(beacon: &Beacon) -> Result<&dyn Log, ApiError> {
    beacon.store().log().map_err(|e| {
        // A configuration error (a store that keeps no log under a beacon that says it has
        // one): the operator's log says so; the public gets the answer of a beacon without one.
        tracing::warn!(error = %e, "a transparency log is configured but the store keeps none");
        ApiError::NotFound("this beacon keeps no transparency log".into())
    })
}

fn no_checkpoint() -> ApiError {
    ApiError::NotFound("the log has signed no checkpoint yet".into())
}

/// A strong ETag for a body that is made fresh each time: its SHA-512's first 128 bits.
fn etag_of(body: &[u8]) -> String {
    let digest = lavabeacon_format::hash::sha512(&[body]);
    format!("\"{}\"", hex::encode(&digest.as_bytes()[..16]))
}

/// The checkpoint of `size` (the newest for `None`) as a signed note with the witnesses'
/// cosignatures appended as signature lines, which makes a valid note a client checks with the
/// log's key and the witnesses' keys alike (signed-note: unknown keys' lines are ignored).
async fn signed_checkpoint(
    beacon: &Beacon,
    log: &dyn Log,
    size: Option<u64>,
) -> Result<Option<(u64, String)>, ApiError> {
    let Some((size, note)) = beacon.ask(log.checkpoint(size)).await? else {
        return Ok(None);
    };
    let lines = beacon.ask(log.cosignatures(size)).await?;
    Ok(Some((size, with_cosignatures(size, note, &lines)?)))
}

/// `note` with each of `lines` appended that is one well-formed signature line by a key that
/// has none on the note yet. A line that is not is left out rather than served, since it
/// would make the whole note unreadable to every client.
fn with_cosignatures(
    size: u64,
    note: String,
    lines: &[(String, String)],
) -> Result<String, ApiError> {
    let parsed = Note::parse(note.as_bytes()).map_err(|e| {
        ApiError::Unavailable(StoreError::corrupt(format!(
            "the stored checkpoint of size {size} is not a signed note: {e}"
        )))
    })?;
    let mut signers: Vec<(String, [u8; 4])> = parsed
        .signatures
        .iter()
        .map(|s| (s.name.clone(), s.key_id))
        .collect();
    let mut out = note;
    for (witness, line) in lines {
        if signers.len() >= MAX_SIGNATURES {
            break;
        }
        let line = format!("{}\n", line.trim_end_matches('\n'));
        match lavabeacon_tlog::witness::parse_cosign_response(line.as_bytes()).as_deref() {
            Ok([s]) => {
                if !signers
                    .iter()
                    .any(|(n, id)| *n == s.name && *id == s.key_id)
                {
                    signers.push((s.name.clone(), s.key_id));
                    out.push_str(&line);
                }
            }
            _ => tracing::warn!(
                size,
                witness = %witness,
                "a stored cosignature is not one signature line; not served"
            ),
        }
    }
    Ok(out)
}

/// The size of the newest checkpoint: the tree everything served here must be within.
async fn newest_size(beacon: &Beacon, log: &dyn Log) -> Result<u64, ApiError> {
    let (size, _) = beacon
        .ask(log.checkpoint(None))
        .await?
        .ok_or_else(no_checkpoint)?;
    Ok(size)
}

/// A tree size in a query: a whole number from 0 to 2^63 − 1 (what the store keeps).
fn tree_size(what: &str, text: &str) -> Result<u64, ApiError> {
    match text.parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{what} {:?} is not a tree size: use a whole number from 0 to {}",
            text.chars().take(40).collect::<String>(),
            i64::MAX
        ))),
    }
}

fn base64_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// `GET /log/key`: the log's verifier key and a newline.
pub(crate) async fn key(beacon: web::Data<Beacon>) -> Reply {
    let info = log_info(&beacon)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, CONFIGURED))
        .content_type(TEXT)
        .body(format!("{}\n", info.vkey)))
}

/// `GET /log/witnesses`: the witnesses whose cosignatures the beacon serves, and how many a
/// checkpoint needs.
pub(crate) async fn witnesses(beacon: web::Data<Beacon>) -> Reply {
    let info = log_info(&beacon)?;
    let list: Vec<serde_json::Value> = info
        .witnesses
        .iter()
        .map(|w| serde_json::json!({"name": w.name, "vkey": w.vkey, "url": w.url}))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, CONFIGURED))
        .json(serde_json::json!({"witnesses": list, "required": info.required})))
}

/// `GET /log/checkpoint`: the newest checkpoint with its cosignatures (tlog-tiles'
/// `<prefix>/checkpoint`).
pub(crate) async fn checkpoint(beacon: web::Data<Beacon>, req: HttpRequest) -> Reply {
    log_info(&beacon)?;
    let log = store_log(&beacon)?;
    let (_, note) = signed_checkpoint(&beacon, log, None)
        .await?
        .ok_or_else(no_checkpoint)?;
    let (mut response, fresh) = revalidated(&req, etag_of(note.as_bytes()), REVALIDATE);
    Ok(if fresh {
        response.finish()
    } else {
        response.content_type(TEXT).body(note)
    })
}

/// `GET /log/tile/{path}`: a hash tile (the stored hashes of its subtrees, 32 bytes each) or an
/// entry bundle, within the newest checkpoint's tree. Kept for a year, partial tiles too: a
/// stored hash or entry never changes, so neither do the bytes of any tile made of them.
pub(crate) async fn tile(beacon: web::Data<Beacon>, path: web::Path<String>) -> Reply {
    log_info(&beacon)?;
    // A tile served once is served again from memory: its bytes never change, and the tree
    // only grows, so it is still within the newest checkpoint.
    if let Some(body) = beacon.tiles.get(path.as_str()) {
        return Ok(tile_answer(body));
    }
    let log = store_log(&beacon)?;
    let tile = TilePath::parse(&format!("tile/{path}")).map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; a tile is <L>/<N>[.p/<W>] or entries/<N>[.p/<W>] (C2SP tlog-tiles), e.g. 0/000 or entries/x001/234.p/17",
            e.to_string().chars().take(200).collect::<String>()
        ))
    })?;
    let size = newest_size(&beacon, log).await?;
    if !tile.within(size) {
        return Err(ApiError::NotFound(format!(
            "{tile} is not within the newest checkpoint's tree ({size} entries)"
        )));
    }
    let body = match tile.kind {
        TileKind::Hashes { .. } => beacon.ask(log.hashes(&tile.nodes())).await?.concat(),
        TileKind::Entries => {
            let from = tile.index * tile::WIDTH;
            let entries = beacon.ask(log.entries(from, tile.count())).await?;
            if entries.len() as u64 != tile.count() {
                return Err(ApiError::Unavailable(StoreError::corrupt(format!(
                    "{tile}: {} entries stored of a tree of {size}",
                    entries.len()
                ))));
            }
            tile::bundle(entries.iter().map(Vec::as_slice))
        }
    };
    let body = actix_web::web::Bytes::from(body);
    beacon.tiles.put(path.as_str(), body.clone());
    Ok(tile_answer(body))
}

fn tile_answer(body: actix_web::web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .content_type("application/octet-stream")
        .body(body)
}

/// Tiles already served, by path: at most [`TileCache::MAX`] of them (a full entry bundle is
/// about 17 kB, so at most about 35 MB), forgotten all at once when full — the tiles clients
/// ask for most are the newest, which come back at once.
#[derive(Default)]
pub(crate) struct TileCache(
    std::sync::RwLock<std::collections::HashMap<String, actix_web::web::Bytes>>,
);

impl TileCache {
    const MAX: usize = 2048;

    fn get(&self, path: &str) -> Option<actix_web::web::Bytes> {
        self.0.read().ok()?.get(path).cloned()
    }

    fn put(&self, path: &str, body: actix_web::web::Bytes) {
        if let Ok(mut m) = self.0.write() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(path.to_string(), body);
        }
    }
}

/// The `?size=` of the inclusion routes.
#[derive(serde::Deserialize)]
pub(crate) struct SizeQuery {
    size: Option<String>,
}

/// `GET /beacon/2.0/chain/{c}/pulse/{p}/inclusion`: the pulse's entry's inclusion proof.
pub(crate) async fn pulse_inclusion(
    beacon: web::Data<Beacon>,
    raw: web::Path<(String, String)>,
    query: web::Query<SizeQuery>,
    req: HttpRequest,
) -> Reply {
    log_info(&beacon)?;
    let log = store_log(&beacon)?;
    let chain = crate::pulses::path_index("chain", &raw.0)?;
    let index = crate::pulses::path_index("pulse", &raw.1)?;
    let size = query
        .size
        .as_deref()
        .map(|s| tree_size("size", s))
        .transpose()?;
    let unpublished = || ApiError::NotFound(format!("no published pulse {index} in chain {chain}"));
    // A pulse whose time has not come is not served, not even as a leaf number: pulses are
    // public in (chain, index) order, so the newest public one bounds them.
    let newest = crate::reply::newest(&beacon)
        .await?
        .ok_or_else(unpublished)?;
    if (chain, index) > (newest.pulse.chain_index, newest.pulse.pulse_index) {
        return Err(unpublished());
    }
    let leaf = beacon
        .ask(log.leaf_of_pulse(chain, index))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "pulse {index} of chain {chain} is not in the transparency log"
            ))
        })?;
    inclusion(&beacon, log, &req, leaf, size).await
}

/// `GET /draws/{id}/inclusion`: a registered draw's entry's inclusion proof.
pub(crate) async fn draw_inclusion(
    beacon: web::Data<Beacon>,
    id: web::Path<String>,
    query: web::Query<SizeQuery>,
    req: HttpRequest,
) -> Reply {
    log_info(&beacon)?;
    let log = store_log(&beacon)?;
    let id = crate::draws::draw_id(&id)?;
    let size = query
        .size
        .as_deref()
        .map(|s| tree_size("size", s))
        .transpose()?;
    let leaf = beacon.ask(log.leaf_of_draw(&id)).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no draw {} is in the transparency log",
            id.to_hex_lower()
        ))
    })?;
    inclusion(&beacon, log, &req, leaf, size).await
}

/// The inclusion answer of leaf `leaf`: against the checkpoint of `size`, or the newest.
async fn inclusion(
    beacon: &Beacon,
    log: &dyn Log,
    req: &HttpRequest,
    leaf: u64,
    size: Option<u64>,
) -> Reply {
    let (size, note) = signed_checkpoint(beacon, log, size)
        .await?
        .ok_or_else(|| match size {
            Some(s) => ApiError::NotFound(format!("the log has signed no checkpoint of size {s}")),
            None => no_checkpoint(),
        })?;
    if leaf >= size {
        return Err(ApiError::NotFound(format!(
            "entry {leaf} is not in the tree of the checkpoint ({size} entries) yet; the next checkpoint will cover it"
        )));
    }
    let proof = beacon.ask(log.inclusion_proof(leaf, size)).await?;
    let body = serde_json::json!({
        "leafIndex": leaf,
        "treeSize": size,
        "inclusionProof": base64_hashes(&proof),
        "checkpoint": note,
    })
    .to_string();
    // Even the answer for a given size changes as cosignatures arrive.
    let (mut response, fresh) = revalidated(req, etag_of(body.as_bytes()), REVALIDATE);
    Ok(if fresh {
        response.finish()
    } else {
        response.content_type("application/json").body(body)
    })
}

/// The `?from=&to=` of `/log/consistency`.
#[derive(serde::Deserialize)]
pub(crate) struct Sizes {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /log/consistency?from=A&to=B`: the consistency proof from the tree of A entries to the
/// tree of B, for B within the newest checkpoint. It never changes.
pub(crate) async fn consistency(beacon: web::Data<Beacon>, query: web::Query<Sizes>) -> Reply {
    log_info(&beacon)?;
    let log = store_log(&beacon)?;
    let required = |v: &Option<String>, what: &str| {
        v.as_deref()
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{what} is required: /log/consistency?from=<old tree size>&to=<new tree size>"
                ))
            })
            .and_then(|s| tree_size(what, s))
    };
    let from = required(&query.from, "from")?;
    let to = required(&query.to, "to")?;
    // 404 rather than 400: both are sizes a tree may have; this log has no such proof (yet).
    if from > to {
        return Err(ApiError::NotFound(format!(
            "no consistency proof runs backwards, from {from} to {to}: a tree of {from} is no prefix of one of {to}"
        )));
    }
    let size = newest_size(&beacon, log).await?;
    if to > size {
        return Err(ApiError::NotFound(format!(
            "to {to} is beyond the newest checkpoint's tree ({size} entries)"
        )));
    }
    let proof = beacon.ask(log.consistency_proof(from, to)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .json(serde_json::json!({
            "from": from,
            "to": to,
            "consistencyProof": base64_hashes(&proof),
        })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tile_pattern_matches_only_paths_the_parser_takes() {
        // The description promises 200 or 404 for every path that matches the pattern: each
        // must parse. Paths made from every kind of part, good and bad.
        let re = regex::Regex::new(TILE_PATTERN).unwrap();
        let kinds = ["0", "7", "8", "00", "entries", "x", ""];
        let groups = [
            "000",
            "001",
            "x000/",
            "x001/",
            "x999/000/",
            "x018/x446/x744/x073/x709/",
            "1",
            "0001",
        ];
        let lasts = ["000", "255", "1000", "01", ""];
        let widths = ["", ".p/1", ".p/255", ".p/256", ".p/0", ".p/01", ".p/"];
        let mut matched = 0;
        for k in kinds {
            for g in groups {
                for l in lasts {
                    for w in widths {
                        let path = format!("{k}/{g}{l}{w}");
                        if re.is_match(&path) {
                            matched += 1;
                            let tile = TilePath::parse(&format!("tile/{path}"));
                            assert!(tile.is_ok(), "{path} matches but does not parse");
                        }
                    }
                }
            }
        }
        assert!(matched > 50, "{matched}");
        for ok in [
            "0/000",
            "7/x001/x000/255.p/255",
            "entries/x123/456.p/1",
            "entries/999",
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
    }

    #[test]
    fn stored_cosignatures_are_appended_once_and_bad_ones_left_out() {
        use lavabeacon_tlog::note::signature_line;
        let note = format!(
            "o\n1\n{}\n\n{}",
            STANDARD.encode([0u8; 32]),
            signature_line("o", [1; 4], &[2; 64])
        );
        let good = signature_line("w", [3; 4], &[4; 72]);
        let lines = vec![
            ("w".to_string(), good.trim_end().to_string()),
            ("w2".to_string(), good.clone()),
            ("bad".to_string(), "not a line".to_string()),
            ("self".to_string(), signature_line("o", [1; 4], &[5; 64])),
        ];
        let out = with_cosignatures(1, note.clone(), &lines).unwrap();
        assert_eq!(out, format!("{note}{good}"));
        assert!(Note::parse(out.as_bytes()).is_ok());
        assert!(with_cosignatures(1, "no note".into(), &[]).is_err());
    }

    #[test]
    fn tree_sizes_are_plain_digits_within_i64() {
        assert_eq!(tree_size("to", "0").unwrap(), 0);
        assert_eq!(
            tree_size("to", "9223372036854775807").unwrap(),
            i64::MAX as u64
        );
        for bad in ["", "+1", "-1", "1e3", "9223372036854775808", " 1"] {
            assert!(tree_size("to", bad).is_err(), "{bad:?}");
        }
    }
}
