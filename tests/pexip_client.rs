//! The Pexip client against the simulator over real HTTP (issue 2 §4): token lifecycle,
//! single-flight renewal, 401 handling, retries per failure kind, `Retry-After`, "500 after
//! create", pagination, the concurrency cap and its priorities, and the collection-DELETE guard.
//!
//! Paused-time tests spawn [`tick`]: paused tokio time jumps to the next timer whenever the
//! runtime is idle, even while a request is on a real socket, and the next timer would then be
//! that request's own timeout. A 1 ms ticker keeps every jump at 1 ms, so only the sleeps the
//! test cares about (backoff, `Retry-After`) move time noticeably.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pexip_sdk::config::PexipSettings;
use pexip_sdk::pexip::{
    Deleted, NewConference, PexipClient, PexipError, ensure_not_collection_delete,
};
use pexip_sim::{Fault, SimConfig, SimHandle};
use reqwest::Method;
use serde_json::json;
use testkit::sim::start_with as start_sim;
use testkit::time::tick;
use tokio::time::Instant;

const CONFERENCES: &str = "/api/admin/configuration/v1/conference/";
const LIST: &str = "GET /api/admin/configuration/v1/conference/";
const CREATE: &str = "POST /api/admin/configuration/v1/conference/";
const DETAIL_GET: &str = "GET /api/admin/configuration/v1/conference/{id}/";
const DETAIL_PATCH: &str = "PATCH /api/admin/configuration/v1/conference/{id}/";
const DETAIL_DELETE: &str = "DELETE /api/admin/configuration/v1/conference/{id}/";
const TOKEN: &str = "POST /oauth/token/";

fn client(sim: &SimHandle) -> PexipClient {
    testkit::sim::pexip_client(sim, &[])
}

fn room(name: &str) -> NewConference {
    NewConference {
        name: name.to_owned(),
        tag: "pool".to_owned(),
        pin: "482913".to_owned(),
        guest_pin: "771204".to_owned(),
        allow_guests: true,
        aliases: vec![format!("{name}@vc.example.com")],
        ..NewConference::default()
    }
}

fn rooms_named(sim: &SimHandle, name: &str) -> usize {
    sim.rooms().iter().filter(|r| r.name == name).count()
}

#[tokio::test]
async fn a_room_is_created_read_patched_listed_and_deleted_with_pexips_status_codes() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);

    let created = client.create_conference(&room("crud-1")).await.unwrap();
    assert_eq!(created.name, "crud-1");
    assert_eq!(created.pin, "482913");
    assert_eq!(created.guest_pin, "771204");
    assert!(created.allow_guests);
    assert_eq!(created.aliases.len(), 1);
    assert_eq!(created.aliases[0].alias, "crud-1@vc.example.com");
    assert_eq!(
        created.resource_uri.as_deref(),
        Some(format!("{CONFERENCES}{}/", created.id).as_str())
    );
    assert!(created.creation_time.is_some());
    // Fields the model does not name are kept verbatim.
    assert!(
        created.extra.contains_key("host_view"),
        "{:?}",
        created.extra
    );

    client
        .patch_conference(created.id, &json!({"tag": "assigned", "description": "d"}))
        .await
        .unwrap();
    let read = client.get_conference(created.id).await.unwrap();
    assert_eq!(read.tag, "assigned");
    assert_eq!(read.description, "d");

    let found = client.find_conference("crud-1").await.unwrap().unwrap();
    assert_eq!(found.id, created.id);
    assert!(client.find_conference("crud-").await.unwrap().is_none());
    let listed = client
        .list_conferences(&[("tag", "assigned")])
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [created.id]
    );

    let alias = client
        .create_alias(created.id, "7100042", "dial-in")
        .await
        .unwrap();
    assert_eq!(alias.alias, "7100042");
    assert_eq!(alias.conference, format!("{CONFERENCES}{}/", created.id));
    assert_eq!(
        client
            .get_conference(created.id)
            .await
            .unwrap()
            .aliases
            .len(),
        2
    );
    assert_eq!(client.delete_alias(alias.id).await.unwrap(), Deleted::Now);
    assert_eq!(
        client.delete_alias(alias.id).await.unwrap(),
        Deleted::AlreadyGone
    );

    assert_eq!(
        client.delete_conference(created.id).await.unwrap(),
        Deleted::Now
    );
    assert_eq!(
        client.delete_conference(created.id).await.unwrap(),
        Deleted::AlreadyGone
    );
    assert!(matches!(
        client.get_conference(created.id).await,
        Err(PexipError::NotFound)
    ));
    assert_eq!(rooms_named(&sim, "crud-1"), 0);
    assert_eq!(sim.counters().collection_deletes, 0);
    assert_eq!(sim.counters().tokens_issued, 1);
}

#[tokio::test]
async fn pexips_validation_messages_reach_the_caller_per_field() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    client.create_conference(&room("dup")).await.unwrap();
    let mut again = room("dup");
    again.aliases.clear();
    let err = client.create_conference(&again).await.unwrap_err();
    let PexipError::Validation { fields, .. } = err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(
        fields["name"],
        ["Virtual Meeting Room with this Name already exists."]
    );
    // A refused create is not retried and not looked up.
    assert_eq!(sim.counters().requests_for(CREATE), 2);
    assert_eq!(sim.counters().requests_for(LIST), 0);
    assert_eq!(rooms_named(&sim, "dup"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_token_is_renewed_shortly_before_it_expires_and_not_earlier() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await; // 3600 s tokens
    let client = client(&sim);
    client.list_conferences(&[]).await.unwrap();
    assert_eq!(sim.counters().tokens_issued, 1);

    // Renewal is due 5 minutes before expiry (at 3300 s).
    tokio::time::advance(Duration::from_secs(3290)).await;
    client.list_conferences(&[]).await.unwrap();
    assert_eq!(sim.counters().tokens_issued, 1);

    tokio::time::advance(Duration::from_secs(20)).await;
    client.list_conferences(&[]).await.unwrap();
    client.list_conferences(&[]).await.unwrap();
    assert_eq!(sim.counters().tokens_issued, 2);
    assert_eq!(client.stats().token_renewals, 2);
    // The old token was still valid, so no request was refused.
    assert_eq!(client.stats().errors.unauthorized, 0);
}

#[tokio::test]
async fn a_hundred_concurrent_calls_share_one_token_request() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.list_conferences(&[]).await }
    });
    for outcome in futures::future::join_all(calls).await {
        outcome.unwrap();
    }
    assert_eq!(sim.counters().tokens_issued, 1);
    assert_eq!(sim.counters().requests_for(TOKEN), 1);
    assert_eq!(sim.counters().requests_for(LIST), 100);
}

#[tokio::test]
async fn a_401_forces_one_token_renewal_and_one_retry() {
    let sim = start_sim(SimConfig {
        token_lifetime: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim);
    client.list_conferences(&[]).await.unwrap();
    // The client still thinks its token is fresh; the simulator no longer accepts it.
    sim.advance_clock(Duration::from_secs(61));
    let concurrent = (0..10).map(|_| {
        let client = client.clone();
        async move { client.list_conferences(&[]).await }
    });
    for outcome in futures::future::join_all(concurrent).await {
        outcome.unwrap();
    }
    let counters = sim.counters();
    let refused = client.stats().errors.unauthorized;
    // One renewal however many calls were refused; each refusal cost exactly one resend.
    assert_eq!(counters.tokens_issued, 2);
    assert_eq!(client.stats().token_renewals, 2);
    assert!((1..=10).contains(&refused), "{refused}");
    assert_eq!(counters.requests_for(LIST), 1 + 10 + refused);
}

#[tokio::test]
async fn a_second_401_after_the_renewal_is_returned_as_unauthorized() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    sim.add_fault(Fault::status(401).method("GET").count(2));
    let err = client.get_conference(1).await.unwrap_err();
    assert!(matches!(err, PexipError::Unauthorized), "{err:?}");
    let counters = sim.counters();
    assert_eq!(counters.tokens_issued, 2);
    assert_eq!(counters.requests_for(DETAIL_GET), 2);
}

#[tokio::test(start_paused = true)]
async fn each_transient_failure_is_retried_for_idempotent_requests() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let id = client.create_conference(&room("retry")).await.unwrap().id;
    let faults = [
        ("429", Fault::status(429)),
        ("502", Fault::status(502)),
        ("503", Fault::status(503)),
        ("504", Fault::status(504)),
        ("dropped connection", Fault::drop_connection()),
    ];
    for (label, fault) in faults {
        for (method, route) in [("GET", DETAIL_GET), ("PATCH", DETAIL_PATCH)] {
            sim.reset_counters();
            sim.add_fault(
                fault
                    .clone()
                    .method(method)
                    .path_prefix(CONFERENCES)
                    .count(2),
            );
            let outcome = match method {
                "GET" => client.get_conference(id).await.map(drop),
                _ => {
                    client
                        .patch_conference(id, &json!({"description": label}))
                        .await
                }
            };
            outcome.unwrap_or_else(|e| panic!("{label} on {method}: {e:?}"));
            assert_eq!(
                sim.counters().requests_for(route),
                3,
                "{label} on {method}: two failures, then success"
            );
        }
    }
    // DELETE too: the retried delete succeeds once.
    sim.reset_counters();
    sim.add_fault(Fault::status(503).method("DELETE").count(1));
    assert_eq!(client.delete_conference(id).await.unwrap(), Deleted::Now);
    assert_eq!(sim.counters().requests_for(DETAIL_DELETE), 2);
    assert_eq!(client.stats().retries, 5 * 2 * 2 + 1);
}

#[tokio::test(start_paused = true)]
async fn non_transient_failures_are_not_retried() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let id = client
        .create_conference(&room("no-retry"))
        .await
        .unwrap()
        .id;
    type Expected = fn(&PexipError) -> bool;
    let cases: [(u16, Expected); 5] = [
        (500, |e| {
            matches!(
                e,
                PexipError::Other {
                    status: Some(500),
                    ..
                }
            )
        }),
        (400, |e| matches!(e, PexipError::Validation { .. })),
        (403, |e| matches!(e, PexipError::Unauthorized)),
        (404, |e| matches!(e, PexipError::NotFound)),
        (409, |e| {
            matches!(
                e,
                PexipError::Other {
                    status: Some(409),
                    ..
                }
            )
        }),
    ];
    for (status, expected) in cases {
        sim.reset_counters();
        sim.add_fault(Fault::status(status).method("GET").count(1));
        let err = client.get_conference(id).await.unwrap_err();
        assert!(expected(&err), "{status}: {err:?}");
        assert_eq!(sim.counters().requests_for(DETAIL_GET), 1, "{status}");
    }
    assert_eq!(client.stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_retries() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    sim.add_fault(Fault::status(503).method("GET"));
    let err = client.get_conference(1).await.unwrap_err();
    assert!(matches!(err, PexipError::Unavailable { .. }), "{err:?}");
    assert_eq!(sim.counters().requests_for(DETAIL_GET), 4);
    assert_eq!(client.stats().retries, 3);
    assert_eq!(client.stats().errors.unavailable, 4);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_out_before_the_retry() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    client.list_conferences(&[]).await.unwrap(); // the token, outside the timing
    sim.add_fault(
        Fault::status_with_retry_after(429, 30)
            .method("GET")
            .count(1),
    );
    let started = Instant::now();
    client.list_conferences(&[]).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(30), "waited {waited:?}");
    assert!(waited < Duration::from_secs(31), "waited {waited:?}");
    assert_eq!(sim.counters().requests_for(LIST), 3);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_a_minute_goes_back_to_the_caller() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    sim.add_fault(
        Fault::status_with_retry_after(429, 120)
            .method("GET")
            .count(1),
    );
    let err = client.list_conferences(&[]).await.unwrap_err();
    assert!(
        matches!(err, PexipError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)),
        "{err:?}"
    );
    assert_eq!(sim.counters().requests_for(LIST), 1);
}

#[tokio::test(start_paused = true)]
async fn a_500_after_create_leaves_exactly_one_room_and_returns_it() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    sim.add_fault(Fault::after_create().count(1));
    let created = client.create_conference(&room("after-500")).await.unwrap();
    assert_eq!(created.name, "after-500");
    assert_eq!(rooms_named(&sim, "after-500"), 1);
    let counters = sim.counters();
    assert_eq!(counters.requests_for(CREATE), 1, "the POST is never resent");
    assert!(counters.requests_for(LIST) >= 1, "the name was looked up");
}

#[tokio::test(start_paused = true)]
async fn a_create_that_failed_before_creating_is_looked_up_then_sent_once_more() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    for fault in [Fault::status(503), Fault::drop_connection()] {
        sim.reset_counters();
        sim.add_fault(fault.method("POST").path_prefix(CONFERENCES).count(1));
        let name = format!("late-{}", sim.rooms().len());
        let created = client.create_conference(&room(&name)).await.unwrap();
        assert_eq!(created.name, name);
        assert_eq!(rooms_named(&sim, &name), 1);
        let counters = sim.counters();
        assert_eq!(counters.requests_for(CREATE), 2, "{counters:?}");
        assert_eq!(counters.requests_for(LIST), 1);
    }
}

#[tokio::test]
async fn lists_follow_meta_next_across_pages() {
    let sim = start_sim(SimConfig {
        max_list_limit: 3,
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim);
    for i in 0..8 {
        client
            .create_conference(&room(&format!("page-{i}")))
            .await
            .unwrap();
    }
    let mut other = room("elsewhere");
    other.tag = "other".to_owned();
    client.create_conference(&other).await.unwrap();
    sim.reset_counters();

    let listed = client.list_conferences(&[("tag", "pool")]).await.unwrap();
    let names: Vec<_> = listed.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        (0..8).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(sim.counters().requests_for(LIST), 3, "pages of 3, 3 and 2");

    let started_with = client
        .list_conferences(&[("name__startswith", "page-")])
        .await
        .unwrap();
    assert_eq!(started_with.len(), 8);
}

#[tokio::test]
async fn the_cap_is_never_exceeded_by_fifty_concurrent_calls() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let id = client.create_conference(&room("capped")).await.unwrap().id;
    sim.add_fault(Fault::latency(20).path_prefix("/api/admin/"));
    sim.reset_counters();
    let calls = (0..50).map(|i| {
        let client = if i % 2 == 0 {
            client.clone()
        } else {
            client.background()
        };
        async move { client.get_conference(id).await }
    });
    for outcome in futures::future::join_all(calls).await {
        outcome.unwrap();
    }
    let counters = sim.counters();
    assert_eq!(counters.requests_for(DETAIL_GET), 50);
    assert!(counters.max_in_flight <= 5, "{}", counters.max_in_flight);
    // It was saturated, so the bound above was really tested.
    assert_eq!(counters.max_in_flight, 5);
}

#[tokio::test]
async fn a_caller_request_overtakes_queued_background_work() {
    let sim = start_sim(SimConfig::default()).await;
    let client = testkit::sim::pexip_client(&sim, &[("PEXIP_MAX_IN_FLIGHT", "2")]);
    let id = client.create_conference(&room("busy")).await.unwrap().id;
    sim.add_fault(Fault::latency(20).path_prefix("/api/admin/"));

    let background_done = Arc::new(AtomicUsize::new(0));
    let mut background = Vec::new();
    for _ in 0..20 {
        let client = client.background();
        let done = background_done.clone();
        background.push(tokio::spawn(async move {
            client.get_conference(id).await.unwrap();
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Let every background task reach the gate (they only await the cap and the socket).
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(background_done.load(Ordering::SeqCst), 0);

    client.get_conference(id).await.unwrap();
    let finished_before_caller = background_done.load(Ordering::SeqCst);
    // At most the two in flight when the caller arrived (plus one slot race) went first;
    // without priority all twenty would have.
    assert!(
        finished_before_caller <= 3,
        "{finished_before_caller} background requests finished first"
    );
    for task in background {
        task.await.unwrap();
    }
    assert_eq!(background_done.load(Ordering::SeqCst), 20);
    assert!(sim.counters().max_in_flight <= 2);
}

#[tokio::test]
async fn no_call_ever_sends_delete_to_a_collection() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let created = client.create_conference(&room("guarded")).await.unwrap();
    let alias = client
        .create_alias(created.id, "guarded-2", "")
        .await
        .unwrap();
    client.delete_alias(alias.id).await.unwrap();
    client.delete_conference(created.id).await.unwrap();
    client.delete_conference(created.id).await.unwrap();
    assert_eq!(sim.counters().collection_deletes, 0);
    assert_eq!(sim.counters().requests_for(DETAIL_DELETE), 2);
    // And the guard every request passes refuses a collection target outright.
    assert!(ensure_not_collection_delete(&Method::DELETE, CONFERENCES).is_err());
    assert!(
        ensure_not_collection_delete(
            &Method::DELETE,
            "/api/admin/configuration/v1/conference_alias/"
        )
        .is_err()
    );
}

#[tokio::test]
async fn status_reads_see_a_running_conference_and_its_participants() {
    let sim = start_sim(SimConfig {
        replication_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim);
    client.create_conference(&room("live-1")).await.unwrap();
    client.create_conference(&room("idle-1")).await.unwrap();
    assert!(!client.is_live("live-1").await.unwrap());
    assert_eq!(
        client.live_counts().await.unwrap(),
        pexip_sdk::pexip::LiveCounts {
            conferences: 0,
            participants: 0
        }
    );

    sim.start_conference("live-1", 3, 2).await.unwrap();
    assert!(client.is_live("live-1").await.unwrap());
    assert!(!client.is_live("idle-1").await.unwrap());
    assert!(!client.is_live("live-").await.unwrap());
    let counts = client.live_counts().await.unwrap();
    assert_eq!((counts.conferences, counts.participants), (1, 3));
    let live = client.live_conferences(&[("tag", "pool")]).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].name, "live-1");
    assert!(!live[0].id.is_empty());

    sim.end_conference("live-1").await.unwrap();
    assert!(!client.is_live("live-1").await.unwrap());
}

/// The acceptance path: `pexip-sdk sim` as a process, settings read from what it prints (as
/// an operator would export them), then a create / patch / list / delete cycle. Once with the
/// key in a file (`--key-out`), once with the base64 key it prints.
#[tokio::test]
async fn a_client_configured_from_what_the_sim_command_prints_manages_rooms() {
    use tokio::io::AsyncBufReadExt as _;
    let key_file = std::env::temp_dir().join(format!("pexip-sim-key-{}.pem", uuid::Uuid::new_v4()));
    let key_file_text = key_file.to_str().unwrap().to_owned();
    let with_file = [
        "--client-id",
        "acceptance",
        "--key-out",
        key_file_text.as_str(),
    ];
    for args in [&with_file[..], &[][..]] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pexip-sdk"))
            .args(["sim", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut pairs = Vec::new();
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((key, value)) = line.split_once('=')
                    && key.starts_with("PEXIP_")
                {
                    pairs.push((key.to_owned(), value.to_owned()));
                    if key.starts_with("PEXIP_PRIVATE_KEY") {
                        return;
                    }
                }
            }
            panic!("the simulator exited early");
        };
        tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .expect("the simulator printed its settings");

        let settings = PexipSettings::from_env(&pexip_sdk::config::Env::from_pairs(pairs.clone()))
            .unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        let client = PexipClient::new(&settings).unwrap();
        let created = client.create_conference(&room("accepted")).await.unwrap();
        client
            .patch_conference(created.id, &json!({"tag": "assigned"}))
            .await
            .unwrap();
        let listed = client
            .list_conferences(&[("tag", "assigned")])
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "accepted");
        assert_eq!(
            client.delete_conference(created.id).await.unwrap(),
            Deleted::Now
        );
        assert!(client.find_conference("accepted").await.unwrap().is_none());
        let _ = child.kill().await;
    }
    let _ = std::fs::remove_file(&key_file);
}

#[tokio::test(start_paused = true)]
async fn creating_for_an_id_reads_nothing_back_and_still_never_makes_two_rooms() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    let id = client.create_conference_id(&room("id-only")).await.unwrap();
    let on_sim = sim
        .rooms()
        .into_iter()
        .find(|r| r.name == "id-only")
        .unwrap();
    assert_eq!(on_sim.id, id);
    let counters = sim.counters();
    assert_eq!(counters.requests_for(CREATE), 1);
    assert_eq!(
        counters.requests_for(DETAIL_GET),
        0,
        "no read-back: {counters:?}"
    );
    assert_eq!(counters.requests_for(LIST), 0, "{counters:?}");

    // "500 after create": found by name, not created again.
    sim.reset_counters();
    sim.add_fault(Fault::after_create().count(1));
    let id = client
        .create_conference_id(&room("id-after-500"))
        .await
        .unwrap();
    assert_eq!(rooms_named(&sim, "id-after-500"), 1);
    assert_eq!(
        sim.rooms()
            .into_iter()
            .find(|r| r.name == "id-after-500")
            .unwrap()
            .id,
        id
    );
    assert_eq!(sim.counters().requests_for(CREATE), 1);
}

#[tokio::test(start_paused = true)]
async fn counting_rooms_reads_one_page_of_one() {
    let _tick = tick();
    let sim = start_sim(SimConfig::default()).await;
    let client = client(&sim);
    for name in ["count-a", "count-b", "count-c", "other"] {
        client.create_conference_id(&room(name)).await.unwrap();
    }
    sim.reset_counters();
    let counted = client
        .count_conferences(&[("name__startswith", "count-")])
        .await
        .unwrap();
    assert_eq!(counted, 3);
    assert_eq!(sim.counters().requests_for(LIST), 1);
    assert_eq!(client.count_conferences(&[]).await.unwrap(), 4);
}
