//! `pexip-sdk dev`: the whole system in one process for a newcomer — the Pexip simulator
//! with an automatically dialled contact-centre agent, in-memory queues (or Azurite/Azure when `AzureWebJobsStorage` is set), a seeded pool, the
//! two timers on the schedules of their function.json, and the same [`crate::app::App`] as
//! `serve`.
//!
//! `dev`'s Pexip is its simulator, so its queues must not be anyone else's: a `dev` pointed at
//! production storage would drain the real deletion queue and find every room "already gone"
//! on the simulator, and hand out (or trim) the real pool's rooms. [`local_storage_only`]
//! refuses storage that is neither in memory nor Azurite on this machine, unless
//! `--allow-remote-storage` says so, and then every queue name gets the `dev-` prefix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt as _;

use crate::app::{App, AppSettings, bind, shutdown_signal};
use crate::config::{
    ConfigError, Env, ROOM_AUTOMATIC_PARTICIPANTS, STORAGE_CONNECTION, StorageSettings, is_loopback,
};
use crate::functions::{AppLayout, TimerFunction};
use crate::genesys::stand_in::{RunningStandIn, StandIn};
use pexip_sim::{EventSinkTarget, SimConfig};

/// What `dev` runs with (the command line's `dev` arguments).
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Port of the service on 127.0.0.1.
    pub port: u16,
    /// Port of the embedded Pexip simulator on 127.0.0.1.
    pub sim_port: u16,
    /// Seconds before a new room is dialable on the simulator (real Pexip: about 90);
    /// `ROOM_READY_DELAY_SECONDS` follows it unless set.
    pub replication_delay_seconds: u64,
    /// Use `AzureWebJobsStorage` even when it is not on this machine (queues prefixed `dev-`).
    pub allow_remote_storage: bool,
}

/// The queue prefix `dev` adds on remote storage.
pub const REMOTE_QUEUE_PREFIX: &str = "dev-";

/// Refuse storage that is neither in memory nor on this machine, unless `allow_remote`; then
/// put [`REMOTE_QUEUE_PREFIX`] before `QUEUE_NAME_PREFIX`, so `dev` works on queues of its own.
pub fn local_storage_only(env: &mut Env, allow_remote: bool) -> Result<(), ConfigError> {
    let remote = match StorageSettings::from_env(env)? {
        None | Some(StorageSettings::InMemory) => None,
        Some(StorageSettings::ConnectionString {
            queue_endpoint,
            blob_endpoint,
            ..
        }) if is_loopback(&queue_endpoint) && is_loopback(&blob_endpoint) => None,
        Some(other) => Some(other.describe()),
    };
    let Some(remote) = remote else {
        return Ok(());
    };
    if !allow_remote {
        return Err(ConfigError::invalid(
            STORAGE_CONNECTION,
            format!(
                "dev runs on in-memory queues or Azurite on this machine, not {remote}: its \
                 simulator would take that storage's rooms for gone; pass \
                 --allow-remote-storage to use it anyway (queues then get the \
                 {REMOTE_QUEUE_PREFIX} prefix)"
            ),
        ));
    }
    let prefix = format!(
        "{REMOTE_QUEUE_PREFIX}{}",
        env.get("QUEUE_NAME_PREFIX").unwrap_or("")
    );
    env.set("QUEUE_NAME_PREFIX", prefix);
    Ok(())
}

/// Start the simulator, then the service wired to it; run until Ctrl-C.
pub async fn run(args: DevOptions, env: &Env) -> anyhow::Result<()> {
    let mut env = env.clone();
    // Before anything listens: a refusal is one line and exit status 2.
    local_storage_only(&mut env, args.allow_remote_storage)?;
    let sim_listener = bind(args.sim_port).await.context("simulator")?;
    let listener = bind(args.port).await.context("service")?;
    let service_url = format!("http://127.0.0.1:{}", args.port);

    let sink_password = uuid::Uuid::new_v4().simple().to_string();
    let sim = pexip_sim::start(
        SimConfig {
            replication_delay: Duration::from_secs(args.replication_delay_seconds),
            event_sinks: vec![EventSinkTarget {
                url: format!("{service_url}/public/event_sink"),
                username: Some("pexip".into()),
                password: Some(sink_password.clone()),
                bulk: false,
                version: 2,
            }],
            ..SimConfig::default()
        },
        sim_listener,
    )
    .await
    .context("simulator")?;

    // The simulator is this process's Pexip; everything else keeps the operator's values.
    for (name, value) in sim.client_env() {
        env.set(name, value);
    }
    env.set("EVENT_SINK_USERNAME", "pexip");
    env.set("EVENT_SINK_PASSWORD", sink_password.clone());
    env.set_default(
        "ROOM_READY_DELAY_SECONDS",
        args.replication_delay_seconds.to_string(),
    );
    if env.get("GENESYS_API_BASE").is_none() {
        env.set("GENESYS_API_BASE", dev_genesys().await?.url());
        env.set("GENESYS_ALLOWED_DIVISIONS", DEV_AGENT_DIVISION);
    }
    // The agent leg: Pexip dials the contact centre when a conference starts in a room.
    if env.get(ROOM_AUTOMATIC_PARTICIPANTS).is_none() {
        let agent = sim
            .create_automatic_participant(serde_json::json!({
                "alias": DEV_AGENT_ALIAS,
                "role": "chair",
                "protocol": "sip",
                "description": "The contact-centre agent (dev)",
            }))
            .context("creating the agent's automatic participant on the simulator")?;
        env.set(ROOM_AUTOMATIC_PARTICIPANTS, agent);
    }
    let settings = AppSettings::from_env(&env, Some(StorageSettings::InMemory))?;
    let queues_label = settings.storage.describe();
    let app = App::build(settings)?;
    app.prepare_queues().await;

    let seed = app.rooms.clone();
    tokio::spawn(async move {
        match seed.top_up_pool().await {
            Ok(r) => tracing::info!(created = r.created, "pool seeded"),
            Err(e) => tracing::warn!(error = %e, "could not seed the pool"),
        }
    });

    let layout = load_layout()?;
    let router = app.router();
    for timer in layout.timers() {
        tokio::spawn(run_timer(timer.clone(), router.clone()));
    }

    println!("pexip-sdk dev is running");
    println!("  service    {service_url}   (OpenAPI docs: {service_url}/docs)");
    println!(
        "  simulator  {}   (control API under /_sim/)",
        sim.base_url()
    );
    println!("  queues     {queues_label}");
    for t in layout.timers() {
        println!(
            "  timer      {} on \"{}\" (or POST {service_url}/{})",
            t.name,
            t.schedule.as_str(),
            t.name
        );
    }
    println!(
        "  agent leg  {} (dialled into each room's conference)",
        env.get(ROOM_AUTOMATIC_PARTICIPANTS).unwrap_or_default()
    );
    println!("  event sink Basic pexip:{sink_password}");
    println!("  agent      x-auth-token: {DEV_AGENT_TOKEN} (a local stand-in for Genesys Cloud)");
    println!();
    println!("Try:");
    println!(
        "  curl -s -X POST '{service_url}/room/create?uuiData=6964264d54497a4e4455324c4463324e54517a4d67;encoding=hex'"
    );
    println!();

    let result = app.serve(listener, shutdown_signal()).await;
    sim.shutdown().await;
    result
}

/// The address the dev agent leg dials (a chair, as a contact-centre agent hosts the call).
const DEV_AGENT_ALIAS: &str = "sip:agent@contact-centre.dev";

/// The agent token the dev stand-in for Genesys Cloud accepts.
const DEV_AGENT_TOKEN: &str = "dev-agent-token";
const DEV_AGENT_DIVISION: &str = "dev-division";

/// A local stand-in for Genesys Cloud, so the agent route works in `dev` without a contact
/// centre: `dev-agent-token` is an agent of `dev-division`; any other token is refused as
/// Genesys would (401).
async fn dev_genesys() -> anyhow::Result<RunningStandIn> {
    StandIn::new()
        .agent(DEV_AGENT_TOKEN, "dev-agent", DEV_AGENT_DIVISION)
        .start()
        .await
        .context("Genesys stand-in")
}

/// The function folders: next to the working directory when run from the repository (as
/// `cargo run` does), else where this crate was built.
fn load_layout() -> anyhow::Result<AppLayout> {
    let candidates = [
        std::env::current_dir().unwrap_or_default(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ];
    let root = candidates
        .iter()
        .find(|d| d.join("host.json").is_file())
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("."));
    AppLayout::load(root).context("reading host.json and the function folders")
}

/// Fire `timer` on its schedule by sending the host's invoke payload through the router, so
/// dev exercises the same path as Azure.
async fn run_timer(timer: TimerFunction, router: axum::Router) {
    let mut last = "0001-01-01T00:00:00+00:00".to_owned();
    loop {
        let now = time::OffsetDateTime::now_utc();
        let next = timer.schedule.next_after(now);
        let wait = Duration::try_from(next - now).unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let fired = time::OffsetDateTime::now_utc();
        let payload = crate::functions::timer_invoke_request(
            &timer.name,
            &last,
            timer.schedule.next_after(fired),
            fired,
        );
        last = fired.to_string();
        let request = Request::post(format!("/{}", timer.name))
            .header("content-type", "application/json")
            .header(
                crate::functions::INVOCATION_ID_HEADER,
                uuid::Uuid::new_v4().to_string(),
            )
            .body(Body::from(payload.to_string()));
        match request {
            Ok(request) => match router.clone().oneshot(request).await {
                Ok(response) => {
                    tracing::info!(timer = %timer.name, status = %response.status(), "timer fired")
                }
                Err(e) => {
                    tracing::warn!(timer = %timer.name, error = %e, "timer invocation failed")
                }
            },
            Err(e) => {
                tracing::warn!(timer = %timer.name, error = %e, "could not build the timer request")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEV_ACCOUNT_KEY;

    fn check(pairs: &[(&str, &str)], allow: bool) -> Result<Env, ConfigError> {
        let mut env = Env::from_pairs(pairs.iter().copied());
        local_storage_only(&mut env, allow).map(|()| env)
    }

    /// Issue 13, item 17.
    #[test]
    fn dev_refuses_storage_off_this_machine_unless_allowed_and_then_prefixes_its_queues() {
        let local = [
            vec![],
            vec![(STORAGE_CONNECTION, "UseDevelopmentStorage=true")],
        ];
        for pairs in local {
            let env = check(&pairs, false).unwrap();
            assert_eq!(env.get("QUEUE_NAME_PREFIX"), None, "{pairs:?}");
        }
        let production = format!(
            "DefaultEndpointsProtocol=https;AccountName=prodacct;AccountKey={DEV_ACCOUNT_KEY}"
        );
        // Local queues are not enough: the allocation records (blobs) must be local too.
        let remote_blobs = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};\
             QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;\
             BlobEndpoint=https://prodacct.blob.core.windows.net"
        );
        let remote: [Vec<(&str, &str)>; 3] = [
            vec![(STORAGE_CONNECTION, production.as_str())],
            vec![(STORAGE_CONNECTION, remote_blobs.as_str())],
            vec![
                (
                    "AzureWebJobsStorage__queueServiceUri",
                    "https://prodacct.queue.core.windows.net",
                ),
                (
                    "AzureWebJobsStorage__blobServiceUri",
                    "https://prodacct.blob.core.windows.net",
                ),
            ],
        ];
        for pairs in remote {
            let err = check(&pairs, false).unwrap_err().to_string();
            assert!(err.starts_with("AzureWebJobsStorage is invalid"), "{err}");
            assert!(err.contains("--allow-remote-storage"), "{err}");
            assert!(!err.contains(DEV_ACCOUNT_KEY), "{err}");
            let env = check(&pairs, true).unwrap();
            assert_eq!(env.get("QUEUE_NAME_PREFIX"), Some("dev-"));
            let mut slot = pairs.clone();
            slot.push(("QUEUE_NAME_PREFIX", "slot2-"));
            let env = check(&slot, true).unwrap();
            assert_eq!(env.get("QUEUE_NAME_PREFIX"), Some("dev-slot2-"));
        }
    }
}
