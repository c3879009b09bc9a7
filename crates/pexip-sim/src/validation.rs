//! The `conference`, `conference_alias` and `automatic_participant` field schemas
//! (docs/pexip.md §3, §4, §9) and the validation rules of §3 and §5, producing Pexip's error
//! shape: field → list of messages, which `config_api.rs` wraps as `{"conference": {...}}`,
//! `{"conference_alias": {...}}` or `{"automatic_participant": {...}}`.
//!
//! Messages follow Django's wording where Pexip's is unknown; the unique-name message is the
//! one seen in production (caseflow #13892).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::store::{
    ALIAS_PATH, AUTO_PARTICIPANT_PATH, AutoParticipantRecord, CONFERENCE_PATH, ConferenceRecord,
    Store, trailing_id,
};

/// Field name → messages, as Pexip returns them under the resource name.
pub(crate) type FieldErrors = BTreeMap<String, Vec<String>>;

/// The message Pexip answers for a duplicate room name.
pub(crate) const NAME_TAKEN: &str = "Virtual Meeting Room with this Name already exists.";
/// Our wording for a duplicate alias (Django's default for the model; Pexip's is unknown).
pub(crate) const ALIAS_TAKEN: &str = "Conference alias with this Alias already exists.";
const REQUIRED: &str = "This field is required.";
const BLANK: &str = "This field cannot be blank.";
const NOT_NULL: &str = "This field cannot be null.";
const BAD_PIN: &str = "A PIN must be 4 to 20 digits, optionally ending with #.";
const SAME_PINS: &str = "The Guest PIN must be different from the Host PIN.";
const GUESTS_NEED_PIN: &str = "A Host PIN is required when Guests are allowed.";

const VIEWS: &[&str] = &[
    "one_main_zero_pips",
    "one_main_seven_pips",
    "one_main_twentyone_pips",
    "two_mains_twentyone_pips",
    "four_mains_zero_pips",
    "nine_mains_zero_pips",
    "sixteen_mains_zero_pips",
    "twentyfive_mains_zero_pips",
    "five_mains_seven_pips",
];

/// The call types of a conference and of an automatic participant's call.
const CALL_TYPES: &[&str] = &["audio", "video", "video-only"];

/// The service types a `conference` can have.
pub(crate) const SERVICE_TYPES: &[&str] = &[
    "conference",
    "lecture",
    "two_stage_dialing",
    "test_call",
    "media_playback",
];

/// How one writable field is checked and what it defaults to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    Text { max: usize },
    Pin,
    Choice { choices: &'static [&'static str] },
    NullableChoice { choices: &'static [&'static str] },
    Bool,
    Int { min: i64, max: i64 },
    NullableInt { min: i64, max: i64 },
    NullableUri,
}

/// A writable field of `conference`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSpec {
    pub(crate) name: &'static str,
    pub(crate) kind: FieldKind,
    pub(crate) default: FieldDefault,
}

/// A field default (a `const`-friendly subset of JSON).
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldDefault {
    Str(&'static str),
    Bool(bool),
    Null,
}

impl FieldDefault {
    pub(crate) fn value(self) -> Value {
        match self {
            FieldDefault::Str(s) => json!(s),
            FieldDefault::Bool(b) => json!(b),
            FieldDefault::Null => Value::Null,
        }
    }
}

const fn f(name: &'static str, kind: FieldKind, default: FieldDefault) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        default,
    }
}

use FieldDefault as D;
use FieldKind as K;

/// Every writable `conference` field the simulator knows, with its default (docs/pexip.md §3.3).
/// `name` is first and required; the relations `aliases` and `automatic_participants` are
/// handled separately.
pub(crate) const CONFERENCE_FIELDS: &[FieldSpec] = &[
    f("name", K::Text { max: 250 }, D::Str("")),
    f(
        "service_type",
        K::Choice {
            choices: SERVICE_TYPES,
        },
        D::Str("conference"),
    ),
    f("description", K::Text { max: 250 }, D::Str("")),
    f("tag", K::Text { max: 250 }, D::Str("")),
    f("pin", K::Pin, D::Str("")),
    f("guest_pin", K::Pin, D::Str("")),
    f("allow_guests", K::Bool, D::Bool(false)),
    f(
        "participant_limit",
        K::NullableInt {
            min: 0,
            max: 1_000_000,
        },
        D::Null,
    ),
    f(
        "max_callrate_in",
        K::NullableInt {
            min: 128,
            max: 8192,
        },
        D::Null,
    ),
    f(
        "max_callrate_out",
        K::NullableInt {
            min: 128,
            max: 8192,
        },
        D::Null,
    ),
    f(
        "max_pixels_per_second",
        K::NullableChoice {
            choices: &["sd", "hd", "fullhd"],
        },
        D::Null,
    ),
    f(
        "call_type",
        K::Choice {
            choices: CALL_TYPES,
        },
        D::Str("video"),
    ),
    f(
        "crypto_mode",
        K::Choice {
            choices: &["", "besteffort", "on", "off"],
        },
        D::Str(""),
    ),
    f(
        "primary_owner_email_address",
        K::Text { max: 100 },
        D::Str(""),
    ),
    f("ivr_theme", K::NullableUri, D::Null),
    f(
        "host_view",
        K::Choice { choices: VIEWS },
        D::Str("one_main_seven_pips"),
    ),
    f(
        "guest_view",
        K::NullableChoice { choices: VIEWS },
        D::Str("one_main_seven_pips"),
    ),
    f("guests_can_present", K::Bool, D::Bool(true)),
    f("mute_all_guests", K::Bool, D::Bool(false)),
    f(
        "guests_can_see_guests",
        K::Choice {
            choices: &["no_hosts", "never", "always"],
        },
        D::Str("no_hosts"),
    ),
    f(
        "enable_chat",
        K::Choice {
            choices: &["default", "yes", "no"],
        },
        D::Str("default"),
    ),
    f("enable_overlay_text", K::Bool, D::Bool(false)),
    f("force_presenter_into_main", K::Bool, D::Bool(false)),
    f(
        "direct_media",
        K::Choice {
            choices: &["never", "best_effort", "always"],
        },
        D::Str("never"),
    ),
    f(
        "live_captions_enabled",
        K::Choice {
            choices: &["default", "yes", "no"],
        },
        D::Str("default"),
    ),
    f("breakout_rooms", K::Bool, D::Bool(false)),
    f("denoise_enabled", K::Bool, D::Bool(false)),
    f("softmute_enabled", K::Bool, D::Bool(false)),
    f("enable_active_speaker_indication", K::Bool, D::Bool(false)),
    f("system_location", K::NullableUri, D::Null),
    f("mssip_proxy", K::NullableUri, D::Null),
    f("teams_proxy", K::NullableUri, D::Null),
    f("gms_access_token", K::NullableUri, D::Null),
    f("media_playlist", K::NullableUri, D::Null),
    f("guest_identity_provider_group", K::NullableUri, D::Null),
    f("host_identity_provider_group", K::NullableUri, D::Null),
    f(
        "non_idp_participants",
        K::Choice {
            choices: &["disallow_all", "allow_if_trusted"],
        },
        D::Str("disallow_all"),
    ),
    f(
        "two_stage_dial_type",
        K::Choice {
            choices: &["regular", "mssip", "gms", "teams"],
        },
        D::Str("regular"),
    ),
    f("match_string", K::Text { max: 250 }, D::Str("")),
    f("replace_string", K::Text { max: 250 }, D::Str("")),
    f("post_match_string", K::Text { max: 250 }, D::Str("")),
    f("post_replace_string", K::Text { max: 250 }, D::Str("")),
    f("pinning_config", K::Text { max: 250 }, D::Str("")),
    f("sync_tag", K::Text { max: 250 }, D::Str("")),
];

/// The writable fields. Anything else a client sends (read-only `id`, `resource_uri`,
/// `creation_time`, `scheduled_conferences_count`, or unknown names) is ignored, as Tastypie
/// ignores it.
pub(crate) fn conference_fields() -> impl Iterator<Item = &'static FieldSpec> {
    CONFERENCE_FIELDS.iter()
}

/// A `conference` with every field at its default (name empty).
pub(crate) fn conference_defaults() -> Map<String, Value> {
    conference_fields()
        .map(|s| (s.name.to_owned(), s.default.value()))
        .collect()
}

/// How a write treats fields it does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `POST`: missing fields take defaults; `name` is required.
    Create,
    /// `PATCH`: missing fields keep their values.
    Patch,
    /// `PUT`: missing fields reset to defaults; `name` is required. Aliases, when absent,
    /// are kept (replacing them with nothing would be a surprising way to lose them).
    Replace,
}

/// One alias a conference write asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AliasSpec {
    pub(crate) alias: String,
    pub(crate) description: String,
    /// An existing `conference_alias` given by URI (moved to this conference).
    pub(crate) existing: Option<u64>,
}

/// A validated `conference` write: the full field map and, if given, the new alias set and
/// the new set of linked automatic participants (ids).
#[derive(Debug)]
pub(crate) struct ConferenceWrite {
    pub(crate) fields: Map<String, Value>,
    pub(crate) aliases: Option<Vec<AliasSpec>>,
    pub(crate) automatic_participants: Option<Vec<u64>>,
}

/// Validate a `conference` write against the store (uniqueness excludes `current`).
pub(crate) fn conference(
    store: &Store,
    input: &Map<String, Value>,
    current: Option<&ConferenceRecord>,
    mode: Mode,
) -> Result<ConferenceWrite, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut fields = match (mode, current) {
        (Mode::Patch, Some(record)) => record.fields.clone(),
        _ => conference_defaults(),
    };
    for spec in conference_fields() {
        let Some(value) = input.get(spec.name) else {
            continue;
        };
        match check(spec.kind, value) {
            Ok(value) => {
                fields.insert(spec.name.to_owned(), value);
            }
            Err(message) => push(&mut errors, spec.name, message),
        }
    }
    let text = |fields: &Map<String, Value>, k: &str| -> String {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let self_id = current.map(|c| c.id);
    if !errors.contains_key("name") {
        let name = text(&fields, "name");
        if name.is_empty() {
            let missing = mode != Mode::Patch && !input.contains_key("name");
            push(&mut errors, "name", if missing { REQUIRED } else { BLANK });
        } else if store.name_taken(&name, self_id) {
            push(&mut errors, "name", NAME_TAKEN);
        }
    }
    let pin = text(&fields, "pin");
    let guest_pin = text(&fields, "guest_pin");
    let pins_ok = !errors.contains_key("pin") && !errors.contains_key("guest_pin");
    if pins_ok && !pin.is_empty() && pin == guest_pin {
        push(&mut errors, "guest_pin", SAME_PINS);
    }
    let allow_guests = fields.get("allow_guests") == Some(&Value::Bool(true));
    if pins_ok && !errors.contains_key("allow_guests") && allow_guests && pin.is_empty() {
        push(&mut errors, "pin", GUESTS_NEED_PIN);
    }

    let aliases = match input.get("aliases") {
        None => None,
        Some(value) => match aliases(store, value, self_id) {
            Ok(list) => Some(list),
            Err(messages) => {
                for m in messages {
                    push(&mut errors, "aliases", m);
                }
                None
            }
        },
    };
    let automatic_participants = related(
        &mut errors,
        input,
        "automatic_participants",
        AUTO_PARTICIPANT_PATH,
        |id| store.auto_participant(id).is_some(),
    );
    if errors.is_empty() {
        Ok(ConferenceWrite {
            fields,
            aliases,
            automatic_participants,
        })
    } else {
        Err(errors)
    }
}

/// The to-many relation `field` of a write, if given: its ids, or its problems recorded in
/// `errors`.
fn related(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
    field: &str,
    collection: &str,
    exists: impl Fn(u64) -> bool,
) -> Option<Vec<u64>> {
    match uri_list(input.get(field)?, collection, exists) {
        Ok(ids) => Some(ids),
        Err(messages) => {
            for m in messages {
                push(errors, field, m);
            }
            None
        }
    }
}

/// The ids of a to-many relation given as a list of resource URIs (or bare ids) into
/// `collection`, each of which must exist; duplicates collapse. Pexip would also take nested
/// objects and create them; nothing we test writes that way, so they are refused.
fn uri_list(
    value: &Value,
    collection: &str,
    exists: impl Fn(u64) -> bool,
) -> Result<Vec<u64>, Vec<String>> {
    let Value::Array(items) = value else {
        return Err(vec!["Expected a list of resource URIs.".to_owned()]);
    };
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    for item in items {
        let found = match item {
            Value::String(uri) => trailing_id(uri, collection).filter(|id| exists(*id)),
            Value::Number(n) => n.as_u64().filter(|id| exists(*id)),
            _ => None,
        };
        match found {
            Some(id) => {
                ids.insert(id);
            }
            None => problems.push(format!(
                "Could not find the provided object via resource URI {}.",
                quoted(item)
            )),
        }
    }
    if problems.is_empty() {
        Ok(ids.into_iter().collect())
    } else {
        Err(problems)
    }
}

/// The protocols an automatic participant can be dialled with.
pub(crate) const DIAL_PROTOCOLS: &[&str] = &["sip", "h323", "mssip", "rtmp", "gms", "teams"];

/// Every writable `automatic_participant` field but the relation `conference`, with Pexip's
/// defaults (docs/pexip.md §9; values as Pexip's Go SDK models them, defaults as a v40 node
/// returns them in a conference's embedded list).
pub(crate) const AUTO_PARTICIPANT_FIELDS: &[FieldSpec] = &[
    f("alias", K::Text { max: 250 }, D::Str("")),
    f("description", K::Text { max: 250 }, D::Str("")),
    f(
        "protocol",
        K::Choice {
            choices: DIAL_PROTOCOLS,
        },
        D::Str("sip"),
    ),
    f(
        "call_type",
        K::Choice {
            choices: CALL_TYPES,
        },
        D::Str("video"),
    ),
    f(
        "role",
        K::Choice {
            choices: &["chair", "guest"],
        },
        D::Str("guest"),
    ),
    f("dtmf_sequence", K::Text { max: 250 }, D::Str("")),
    f(
        "keep_conference_alive",
        K::Choice {
            choices: &[
                "keep_conference_alive",
                "keep_conference_alive_if_multiple",
                "keep_conference_alive_never",
            ],
        },
        D::Str("keep_conference_alive_if_multiple"),
    ),
    f(
        "routing",
        K::Choice {
            choices: &["manual", "routing_rule"],
        },
        D::Str("manual"),
    ),
    f("system_location", K::NullableUri, D::Null),
    f("streaming", K::Bool, D::Bool(false)),
    f("remote_display_name", K::Text { max: 250 }, D::Str("")),
    f("presentation_url", K::Text { max: 250 }, D::Str("")),
];

/// A validated `automatic_participant` write: every field and, if given, the conferences it
/// is linked to (ids).
#[derive(Debug)]
pub(crate) struct AutoParticipantWrite {
    pub(crate) fields: Map<String, Value>,
    pub(crate) conferences: Option<Vec<u64>>,
}

/// Validate an `automatic_participant` write (`current` for a PATCH).
pub(crate) fn automatic_participant(
    store: &Store,
    input: &Map<String, Value>,
    current: Option<&AutoParticipantRecord>,
) -> Result<AutoParticipantWrite, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut fields = match current {
        Some(record) => record.fields.clone(),
        None => AUTO_PARTICIPANT_FIELDS
            .iter()
            .map(|s| (s.name.to_owned(), s.default.value()))
            .collect(),
    };
    for spec in AUTO_PARTICIPANT_FIELDS {
        let Some(value) = input.get(spec.name) else {
            continue;
        };
        match check(spec.kind, value) {
            Ok(value) => {
                fields.insert(spec.name.to_owned(), value);
            }
            Err(message) => push(&mut errors, spec.name, message),
        }
    }
    let alias_blank = fields
        .get("alias")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if !errors.contains_key("alias") && alias_blank {
        let missing = current.is_none() && !input.contains_key("alias");
        push(&mut errors, "alias", if missing { REQUIRED } else { BLANK });
    }
    let conferences = related(&mut errors, input, "conference", CONFERENCE_PATH, |id| {
        store.conference(id).is_some()
    });
    if errors.is_empty() {
        Ok(AutoParticipantWrite {
            fields,
            conferences,
        })
    } else {
        Err(errors)
    }
}

/// Validate the nested `aliases` of a conference write: a list of `{"alias", "description"?}`
/// objects or `conference_alias` URIs. Every alias must be free (or already this room's).
fn aliases(
    store: &Store,
    value: &Value,
    owner: Option<u64>,
) -> Result<Vec<AliasSpec>, Vec<String>> {
    let Value::Array(items) = value else {
        return Err(vec!["Expected a list of aliases.".to_owned()]);
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for item in items {
        let spec = match item {
            Value::String(uri) => {
                match trailing_id(uri, ALIAS_PATH).and_then(|id| store.alias(id)) {
                    Some(existing) => AliasSpec {
                        alias: existing.alias.clone(),
                        description: existing.description.clone(),
                        existing: Some(existing.id),
                    },
                    None => {
                        problems.push(format!(
                            "Could not find the provided object via resource URI '{uri}'."
                        ));
                        continue;
                    }
                }
            }
            Value::Object(obj) => {
                let alias = match obj.get("alias").map(|v| check(K::Text { max: 250 }, v)) {
                    Some(Ok(Value::String(a))) if !a.is_empty() => a,
                    Some(Err(m)) => {
                        problems.push(m);
                        continue;
                    }
                    _ => {
                        problems.push("Each alias needs a non-empty \"alias\".".to_owned());
                        continue;
                    }
                };
                let description = match obj
                    .get("description")
                    .map(|v| check(K::Text { max: 250 }, v))
                {
                    None => String::new(),
                    Some(Ok(v)) => v.as_str().unwrap_or_default().to_owned(),
                    Some(Err(m)) => {
                        problems.push(m);
                        continue;
                    }
                };
                AliasSpec {
                    alias,
                    description,
                    existing: None,
                }
            }
            _ => {
                problems.push("Each alias must be an object or a resource URI.".to_owned());
                continue;
            }
        };
        let taken_elsewhere = spec.existing.is_none()
            && store
                .alias_owner(&spec.alias)
                .is_some_and(|a| Some(a.conference) != owner);
        if !seen.insert(spec.alias.clone()) || taken_elsewhere {
            problems.push(ALIAS_TAKEN.to_owned());
            continue;
        }
        out.push(spec);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A validated `conference_alias` write.
#[derive(Debug)]
pub(crate) struct AliasWrite {
    pub(crate) alias: String,
    pub(crate) conference: u64,
    pub(crate) description: String,
    pub(crate) view_order: i64,
}

/// Validate a `conference_alias` write. `current` is `(id, alias, conference, description,
/// view_order)` of the alias being patched.
pub(crate) fn alias(
    store: &Store,
    input: &Map<String, Value>,
    current: Option<(u64, AliasWrite)>,
) -> Result<AliasWrite, FieldErrors> {
    let mut errors = FieldErrors::new();
    let (self_id, mut write) = match current {
        Some((id, write)) => (Some(id), write),
        None => (
            None,
            AliasWrite {
                alias: String::new(),
                conference: 0,
                description: String::new(),
                view_order: 0,
            },
        ),
    };
    match input.get("alias").map(|v| check(K::Text { max: 250 }, v)) {
        Some(Ok(v)) => write.alias = v.as_str().unwrap_or_default().to_owned(),
        Some(Err(m)) => push(&mut errors, "alias", m),
        None => {}
    }
    if !errors.contains_key("alias") {
        if write.alias.is_empty() {
            push(
                &mut errors,
                "alias",
                if self_id.is_none() && !input.contains_key("alias") {
                    REQUIRED
                } else {
                    BLANK
                },
            );
        } else if store
            .alias_owner(&write.alias)
            .is_some_and(|a| Some(a.id) != self_id)
        {
            push(&mut errors, "alias", ALIAS_TAKEN);
        }
    }
    match input.get("conference") {
        Some(Value::String(uri)) => {
            match trailing_id(uri, CONFERENCE_PATH).filter(|id| store.conference(*id).is_some()) {
                Some(id) => write.conference = id,
                None => push(
                    &mut errors,
                    "conference",
                    format!("Could not find the provided object via resource URI '{uri}'."),
                ),
            }
        }
        Some(Value::Null) => push(&mut errors, "conference", NOT_NULL),
        Some(_) => push(
            &mut errors,
            "conference",
            "Expected a conference resource URI.",
        ),
        None if self_id.is_none() => push(&mut errors, "conference", REQUIRED),
        None => {}
    }
    match input
        .get("description")
        .map(|v| check(K::Text { max: 250 }, v))
    {
        Some(Ok(v)) => write.description = v.as_str().unwrap_or_default().to_owned(),
        Some(Err(m)) => push(&mut errors, "description", m),
        None => {}
    }
    match input.get("view_order").map(|v| {
        check(
            K::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
            v,
        )
    }) {
        Some(Ok(v)) => write.view_order = v.as_i64().unwrap_or_default(),
        Some(Err(m)) => push(&mut errors, "view_order", m),
        None => {}
    }
    if errors.is_empty() {
        Ok(write)
    } else {
        Err(errors)
    }
}

fn push(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors
        .entry(field.to_owned())
        .or_default()
        .push(message.into());
}

/// Whether `pin` is a valid Pexip PIN: empty, or 4–20 digits, or 4–19 digits and a final `#`
/// (at most 20 characters in all).
pub(crate) fn pin_is_valid(pin: &str) -> bool {
    let digits = pin.strip_suffix('#').unwrap_or(pin);
    pin.is_empty()
        || (pin.len() <= 20 && digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Check one value against its kind, returning the value to store (coerced like Django does:
/// numbers into text fields, `"true"`/`"false"` into booleans, numeric strings into ints).
fn check(kind: FieldKind, value: &Value) -> Result<Value, String> {
    match kind {
        K::Text { max } => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Null => return Err(NOT_NULL.to_owned()),
                _ => return Err("Enter a valid value.".to_owned()),
            };
            let n = text.chars().count();
            if n > max {
                return Err(format!(
                    "Ensure this value has at most {max} characters (it has {n})."
                ));
            }
            Ok(Value::String(text))
        }
        K::Pin => {
            let pin = check(K::Text { max: 20 }, value).map_err(|_| BAD_PIN.to_owned())?;
            if pin_is_valid(pin.as_str().unwrap_or_default()) {
                Ok(pin)
            } else {
                Err(BAD_PIN.to_owned())
            }
        }
        K::Choice { choices } | K::NullableChoice { choices } => match value {
            Value::Null if matches!(kind, K::NullableChoice { .. }) => Ok(Value::Null),
            Value::Null => Err(NOT_NULL.to_owned()),
            Value::String(s) if choices.contains(&s.as_str()) => Ok(value.clone()),
            other => Err(format!("Value {} is not a valid choice.", quoted(other))),
        },
        K::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if matches!(s.as_str(), "true" | "True" | "1") => {
                Ok(Value::Bool(true))
            }
            Value::String(s) if matches!(s.as_str(), "false" | "False" | "0") => {
                Ok(Value::Bool(false))
            }
            other => Err(format!(
                "{} value must be either True or False.",
                quoted(other)
            )),
        },
        K::Int { min, max } | K::NullableInt { min, max } => {
            let n = match value {
                Value::Null if matches!(kind, K::NullableInt { .. }) => return Ok(Value::Null),
                Value::Null => return Err(NOT_NULL.to_owned()),
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err(format!("{} value must be an integer.", quoted(value)));
            };
            if n < min {
                return Err(format!(
                    "Ensure this value is greater than or equal to {min}."
                ));
            }
            if n > max {
                return Err(format!("Ensure this value is less than or equal to {max}."));
            }
            Ok(json!(n))
        }
        K::NullableUri => match value {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.starts_with("/api/admin/") => Ok(value.clone()),
            other => Err(format!(
                "Could not find the provided object via resource URI {}.",
                quoted(other)
            )),
        },
    }
}

fn quoted(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => format!("'{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_4_to_20_digits_with_an_optional_final_hash() {
        for ok in [
            "",
            "1234",
            "12345678901234567890",
            "1234#",
            "1234567890123456789#",
        ] {
            assert!(pin_is_valid(ok), "{ok:?} should be valid");
        }
        for bad in [
            "123",
            "123#",
            "12a4",
            "#1234",
            "12#34",
            "123456789012345678901",
            "12345678901234567890#",
            " 1234",
        ] {
            assert!(!pin_is_valid(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn defaults_cover_every_writable_field_once() {
        let defaults = conference_defaults();
        assert_eq!(defaults.len(), conference_fields().count());
        assert_eq!(defaults["service_type"], json!("conference"));
        assert_eq!(defaults["guests_can_present"], json!(true));
        assert_eq!(defaults["participant_limit"], Value::Null);
    }
}
