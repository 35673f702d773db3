//! Keys over the years: `lavabeacon keys rotate` (a new key in the HSM, its certificate issued,
//! written and published, a switch scheduled), `keys switch` (schedule a key that exists),
//! `keys schedule` (what is scheduled) and `keys retire` (a key that no longer signs made
//! unable to, or destroyed). The schedule is in the database ([`lavabeacon_store::KeySwitch`]):
//! every engine, leader or standby, follows it at the slot it names, with no restart.

use super::keys::{fail, load, pkcs11_before_loading};
use super::EXIT_USAGE;
use crate::config::Config;
use lavabeacon_format::cert::Certificate;
use lavabeacon_format::suite::PulseSigner;
use lavabeacon_format::time::{format_time_stamp, parse_when, Slots};
use lavabeacon_signer::cert::{CaFiles, Validity};
use lavabeacon_signer::pkcs11::{retire_key, Pkcs11Key, Retire};
use lavabeacon_signer::Signer;
use lavabeacon_store::{key_switch_at, key_switch_followed, KeySwitch, Role, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

macro_rules! out {
    ($($t:tt)*) => {
        crate::logging::stdout_line(&format!($($t)*))
    };
}

/// How long a certificate is valid: `--years N` or `--valid-for 90d` (s, m, h, d or y of 365
/// days).
#[derive(clap::Args, Debug, Clone)]
pub struct ValidityArgs {
    /// Years of validity.
    #[arg(long, default_value_t = 5)]
    years: u32,
    /// Or a length: 30s, 15m, 12h, 90d, 2y (tests use seconds; operators use --years).
    #[arg(long, value_name = "LENGTH", conflicts_with = "years")]
    valid_for: Option<String>,
}

impl ValidityArgs {
    pub fn validity(&self) -> Result<Validity, String> {
        let max = lavabeacon_signer::cert::MAX_YEARS;
        match &self.valid_for {
            None if self.years == 0 || u64::from(self.years) > max => {
                Err(format!("--years {}: 1 to {max}", self.years))
            }
            None => Ok(Validity::years(self.years)),
            Some(text) => match parse_length(text)? {
                d if d.as_secs() > max * 365 * 86_400 => {
                    Err(format!("--valid-for {text}: at most {max}y"))
                }
                d => Ok(Validity::from_now(d)),
            },
        }
    }
}

/// `30s`, `15m`, `12h`, `90d`, `2y`.
fn parse_length(text: &str) -> Result<Duration, String> {
    let bad = || format!("--valid-for {text:?}: a number and s, m, h, d or y, e.g. 90d");
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'y' => 365 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// An operator CA that signs the certificate instead of the key itself.
#[derive(clap::Args, Debug, Clone)]
pub struct CaArgs {
    /// Have an operator CA sign it: the CA certificate (PEM)…
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// …and the CA private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
}

impl CaArgs {
    pub fn files(&self) -> Result<Option<CaFiles>, String> {
        let (Some(c), Some(k)) = (&self.ca_cert, &self.ca_key) else {
            return Ok(None);
        };
        let read =
            |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(Some(CaFiles {
            certificate_pem: read(c)?,
            key_pem: read(k)?,
        }))
    }
}

/// When a switch takes effect, and in which chain.
#[derive(clap::Args, Debug, Clone)]
pub struct WhenArgs {
    /// The first pulse time the key signs: a period boundary at least two periods ahead
    /// (RFC 3339 or Unix s/ms), or `next`: the first such boundary.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Start a new chain there (chainIndex + 1, statusCode 1): for a change of cipherSuite.
    #[arg(long)]
    new_chain: bool,
}

/// `keys rotate`: a new key, its certificate, and (with `--at`) its switch.
#[allow(clippy::too_many_arguments)] // one per flag of `keys rotate`
pub fn rotate(
    config: Option<&PathBuf>,
    label: &str,
    suite: Option<&str>,
    name: &str,
    test: bool,
    validity: &ValidityArgs,
    ca: &CaArgs,
    when: &WhenArgs,
) -> ExitCode {
    let c = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (validity, ca) = match validity.validity().and_then(|v| Ok((v, ca.files()?))) {
        Ok(x) => x,
        Err(e) => return usage(e),
    };
    let mut p = match pkcs11_before_loading(&c) {
        Ok(p) => p,
        Err(e) => return fail("configuration", e),
    };
    if label == p.key_label {
        return usage(format!(
            "--label {label:?} is the configured key's label: a new key needs a new label"
        ));
    }
    p.key_label = label.to_string();
    if let Some(suite) = suite {
        p.suite = match suite.parse() {
            Ok(s) => s,
            Err(e) => return usage(format!("--suite {suite}: {e}")),
        };
    }
    // A change of suite is refused before anything is made, unless it starts a new chain.
    let code = p.suite.code();
    let chain_suite = with_store(&c, Role::Audit, |store| async move {
        Ok(store
            .last()
            .await
            .map_err(|e| e.to_string())?
            .map(|p| p.cipher_suite))
    });
    match chain_suite {
        Ok(Some(have)) if have != code && !when.new_chain => {
            return usage(format!(
                "a {} key signs cipherSuite {code}, the chain's pulses have {have}: a change of suite starts a new chain; add --new-chain",
                p.suite.name()
            ))
        }
        Ok(_) => {}
        Err(e) => return fail("keys rotate", e),
    }
    let signer = match Pkcs11Key::generate(&p).and_then(|k| {
        let der = k.issue_certificate(name, test, validity, ca.as_ref())?;
        k.into_signer(&der)
    }) {
        Ok(s) => s,
        Err(e) => return fail("keys rotate", e),
    };
    let cert = signer.certificate().clone();
    let file = c
        .signer
        .certificate
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{label}.pem"));
    if let Err(e) = std::fs::write(&file, cert.to_pem()) {
        return fail(&file.display().to_string(), e);
    }
    out!(
        "generated {} key {label:?} in token {:?}; certificate {} written to {}",
        p.suite.name(),
        p.token_label,
        cert.id.to_hex_lower(),
        file.display()
    );
    publish_and_schedule(&c, label, &cert, PulseSigner::cipher_suite(&signer), when)
}

/// `keys switch`: schedules a key that exists, with its certificate.
pub fn switch(
    config: Option<&PathBuf>,
    label: &str,
    certificate: &Path,
    when: &WhenArgs,
) -> ExitCode {
    let c = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if when.at.is_none() {
        return usage("keys switch needs --at TIME (or --at next)".into());
    }
    let der = match certificate_der(certificate) {
        Ok(der) => der,
        Err(e) => return usage(e),
    };
    let mut p = match pkcs11_before_loading(&c) {
        Ok(p) => p,
        Err(e) => return fail("configuration", e),
    };
    p.key_label = label.to_string();
    p.suite = match super::engine::suite_of(&der) {
        Ok(s) => s,
        Err(e) => return usage(format!("{}: {e}", certificate.display())),
    };
    // Opened and self-tested here, so a switch is never scheduled to a key that cannot sign.
    let signer = match Pkcs11Key::open(&p).and_then(|k| k.into_signer(&der)) {
        Ok(s) => s,
        Err(e) => return fail("keys switch", e),
    };
    let cert = signer.certificate().clone();
    publish_and_schedule(&c, label, &cert, PulseSigner::cipher_suite(&signer), when)
}

/// Stores the certificate (so it is published before it is used) and, with `--at`, the
/// switch; says what it did on standard output.
fn publish_and_schedule(
    c: &Config,
    label: &str,
    cert: &Certificate,
    cipher_suite: u32,
    when: &WhenArgs,
) -> ExitCode {
    match schedule_switch(
        c,
        label,
        cert,
        cipher_suite,
        when,
        Some(&c.signer.key_label),
        &|line| out!("{line}"),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("keys", e),
    }
}

/// What [`publish_and_schedule`] does, saying each step to `say`.
fn schedule_switch(
    c: &Config,
    label: &str,
    cert: &Certificate,
    cipher_suite: u32,
    when: &WhenArgs,
    current_label: Option<&str>,
    say: &dyn Fn(String),
) -> Result<(), String> {
    with_store(c, Role::Engine, |store| async move {
        store
            .put_certificate(&cert.der)
            .await
            .map_err(|e| format!("storing the certificate: {e}"))?;
        say(format!(
            "certificate published at /beacon/2.0/certificate/{}",
            cert.id.to_hex_lower()
        ));
        let Some(at) = &when.at else {
            say(format!("no switch scheduled: run `lavabeacon keys switch --label {label} --certificate FILE --at TIME` when ready"));
            return Ok(());
        };
        let at = switch_time(c, at)?;
        if at < cert.not_before * 1000 || at > cert.not_after * 1000 {
            return Err(format!(
                "{} is outside the certificate's validity ({} to {}): the engine would not sign",
                show(at),
                show(cert.not_before * 1000),
                show(cert.not_after * 1000)
            ));
        }
        let switches = store.key_switches().await.map_err(|e| e.to_string())?;
        let newest = store.last().await.map_err(|e| e.to_string())?;
        // The chain at `at`; a new chain is one above every chain known or scheduled, so two
        // new chains never share a number.
        let current = [
            Some(c.beacon.chain),
            newest.as_ref().map(|p| p.chain_index),
            key_switch_at(&switches, at).map(|s| s.chain),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(1);
        let highest = switches
            .iter()
            .map(|s| s.chain)
            .chain([current])
            .max()
            .unwrap_or(current);
        if let Some(p) = &newest {
            if p.cipher_suite != cipher_suite && !when.new_chain {
                return Err(format!(
                    "the new key signs cipherSuite {cipher_suite}, the chain's pulses have {}: a change of suite starts a new chain; add --new-chain",
                    p.cipher_suite
                ));
            }
        }
        let chain = if when.new_chain { highest + 1 } else { current };
        // The first switch ever: the key signing now goes in the schedule too (from the newest
        // pulse), so that before `at` every engine, restarted or standby, signs with it even
        // if its configuration already names the new key.
        if let (None, Some(p), Some(old)) = (
            key_switch_followed(&switches, now_ms(), c.beacon.chain),
            &newest,
            current_label.filter(|old| *old != label),
        ) {
            let from = p.time_ms().map_err(|e| e.to_string())?;
            store
                .put_key_switch(&KeySwitch {
                    at_ms: from,
                    chain: p.chain_index,
                    key_label: old.to_string(),
                    certificate_id: p.certificate_id,
                })
                .await
                .map_err(|e| format!("scheduling the key in use: {e}"))?;
            say(format!(
                "key {old:?} (certificate {}) recorded as signing since {}",
                p.certificate_id.short(),
                show(from)
            ));
        }
        store
            .put_key_switch(&KeySwitch {
                at_ms: at,
                chain,
                key_label: label.to_string(),
                certificate_id: cert.id,
            })
            .await
            .map_err(|e| format!("scheduling the switch: {e}"))?;
        say(format!(
            "switch scheduled: key {label:?} signs chain {chain} from {} on{}",
            show(at),
            if when.new_chain { " (a new chain)" } else { "" }
        ));
        Ok(())
    })
}

/// On SIGHUP (`systemctl reload`), for `serve` and `engine`: the configuration file is read
/// again, and when its `[signer]` names a key other than the one in effect, the switch to it
/// (with the certificate it names) is scheduled at the first boundary two periods ahead, as
/// `keys switch --at next` would. The work runs on a thread of its own (the HSM and the
/// database are called as the CLI calls them); the outcome goes to the log.
pub fn spawn_switch_on_hangup(path: Option<PathBuf>, running: Config) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::error!(
                "no SIGHUP handler: schedule key switches with `lavabeacon keys switch`"
            );
            return;
        };
        while hup.recv().await.is_some() {
            let (path, running) = (path.clone(), running.clone());
            std::thread::spawn(move || {
                if let Err(e) = switch_to_configured(path.as_deref(), &running) {
                    // A database error may quote the URL: never with its password.
                    tracing::error!("SIGHUP: no key switch: {}", crate::config::redact_urls(&e));
                }
            });
        }
    });
}

/// The SIGHUP reload's work: see [`spawn_switch_on_hangup`].
fn switch_to_configured(path: Option<&Path>, running: &Config) -> Result<(), String> {
    let mut c = Config::load(path).map_err(|e| format!("configuration: {e}"))?;
    // The command line's overrides stay.
    c.database.url = running.database.url.clone();
    c.beacon.period_ms = running.beacon.period_ms;
    if c.signer.kind != crate::config::SignerKind::Pkcs11 {
        return Ok(());
    }
    let der = certificate_der(&c.signer.certificate)?;
    // Compared by certificate, not label: a certificate renewed for the same key is a switch
    // too.
    let id = lavabeacon_format::message::certificate_id(&der);
    let chain = running.beacon.chain;
    let in_effect = with_store(&c, Role::Audit, |store| async move {
        let switches = store.key_switches().await.map_err(|e| e.to_string())?;
        let now = now_ms();
        let scheduled = switches
            .iter()
            .any(|s| s.at_ms > now && s.certificate_id == id);
        let signing = match key_switch_followed(&switches, now, chain) {
            Some(s) => s.certificate_id == id,
            None => store
                .last()
                .await
                .map_err(|e| e.to_string())?
                .is_some_and(|p| p.certificate_id == id),
        };
        Ok(scheduled || signing)
    })?;
    if in_effect {
        tracing::info!(
            "SIGHUP: certificate {} signs already (or is scheduled to): nothing to switch",
            id.short()
        );
        return Ok(());
    }
    let signer = Pkcs11Key::open(&c.signer.pkcs11()?)
        .and_then(|k| k.into_signer(&der))
        .map_err(|e| format!("key {:?}: {e}", c.signer.key_label))?;
    let when = WhenArgs {
        at: Some("next".into()),
        new_chain: false,
    };
    schedule_switch(
        &c,
        &c.signer.key_label,
        signer.certificate(),
        PulseSigner::cipher_suite(&signer),
        &when,
        Some(&running.signer.key_label),
        &|line| tracing::info!("SIGHUP: {line}"),
    )
}

/// `keys schedule`: every switch, and which is in effect.
pub fn schedule(config: Option<&PathBuf>) -> ExitCode {
    let c = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let configured = &c.signer.key_label;
    let chain = c.beacon.chain;
    let done = with_store(&c, Role::Audit, |store| async move {
        let switches = store.key_switches().await.map_err(|e| e.to_string())?;
        let now = now_ms();
        let current = key_switch_followed(&switches, now, chain).map(|s| s.at_ms);
        if current.is_none() {
            out!("no switch in effect: key {configured:?} of the configuration signs");
        }
        for s in &switches {
            let state = if Some(s.at_ms) == current {
                "in effect"
            } else if s.at_ms > now {
                "scheduled"
            } else {
                "past"
            };
            out!(
                "{}  chain {}  key {:<20} certificate {}  {state}",
                show(s.at_ms),
                s.chain,
                s.key_label,
                s.certificate_id.to_hex_lower()
            );
        }
        Ok(())
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("keys schedule", e),
    }
}

/// `keys retire`: a key that no longer signs (and is not scheduled to) made unable to sign, or
/// destroyed. Its certificate stays published.
pub fn retire(config: Option<&PathBuf>, label: &str, destroy: bool, yes: bool) -> ExitCode {
    let c = match load(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if destroy && !yes {
        return usage(format!(
            "destroying key {label:?} cannot be undone (pulses it signed stay verifiable by its published certificate): add --yes"
        ));
    }
    let configured = &c.signer.key_label;
    let chain = c.beacon.chain;
    let in_use = with_store(&c, Role::Audit, |store| async move {
        let switches = store.key_switches().await.map_err(|e| e.to_string())?;
        let now = now_ms();
        Ok(match key_switch_followed(&switches, now, chain) {
            Some(s) if s.key_label == label => Some("it signs now".to_string()),
            None if configured == label => {
                Some("it is the configured key and no other is scheduled".into())
            }
            _ => switches
                .iter()
                .find(|s| s.at_ms > now && s.key_label == label)
                .map(|s| format!("it is scheduled to sign from {}", show(s.at_ms))),
        })
    });
    match in_use {
        Ok(None) => {}
        Ok(Some(why)) => return usage(format!("key {label:?} cannot be retired: {why}")),
        Err(e) => return fail("keys retire", e),
    }
    let mut p = match pkcs11_before_loading(&c) {
        Ok(p) => p,
        Err(e) => return fail("configuration", e),
    };
    p.key_label = label.to_string();
    let how = if destroy {
        Retire::Destroy
    } else {
        Retire::Disable
    };
    match retire_key(&p, label, how) {
        Ok(n) => {
            out!(
                "key {label:?}: {}",
                if destroy {
                    format!("{n} objects destroyed")
                } else {
                    "can no longer sign (CKA_SIGN false)".into()
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail("keys retire", e),
    }
}

/// The time `--at` names: `next`, or a period boundary at least one period ahead.
fn switch_time(c: &Config, at: &str) -> Result<i64, String> {
    let slots = Slots::new(c.beacon.period_ms).ok_or("the period must be above 0")?;
    let period = i64::from(c.beacon.period_ms);
    let earliest = now_ms() + period;
    if at == "next" {
        // Two periods: an engine prepares a pulse up to a period ahead, and must see the
        // switch before it starts on that slot.
        return Ok(slots.at_or_after(earliest + period));
    }
    let t = parse_when(at).map_err(|e| format!("--at: {e}"))?;
    if !slots.is_slot(t) {
        return Err(format!(
            "--at {at}: not a period boundary (the pulse times are multiples of {period} ms)"
        ));
    }
    if t < earliest + period {
        return Err(format!(
            "--at {at}: at least two periods from now, so that every engine sees it before it starts on that slot (or --at next)"
        ));
    }
    Ok(t)
}

/// The first certificate in a PEM (or DER) file, as the engine reads its certificate.
fn certificate_der(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    lavabeacon_format::cert::pem_blocks(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate", path.display()))
}

fn show(ms: i64) -> String {
    format_time_stamp(ms).unwrap_or_else(|| ms.to_string())
}

/// The wall clock, as the engine reads it.
fn now_ms() -> i64 {
    use lavabeacon_engine::clock::Clock;
    lavabeacon_engine::clock::SystemClock.now_ms()
}

fn usage(e: String) -> ExitCode {
    tracing::error!("lavabeacon: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs `f` with the store, opened as `role`: the engine's to write certificates and the
/// schedule (it migrates, as the engine would), an audit's only to read them (it never does).
fn with_store<F, Fut, T>(c: &Config, role: Role, f: F) -> Result<T, String>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(async {
            let store = lavabeacon_store::open_with(&c.database.url, role)
                .await
                .map_err(|e| format!("database: {e}"))?;
            f(store).await
        })
}
