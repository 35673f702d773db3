//! `lavabeacon keys generate|list` and `lavabeacon cert issue|show`: for operators with an HSM.

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::config::Config;
use lavabeacon_signer::pkcs11::{list_keys, Pkcs11Config, Pkcs11Key};
use std::path::PathBuf;
use std::process::ExitCode;

/// Like `println!` for the command's output, but a closed standard output loses the line
/// instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {
        crate::logging::stdout_line(&format!($($t)*))
    };
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Generate the signing key pair and the sealing key inside the token.
    Generate {
        /// The configuration file (token, key label, suite, PIN source).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List the keys in the token.
    List {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Rotate: generate a new key under a new label, issue its certificate (written beside
    /// the configured one as LABEL.pem) and publish it; with --at, schedule the switch to it.
    /// Running engines take it at that slot, with no restart and no missed period.
    Rotate {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The new key's label (a label not used before).
        #[arg(long)]
        label: String,
        /// Its suite: ed25519, rsa-3072 or rsa-4096 (default the configuration's); another
        /// suite than the chain's needs --new-chain.
        #[arg(long)]
        suite: Option<String>,
        /// The certificate subject's common name.
        #[arg(long, default_value = "lavabeacon pulse signing key")]
        name: String,
        /// Mark the certificate TEST ONLY - NOT FOR SECURITY USE (dev tokens).
        #[arg(long)]
        test: bool,
        #[command(flatten)]
        validity: super::rotate::ValidityArgs,
        #[command(flatten)]
        ca: super::rotate::CaArgs,
        #[command(flatten)]
        when: super::rotate::WhenArgs,
    },
    /// Schedule the switch to a key already in the token, with its certificate.
    Switch {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The key's label.
        #[arg(long)]
        label: String,
        /// Its certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        certificate: PathBuf,
        #[command(flatten)]
        when: super::rotate::WhenArgs,
    },
    /// Show the key schedule: which key signs from when, in which chain.
    Schedule {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Retire a key that no longer signs: make it unable to sign, or destroy it (--destroy
    /// --yes). Its certificate stays published; a key in effect or scheduled is refused.
    Retire {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The key's label.
        #[arg(long)]
        label: String,
        /// Destroy its objects (private, public and sealing key) instead.
        #[arg(long)]
        destroy: bool,
        /// Confirm --destroy.
        #[arg(long)]
        yes: bool,
    },
    /// Initialise a SoftHSM2 development token (real HSMs: use the vendor's tools). Does
    /// nothing if the token exists.
    InitToken {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A file holding the security officer PIN.
        #[arg(long, value_name = "FILE")]
        so_pin_file: PathBuf,
    },
}

#[derive(clap::Subcommand)]
pub enum CertCommand {
    /// Issue a self-signed certificate for the signing key, signed inside the token; write it to
    /// the configured file and store it in the database.
    Issue {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Mark the certificate TEST ONLY - NOT FOR SECURITY USE (dev tokens).
        #[arg(long)]
        test: bool,
        #[command(flatten)]
        validity: super::rotate::ValidityArgs,
        /// The subject's common name.
        #[arg(long, default_value = "lavabeacon pulse signing key")]
        name: String,
        #[command(flatten)]
        ca: super::rotate::CaArgs,
    },
    /// Show a certificate: id, subject, key, validity.
    Show {
        /// A PEM or DER file (default: the configured certificate).
        file: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

pub(super) fn load(config: Option<&PathBuf>) -> Result<Config, ExitCode> {
    Config::load(config.map(|p| p.as_path())).map_err(|e| {
        tracing::error!("lavabeacon: configuration: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

pub(super) fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    // A database error may quote the URL: never with its password.
    tracing::error!(
        "lavabeacon: {what}: {}",
        crate::config::redact_urls(&e.to_string())
    );
    ExitCode::from(EXIT_FAILED)
}

/// The PKCS#11 key the configuration names, with SoftHSM2 pointed at its configuration: call
/// it right before the module loads, while the command has one thread (see `crate::softhsm`).
pub(super) fn pkcs11_before_loading(c: &Config) -> Result<Pkcs11Config, String> {
    let p = c.signer.pkcs11()?;
    crate::softhsm::point_at_configuration(&c.signer);
    Ok(p)
}

pub fn keys(cmd: KeysCommand) -> ExitCode {
    use super::rotate;
    let config = match &cmd {
        KeysCommand::Rotate {
            config,
            label,
            suite,
            name,
            test,
            validity,
            ca,
            when,
        } => {
            return rotate::rotate(
                config.as_ref(),
                label,
                suite.as_deref(),
                name,
                *test,
                validity,
                ca,
                when,
            )
        }
        KeysCommand::Switch {
            config,
            label,
            certificate,
            when,
        } => return rotate::switch(config.as_ref(), label, certificate, when),
        KeysCommand::Schedule { config } => return rotate::schedule(config.as_ref()),
        KeysCommand::Retire {
            config,
            label,
            destroy,
            yes,
        } => return rotate::retire(config.as_ref(), label, *destroy, *yes),
        KeysCommand::Generate { config }
        | KeysCommand::List { config }
        | KeysCommand::InitToken { config, .. } => config,
    };
    let c = match load(config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let p = match pkcs11_before_loading(&c) {
        Ok(p) => p,
        Err(e) => return fail("configuration", e),
    };
    if let KeysCommand::InitToken { so_pin_file, .. } = &cmd {
        return match lavabeacon_signer::pkcs11::init_token(
            &p,
            &lavabeacon_signer::PinSource::File(so_pin_file.clone()),
        ) {
            Ok(true) => {
                out!("initialised token {:?}", p.token_label);
                ExitCode::SUCCESS
            }
            Ok(false) => {
                out!("token {:?} already exists", p.token_label);
                ExitCode::SUCCESS
            }
            Err(e) => fail("keys init-token", e),
        };
    }
    if matches!(cmd, KeysCommand::Generate { .. }) {
        match Pkcs11Key::generate(&p) {
            Ok(k) => {
                out!(
                    "generated {} key {:?} and its sealing key in token {:?}",
                    p.suite.name(),
                    p.key_label,
                    p.token_label
                );
                match k.public_key() {
                    lavabeacon_signer::pkcs11::PublicKeyBytes::Ed25519(b) => {
                        out!("public key: {}", hex::encode(b))
                    }
                    lavabeacon_signer::pkcs11::PublicKeyBytes::Rsa { modulus, .. } => {
                        out!("public modulus: {}", hex::encode(modulus))
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail("keys generate", e),
        }
    } else {
        match list_keys(&p) {
            Ok(keys) => {
                for k in keys {
                    let guard = match k.protected {
                        Some(true) => "sensitive, never extractable",
                        Some(false) => "EXTRACTABLE OR NOT SENSITIVE",
                        None => "-",
                    };
                    let retired = if k.can_sign == Some(false) {
                        ", retired: cannot sign"
                    } else {
                        ""
                    };
                    out!(
                        "{:<24} {:<8} {:<10} {guard}{retired}",
                        k.label,
                        k.class,
                        k.kind
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail("keys list", e),
        }
    }
}

pub fn cert(cmd: CertCommand) -> ExitCode {
    match cmd {
        CertCommand::Issue {
            config,
            test,
            validity,
            name,
            ca,
        } => {
            let (validity, ca) = match validity.validity().and_then(|v| Ok((v, ca.files()?))) {
                Ok(x) => x,
                Err(e) => return fail("cert issue", e),
            };
            let c = match load(config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let key = match pkcs11_before_loading(&c)
                .and_then(|p| Pkcs11Key::open(&p).map_err(|e| e.to_string()))
            {
                Ok(k) => k,
                Err(e) => return fail("cert issue", e),
            };
            let der = match key.issue_certificate(&name, test, validity, ca.as_ref()) {
                Ok(d) => d,
                Err(e) => return fail("cert issue", e),
            };
            let signer = match key.into_signer(&der) {
                Ok(s) => s,
                Err(e) => return fail("cert issue", e),
            };
            use lavabeacon_signer::Signer;
            let cert = signer.certificate();
            if let Some(dir) = c.signer.certificate.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(&c.signer.certificate, cert.to_pem()) {
                return fail(&c.signer.certificate.display().to_string(), e);
            }
            let stored = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async {
                    let store = lavabeacon_store::open(&c.database.url).await?;
                    store.put_certificate(&cert.der).await
                });
            if let Err(e) = stored {
                return fail("storing the certificate", e);
            }
            out!(
                "certificate {} written to {} and stored",
                cert.id.to_hex_lower(),
                c.signer.certificate.display()
            );
            out!("subject: {}", cert.subject);
            ExitCode::SUCCESS
        }
        CertCommand::Show { file, config } => {
            let path = match file {
                Some(f) => f,
                None => match load(config.as_ref()) {
                    Ok(c) => c.signer.certificate,
                    Err(code) => return code,
                },
            };
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("lavabeacon: {}: {e}", path.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            match lavabeacon_format::cert::parse_certificates(&bytes) {
                Ok(certs) => {
                    for c in certs {
                        out!("certificateId: {}", c.id.to_hex_lower());
                        out!("subject:       {}", c.subject);
                        out!("key:           {}", c.key.describe());
                        out!(
                            "valid:         {} to {}",
                            lavabeacon_format::time::format_time_stamp(c.not_before * 1000)
                                .unwrap_or_default(),
                            lavabeacon_format::time::format_time_stamp(c.not_after * 1000)
                                .unwrap_or_default()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&path.display().to_string(), e),
            }
        }
    }
}
