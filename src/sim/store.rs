//! The simulated Management Node's data: rooms (`conference`), their aliases
//! (`conference_alias`) and the live conferences running in them, plus their JSON forms.
//!
//! One `Store` sits behind one mutex, so a validated write and its uniqueness checks are
//! atomic: a create with a conflicting alias creates nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::live::LiveConference;
use super::validation::{AliasSpec, AliasWrite};

/// Collection path of `conference`.
pub(crate) const CONFERENCE_PATH: &str = "/api/admin/configuration/v1/conference/";
/// Collection path of `conference_alias`.
pub(crate) const ALIAS_PATH: &str = "/api/admin/configuration/v1/conference_alias/";

/// One room. `fields` holds every writable field (see `validation::CONFERENCE_FIELDS`).
#[derive(Debug, Clone)]
pub(crate) struct ConferenceRecord {
    pub(crate) id: u64,
    pub(crate) fields: Map<String, Value>,
    pub(crate) creation_time: String,
    /// When it was created, by the simulator clock (for the replication delay).
    pub(crate) created_at: Duration,
}

impl ConferenceRecord {
    /// A text field, `""` when absent or null.
    pub(crate) fn text(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn uri(&self) -> String {
        format!("{CONFERENCE_PATH}{}/", self.id)
    }

    /// The value of one top-level field of the room's JSON, for list filters (`Null` when
    /// absent). Relations (`aliases`) are not filterable and not served here.
    pub(crate) fn field_value(&self, field: &str) -> Value {
        match field {
            "id" => json!(self.id),
            "creation_time" => json!(self.creation_time),
            "resource_uri" => json!(self.uri()),
            "scheduled_conferences_count" => json!(0),
            other => self.fields.get(other).cloned().unwrap_or(Value::Null),
        }
    }
}

/// One alias of a room.
#[derive(Debug, Clone)]
pub(crate) struct AliasRecord {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) conference: u64,
    pub(crate) description: String,
    pub(crate) view_order: i64,
    pub(crate) creation_time: String,
}

impl AliasRecord {
    /// The `conference_alias` JSON (also used nested inside a conference).
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "alias": self.alias,
            "conference": format!("{CONFERENCE_PATH}{}/", self.conference),
            "description": self.description,
            "view_order": self.view_order,
            "creation_time": self.creation_time,
            "resource_uri": format!("{ALIAS_PATH}{}/", self.id),
        })
    }

    /// The current values as a write, for `PATCH` validation.
    pub(crate) fn as_write(&self) -> AliasWrite {
        AliasWrite {
            alias: self.alias.clone(),
            conference: self.conference,
            description: self.description.clone(),
            view_order: self.view_order,
        }
    }
}

/// Everything the simulated Management Node knows.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) conferences: BTreeMap<u64, ConferenceRecord>,
    pub(crate) aliases: BTreeMap<u64, AliasRecord>,
    /// Live conferences by their status UUID.
    pub(crate) live: BTreeMap<String, LiveConference>,
    // Ids are increasing and never reused, as in Pexip's database.
    last_conference_id: u64,
    last_alias_id: u64,
}

impl Store {
    /// Whether another room (not `except`) has this name.
    pub(crate) fn name_taken(&self, name: &str, except: Option<u64>) -> bool {
        self.conferences
            .values()
            .any(|c| Some(c.id) != except && c.text("name") == name)
    }

    /// The alias record with exactly this alias text.
    pub(crate) fn alias_owner(&self, alias: &str) -> Option<&AliasRecord> {
        self.aliases.values().find(|a| a.alias == alias)
    }

    /// The aliases of one room, by id.
    pub(crate) fn aliases_of(&self, conference: u64) -> impl Iterator<Item = &AliasRecord> {
        self.aliases
            .values()
            .filter(move |a| a.conference == conference)
    }

    /// The room named `name_or_alias`, or owning that alias.
    pub(crate) fn find_room(&self, name_or_alias: &str) -> Option<&ConferenceRecord> {
        self.conferences
            .values()
            .find(|c| c.text("name") == name_or_alias)
            .or_else(|| {
                self.alias_owner(name_or_alias)
                    .and_then(|a| self.conferences.get(&a.conference))
            })
    }

    /// The full `conference` JSON: every field, nested aliases, `resource_uri`.
    pub(crate) fn conference_json(&self, record: &ConferenceRecord) -> Value {
        let aliases: Vec<&AliasRecord> = self.aliases_of(record.id).collect();
        conference_json_with(record, &aliases)
    }

    /// The JSON of every room `keep` accepts, in id order. Rooms are chosen before any JSON
    /// is built, and aliases are grouped in one pass: building every room's JSON with a
    /// per-room alias scan made each list quadratic in the number of rooms, and a service
    /// looking a tag up among a few thousand rooms then waited on the simulator.
    pub(crate) fn conferences_json_where(
        &self,
        keep: impl Fn(&ConferenceRecord) -> bool,
    ) -> Vec<Value> {
        let chosen: Vec<&ConferenceRecord> =
            self.conferences.values().filter(|c| keep(c)).collect();
        if chosen.is_empty() {
            return Vec::new();
        }
        let by_room = self.aliases_by_conference();
        chosen
            .into_iter()
            .map(|c| conference_json_with(c, by_room.get(&c.id).map_or(&[], Vec::as_slice)))
            .collect()
    }

    /// Every alias, grouped by the room it belongs to (alias id order within a room).
    pub(crate) fn aliases_by_conference(&self) -> HashMap<u64, Vec<&AliasRecord>> {
        let mut by_room: HashMap<u64, Vec<&AliasRecord>> = HashMap::new();
        for alias in self.aliases.values() {
            by_room.entry(alias.conference).or_default().push(alias);
        }
        by_room
    }

    /// Create a room and its aliases (already validated). Returns the new id.
    pub(crate) fn create_conference(
        &mut self,
        fields: Map<String, Value>,
        aliases: Vec<AliasSpec>,
        now: &str,
        created_at: Duration,
    ) -> u64 {
        self.last_conference_id += 1;
        let id = self.last_conference_id;
        self.conferences.insert(
            id,
            ConferenceRecord {
                id,
                fields,
                creation_time: now.to_owned(),
                created_at,
            },
        );
        self.set_aliases(id, aliases, now);
        id
    }

    /// Replace a room's fields and, if given, its alias set (already validated).
    pub(crate) fn update_conference(
        &mut self,
        id: u64,
        fields: Map<String, Value>,
        aliases: Option<Vec<AliasSpec>>,
        now: &str,
    ) {
        if let Some(record) = self.conferences.get_mut(&id) {
            record.fields = fields;
        }
        if let Some(aliases) = aliases {
            self.set_aliases(id, aliases, now);
        }
    }

    /// Make `aliases` the exact alias set of room `id`: keep the ones it already has (same
    /// text, same id), move ones given by URI, create the rest, delete what is not listed.
    fn set_aliases(&mut self, id: u64, aliases: Vec<AliasSpec>, now: &str) {
        let wanted: Vec<&str> = aliases.iter().map(|a| a.alias.as_str()).collect();
        self.aliases
            .retain(|_, a| a.conference != id || wanted.contains(&a.alias.as_str()));
        for spec in aliases {
            if let Some(existing) = spec.existing.and_then(|aid| self.aliases.get_mut(&aid)) {
                existing.conference = id;
                continue;
            }
            if let Some(kept) = self
                .aliases
                .values_mut()
                .find(|a| a.conference == id && a.alias == spec.alias)
            {
                kept.description = spec.description;
                continue;
            }
            self.last_alias_id += 1;
            let alias_id = self.last_alias_id;
            self.aliases.insert(
                alias_id,
                AliasRecord {
                    id: alias_id,
                    alias: spec.alias,
                    conference: id,
                    description: spec.description,
                    view_order: 0,
                    creation_time: now.to_owned(),
                },
            );
        }
    }

    /// Delete a room and, by cascade, its aliases. `false` if it did not exist.
    pub(crate) fn delete_conference(&mut self, id: u64) -> bool {
        let existed = self.conferences.remove(&id).is_some();
        if existed {
            self.aliases.retain(|_, a| a.conference != id);
        }
        existed
    }

    /// Delete every room and alias (`DELETE` on the collection). Live conferences go on.
    pub(crate) fn delete_all_conferences(&mut self) {
        self.conferences.clear();
        self.aliases.clear();
    }

    /// Create an alias (already validated). Returns the new id.
    pub(crate) fn create_alias(&mut self, write: AliasWrite, now: &str) -> u64 {
        self.last_alias_id += 1;
        let id = self.last_alias_id;
        self.aliases.insert(
            id,
            AliasRecord {
                id,
                alias: write.alias,
                conference: write.conference,
                description: write.description,
                view_order: write.view_order,
                creation_time: now.to_owned(),
            },
        );
        id
    }

    /// Apply a validated alias write to alias `id`.
    pub(crate) fn update_alias(&mut self, id: u64, write: AliasWrite) {
        if let Some(record) = self.aliases.get_mut(&id) {
            record.alias = write.alias;
            record.conference = write.conference;
            record.description = write.description;
            record.view_order = write.view_order;
        }
    }
}

/// The `conference` JSON of `record` with its `aliases`.
fn conference_json_with(record: &ConferenceRecord, aliases: &[&AliasRecord]) -> Value {
    let mut object = record.fields.clone();
    object.insert("id".into(), json!(record.id));
    object.insert("resource_uri".into(), json!(record.uri()));
    object.insert("creation_time".into(), json!(record.creation_time));
    object.insert(
        "aliases".into(),
        Value::Array(aliases.iter().map(|a| a.json()).collect()),
    );
    object.insert("scheduled_conferences".into(), json!([]));
    object.insert("scheduled_conferences_count".into(), json!(0));
    Value::Object(object)
}

/// The id at the end of a resource URI (`/api/admin/.../conference/42/`), or of a bare id,
/// if the URI points into `collection` (absolute URLs are accepted too).
pub(crate) fn trailing_id(uri: &str, collection: &str) -> Option<u64> {
    if let Ok(id) = uri.parse() {
        return Some(id);
    }
    let at = uri.find(collection)?;
    uri[at + collection.len()..]
        .trim_end_matches('/')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_ids_come_from_paths_urls_and_bare_numbers() {
        assert_eq!(
            trailing_id(
                "/api/admin/configuration/v1/conference/42/",
                CONFERENCE_PATH
            ),
            Some(42)
        );
        assert_eq!(
            trailing_id(
                "http://h:1/api/admin/configuration/v1/conference/7/",
                CONFERENCE_PATH
            ),
            Some(7)
        );
        assert_eq!(trailing_id("9", CONFERENCE_PATH), Some(9));
        assert_eq!(
            trailing_id(
                "/api/admin/configuration/v1/conference_alias/9/",
                CONFERENCE_PATH
            ),
            None
        );
        assert_eq!(
            trailing_id("/api/admin/configuration/v1/conference/x/", CONFERENCE_PATH),
            None
        );
    }
}
