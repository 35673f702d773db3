//! `lavabeacon bytes`: asks a beacon for private random bytes with a client's credentials,
//! signing the request as `lavabeacon_private::protocol` defines (the one definition the server
//! checks against), and writes the answer to standard output.

use super::{EXIT_FAILED, EXIT_USAGE};
use lavabeacon_private::clients::Credentials;
use lavabeacon_private::protocol::{self, Signed};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The beacon, e.g. https://beacon.example.org (or with a port).
    #[arg(long)]
    url: String,
    /// The credentials `lavabeacon clients add` printed (a JSON file).
    #[arg(long, value_name = "FILE")]
    credentials: PathBuf,
    /// How many bytes, 1 to 65536.
    #[arg(short, default_value_t = 32)]
    n: u32,
    /// hex, base64, raw, csv or json.
    #[arg(long, default_value = "hex")]
    format: String,
    /// Trust this CA certificate (PEM) instead of the system's roots, e.g. for a test beacon.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
}

fn agent(ca: Option<&PathBuf>) -> Result<ureq::Agent, String> {
    let mut builder = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(30));
    if let Some(ca) = ca {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("{}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        builder = builder.tls_config(Arc::new(config));
    }
    Ok(builder.build())
}

fn fetch(args: &Args) -> Result<Vec<u8>, (u8, String)> {
    let query = format!("n={}&format={}", args.n, args.format);
    signed_call(
        &args.url,
        &args.credentials,
        args.ca.as_ref(),
        ("GET", "/private/v1/bytes", &query),
        b"",
    )
}

/// A request signed with a client's credentials (`lavabeacon_private::protocol`): `call` is
/// the method, path and query; the answer's body when it is a success, else the exit status
/// and why.
pub(super) fn signed_call(
    url: &str,
    credentials: &PathBuf,
    ca: Option<&PathBuf>,
    (method, path, query): (&str, &str, &str),
    body: &[u8],
) -> Result<Vec<u8>, (u8, String)> {
    let usage = |e: String| (EXIT_USAGE, e);
    let text = std::fs::read_to_string(credentials)
        .map_err(|e| usage(format!("{}: {e}", credentials.display())))?;
    let creds: Credentials = serde_json::from_str(&text).map_err(|_| {
        usage(format!(
            "{}: not the credentials `lavabeacon clients add` printed",
            credentials.display()
        ))
    })?;
    let key = creds
        .key()
        .ok_or_else(|| usage("the credentials' hmacKey is not base64url".into()))?;
    let base = url.trim_end_matches('/');
    let (scheme, rest) = base.split_once("://").ok_or_else(|| {
        usage(format!(
            "{base:?} is not a URL such as https://beacon.example.org"
        ))
    })?;
    let host = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
    let date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    let nonce = protocol::new_nonce();
    let signed = Signed {
        method,
        host: &host,
        path,
        query,
        date: &date,
        nonce: &nonce,
        key_id: &creds.key_id,
        body,
    };
    let signature = protocol::sign(&key, &signed);
    let url = if query.is_empty() {
        format!("{scheme}://{host}{path}")
    } else {
        format!("{scheme}://{host}{path}?{query}")
    };
    let request = agent(ca)
        .map_err(usage)?
        .request(method, &url)
        .set("Host", &host)
        .set(&creds.header.name, &creds.header.value)
        .set(protocol::KEY_ID, &creds.key_id)
        .set(protocol::DATE, &date)
        .set(protocol::NONCE, &nonce)
        .set(protocol::SIGNATURE, &signature);
    let answer = if body.is_empty() {
        request.call()
    } else {
        request
            .set("Content-Type", "application/json")
            .send_bytes(body)
    };
    let read = |r: ureq::Response| -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut body).map_err(|e| e.to_string())?;
        Ok(body)
    };
    match answer {
        Ok(r) => read(r).map_err(|e| (EXIT_FAILED, e)),
        Err(ureq::Error::Status(status, r)) => {
            let body = read(r).unwrap_or_default();
            Err((
                EXIT_FAILED,
                format!("{status}: {}", String::from_utf8_lossy(&body).trim()),
            ))
        }
        Err(e) => Err((EXIT_FAILED, e.to_string())),
    }
}

pub fn run(args: Args) -> ExitCode {
    match fetch(&args) {
        Ok(body) => {
            let body = zeroize::Zeroizing::new(body);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&body);
            if args.format != "raw" {
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            tracing::error!("lavabeacon bytes: {e}");
            ExitCode::from(code)
        }
    }
}
