//! Wire models of the Management API objects this service uses: configuration `conference`
//! and `conference_alias` (docs/pexip.md §3, §4), status `conference` (§7.1), and the list
//! envelope (§1.3). Deserialisation is lenient: unknown fields are ignored (or kept verbatim in
//! [`Conference::extra`]), and a missing or `null` string reads as `""`, because every Pexip
//! release adds fields and older ones send `null` where newer ones send `""`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Reads `null` (or a missing field, with `#[serde(default)]`) as the type's default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Virtual Meeting Room (configuration `conference` object) as Pexip returns it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Conference {
    /// Pexip's numeric id.
    #[serde(deserialize_with = "null_as_default")]
    pub id: u64,
    /// The unique room name.
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    /// `conference` for a VMR.
    #[serde(deserialize_with = "null_as_default")]
    pub service_type: String,
    /// Free text.
    #[serde(deserialize_with = "null_as_default")]
    pub description: String,
    /// The tag (this service stores the caller's tag URL here).
    #[serde(deserialize_with = "null_as_default")]
    pub tag: String,
    /// Host PIN (`""` = none).
    #[serde(deserialize_with = "null_as_default")]
    pub pin: String,
    /// Guest PIN (`""` = none).
    #[serde(deserialize_with = "null_as_default")]
    pub guest_pin: String,
    /// Whether guests may join.
    #[serde(deserialize_with = "null_as_default")]
    pub allow_guests: bool,
    /// The room's aliases, nested.
    #[serde(deserialize_with = "null_as_default")]
    pub aliases: Vec<Alias>,
    /// Naive UTC ISO-8601, as Pexip sends it.
    pub creation_time: Option<String>,
    /// `/api/admin/configuration/v1/conference/<id>/`.
    pub resource_uri: Option<String>,
    /// Every other field, verbatim (the full-object API returns them).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Conference {
    /// The room a create made, as far as the request and its answer tell: Pexip answers a
    /// create with 201, an empty body and a `Location` (docs/pexip.md §1.2), so
    /// the id is known and everything else is what was sent. Not known without a read: the
    /// aliases' ids (0 here) and Pexip's own creation time (`creation_time` is the creator's
    /// clock when the answer came, within a round trip of Pexip's). The host PIN is left out.
    pub fn as_created(
        id: u64,
        name: &str,
        guest_pin: &str,
        aliases: &[String],
        tag: &str,
        creation_time: Option<String>,
    ) -> Self {
        let uri = super::paths::Resource::Conference.detail(id);
        Self {
            id,
            name: name.to_owned(),
            service_type: "conference".to_owned(),
            description: String::new(),
            tag: tag.to_owned(),
            pin: String::new(),
            guest_pin: guest_pin.to_owned(),
            allow_guests: true,
            aliases: aliases
                .iter()
                .map(|alias| Alias {
                    id: 0,
                    alias: alias.clone(),
                    conference: uri.clone(),
                    description: String::new(),
                    creation_time: creation_time.clone(),
                })
                .collect(),
            creation_time,
            resource_uri: Some(uri),
            extra: Map::new(),
        }
    }

    /// The resource URIs of the automatic participants linked to the room. Pexip embeds
    /// each as a full object when it reads a conference (as it does aliases) and takes URIs
    /// when written; both shapes are read here (an object by its `resource_uri`, else its
    /// `id`). The objects themselves stay in [`Self::extra`], so the full view shows them.
    pub fn automatic_participant_uris(&self) -> Vec<String> {
        let Some(Value::Array(items)) = self.extra.get("automatic_participants") else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| match item {
                Value::String(uri) => Some(uri.clone()),
                Value::Object(object) => match (object.get("resource_uri"), object.get("id")) {
                    (Some(Value::String(uri)), _) => Some(uri.clone()),
                    (_, Some(Value::Number(id))) => {
                        id.as_u64().map(super::AutomaticParticipantRef::uri_of)
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

/// A time as Pexip writes it: naive UTC ISO-8601 with microseconds
/// (`2024-03-05T14:31:06.145782`).
pub fn naive_utc(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// A room alias (configuration `conference_alias`, or nested in a conference).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct Alias {
    /// Pexip's numeric id.
    #[serde(deserialize_with = "null_as_default")]
    pub id: u64,
    /// The dial string.
    #[serde(deserialize_with = "null_as_default")]
    pub alias: String,
    /// URI of the owning conference.
    #[serde(deserialize_with = "null_as_default")]
    pub conference: String,
    /// Free text.
    #[serde(deserialize_with = "null_as_default")]
    pub description: String,
    /// Naive UTC ISO-8601.
    pub creation_time: Option<String>,
}

/// What [`super::PexipClient::create_conference`] sends.
#[derive(Clone, Debug, PartialEq)]
pub struct NewConference {
    /// Unique room name (required).
    pub name: String,
    /// `conference` for a VMR.
    pub service_type: String,
    /// Free text.
    pub description: String,
    /// Tag.
    pub tag: String,
    /// Host PIN (`""` = none).
    pub pin: String,
    /// Guest PIN (`""` = none).
    pub guest_pin: String,
    /// Whether guests may join.
    pub allow_guests: bool,
    /// Alias dial strings, created atomically with the room.
    pub aliases: Vec<String>,
    /// Any other fields to send verbatim (e.g. `ivr_theme`); they must not repeat the ones
    /// above.
    pub extra: Map<String, Value>,
}

impl Default for NewConference {
    fn default() -> Self {
        Self {
            name: String::new(),
            service_type: "conference".to_owned(),
            description: String::new(),
            tag: String::new(),
            pin: String::new(),
            guest_pin: String::new(),
            allow_guests: false,
            aliases: Vec::new(),
            extra: Map::new(),
        }
    }
}

impl Serialize for NewConference {
    /// Pexip's create body: aliases as nested `[{"alias": ..}]`, `extra` merged at the top.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct NestedAlias<'a> {
            alias: &'a str,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            service_type: &'a str,
            description: &'a str,
            tag: &'a str,
            pin: &'a str,
            guest_pin: &'a str,
            allow_guests: bool,
            aliases: Vec<NestedAlias<'a>>,
            #[serde(flatten)]
            extra: &'a Map<String, Value>,
        }
        Body {
            name: &self.name,
            service_type: &self.service_type,
            description: &self.description,
            tag: &self.tag,
            pin: &self.pin,
            guest_pin: &self.guest_pin,
            allow_guests: self.allow_guests,
            aliases: self
                .aliases
                .iter()
                .map(|alias| NestedAlias { alias })
                .collect(),
            extra: &self.extra,
        }
        .serialize(serializer)
    }
}

/// A live conference instance (status `conference`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(default)]
pub struct LiveConference {
    /// A UUID.
    #[serde(deserialize_with = "null_as_default")]
    pub id: String,
    /// The VMR name.
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    /// The VMR tag at start.
    #[serde(deserialize_with = "null_as_default")]
    pub tag: String,
    /// Whether a host is present.
    #[serde(deserialize_with = "null_as_default")]
    pub is_started: bool,
    /// Naive UTC ISO-8601.
    pub start_time: Option<String>,
}

/// Whether a delete removed the object or found it already gone (404): both mean "gone".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// 204: deleted by this call.
    Now,
    /// 404: someone (or an earlier attempt) deleted it before.
    AlreadyGone,
}

/// Live totals from the status API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveCounts {
    /// Live conference instances.
    pub conferences: u64,
    /// Connected participants (all states).
    pub participants: u64,
}

/// The Tastypie list envelope.
#[derive(Deserialize, Debug)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct ListPage<T> {
    #[serde(default)]
    pub meta: ListMeta,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub objects: Vec<T>,
}

/// `meta` of a list page.
#[derive(Deserialize, Debug, Default)]
#[serde(default)]
pub(crate) struct ListMeta {
    /// Path (or URL) of the next page, `None` on the last.
    pub next: Option<String>,
    /// Total matching objects.
    pub total_count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_conference_reads_nulls_as_empty_and_keeps_unknown_fields() {
        let conference: Conference = serde_json::from_value(json!({
            "id": 42, "name": "pool-0042", "service_type": "conference",
            "description": null, "tag": "t", "pin": "1234", "guest_pin": null,
            "allow_guests": true, "aliases": [{"id": 7, "alias": "a@x", "conference":
            "/api/admin/configuration/v1/conference/42/", "description": null,
            "creation_time": "2025-01-03T10:00:00.123456", "view_order": 0}],
            "creation_time": "2025-01-03T10:00:00.120001",
            "resource_uri": "/api/admin/configuration/v1/conference/42/",
            "participant_limit": null, "host_view": "one_main_seven_pips"
        }))
        .unwrap();
        assert_eq!(conference.id, 42);
        assert_eq!(conference.description, "");
        assert_eq!(conference.guest_pin, "");
        assert_eq!(conference.aliases[0].alias, "a@x");
        assert_eq!(conference.aliases[0].description, "");
        assert_eq!(conference.extra["participant_limit"], Value::Null);
        assert_eq!(conference.extra["host_view"], "one_main_seven_pips");
        assert!(!conference.extra.contains_key("name"));
        // The full object round-trips: unknown fields come back out.
        let back = serde_json::to_value(&conference).unwrap();
        assert_eq!(back["host_view"], "one_main_seven_pips");
        assert_eq!(back["pin"], "1234");
    }

    #[test]
    fn linked_automatic_participants_read_as_uris_or_embedded_objects() {
        let uri = "/api/admin/configuration/v1/automatic_participant/3/";
        let as_uris: Conference =
            serde_json::from_value(json!({"id": 1, "automatic_participants": [uri]})).unwrap();
        // The shape Pexip reads back (a third-party fixture of a real payload, plus the URI).
        let embedded: Conference = serde_json::from_value(json!({"id": 1,
        "automatic_participants": [
            {"alias": "sip:queue@cc.example", "call_type": "video", "creation_time":
             "2026-01-01T00:00:00", "description": "", "dtmf_sequence": "", "id": 3,
             "keep_conference_alive": "keep_conference_alive_if_multiple",
             "presentation_url": "", "protocol": "sip", "remote_display_name": "",
             "role": "chair", "routing": "manual", "streaming": false,
             "resource_uri": uri},
            {"id": 4, "alias": "sip:other@cc.example"},
        ]}))
        .unwrap();
        assert_eq!(as_uris.automatic_participant_uris(), [uri]);
        assert_eq!(
            embedded.automatic_participant_uris(),
            [uri, "/api/admin/configuration/v1/automatic_participant/4/"]
        );
        assert!(
            Conference::default()
                .automatic_participant_uris()
                .is_empty()
        );
        // The embedded objects stay whole for the full view.
        let back = serde_json::to_value(&embedded).unwrap();
        assert_eq!(back["automatic_participants"][0]["role"], "chair");
    }

    #[test]
    fn a_sparse_conference_takes_defaults() {
        let conference: Conference = serde_json::from_value(json!({"id": 1})).unwrap();
        assert_eq!(conference.name, "");
        assert!(conference.aliases.is_empty());
        assert_eq!(conference.creation_time, None);
    }

    #[test]
    fn a_new_conference_nests_aliases_and_merges_extra_fields() {
        let mut extra = Map::new();
        extra.insert("participant_limit".into(), json!(10));
        let new = NewConference {
            name: "r1".into(),
            pin: "1234".into(),
            aliases: vec!["r1@x".into()],
            extra,
            ..NewConference::default()
        };
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!({"name": "r1", "service_type": "conference", "description": "", "tag": "",
                   "pin": "1234", "guest_pin": "", "allow_guests": false,
                   "aliases": [{"alias": "r1@x"}], "participant_limit": 10})
        );
    }

    #[test]
    fn a_list_page_tolerates_missing_meta_and_null_objects() {
        let page: ListPage<LiveConference> =
            serde_json::from_value(json!({"objects": null})).unwrap();
        assert!(page.objects.is_empty());
        assert_eq!(page.meta.next, None);
        let page: ListPage<LiveConference> = serde_json::from_value(json!({
            "meta": {"limit": 1, "next": "/x/?offset=1", "offset": 0, "previous": null,
                     "total_count": 3},
            "objects": [{"id": "u", "name": "n", "tag": null, "is_started": null,
                         "start_time": "2025-01-01T00:00:00", "is_locked": false}]
        }))
        .unwrap();
        assert_eq!(page.meta.total_count, Some(3));
        assert_eq!(page.objects[0].tag, "");
        assert!(!page.objects[0].is_started);
    }
}
