//! [`BeaconInfo`]: what the API says about the beacon it serves, and how it protects itself;
//! with the defaults of each setting. Plain data: it depends on nothing else in the crate.

/// What the API says about the beacon it serves, and how it protects itself. Make one with
/// [`BeaconInfo::new`] and set the fields that differ from the defaults:
///
/// ```
/// let mut info = lavabeacon_api::BeaconInfo::new(60_000);
/// info.test = Some("software signing key".into());
/// assert_eq!(info.late_tolerance_ms, 5_000);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BeaconInfo {
    /// The period, in milliseconds.
    pub period_ms: u32,
    /// Why this is a test beacon (a software key, the synthetic camera…), or `None`.
    /// A test beacon says so in every response.
    pub test: Option<String>,
    /// Periods covered by one answer of the bulk route ([`DEFAULT_BULK_PERIODS`]).
    pub bulk_max_periods: u32,
    /// The most pulses one answer of `/beacon/2.0/chain/time/{t1}/{t2}/previous` holds
    /// ([`DEFAULT_MAX_CHAIN_PULSES`]); a longer span is a 400 that says so.
    pub max_chain_pulses: u32,
    /// How long after its timestamp a pulse may still be published: the engine publishes a
    /// pulse within this of its timestamp or skips the slot. `/health` turns "degraded" once
    /// the pulse of the current period is more than this overdue. Default
    /// [`default_late_tolerance_ms`]: a tenth of the period, at most 5 s.
    pub late_tolerance_ms: u32,
    /// Open streams (SSE and bulk answers) allowed per client address (default
    /// [`DEFAULT_STREAMS_PER_CLIENT`]); more get a 429.
    pub max_streams_per_client: u32,
    /// Open streams allowed in all (default [`DEFAULT_MAX_STREAMS`]); more get a 429.
    pub max_streams: u32,
    /// How long a request waits for the store before it answers 503 (default
    /// [`DEFAULT_STORE_TIMEOUT_MS`]): while the database is down every request fails fast.
    pub store_timeout_ms: u32,
    /// `/health` says the signing certificate is "expiring" this long before it ends (default
    /// [`DEFAULT_CERTIFICATE_WARNING_SECS`], 30 days).
    pub certificate_warning_secs: u64,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` are believed for the client's address
    /// (default none: the peer's address is the client's).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The beacon's transparency log, when it keeps one (default `None`: every `/log/…` and
    /// `…/inclusion` route answers 404).
    pub log: Option<LogInfo>,
    /// Whether this beacon is configured to witness other logs: until its witness is
    /// registered ([`crate::Beacon::register_witness`], just after the API starts), or when
    /// that failed, `add-checkpoint` answers 503 rather than "not a witness".
    pub witness_configured: bool,
}

/// The beacon's transparency log, as the API describes it: what `/log/key` and
/// `/log/witnesses` serve. The log's entries, checkpoints and cosignatures are in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The log's origin, the first line of its checkpoints (and its key's name).
    pub origin: String,
    /// The log's verifier key (C2SP signed-note `vkey`), served at `/log/key`.
    pub vkey: String,
    /// The witnesses whose cosignatures the beacon asks for and serves.
    pub witnesses: Vec<WitnessInfo>,
    /// How many of them must cosign a checkpoint for a client to trust it.
    pub required: usize,
}

/// A witness of the beacon's log, as `/log/witnesses` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessInfo {
    /// The witness's key name, as on its cosignature lines.
    pub name: String,
    /// Its cosignature verifier key (`vkey`, signature type 0x04).
    pub vkey: String,
    /// Where it takes `add-checkpoint` requests (its submission prefix).
    pub url: String,
}

impl BeaconInfo {
    /// A beacon of period `period_ms` with every other setting at its default.
    pub fn new(period_ms: u32) -> BeaconInfo {
        BeaconInfo {
            period_ms,
            test: None,
            bulk_max_periods: DEFAULT_BULK_PERIODS,
            max_chain_pulses: DEFAULT_MAX_CHAIN_PULSES,
            late_tolerance_ms: default_late_tolerance_ms(period_ms),
            max_streams_per_client: DEFAULT_STREAMS_PER_CLIENT,
            max_streams: DEFAULT_MAX_STREAMS,
            store_timeout_ms: DEFAULT_STORE_TIMEOUT_MS,
            trusted_proxies: Vec::new(),
            certificate_warning_secs: DEFAULT_CERTIFICATE_WARNING_SECS,
            log: None,
            witness_configured: false,
        }
    }
}

/// The late tolerance of a beacon of period `period_ms` unless configured otherwise: a tenth
/// of the period, at most 5 s.
pub fn default_late_tolerance_ms(period_ms: u32) -> u32 {
    (period_ms / 10).min(5_000)
}

/// Periods one bulk answer covers unless configured otherwise (20,000: two weeks of 60-second
/// pulses, about 40 MB).
pub const DEFAULT_BULK_PERIODS: u32 = 20_000;

/// Pulses one chain answer holds unless configured otherwise (20,000, as a bulk answer: two
/// weeks of 60-second pulses, about 40 MB of JSON, 50 MB of XML).
pub const DEFAULT_MAX_CHAIN_PULSES: u32 = 20_000;

/// How long before its end a certificate is "expiring" unless configured otherwise: 30 days.
pub const DEFAULT_CERTIFICATE_WARNING_SECS: u64 = 30 * 86_400;

/// Open streams per client unless configured otherwise.
pub const DEFAULT_STREAMS_PER_CLIENT: u32 = 8;

/// Open streams in all unless configured otherwise.
pub const DEFAULT_MAX_STREAMS: u32 = 512;

/// How long a request waits for the store unless configured otherwise, milliseconds.
pub const DEFAULT_STORE_TIMEOUT_MS: u32 = 1_000;
