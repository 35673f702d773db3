//! `lavabeacon clients add|rotate|retire|remove|list`: the clients of the private-bytes
//! service, in the clients file. `add` and `rotate` print the new credentials once, as one JSON
//! object on standard output, and nowhere else; `list` never shows a secret. Two commands on
//! one file at once take turns (a lock on `FILE.lock`), so neither loses the other's change.

use super::EXIT_USAGE;
use ipnet::IpNet;
use lavabeacon_private::clients::{ClientsFile, Credentials, NewClient};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ClientsCommand {
    /// Make a client and print its credentials, once.
    Add {
        /// 1 to 64 letters, digits, '-' or '_'.
        name: String,
        #[arg(long, value_name = "FILE")]
        clients_file: PathBuf,
        /// An address or network the client may connect from (repeat for more; none: any).
        #[arg(long = "allow-ip", value_name = "CIDR", value_parser = parse_net)]
        allow_ip: Vec<IpNet>,
        /// An origin browsers may send its requests from, e.g. https://app.example.org
        /// (repeat for more; none: no Origin check).
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origin: Vec<String>,
        /// Requests a minute (default 60).
        #[arg(long, value_name = "N")]
        rate: Option<u32>,
        /// Bytes a UTC day (default 16 MiB).
        #[arg(long, value_name = "N")]
        bytes_per_day: Option<u64>,
    },
    /// Give a client a second live key and print it, once; the first stays valid until it is
    /// retired.
    Rotate {
        name: String,
        #[arg(long, value_name = "FILE")]
        clients_file: PathBuf,
    },
    /// Retire a key (NAME.N): requests signed with it are refused once the server reloads.
    Retire {
        key_id: String,
        #[arg(long, value_name = "FILE")]
        clients_file: PathBuf,
    },
    /// Remove a client and all its keys.
    Remove {
        name: String,
        #[arg(long, value_name = "FILE")]
        clients_file: PathBuf,
    },
    /// List the clients as JSON, without secrets.
    List {
        #[arg(long, value_name = "FILE")]
        clients_file: PathBuf,
    },
}

/// A network, or a single address (as /32 or /128).
fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a network such as 192.0.2.0/24"))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Holds `FILE.lock` while the file is read, changed and written.
fn locked(path: &Path) -> Result<std::fs::File, String> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", PathBuf::from(&lock_path).display()))?;
    lock.lock()
        .map_err(|e| format!("{}: {e}", PathBuf::from(&lock_path).display()))?;
    Ok(lock)
}

/// Reads the file (or starts one), applies `change`, writes it back.
fn change<T>(
    path: &Path,
    may_start: bool,
    change: impl FnOnce(&mut ClientsFile) -> Result<T, String>,
) -> Result<T, String> {
    let _lock = locked(path)?;
    let mut file = if may_start {
        ClientsFile::load_or_new(path)
    } else {
        ClientsFile::load(path)
    }
    .map_err(|e| e.to_string())?;
    let out = change(&mut file)?;
    file.save(path).map_err(|e| e.to_string())?;
    Ok(out)
}

fn print_credentials(c: &Credentials) {
    let json = zeroize::Zeroizing::new(serde_json::to_string(c).expect("serialisable"));
    crate::logging::stdout_line(&json);
}

pub fn run(cmd: ClientsCommand) -> ExitCode {
    let result = match cmd {
        ClientsCommand::Add {
            name,
            clients_file,
            allow_ip,
            allow_origin,
            rate,
            bytes_per_day,
        } => {
            let opts = NewClient {
                allow_ip,
                allow_origin,
                rate_per_minute: rate,
                bytes_per_day,
            };
            change(&clients_file, true, |f| {
                f.add(&name, opts, now_secs()).map_err(|e| e.to_string())
            })
            .map(|c| print_credentials(&c))
        }
        ClientsCommand::Rotate { name, clients_file } => change(&clients_file, false, |f| {
            f.rotate(&name, now_secs()).map_err(|e| e.to_string())
        })
        .map(|c| print_credentials(&c)),
        ClientsCommand::Retire {
            key_id,
            clients_file,
        } => change(&clients_file, false, |f| {
            f.retire(&key_id).map_err(|e| e.to_string())
        }),
        ClientsCommand::Remove { name, clients_file } => change(&clients_file, false, |f| {
            f.remove(&name).map_err(|e| e.to_string())
        }),
        ClientsCommand::List { clients_file } => ClientsFile::load(&clients_file)
            .map_err(|e| e.to_string())
            .map(|f| {
                let json = serde_json::to_string_pretty(&f.list()).expect("serialisable");
                crate::logging::stdout_line(&json);
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("lavabeacon clients: {e}");
            // Every failure here is a usage or I/O error (exit 2): a name, key id or option
            // given wrong, or a file that cannot be read or written.
            ExitCode::from(EXIT_USAGE)
        }
    }
}
