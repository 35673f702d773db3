//! The beacon under test.

use super::*;

/// A dev token, its configuration, and a directory for the logs of every process started
/// from it. Every secret it knows of is looked for in those logs by [`Fixture::check_logs`].
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The dev token's directory (softhsm-setup/dev-token.sh).
    pub hsm: PathBuf,
    pub config: PathBuf,
    pub logs: PathBuf,
    secrets: Vec<String>,
    started: Mutex<u32>,
}

impl Fixture {
    /// A new dev token, or `None` (with a message; a failure under CI=true) without SoftHSM2.
    pub fn new() -> Option<Fixture> {
        if !super::super::softhsm_present() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("lbfaults-")
            .tempdir()
            .unwrap();
        let hsm = dir.path().join("hsm");
        super::super::dev_token(&hsm);
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut secrets = Vec::new();
        for f in ["user.pin", "so.pin"] {
            let pin = std::fs::read_to_string(hsm.join(f)).unwrap();
            assert!(pin.trim().len() >= 6, "{f} is not a PIN");
            secrets.push(pin.trim().to_string());
        }
        Some(Fixture {
            config: super::super::dev_config(&hsm),
            dir,
            hsm,
            logs,
            secrets,
            started: Mutex::new(0),
        })
    }

    /// Adds a secret that must appear in no log line (e.g. a database password).
    pub fn secret(&mut self, s: &str) {
        self.secrets.push(s.to_string());
    }

    /// The dev token's SQLite database.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite:{}", self.hsm.join("lavabeacon.db").display())
    }

    /// The SoftHSM2 token directory, from the dev token's softhsm2.conf.
    pub fn token_dir(&self) -> PathBuf {
        let conf = std::fs::read_to_string(self.hsm.join("softhsm2.conf")).unwrap();
        conf.lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == "directories.tokendir").then(|| PathBuf::from(v.trim()))
            })
            .expect("softhsm2.conf names directories.tokendir")
    }

    /// Starts `lavabeacon COMMAND --config … --period 1s --listen 127.0.0.1:0` plus `extra`,
    /// with `env` set; waits until it listens (not for `engine`).
    pub fn start(&self, command: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        self.spawn(command, &self.config, extra, env, Stdout::Keep)
    }

    /// As [`Fixture::start`], with another configuration file and a choice for stdout.
    pub fn spawn(
        &self,
        command: &str,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        stdout: Stdout,
    ) -> Proc {
        let n = {
            let mut s = self.started.lock().unwrap();
            *s += 1;
            *s
        };
        let name = format!("{n:02}-{command}");
        let stderr = std::fs::File::create(self.logs.join(format!("{name}.stderr"))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lavabeacon"));
        cmd.arg(command)
            .arg("--config")
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env_remove("LAVABEACON_DATABASE_URL")
            .env_remove("LAVABEACON_LOG_FORMAT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        if command != "api" {
            cmd.args(["--period", "1s"]);
        }
        let listens = command != "engine";
        if listens {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let mut proc = Proc {
            child,
            base: String::new(),
            name: name.clone(),
            stderr_path: self.logs.join(format!("{name}.stderr")),
            stdout_lines: Arc::new(Mutex::new(Vec::new())),
        };
        match stdout {
            Stdout::Keep => {
                let (tx, rx) = std::sync::mpsc::channel();
                let lines = proc.stdout_lines.clone();
                let mut file =
                    std::fs::File::create(self.logs.join(format!("{name}.stdout"))).unwrap();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { return };
                        let _ = writeln!(file, "{line}");
                        if let Some(addr) = line.strip_prefix("listening on ") {
                            let _ = tx.send(addr.to_string());
                        }
                        lines.lock().unwrap().push(line);
                    }
                });
                if listens {
                    let started = Instant::now();
                    proc.base = loop {
                        if let Ok(a) = rx.recv_timeout(Duration::from_millis(100)) {
                            break a;
                        }
                        let exited = proc.child.try_wait().unwrap();
                        if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                            // Give the log a moment to be complete.
                            std::thread::sleep(Duration::from_millis(100));
                            panic!(
                                "{name} printed no address (exit: {exited:?}); stderr:\n{}",
                                proc.stderr()
                            );
                        }
                    };
                }
            }
            Stdout::CloseAfterListening => {
                // Read on this thread up to the address, then close the read end: every later
                // write to stdout fails (EPIPE).
                let mut r = BufReader::new(out);
                let started = Instant::now();
                let mut line = String::new();
                loop {
                    line.clear();
                    let n = r.read_line(&mut line).unwrap();
                    assert!(
                        n > 0 && started.elapsed() < Duration::from_secs(30),
                        "{name} printed no address; stderr:\n{}",
                        proc.stderr()
                    );
                    if let Some(addr) = line.trim_end().strip_prefix("listening on ") {
                        proc.base = addr.to_string();
                        break;
                    }
                }
                drop(r);
            }
        }
        proc
    }

    /// Every line of every log file (stderr and stdout of each process started) is free of
    /// every secret: the HSM PINs and any password given with [`Fixture::secret`].
    pub fn check_logs(&self) {
        let mut lines = 0;
        let mut found = Vec::new();
        for e in std::fs::read_dir(&self.logs).unwrap() {
            let path = e.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string();
            for (n, line) in text.lines().enumerate() {
                lines += 1;
                for (k, s) in self.secrets.iter().enumerate() {
                    if line.contains(s.as_str()) {
                        // The message names the line and which secret, never the secret.
                        found.push(format!(
                            "{}:{}: secret #{k} in: {}",
                            path.file_name().unwrap().to_string_lossy(),
                            n + 1,
                            line.replace(s.as_str(), "<SECRET>")
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "secrets in the beacon's log lines:\n{}",
            found.join("\n")
        );
        println!(
            "faults: log secrets: {lines} lines of {} files checked for {} secrets, none found",
            std::fs::read_dir(&self.logs).unwrap().count(),
            self.secrets.len()
        );
    }
}

impl Drop for Fixture {
    /// When the test failed, the logs of its beacons are kept (the rest of the directory goes)
    /// and their place printed: the failure message says what, these say why.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join(format!(
                "lavabeacon-faults-logs-{}-{}",
                std::process::id(),
                now_ms()
            ));
            if std::fs::rename(&self.logs, &keep).is_ok() {
                eprintln!("faults: the beacons' logs are kept in {}", keep.display());
            }
        }
    }
}

/// What to do with a started process's stdout.
#[derive(Clone, Copy, PartialEq)]
pub enum Stdout {
    /// Read every line on a thread (kept, and written to the log directory).
    Keep,
    /// Read up to `listening on`, then close the pipe.
    CloseAfterListening,
}

/// A running lavabeacon process; SIGKILLed when dropped.
pub struct Proc {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (serve, api).
    pub base: String,
    pub name: String,
    pub stderr_path: PathBuf,
    pub stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Its standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits at most `within` for it to exit: its status and how long that took.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some((s, started.elapsed()));
            }
            if started.elapsed() > within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and wait for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process must be continued to die promptly; harmless otherwise.
        let _ = self.child.kill();
        // SAFETY: kill(2) on our own child.
        unsafe { kill(self.child.id() as i32, SIGCONT) };
        let _ = self.child.wait();
    }
}
