//! The signer survives an HSM that goes away and comes back, on a real SoftHSM2: the token
//! directory renamed away and back (what an unplugged or restarted HSM looks like to SoftHSM),
//! sessions closed and the login dropped by another handle in the process. The same signer
//! object is used before and after: the caller never reopens the key.
//!
//! Every test here moves or breaks the tokens of this process, so they run one at a time
//! (`serial`). Without SoftHSM2 they are skipped with a message, except under `CI=true`.
//!
//! Just over 400 lines: each outage is staged on tokens of its own, and all of them share the
//! helpers at the top that move a token away and time the recovery.

use lavabeacon_format::suite::{verify_signature, PulseSigner};
use lavabeacon_signer::cert::Validity;
use lavabeacon_signer::pkcs11::{Pkcs11Key, Pkcs11Signer, REINIT_INTERVAL};
use lavabeacon_signer::{Signer, SignerError, Suite};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod common;
use common::{config, PIN};

const TOKENS: [&str; 7] = [
    "lb-move-sign",
    "lb-move-seal",
    "lb-close-all",
    "lb-logout",
    "lb-threads",
    "lb-one-gone",
    "lb-stays",
];

/// How long the token stays away in the outage tests.
const OUTAGE: Duration = Duration::from_secs(3);
/// A failed call must come back well inside the engine's per-pulse budget.
const FAIL_FAST: Duration = Duration::from_millis(500);
/// After the token is back, the signer works again within this.
const RECOVER_WITHIN: Duration = Duration::from_secs(3);

fn serial() -> Option<MutexGuard<'static, ()>> {
    static LOCK: Mutex<()> = Mutex::new(());
    common::softhsm(&TOKENS)?;
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Past the rate limit of a re-initialisation made by the test before.
    std::thread::sleep(REINIT_INTERVAL);
    Some(guard)
}

fn signer_for(token: &str) -> Arc<Pkcs11Signer> {
    let key = Pkcs11Key::generate(&config(token, "pulse-key", Suite::Ed25519)).unwrap();
    let cert = key
        .issue_certificate(
            "lavabeacon recovery test",
            true,
            test_chain_validity(),
            None,
        )
        .unwrap();
    Arc::new(key.into_signer(&cert).unwrap())
}

fn signs_and_verifies(s: &Pkcs11Signer, m: &[u8]) -> Result<(), SignerError> {
    let sig = s.key().sign_raw(m)?;
    verify_signature(s.cipher_suite(), m, &sig, s.certificate()).expect("signature verifies");
    Ok(())
}

/// The token directory renamed away; put back when dropped (also when a test fails).
struct Away {
    from: PathBuf,
    to: PathBuf,
    back: bool,
}

impl Away {
    fn new(dir: &Path) -> Away {
        let to = dir.with_extension("away");
        std::fs::rename(dir, &to).unwrap();
        Away {
            from: dir.to_path_buf(),
            to,
            back: false,
        }
    }
    fn put_back(&mut self) {
        std::fs::rename(&self.to, &self.from).unwrap();
        self.back = true;
    }
}

impl Drop for Away {
    fn drop(&mut self) {
        if !self.back {
            let _ = std::fs::rename(&self.to, &self.from);
        }
    }
}

/// The error of a call made while the token is away: quick, "hsm unavailable", the token
/// named, never the PIN.
fn unavailable(e: &SignerError, token: &str) {
    let text = format!("{e} {e:?}");
    assert!(!text.contains(PIN), "the PIN leaked: {text}");
    assert_eq!(e.category(), "hsm unavailable", "{text}");
    assert!(e.is_transient(), "{text}");
    assert!(text.contains(token), "the message names the token: {text}");
}

struct Timings(Vec<Duration>);

impl Timings {
    fn report(&self, what: &str) {
        let max = self.0.iter().max().copied().unwrap_or_default();
        let sum: Duration = self.0.iter().sum();
        eprintln!(
            "{what}: {} failed calls, mean {:?}, max {:?}",
            self.0.len(),
            sum / self.0.len().max(1) as u32,
            max
        );
    }
}

/// Calls `op` every 50 ms from the moment the token is back until it succeeds; returns how
/// long that took.
fn time_to_recover(mut op: impl FnMut() -> Result<(), SignerError>) -> Duration {
    let back = Instant::now();
    loop {
        match op() {
            Ok(()) => return back.elapsed(),
            Err(e) => assert!(
                back.elapsed() < RECOVER_WITHIN,
                "not recovered {:?} after the token came back: {e}",
                back.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn signing_fails_fast_while_the_token_is_away_and_recovers_when_it_is_back() {
    let Some(_serial) = serial() else { return };
    let s = signer_for("lb-move-sign");
    signs_and_verifies(&s, b"before").unwrap();

    let mut away = Away::new(&common::token_dir());
    let mut failed = Timings(Vec::new());
    let start = Instant::now();
    while start.elapsed() < OUTAGE {
        let t = Instant::now();
        let e = signs_and_verifies(&s, b"during").expect_err("no token, no signature");
        let took = t.elapsed();
        unavailable(&e, "lb-move-sign");
        assert!(took < FAIL_FAST, "a failed call took {took:?}: {e}");
        failed.0.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    failed.report("sign while the token is away");

    // The worst moment for the token to come back: just after a re-initialisation found it
    // missing. The next one is allowed REINIT_INTERVAL later; the signer works from then.
    std::thread::sleep(REINIT_INTERVAL);
    signs_and_verifies(&s, b"during").expect_err("no token, no signature");
    away.put_back();
    let took = time_to_recover(|| signs_and_verifies(&s, b"after"));
    eprintln!("sign: recovered {took:?} after the token came back (worst case)");
    assert!(
        took < REINIT_INTERVAL + Duration::from_millis(500),
        "{took:?}"
    );
    for i in 0..20u32 {
        signs_and_verifies(&s, &i.to_be_bytes()).unwrap();
    }
    lavabeacon_signer::self_test(s.as_ref()).unwrap();
}

#[test]
fn sealing_unsealing_and_random_fail_as_unavailable_and_recover() {
    let Some(_serial) = serial() else { return };
    let s = signer_for("lb-move-seal");
    let secret = [0x42u8; 64];
    let sealed = s.seal(b"chain 1 pulse 7", &secret).unwrap();
    let mut r = [0u8; 32];
    s.random(&mut r).unwrap();

    let mut away = Away::new(&common::token_dir());
    let (mut seal_t, mut unseal_t, mut random_t) = (
        Timings(Vec::new()),
        Timings(Vec::new()),
        Timings(Vec::new()),
    );
    let start = Instant::now();
    let mut random_failed = 0;
    while start.elapsed() < OUTAGE {
        let t = Instant::now();
        let e = s.seal(b"chain 1 pulse 8", &secret).expect_err("no token");
        seal_t.0.push(t.elapsed());
        unavailable(&e, "lb-move-seal");

        // The sealed value is not lost because the HSM is away: never Unseal (which the
        // engine reads as "publish status 3").
        let t = Instant::now();
        let e = s.unseal(b"chain 1 pulse 7", &sealed).expect_err("no token");
        unseal_t.0.push(t.elapsed());
        assert!(!matches!(e, SignerError::Unseal(_)), "{e}");
        unavailable(&e, "lb-move-seal");

        let t = Instant::now();
        let got = s.random(&mut r);
        random_t.0.push(t.elapsed());
        if let Err(e) = got {
            unavailable(&e, "lb-move-seal");
            random_failed += 1;
        }
        for t in [&seal_t, &unseal_t, &random_t] {
            assert!(*t.0.last().unwrap() < FAIL_FAST, "{:?}", t.0.last());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seal_t.report("seal while the token is away");
    unseal_t.report("unseal while the token is away");
    random_t.report("random while the token is away");
    // After the module is re-initialised without the token, there is no session to draw from.
    assert!(random_failed > 0);

    away.put_back();
    let took = time_to_recover(|| {
        let opened = s.unseal(b"chain 1 pulse 7", &sealed)?;
        assert_eq!(opened.as_slice(), &secret);
        Ok(())
    });
    eprintln!("unseal: recovered {took:?} after the token came back");
    let again = s.seal(b"chain 1 pulse 8", &secret).unwrap();
    assert_eq!(
        s.unseal(b"chain 1 pulse 8", &again).unwrap().as_slice(),
        &secret
    );
    let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
    s.random(&mut a).unwrap();
    s.random(&mut b).unwrap();
    assert_ne!(a, b);
    // Tampering is still an answer, not an outage.
    let mut tampered = again.clone();
    tampered[20] ^= 1;
    assert!(matches!(
        s.unseal(b"chain 1 pulse 8", &tampered),
        Err(SignerError::Unseal(_))
    ));
}

/// Another handle on the module in this process, as the tests' saboteur.
fn slot_of(label: &str) -> cryptoki::slot::Slot {
    let p = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let _ = p.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    p.get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| p.get_token_info(*slot).is_ok_and(|t| t.label() == label))
        .unwrap()
}

#[test]
fn the_signer_recovers_when_another_handle_closes_all_sessions() {
    let Some(_serial) = serial() else { return };
    let s = signer_for("lb-close-all");
    // Several pooled sessions, so that the closed ones are really reused afterwards.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| signs_and_verifies(&s, b"before").unwrap());
        }
    });
    let slot = slot_of("lb-close-all");
    // cryptoki has no C_CloseAllSessions; the raw function list has.
    let raw = unsafe { cryptoki_sys::Pkcs11::new(common::MODULE) }.unwrap();
    let rv = unsafe { raw.C_CloseAllSessions(slot.id()) };
    assert_eq!(rv, cryptoki_sys::CKR_OK);
    let t = Instant::now();
    signs_and_verifies(&s, b"after").expect("recovered within the same call");
    eprintln!("sign after C_CloseAllSessions: {:?}", t.elapsed());
    let mut r = [0u8; 16];
    s.random(&mut r).unwrap();
    let sealed = s.seal(b"x", &[1; 64]).unwrap();
    assert_eq!(s.unseal(b"x", &sealed).unwrap().as_slice(), &[1; 64]);
}

#[test]
fn the_signer_recovers_when_another_handle_logs_out() {
    let Some(_serial) = serial() else { return };
    let s = signer_for("lb-logout");
    let sealed = s.seal(b"y", &[2; 64]).unwrap();
    let p = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let other = p.open_rw_session(slot_of("lb-logout")).unwrap();
    other.logout().unwrap();
    drop(other);
    // The first call after the logout meets CKR_USER_NOT_LOGGED_IN (or an invalid key
    // handle) and recovers within itself: unsealing, the call an engine makes at a restart.
    assert_eq!(s.unseal(b"y", &sealed).unwrap().as_slice(), &[2; 64]);
    signs_and_verifies(&s, b"after").unwrap();
}

#[test]
fn signing_and_random_from_many_threads_through_an_outage_never_deadlock() {
    let Some(_serial) = serial() else { return };
    let s = signer_for("lb-threads");
    let stop_at = Arc::new(Mutex::new(None::<Instant>));
    let (done, finished) = mpsc::channel();
    for t in 0..6u32 {
        let (s, stop_at, done) = (s.clone(), stop_at.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed, mut last_ok) = (0u32, 0u32, false);
            for i in 0u32.. {
                let stop = *stop_at.lock().unwrap();
                if stop.is_some_and(|at| Instant::now() > at) {
                    break;
                }
                let r = if t % 3 == 2 {
                    let mut b = [0u8; 32];
                    s.random(&mut b)
                } else {
                    signs_and_verifies(&s, &[t.to_be_bytes(), i.to_be_bytes()].concat())
                };
                last_ok = r.is_ok();
                match r {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert_eq!(e.category(), "hsm unavailable", "{e}");
                        failed += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            done.send((t, ok, failed, last_ok)).unwrap();
        });
    }
    drop(done);
    std::thread::sleep(Duration::from_millis(500));
    let mut away = Away::new(&common::token_dir());
    std::thread::sleep(Duration::from_secs(2));
    away.put_back();
    *stop_at.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3));
    let mut seen = 0;
    while seen < 6 {
        let (t, ok, failed, last_ok) = finished
            .recv_timeout(Duration::from_secs(20))
            .expect("every thread finishes: no deadlock");
        eprintln!("thread {t}: {ok} calls succeeded, {failed} failed");
        assert!(last_ok, "thread {t}: works again after the outage");
        assert!(failed > 0, "thread {t} saw the outage");
        seen += 1;
    }
}

/// The directory SoftHSM keeps one token in (its token.object carries the label).
fn dir_of_token(tokens: &Path, label: &str) -> PathBuf {
    let padded = format!("{label:<32}");
    for entry in std::fs::read_dir(tokens).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(object) = std::fs::read(dir.join("token.object")) else {
            continue;
        };
        if object.windows(32).any(|w| w == padded.as_bytes()) {
            return dir;
        }
    }
    panic!("no token directory for {label} in {}", tokens.display());
}

#[test]
fn a_key_in_another_token_keeps_signing_while_one_token_is_gone() {
    let Some(_serial) = serial() else { return };
    let gone = signer_for("lb-one-gone");
    let stays = signer_for("lb-stays");
    // The whole directory goes away; a new one comes with only the other token in it, so the
    // module re-initialises with that token alone (in another slot, perhaps).
    let tokens = common::token_dir();
    let mut away = Away::new(&tokens);
    std::fs::create_dir(&tokens).unwrap();
    let stays_dir = dir_of_token(&away.to, "lb-stays");
    std::fs::rename(&stays_dir, tokens.join(stays_dir.file_name().unwrap())).unwrap();
    let start = Instant::now();
    let (mut gone_failed, mut stays_ok) = (0, 0);
    while start.elapsed() < Duration::from_secs(3) {
        match signs_and_verifies(&gone, b"gone") {
            Err(e) => {
                unavailable(&e, "lb-one-gone");
                gone_failed += 1;
            }
            Ok(()) => panic!("signed with a token that is not there"),
        }
        if signs_and_verifies(&stays, b"stays").is_ok() {
            stays_ok += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("the other token: {stays_ok} of {gone_failed} calls signed");
    assert!(
        stays_ok > gone_failed / 2,
        "the other token works meanwhile"
    );
    // Now the whole directory as it was.
    std::fs::rename(tokens.join(stays_dir.file_name().unwrap()), &stays_dir).unwrap();
    std::fs::remove_dir(&tokens).unwrap();
    away.put_back();
    let took = time_to_recover(|| signs_and_verifies(&gone, b"back"));
    eprintln!("one token of two: recovered {took:?} after it came back");
    time_to_recover(|| signs_and_verifies(&stays, b"still"));
}

/// From 2020 for a year past now: the test chains are stamped at fixed dates, and a verifier
/// holds every pulse to its certificate's validity.
fn test_chain_validity() -> Validity {
    Validity {
        not_before: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_577_836_800),
        not_after: Validity::years(1).not_after,
    }
}
