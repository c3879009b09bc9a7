//! `pexip-sdk sim`: the simulator alone, for `func start` setups and scripts.
//!
//! It prints what a client needs as `KEY=VALUE` lines on stdout (base URL, client id, and the
//! key or the file it was written to), then serves until the shutdown future the caller passes completes.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::{EventSinkTarget, KeyForm, SimConfig, start};

/// Command-line arguments of `pexip-sdk sim`.
#[derive(Clone, clap::Args)]
pub struct SimArgs {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 7072)]
    pub port: u16,
    /// Register this OAuth2 client id (needs --key-out).
    #[arg(long, requires = "key_out")]
    pub client_id: Option<String>,
    /// Write the client's PKCS#8 PEM private key to this file, mode 0600 (needs --client-id).
    #[arg(long, requires = "client_id")]
    pub key_out: Option<PathBuf>,
    /// Seconds before a new room is dialable (Pexip replicates in about 90 s); 0 allowed.
    #[arg(long, default_value_t = 90)]
    pub replication_delay_seconds: u64,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime_seconds: u64,
    /// Event-sink URL receiving conference and participant events (repeatable).
    #[arg(long = "event-sink")]
    pub event_sinks: Vec<String>,
    /// HTTP Basic user for the event sinks.
    #[arg(long, requires = "event_sink_password")]
    pub event_sink_user: Option<String>,
    /// HTTP Basic password for the event sinks.
    #[arg(long, requires = "event_sink_user")]
    pub event_sink_password: Option<String>,
    /// Send `eventsink_bulk` envelopes to the event sinks.
    #[arg(long)]
    pub event_sink_bulk: bool,
    /// Accept HTTP Basic on /api/admin with this user (needs --basic-password).
    #[arg(long, requires = "basic_password")]
    pub basic_user: Option<String>,
    /// The HTTP Basic password accepted with --basic-user.
    #[arg(long, requires = "basic_user")]
    pub basic_password: Option<String>,
}

// Hand-written so passwords never reach a log line through `{:?}`.
impl fmt::Debug for SimArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimArgs")
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("key_out", &self.key_out)
            .field("replication_delay_seconds", &self.replication_delay_seconds)
            .field("token_lifetime_seconds", &self.token_lifetime_seconds)
            .field("event_sinks", &self.event_sinks)
            .field("event_sink_user", &self.event_sink_user)
            .field("event_sink_bulk", &self.event_sink_bulk)
            .field("basic_user", &self.basic_user)
            .finish_non_exhaustive()
    }
}

impl SimArgs {
    /// The simulator configuration these arguments describe.
    pub fn config(&self) -> SimConfig {
        let sinks = self
            .event_sinks
            .iter()
            .map(|url| EventSinkTarget {
                url: url.clone(),
                username: self.event_sink_user.clone(),
                password: self.event_sink_password.clone(),
                bulk: self.event_sink_bulk,
                version: 2,
            })
            .collect();
        SimConfig {
            replication_delay: Duration::from_secs(self.replication_delay_seconds),
            token_lifetime: Duration::from_secs(self.token_lifetime_seconds),
            client_id: self.client_id.clone(),
            basic_auth: self.basic_user.clone().zip(self.basic_password.clone()),
            event_sinks: sinks,
            ..SimConfig::default()
        }
    }
}

/// Run the simulator until `shutdown` completes (the binary passes its Ctrl-C/SIGTERM
/// future). Every setting comes from the flags.
pub async fn run(
    args: SimArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let sim = start(args.config(), listener).await?;
    // One line a shell can export per setting (the key as a file, or as base64 of the PEM),
    // then, without a file, the PEM itself for a human.
    let key = match &args.key_out {
        Some(path) => {
            write_private_key(path, &sim.private_key_pem())?;
            KeyForm::File(path.clone())
        }
        None => KeyForm::Base64,
    };
    let mut out = std::io::stdout().lock();
    for (name, value) in sim.client_env_with(key) {
        writeln!(out, "{name}={value}")?;
    }
    if args.key_out.is_none() {
        write!(out, "{}", sim.private_key_pem())?;
    }
    out.flush()?;
    drop(out);
    shutdown.await;
    tracing::info!("stopping the pexip simulator");
    sim.shutdown().await;
    Ok(())
}

/// Write `pem` to `path`, readable by the owner only.
fn write_private_key(path: &Path, pem: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write the key file {}", path.display()))?;
    // `mode` applies only to a new file: tighten an existing one as well.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(pem.as_bytes())?;
    Ok(())
}
