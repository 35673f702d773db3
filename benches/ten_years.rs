//! Ten years of pulses (issue 14): a 5,000,000-pulse suite-2 chain (one pulse a minute from
//! 2017-01-01, about nine and a half years, every pulse with its source manifest) in SQLite and
//! in PostgreSQL, and what a beacon that old costs:
//!
//! 1. bulk load rate and bytes per pulse;
//! 2. the time from starting `lavabeacon api` and `lavabeacon serve` (SoftHSM2 dev token) to
//!    the first 200 of `/beacon/last`;
//! 3. lookups by time and by index over HTTP (`wrk -t2 -c64`, random pulses), `/beacon/last`,
//!    and nginx serving a pulse as a static file in the same run, as the peer;
//! 4. a whole-chain download through the bulk routes (`/beacon/2.0/pulses`,
//!    `/beacon/2.0/chain/1/sources`, each followed through `Link: rel="next"`);
//! 5. `lavabeacon replay --url` and `--database`: pulses/s and peak RSS of replay and server.
//!
//! Replay is also timed on a chain without manifests, as `generate-chain` and the api_load bench
//! make them (300,000 pulses, SQLite): the kind of store issue 14's "today" figures were taken
//! on.
//!
//! Everything is measured again on a smaller store (500,000 pulses) in the same run, so that
//! what must not grow with the chain (start time, lookup rate, `/beacon/last`, RSS) can be
//! seen not to. The stores are made once and kept: SQLite files under `target/bench-data/`,
//! PostgreSQL databases `lb_tenyears_<pulses>` (with a marker file beside the SQLite ones), so
//! a rerun measures without rebuilding; their load figures are kept with them and printed
//! again. docs/scale.md has the figures and what they mean.
//!
//! `cargo bench --bench ten_years` (needs wrk, nginx, SoftHSM2 and PostgreSQL on
//! 127.0.0.1:5432 with trust auth for `postgres`; a missing one fails the bench). Scaled by:
//! - TEN_YEARS_PULSES (default 5,000,000), TEN_YEARS_SMALL (default 500,000; 0: none);
//! - TEN_YEARS_BARE (default 300,000; 0: none), the chain without manifests;
//! - TEN_YEARS_DB: `sqlite`, `postgres` or `both` (default);
//! - TEN_YEARS_SECS: seconds per wrk run (default 10);
//! - TEN_YEARS_POSTGRES: the server (default postgres://postgres@127.0.0.1:5432);
//! - TEN_YEARS_MEASURE=0: make the stores, measure nothing.

mod support;

use lavabeacon_store::Store;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{
    cpu_secs, data_dir, generate, load, nginx_serving_last, rss, run_measured, start_until_last,
    wrk, ManifestLine, Values, PERIOD,
};

/// 2017-01-01T00:00:00Z: 5,000,000 minutes later is July 2026, so the whole chain is in the
/// past and every pulse is public.
const T0: i64 = 1_483_228_800_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

struct Settings {
    pulses: u64,
    small: u64,
    backends: Vec<Backend>,
    secs: u64,
    postgres: String,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let backends = match std::env::var("TEN_YEARS_DB").as_deref() {
            Ok("sqlite") => vec![Backend::Sqlite],
            Ok("postgres") => vec![Backend::Postgres],
            Ok("both") | Err(_) => vec![Backend::Sqlite, Backend::Postgres],
            Ok(other) => panic!("TEN_YEARS_DB={other}: sqlite, postgres or both"),
        };
        Settings {
            pulses: env_u64("TEN_YEARS_PULSES", 5_000_000),
            small: env_u64("TEN_YEARS_SMALL", 500_000),
            backends,
            secs: env_u64("TEN_YEARS_SECS", 10),
            postgres: std::env::var("TEN_YEARS_POSTGRES")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// The store sizes measured, the largest first.
    fn sizes(&self) -> Vec<u64> {
        let mut v = vec![self.pulses];
        if self.small > 0 && self.small != self.pulses {
            v.push(self.small);
        }
        v
    }
}

/// Fails the bench, loudly, when a tool it needs is not there: a bench that skipped what it
/// could not run would print figures that look complete.
fn require(tool: &str, args: &[&str], install: &str) {
    let ok = Command::new(tool)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    assert!(ok, "{tool} is needed by this bench: {install}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An administrative connection to the PostgreSQL server; panics with what to do if there is
/// none.
async fn pg_admin(server: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed by this bench at {server} (trust auth for postgres; \
                 TEN_YEARS_DB=sqlite runs without it): {e}"
            )
        })
}

/// One store of the bench: where it is, and how it was loaded (kept from when it was made).
struct Made {
    backend: Backend,
    pulses: u64,
    url: String,
    /// The load's figures, as written when the store was made.
    figures: String,
    /// The SQLite file, or the PostgreSQL database's name.
    place: String,
}

fn sqlite_path(n: u64) -> PathBuf {
    data_dir().join(format!("ten-years-{n}.db"))
}

fn pg_name(n: u64) -> String {
    format!("lb_tenyears_{n}")
}

/// Where a store's load figures are kept: beside the SQLite file for both backends.
fn figures_path(backend: Backend, n: u64) -> PathBuf {
    let kind = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    data_dir().join(format!("ten-years-{n}.{kind}.made"))
}

/// Whether the store of `backend` with `n` pulses is there and whole.
fn present(rt: &tokio::runtime::Runtime, s: &Settings, backend: Backend, n: u64) -> bool {
    if !figures_path(backend, n).exists() {
        return false;
    }
    match backend {
        Backend::Sqlite => sqlite_path(n).exists(),
        Backend::Postgres => rt.block_on(async {
            let mut admin = pg_admin(&s.postgres).await;
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                    .bind(pg_name(n))
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            exists
        }),
    }
}

/// A store being loaded: where, and the time its calls took.
struct Loading {
    backend: Backend,
    store: Arc<dyn Store>,
    url: String,
    pulses_secs: f64,
    manifests_secs: f64,
}

/// Makes the stores of `n` pulses that are not there yet, in one pass over one generated
/// chain; the time each store's calls took is its load time.
fn make(rt: &tokio::runtime::Runtime, s: &Settings, n: u64, backends: &[Backend]) {
    let mut loading = Vec::new();
    let der = lavabeacon_signer::Signer::certificate(&support::signer())
        .der
        .clone();
    for &backend in backends {
        let url = match backend {
            Backend::Sqlite => {
                let partial = sqlite_path(n).with_extension("partial");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
                }
                format!("sqlite:{}", partial.display())
            }
            Backend::Postgres => {
                let name = pg_name(n);
                rt.block_on(async {
                    let mut admin = pg_admin(&s.postgres).await;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                });
                format!("{}/{name}", s.postgres)
            }
        };
        let store = rt.block_on(async {
            let store = lavabeacon_store::open(&url).await.unwrap();
            store.put_certificate(&der).await.unwrap();
            store
        });
        loading.push(Loading {
            backend,
            store,
            url,
            pulses_secs: 0.0,
            manifests_secs: 0.0,
        });
    }
    eprintln!(
        "making the {n}-pulse store in {:?} (load average {})…",
        backends,
        load()
    );
    let mut done = 0u64;
    let mut shown = Instant::now();
    let building = generate(n, T0, Values::WithManifests, |batch, manifests| {
        for l in &mut loading {
            load_batch(rt, l, batch, manifests);
        }
        done += batch.len() as u64;
        if shown.elapsed() > Duration::from_secs(30) {
            shown = Instant::now();
            eprintln!("  {done} of {n} pulses");
        }
    });
    let build_secs = building.as_secs_f64();
    for l in loading {
        let Loading {
            backend,
            store,
            url,
            pulses_secs,
            manifests_secs,
        } = l;
        drop(store);
        let mut extra = String::new();
        match backend {
            Backend::Sqlite => {
                let partial = sqlite_path(n).with_extension("partial");
                rt.block_on(support::checkpoint_sqlite(&partial, n));
                std::fs::rename(&partial, sqlite_path(n)).unwrap();
            }
            Backend::Postgres => {
                // What autovacuum would do soon after: the visibility map and the planner's
                // statistics, so that the first reads do not pay for them.
                let started = Instant::now();
                rt.block_on(async {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query("VACUUM (ANALYZE)")
                        .execute(&mut c)
                        .await
                        .unwrap();
                });
                extra = format!(
                    "; VACUUM (ANALYZE) after it {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let total = pulses_secs + manifests_secs;
        let figures = format!(
            "{n} pulses and their manifests stored in {total:.0} s ({:.0} pulses/s: pulses \
             {pulses_secs:.0} s, manifests {manifests_secs:.0} s){extra}; building and signing \
             them {build_secs:.0} s ({:.0}/s), not counted; made {} with load average {}",
            n as f64 / total,
            n as f64 / build_secs,
            chrono_now(),
            load()
        );
        eprintln!("  {}: {figures}", backend.name());
        std::fs::write(figures_path(backend, n), &figures).unwrap();
    }
}

/// Gives a batch to a store being loaded: the pulses through `bulk_load`, the manifests
/// through `put_manifests` (as `lavabeacon import` does), each call timed.
fn load_batch(
    rt: &tokio::runtime::Runtime,
    l: &mut Loading,
    batch: &[lavabeacon_format::Pulse],
    manifests: &[ManifestLine],
) {
    let started = Instant::now();
    rt.block_on(l.store.bulk_load(batch)).unwrap();
    let middle = Instant::now();
    rt.block_on(l.store.put_manifests(manifests)).unwrap();
    l.pulses_secs += (middle - started).as_secs_f64();
    l.manifests_secs += middle.elapsed().as_secs_f64();
}

/// The date and time now, UTC, for the record of when a store was made.
fn chrono_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    lavabeacon_format::time::format_time_stamp(ms).unwrap_or_default()
}

/// Every store the settings name, made if missing.
fn stores(rt: &tokio::runtime::Runtime, s: &Settings) -> Vec<Made> {
    let mut made = Vec::new();
    for n in s.sizes() {
        let missing: Vec<Backend> = s
            .backends
            .iter()
            .copied()
            .filter(|&b| !present(rt, s, b, n))
            .collect();
        if !missing.is_empty() {
            make(rt, s, n, &missing);
        }
        for &backend in &s.backends {
            let (url, place) = match backend {
                Backend::Sqlite => (
                    format!("sqlite:{}", sqlite_path(n).display()),
                    sqlite_path(n).display().to_string(),
                ),
                Backend::Postgres => (format!("{}/{}", s.postgres, pg_name(n)), pg_name(n)),
            };
            made.push(Made {
                backend,
                pulses: n,
                url,
                figures: std::fs::read_to_string(figures_path(backend, n)).unwrap(),
                place,
            });
        }
    }
    made
}

/// Bytes per pulse: the SQLite file; PostgreSQL's database, and its two big tables.
fn sizes(rt: &tokio::runtime::Runtime, m: &Made) -> String {
    let per = |bytes: i64| bytes as f64 / m.pulses as f64;
    match m.backend {
        Backend::Sqlite => {
            let bytes = std::fs::metadata(&m.place).unwrap().len() as i64;
            format!(
                "file {:.2} GB: {:.0} bytes/pulse, manifest included",
                bytes as f64 / 1e9,
                per(bytes)
            )
        }
        Backend::Postgres => rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&m.url).await.unwrap();
            let (db, pulses, manifests): (i64, i64, i64) = sqlx::query_as(
                "SELECT pg_database_size(current_database()), \
                 pg_total_relation_size('pulses'), pg_total_relation_size('source_manifests')",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            format!(
                "pg_database_size {:.2} GB: {:.0} bytes/pulse (pulses table and indexes {:.0}, \
                 source_manifests {:.0})",
                db as f64 / 1e9,
                per(db),
                per(pulses),
                per(manifests)
            )
        }),
    }
}

/// The newest pulse's index in the store: a check that nothing was appended by `serve`.
fn newest_index(rt: &tokio::runtime::Runtime, url: &str) -> u64 {
    rt.block_on(async {
        let store = lavabeacon_store::open_with(url, lavabeacon_store::Role::Audit)
            .await
            .unwrap();
        store.last_in_chain(1).await.unwrap().unwrap().pulse_index
    })
}

fn lavabeacon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lavabeacon"))
}

/// The SoftHSM2 dev token `serve` signs with, made once beside the stores.
fn dev_token() -> PathBuf {
    let dir = data_dir().join("ten-years-hsm");
    let out =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-setup/dev-token.sh"))
            .arg(&dir)
            .env("LAVABEACON_BIN", env!("CARGO_BIN_EXE_lavabeacon"))
            .output()
            .expect("softhsm-setup/dev-token.sh");
    assert!(
        out.status.success(),
        "the SoftHSM2 dev token (needed to start serve) could not be made: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Times `lavabeacon serve` from its start to its first `/beacon/last`, `runs` times. The
/// store is the bench's and must stay as it is: each run starts early in a minute and is
/// stopped within seconds, before the engine's first slot (pulses are a minute apart), and
/// the newest pulse is checked afterwards.
fn serve_starts(rt: &tokio::runtime::Runtime, m: &Made, hsm: &Path, runs: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        // Into the first half of a minute, far from the slot at its end.
        loop {
            let s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                % 60;
            if (2..30).contains(&s) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (serve, _, _, secs) = start_until_last(
            lavabeacon()
                .arg("serve")
                .arg("--config")
                .arg(hsm.join("lavabeacon.toml"))
                .args(["--listen", "127.0.0.1:0", "--database", &m.url])
                .current_dir(hsm),
        );
        drop(serve);
        times.push(secs);
    }
    assert_eq!(
        newest_index(rt, &m.url),
        m.pulses,
        "serve appended to the bench store {}: remove it (and its .made file) to make it anew",
        m.place
    );
    times
}

/// Reads the store's files once (the SQLite file; PostgreSQL's tables and indexes, every
/// segment), so that the kernel's page cache holds them: bytes read and seconds.
fn read_into_page_cache(rt: &tokio::runtime::Runtime, m: &Made) -> (u64, f64) {
    let started = Instant::now();
    let files: Vec<PathBuf> = match m.backend {
        Backend::Sqlite => vec![PathBuf::from(&m.place)],
        Backend::Postgres => rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&m.url).await.unwrap();
            let dir: String = sqlx::query_scalar("SHOW data_directory")
                .fetch_one(&mut c)
                .await
                .unwrap();
            let relations: Vec<String> = sqlx::query_scalar(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c \
                 WHERE c.relkind IN ('r', 'i', 't') AND pg_relation_filepath(c.oid) IS NOT NULL \
                 AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            let mut files = Vec::new();
            for r in relations {
                let first = Path::new(&dir).join(&r);
                // A table is split into 1 GB segments: FILE, FILE.1, FILE.2, …
                for segment in 0.. {
                    let f = if segment == 0 {
                        first.clone()
                    } else {
                        PathBuf::from(format!("{}.{segment}", first.display()))
                    };
                    if !f.exists() {
                        break;
                    }
                    files.push(f);
                }
            }
            files
        }),
    };
    let mut bytes = 0;
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        use std::io::Read;
        let mut file = std::fs::File::open(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    (bytes, started.elapsed().as_secs_f64())
}

/// Downloads the whole chain through a bulk route from `first`, following `Link: rel="next"`:
/// lines and seconds.
fn download(base: &str, first: &str) -> (u64, f64) {
    use std::io::BufRead;
    let started = Instant::now();
    let mut lines = 0u64;
    let mut next = Some(first.to_string());
    while let Some(path) = next.take() {
        let resp = ureq::get(&format!("{base}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("{base}{path}: {e}"));
        next = resp
            .header("Link")
            .filter(|l| l.contains("rel=\"next\""))
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split('>').next())
            .map(str::to_string);
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            if !line.unwrap().is_empty() {
                lines += 1;
            }
        }
    }
    (lines, started.elapsed().as_secs_f64())
}

/// What a replay did: pulses/s, its peak RSS (MiB) and its CPU time per pulse (µs).
struct Replayed {
    rate: f64,
    peak_mib: f64,
    cpu_us: f64,
}

/// `lavabeacon replay` with `args`, the report checked (it must pass, with every pulse,
/// signature and manifest checked).
fn replay(n: u64, args: &[&str]) -> Replayed {
    replay_counted(n, n, args)
}

/// [`replay`] of a chain with `manifests` manifests.
fn replay_counted(n: u64, manifests: u64, args: &[&str]) -> Replayed {
    let f = run_measured(lavabeacon().arg("replay").args(args).arg("--json"));
    let report: Value = serde_json::from_str(&f.stdout)
        .unwrap_or_else(|e| panic!("replay {args:?} printed no report ({e}): {}", f.stdout));
    assert!(
        f.success && report["ok"] == true,
        "replay {args:?} failed: {}",
        f.stdout
    );
    for (field, expected) in [
        ("pulses", n),
        ("signatures_checked", n),
        ("manifests_checked", manifests),
    ] {
        assert_eq!(
            report[field].as_u64(),
            Some(expected),
            "replay {args:?}: {field} in {}",
            f.stdout
        );
    }
    Replayed {
        rate: n as f64 / f.secs,
        peak_mib: f.peak_mib,
        cpu_us: f.cpu_secs / n as f64 * 1e6,
    }
}

/// A replay's line: its rate, its CPU per pulse (with the server's, when it had one) and what
/// that CPU allows on two idle cores, its peak RSS, and the load it ran under.
fn show_replay(what: &str, r: &Replayed, server_us: Option<f64>) {
    let total = r.cpu_us + server_us.unwrap_or(0.0);
    let server = server_us.map_or(String::new(), |s| format!(" + the server's {s:.1}"));
    println!(
        "  {what:<18} {:>8.0} pulses/s; CPU {:.1} µs/pulse{server} (at most {:.0}/s on 2 idle \
         cores); replay's peak RSS {:.0} MiB (load {})",
        r.rate,
        r.cpu_us,
        2e6 / total,
        r.peak_mib,
        load()
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|s| format!("{s:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Measures one store and prints what it found.
fn measure(rt: &tokio::runtime::Runtime, s: &Settings, m: &Made, hsm: &Path) {
    let n = m.pulses;
    let secs = s.secs;
    let tmp = tempfile::tempdir().unwrap();
    println!();
    println!("== {} store, {n} pulses ({}) ==", m.backend.name(), m.place);
    println!("  load:    {}", m.figures);
    println!("  size:    {}", sizes(rt, m));

    // Start times: the first start after another process may find less in the page cache.
    let mut api_starts = Vec::new();
    let mut server = None;
    for _ in 0..3 {
        drop(server.take());
        let (p, base, pid, t) = start_until_last(
            lavabeacon()
                .args(["api", "--listen", "127.0.0.1:0", "--database", &m.url])
                .current_dir(tmp.path()),
        );
        api_starts.push(t);
        server = Some((p, base, pid));
    }
    let (api, base, pid) = server.unwrap();
    println!(
        "  start:   api to its first /beacon/last {} s (median {:.3} s; load {})",
        list(&api_starts),
        median(&api_starts),
        load()
    );

    // nginx serving a pulse as a static file: the peer, in the same run.
    let (_nginx, port) = nginx_serving_last(tmp.path(), &base);
    let script = |name: &str, path: &str| {
        let lua = tmp.path().join(name);
        std::fs::write(
            &lua,
            format!(
                "math.randomseed(os.time())\nrequest = function()\n  local i = math.random(0, {})\n  return wrk.format(\"GET\", {path})\nend\n",
                n - 1
            ),
        )
        .unwrap();
        lua
    };
    let by_time = script(
        "time.lua",
        &format!("\"/beacon/2.0/pulse/time/\" .. ({T0} + i * {PERIOD})"),
    );
    let by_index = script("index.lua", "\"/beacon/2.0/chain/1/pulse/\" .. (i + 1)");
    println!("  wrk -t2 -c64 -d{secs}s:");
    let show = |what: &str, w: support::Wrk| {
        println!(
            "    {what:<38} {:>8.0} req/s, p99 {:>6.2} ms (load {}) {}",
            w.rps,
            w.p99_ms,
            load(),
            w.errors
        );
        w.rps
    };
    // Random pulses of the whole chain touch all of the store: first with the page cache as
    // this run found it, then with the store read into it, as on a server that has run a while.
    show(
        "by time, page cache as found",
        wrk(&format!("{base}/"), secs, Some(&by_time)),
    );
    let (bytes, t) = read_into_page_cache(rt, m);
    println!(
        "    (the store's files read into the page cache: {:.2} GB in {t:.0} s)",
        bytes as f64 / 1e9
    );
    wrk(&format!("{base}/"), 2, Some(&by_time)); // warm-up
    show(
        "by time, random (/pulse/time/{t})",
        wrk(&format!("{base}/"), secs, Some(&by_time)),
    );
    show(
        "by index, random (/chain/1/pulse/{p})",
        wrk(&format!("{base}/"), secs, Some(&by_index)),
    );
    let last = show(
        "/beacon/last",
        wrk(&format!("{base}/beacon/last"), secs, None),
    );
    let peer = show(
        "nginx, a pulse as a static file",
        wrk(&format!("http://127.0.0.1:{port}/last.json"), secs, None),
    );
    println!("    /beacon/last to nginx: {:.2}", last / peer);

    let (lines, t) = download(&base, "/beacon/2.0/pulses?from=0");
    assert_eq!(lines, n, "pulses downloaded through /beacon/2.0/pulses");
    println!(
        "  bulk:    /beacon/2.0/pulses, the whole chain: {:.1} s, {:.0} pulses/s (load {})",
        t,
        n as f64 / t,
        load()
    );
    let (lines, t) = download(&base, "/beacon/2.0/chain/1/sources?from=1");
    assert_eq!(lines, n, "manifests downloaded through /chain/1/sources");
    println!(
        "           /beacon/2.0/chain/1/sources, every manifest: {:.1} s, {:.0} manifests/s (load {})",
        t,
        n as f64 / t,
        load()
    );

    let before = cpu_secs(pid);
    let r = replay(n, &["--url", &base]);
    let server_us = (cpu_secs(pid) - before) / n as f64 * 1e6;
    show_replay("replay --url:", &r, Some(server_us));
    let (server_peak, server_now) = rss(pid);
    println!("  api's RSS after all this: peak {server_peak:.0} MiB, now {server_now:.0} MiB");
    drop(api);

    let r = replay(n, &["--database", &m.url]);
    show_replay("replay --database:", &r, None);

    let serve = serve_starts(rt, m, hsm, 2);
    println!(
        "  start:   serve (SoftHSM2) to its first /beacon/last {} s (load {})",
        list(&serve),
        load()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let s = Settings::from_env();
    require("wrk", &["--version"], "apt-get install wrk");
    require("nginx", &["-v"], "apt-get install nginx-light");
    assert!(
        Path::new("/usr/lib/softhsm/libsofthsm2.so").exists(),
        "SoftHSM2 is needed by this bench to start serve: apt-get install softhsm2"
    );
    let rt = runtime();
    if s.backends.contains(&Backend::Postgres) {
        rt.block_on(pg_admin(&s.postgres));
    }
    let made = stores(&rt, &s);
    if std::env::var("TEN_YEARS_MEASURE").as_deref() == Ok("0") {
        return;
    }
    let hsm = dev_token();
    println!(
        "ten years of pulses: {} cores, load average {} at the start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    for m in &made {
        measure(&rt, &s, m, &hsm);
    }
    let bare = env_u64("TEN_YEARS_BARE", 300_000);
    if bare > 0 {
        replay_bare(bare);
    }
}

/// Replay of a chain without manifests (the api_load bench's store), from the database and
/// through `lavabeacon api`.
fn replay_bare(n: u64) {
    let db = support::store(n);
    let url = format!("sqlite:{}", db.display());
    let tmp = tempfile::tempdir().unwrap();
    println!();
    println!(
        "== SQLite store without manifests, {n} pulses ({}) ==",
        db.display()
    );
    let (api, base, pid, _) = start_until_last(
        lavabeacon()
            .args(["api", "--listen", "127.0.0.1:0", "--database", &url])
            .current_dir(tmp.path()),
    );
    let before = cpu_secs(pid);
    let r = replay_counted(n, 0, &["--url", &base]);
    let server_us = (cpu_secs(pid) - before) / n as f64 * 1e6;
    show_replay("replay --url:", &r, Some(server_us));
    let (server_peak, _) = rss(pid);
    println!("  api's peak RSS {server_peak:.0} MiB");
    drop(api);
    let r = replay_counted(n, 0, &["--database", &url]);
    show_replay("replay --database:", &r, None);
}
