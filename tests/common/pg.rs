//! A PostgreSQL cluster of the test's own: `initdb` into a temporary directory, a free port,
//! trust authentication on loopback, started and stopped with `pg_ctl` — so that a test may
//! kill it (`stop -m immediate`) without touching anyone else's server. A streaming hot-standby
//! replica of it (`pg_basebackup -R`) on a second port. Dropping a cluster stops it and removes
//! its directory.
//!
//! As root, `initdb` refuses to run: the server programs then run as the `postgres` user
//! (`runuser -u postgres --`), who is given the directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The newest `/usr/lib/postgresql/*/bin` that has every program the harness runs.
pub fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "pg_basebackup", "postgres", "psql"]
                .iter()
                .all(|p| bin.join(p).exists())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Whether the server programs are here; if not, a skip with a message (a failure under
/// `CI=true`: scripts/test.sh installs the `postgresql` package).
pub fn server_present() -> bool {
    super::present_or_skip(
        server_bin().is_some(),
        "the PostgreSQL server programs (/usr/lib/postgresql/*/bin: initdb, pg_ctl, pg_basebackup)",
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

extern "C" {
    fn geteuid() -> u32;
}

/// A port nobody listens on now (the kernel's choice for port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One cluster: its directory (data directory, log, socket), its port.
pub struct PgCluster {
    bin: PathBuf,
    /// Removed on drop.
    root: tempfile::TempDir,
    data: PathBuf,
    port: u16,
}

impl PgCluster {
    /// A new cluster, initialised and started; `None` (with a message) when the server
    /// programs are missing outside CI.
    pub fn start_new() -> Option<PgCluster> {
        if !server_present() {
            return None;
        }
        let c = PgCluster::empty(server_bin().unwrap());
        c.run(
            "initdb",
            &[
                "-D",
                c.data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        c.configure(&[]);
        c.start();
        Some(c)
    }

    fn empty(bin: PathBuf) -> PgCluster {
        let root = tempfile::Builder::new().prefix("lbpg-").tempdir().unwrap();
        if is_root() {
            chown_postgres(root.path());
        }
        let data = root.path().join("data");
        PgCluster {
            bin,
            root,
            data,
            port: free_port(),
        }
    }

    /// Appends to postgresql.conf (later lines win): this cluster's port and socket
    /// directory, loopback only, and `extra`.
    fn configure(&self, extra: &[&str]) {
        use std::io::Write;
        // fsync off: the faults here are process crashes, which the OS page cache survives;
        // a power cut is not simulated, and the shared test machine is spared the syncs.
        let mut lines = vec![
            format!("port = {}", self.port),
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("unix_socket_directories = '{}'", self.root.path().display()),
            "fsync = off".to_string(),
            "max_connections = 100".to_string(),
        ];
        lines.extend(extra.iter().map(|s| s.to_string()));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        writeln!(f, "\n# lavabeacon test harness\n{}", lines.join("\n")).unwrap();
    }

    /// Runs one of the server programs (as `postgres` when we are root); it must succeed.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        };
        let out = cmd
            .args(args)
            .current_dir(self.root.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        out
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join(format!("server-{}.log", self.port))
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `pg_ctl start`, waiting until it accepts connections (on the same port as before).
    pub fn start(&self) {
        let log = self.log_path();
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.wait_ready(Duration::from_secs(30));
    }

    /// `pg_ctl stop -m immediate`: every server process killed at once, no checkpoint (as a
    /// crash); the next start runs crash recovery.
    pub fn stop_immediate(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn wait_ready(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let out = self.psql_raw("postgres", "select 1");
            if out.status.success() {
                return;
            }
            assert!(
                started.elapsed() < within,
                "PostgreSQL on port {} not ready within {within:?}: {}\n{}",
                self.port,
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB` (trust: no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn psql_raw(&self, db: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .unwrap()
    }

    /// Runs `sql` in `db` with psql as `postgres`; it must succeed. Returns its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_raw(db, sql);
        assert!(
            out.status.success(),
            "psql on port {} ({sql}): {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Creates database `name` (owned by `owner`, default postgres).
    pub fn create_database(&self, name: &str, owner: Option<&str>) {
        let owner = owner.map_or(String::new(), |o| format!(" OWNER {o}"));
        self.psql("postgres", &format!("CREATE DATABASE {name}{owner}"));
    }

    /// A login role that must give `password` (scram-sha-256 on loopback; every other role
    /// keeps trust), owning a new database of the same name. Returns the URL to connect with,
    /// the password percent-encoded.
    pub fn password_role(&self, role: &str, password: &str) -> String {
        let quoted = password.replace('\'', "''");
        self.psql(
            "postgres",
            &format!("SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{quoted}'"),
        );
        self.create_database(role, Some(role));
        let hba = self.data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}"),
        )
        .unwrap();
        self.psql("postgres", "SELECT pg_reload_conf()");
        format!(
            "postgres://{role}:{}@127.0.0.1:{}/{role}",
            percent_encode(password),
            self.port
        )
    }

    /// A streaming hot-standby replica of this cluster (`pg_basebackup -R`), on its own port,
    /// started and in recovery.
    pub fn replica(&self) -> PgCluster {
        let r = PgCluster::empty(self.bin.clone());
        r.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                r.data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        r.configure(&["hot_standby = on"]);
        r.start();
        assert_eq!(
            r.psql("postgres", "select pg_is_in_recovery()"),
            "t",
            "the replica is a standby"
        );
        r
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Stopped whether or not it still runs; the directory goes with `root`.
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .current_dir(self.root.path())
            .output();
    }
}

fn chown_postgres(dir: &Path) {
    let out = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chown postgres {}: {} (is there a `postgres` user? the postgresql package makes it)",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RFC 3986 userinfo encoding: everything but unreserved characters as %XX.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
