//! The journal: every write to a room and every conference start and end, in order, through
//! the handle and through `GET /_sim/journal`.

use serde_json::{Value, json};

use pexip_sim::{JournalEntry, JournalKind};

use crate::helpers::{Api, CONFERENCES, http, start_sim};

#[tokio::test]
async fn the_journal_records_each_write_with_the_tag_before_and_after() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let id = api
        .create_room(json!({"name": "journalled", "tag": "pool"}))
        .await;
    let room = format!("{CONFERENCES}{id}/");
    api.patch(&room, &json!({"tag": "caller-a"})).await;
    api.patch(&room, &json!({"description": "no tag change"}))
        .await;
    sim.start_conference("journalled", 2, 1).await.unwrap();
    sim.end_conference("journalled").await.unwrap();
    api.delete(&room).await;
    // A refused write changes nothing and is not journalled.
    api.patch(&room, &json!({"tag": "caller-b"})).await;

    let journal = sim.journal();
    /// What one entry says: kind, method, tag before, tag after.
    type Step<'a> = (
        JournalKind,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let steps: Vec<Step<'_>> = journal
        .iter()
        .map(|e| {
            (
                e.kind,
                e.method.as_deref(),
                e.tag_before.as_deref(),
                e.tag_after.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (JournalKind::Created, Some("POST"), None, Some("pool")),
            (
                JournalKind::Updated,
                Some("PATCH"),
                Some("pool"),
                Some("caller-a")
            ),
            (
                JournalKind::Updated,
                Some("PATCH"),
                Some("caller-a"),
                Some("caller-a")
            ),
            (JournalKind::ConferenceStarted, None, None, None),
            (JournalKind::ConferenceEnded, None, None, None),
            (JournalKind::Deleted, Some("DELETE"), Some("caller-a"), None),
        ]
    );
    assert!(
        journal
            .iter()
            .all(|e| e.room_id == id && e.room == "journalled")
    );
    let seqs: Vec<u64> = journal.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert!(
        journal.windows(2).all(|w| w[0].time <= w[1].time),
        "times follow the order"
    );
}

#[tokio::test]
async fn the_journal_is_served_on_the_control_api() {
    let sim = start_sim().await;
    let api = Api::new(&sim).await;
    let a = api.create_room(json!({"name": "room-a"})).await;
    api.create_room(json!({"name": "room-b"})).await;
    api.delete(&format!("{CONFERENCES}{a}/")).await;

    let served: Value = http()
        .get(format!("{}/_sim/journal", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parsed: Vec<JournalEntry> = serde_json::from_value(served.clone()).unwrap();
    let mirrored = sim.journal();
    assert_eq!(parsed.len(), mirrored.len());
    for (over_http, in_process) in parsed.iter().zip(&mirrored) {
        // Times go through JSON as floats: equal to a microsecond, not to the last bit.
        assert!((over_http.time - in_process.time).abs() < 1e-6);
        let untimed = |e: &JournalEntry| JournalEntry {
            time: 0.0,
            ..e.clone()
        };
        assert_eq!(untimed(over_http), untimed(in_process));
    }
    assert_eq!(served[2]["kind"], "deleted");
    assert_eq!(served[2]["room"], "room-a");
    assert_eq!(served[2]["tag_before"], "");
    assert_eq!(served[2]["tag_after"], Value::Null);
    assert!(served[0]["time"].as_f64().unwrap() > 1.7e9, "Unix seconds");
}
