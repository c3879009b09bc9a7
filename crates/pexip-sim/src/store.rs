//! The simulated Management Node's data: rooms (`conference`), their aliases
//! (`conference_alias`), automatically dialled participants (`automatic_participant`) and
//! their links to rooms, and the live conferences running in rooms, plus their JSON forms.
//!
//! One `Store` sits behind one mutex, so a validated write and its uniqueness checks are
//! atomic: a create with a conflicting alias creates nothing.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::journal::Journal;
use super::live::LiveConference;
use super::validation::{AliasSpec, AliasWrite};

/// Collection path of `conference`.
pub(crate) const CONFERENCE_PATH: &str = "/api/admin/configuration/v1/conference/";
/// Collection path of `conference_alias`.
pub(crate) const ALIAS_PATH: &str = "/api/admin/configuration/v1/conference_alias/";
/// Collection path of `automatic_participant`.
pub(crate) const AUTO_PARTICIPANT_PATH: &str = "/api/admin/configuration/v1/automatic_participant/";

/// One room. `fields` holds every writable field (see `validation::CONFERENCE_FIELDS`).
#[derive(Debug, Clone)]
pub(crate) struct ConferenceRecord {
    pub(crate) id: u64,
    pub(crate) fields: Map<String, Value>,
    pub(crate) creation_time: String,
    /// When it was created, by the simulator clock (for the replication delay).
    pub(crate) created_at: Duration,
}

/// A text field of a record, `""` when absent or null.
fn text_field<'a>(fields: &'a Map<String, Value>, field: &str) -> &'a str {
    fields
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl ConferenceRecord {
    /// A text field, `""` when absent or null.
    pub(crate) fn text(&self, field: &str) -> &str {
        text_field(&self.fields, field)
    }

    pub(crate) fn uri(&self) -> String {
        format!("{CONFERENCE_PATH}{}/", self.id)
    }

    /// The value of one top-level field of the room's JSON, for list filters (`Null` when
    /// absent). Relations (`aliases`) are not filterable and not served here.
    pub(crate) fn field_value(&self, field: &str) -> Cow<'_, Value> {
        match field {
            "id" => Cow::Owned(json!(self.id)),
            "creation_time" => Cow::Owned(json!(self.creation_time)),
            "resource_uri" => Cow::Owned(json!(self.uri())),
            "scheduled_conferences_count" => Cow::Owned(json!(0)),
            other => self
                .fields
                .get(other)
                .map_or(Cow::Owned(Value::Null), Cow::Borrowed),
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

/// One automatically dialled participant (docs/pexip.md §9). `fields` holds every writable
/// field but the relation `conference`, which lives in [`Store`]'s link set.
#[derive(Debug, Clone)]
pub(crate) struct AutoParticipantRecord {
    pub(crate) id: u64,
    pub(crate) fields: Map<String, Value>,
    pub(crate) creation_time: String,
}

impl AutoParticipantRecord {
    /// A text field, `""` when absent or null.
    pub(crate) fn text(&self, field: &str) -> &str {
        text_field(&self.fields, field)
    }

    pub(crate) fn uri(&self) -> String {
        format!("{AUTO_PARTICIPANT_PATH}{}/", self.id)
    }

    /// The JSON of the participant as nested in a conference (no `conference` list, which
    /// would point back at the room it is read from).
    pub(crate) fn nested_json(&self) -> Value {
        let mut object = self.fields.clone();
        object.insert("id".into(), json!(self.id));
        object.insert("creation_time".into(), json!(self.creation_time));
        object.insert("resource_uri".into(), json!(self.uri()));
        Value::Object(object)
    }
}

/// Everything the simulated Management Node knows.
///
/// Rooms and aliases are private: every write goes through a method here, which keeps the
/// indexes (room by name, rooms by tag, alias by text, aliases by room) in step. Lookups by
/// those keys are what a Management Node's database answers from indexes too; scanning made
/// a simulator holding a few thousand rooms the bottleneck of every load test.
#[derive(Debug, Default)]
pub(crate) struct Store {
    conferences: BTreeMap<u64, ConferenceRecord>,
    aliases: BTreeMap<u64, AliasRecord>,
    /// Live conferences by their status UUID.
    pub(crate) live: BTreeMap<String, LiveConference>,
    /// Every write to a room and every conference start and end, in order (the handlers
    /// record them while they hold this store's lock).
    pub(crate) journal: Journal,
    // Ids are increasing and never reused, as in Pexip's database.
    last_conference_id: u64,
    last_alias_id: u64,
    room_by_name: HashMap<String, u64>,
    rooms_by_tag: HashMap<String, BTreeSet<u64>>,
    alias_by_text: HashMap<String, u64>,
    aliases_by_room: HashMap<u64, BTreeSet<u64>>,
    auto_participants: BTreeMap<u64, AutoParticipantRecord>,
    last_auto_participant_id: u64,
    /// The many-to-many link between rooms and automatic participants, as
    /// `(conference id, automatic participant id)`: one set, so both sides always agree.
    auto_links: BTreeSet<(u64, u64)>,
}

impl Store {
    /// One room by id.
    pub(crate) fn conference(&self, id: u64) -> Option<&ConferenceRecord> {
        self.conferences.get(&id)
    }

    /// Every room, in id order.
    pub(crate) fn conferences(&self) -> impl Iterator<Item = &ConferenceRecord> {
        self.conferences.values()
    }

    /// One alias by id.
    pub(crate) fn alias(&self, id: u64) -> Option<&AliasRecord> {
        self.aliases.get(&id)
    }

    /// Every alias, in id order.
    pub(crate) fn aliases(&self) -> impl Iterator<Item = &AliasRecord> {
        self.aliases.values()
    }

    /// Whether another room (not `except`) has this name.
    pub(crate) fn name_taken(&self, name: &str, except: Option<u64>) -> bool {
        self.room_by_name
            .get(name)
            .is_some_and(|id| Some(*id) != except)
    }

    /// The alias record with exactly this alias text.
    pub(crate) fn alias_owner(&self, alias: &str) -> Option<&AliasRecord> {
        self.alias_by_text
            .get(alias)
            .and_then(|id| self.aliases.get(id))
    }

    /// The aliases of one room, by id.
    pub(crate) fn aliases_of(&self, conference: u64) -> impl Iterator<Item = &AliasRecord> {
        self.aliases_by_room
            .get(&conference)
            .into_iter()
            .flatten()
            .filter_map(|id| self.aliases.get(id))
    }

    /// The room named `name_or_alias`, or owning that alias.
    pub(crate) fn find_room(&self, name_or_alias: &str) -> Option<&ConferenceRecord> {
        self.room_by_name
            .get(name_or_alias)
            .and_then(|id| self.conferences.get(id))
            .or_else(|| {
                self.alias_owner(name_or_alias)
                    .and_then(|a| self.conferences.get(&a.conference))
            })
    }

    /// Ids of the rooms with one of these names (an index lookup for `name=` and
    /// `name__in=` list filters).
    pub(crate) fn ids_named<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> BTreeSet<u64> {
        names
            .into_iter()
            .filter_map(|n| self.room_by_name.get(n).copied())
            .collect()
    }

    /// Ids of the rooms with one of these tags (an index lookup for `tag=` and `tag__in=`).
    pub(crate) fn ids_tagged<'a>(&self, tags: impl IntoIterator<Item = &'a str>) -> BTreeSet<u64> {
        tags.into_iter()
            .filter_map(|t| self.rooms_by_tag.get(t))
            .flatten()
            .copied()
            .collect()
    }

    /// The full `conference` JSON: every field, nested aliases and automatic participants
    /// (embedded objects, as Pexip reads them), `resource_uri`.
    pub(crate) fn conference_json(&self, record: &ConferenceRecord) -> Value {
        let aliases: Vec<&AliasRecord> = self.aliases_of(record.id).collect();
        let mut json = conference_json_with(record, &aliases);
        json["automatic_participants"] = Value::Array(
            self.auto_participants_of(record.id)
                .map(AutoParticipantRecord::nested_json)
                .collect(),
        );
        json
    }

    /// One automatic participant by id.
    pub(crate) fn auto_participant(&self, id: u64) -> Option<&AutoParticipantRecord> {
        self.auto_participants.get(&id)
    }

    /// Every automatic participant, in id order.
    pub(crate) fn auto_participants(&self) -> impl Iterator<Item = &AutoParticipantRecord> {
        self.auto_participants.values()
    }

    /// The automatic participants linked to room `conference`, in id order.
    pub(crate) fn auto_participants_of(
        &self,
        conference: u64,
    ) -> impl Iterator<Item = &AutoParticipantRecord> {
        self.auto_links
            .range((conference, 0)..=(conference, u64::MAX))
            .filter_map(|(_, id)| self.auto_participants.get(id))
    }

    /// The ids of the rooms automatic participant `id` is linked to, in id order.
    pub(crate) fn conferences_of_auto_participant(&self, id: u64) -> Vec<u64> {
        self.auto_links
            .iter()
            .filter(|(_, participant)| *participant == id)
            .map(|(conference, _)| *conference)
            .collect()
    }

    /// The `automatic_participant` JSON, with `conference` as the URIs of its rooms.
    pub(crate) fn auto_participant_json(&self, record: &AutoParticipantRecord) -> Value {
        let mut json = record.nested_json();
        json["conference"] = Value::Array(
            self.conferences_of_auto_participant(record.id)
                .into_iter()
                .map(|id| json!(format!("{CONFERENCE_PATH}{id}/")))
                .collect(),
        );
        json
    }

    /// Create an automatic participant (already validated). Returns the new id.
    pub(crate) fn create_auto_participant(
        &mut self,
        fields: Map<String, Value>,
        conferences: &[u64],
        now: &str,
    ) -> u64 {
        self.last_auto_participant_id += 1;
        let id = self.last_auto_participant_id;
        self.auto_participants.insert(
            id,
            AutoParticipantRecord {
                id,
                fields,
                creation_time: now.to_owned(),
            },
        );
        self.link_auto_participant(id, conferences);
        id
    }

    /// Replace an automatic participant's fields and, if given, its rooms.
    pub(crate) fn update_auto_participant(
        &mut self,
        id: u64,
        fields: Map<String, Value>,
        conferences: Option<&[u64]>,
    ) {
        if let Some(record) = self.auto_participants.get_mut(&id) {
            record.fields = fields;
        }
        if let Some(conferences) = conferences {
            self.link_auto_participant(id, conferences);
        }
    }

    /// Delete an automatic participant and its links. `false` if it did not exist.
    pub(crate) fn delete_auto_participant(&mut self, id: u64) -> bool {
        self.auto_links
            .retain(|(_, participant)| *participant != id);
        self.auto_participants.remove(&id).is_some()
    }

    /// Make `participants` the exact set of automatic participants of room `conference`.
    pub(crate) fn link_conference(&mut self, conference: u64, participants: &[u64]) {
        self.auto_links.retain(|(c, _)| *c != conference);
        self.auto_links
            .extend(participants.iter().map(|p| (conference, *p)));
    }

    /// Make `conferences` the exact set of rooms of automatic participant `id`.
    fn link_auto_participant(&mut self, id: u64, conferences: &[u64]) {
        self.auto_links
            .retain(|(_, participant)| *participant != id);
        self.auto_links.extend(conferences.iter().map(|c| (*c, id)));
    }

    /// Every room `keep` accepts, in id order, taken from `candidates` (ids an index lookup
    /// found) or else from every room. No JSON is built: a list builds it for its page only.
    pub(crate) fn conferences_matching(
        &self,
        candidates: Option<BTreeSet<u64>>,
        keep: impl Fn(&ConferenceRecord) -> bool,
    ) -> Vec<&ConferenceRecord> {
        match candidates {
            Some(ids) => ids
                .iter()
                .filter_map(|id| self.conferences.get(id))
                .filter(|c| keep(c))
                .collect(),
            None => self.conferences.values().filter(|c| keep(c)).collect(),
        }
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
        let record = ConferenceRecord {
            id,
            fields,
            creation_time: now.to_owned(),
            created_at,
        };
        self.index_room(&record);
        self.conferences.insert(id, record);
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
        if let Some(mut record) = self.conferences.remove(&id) {
            self.unindex_room(&record);
            record.fields = fields;
            self.index_room(&record);
            self.conferences.insert(id, record);
        }
        if let Some(aliases) = aliases {
            self.set_aliases(id, aliases, now);
        }
    }

    /// Make `aliases` the exact alias set of room `id`: keep the ones it already has (same
    /// text, same id), move ones given by URI, create the rest, delete what is not listed.
    fn set_aliases(&mut self, id: u64, aliases: Vec<AliasSpec>, now: &str) {
        let wanted: Vec<&str> = aliases.iter().map(|a| a.alias.as_str()).collect();
        let dropped: Vec<u64> = self
            .aliases_of(id)
            .filter(|a| !wanted.contains(&a.alias.as_str()))
            .map(|a| a.id)
            .collect();
        for alias_id in dropped {
            self.remove_alias(alias_id);
        }
        for spec in aliases {
            if let Some(existing) = spec.existing.and_then(|aid| self.aliases.get(&aid)) {
                let mut moved = existing.clone();
                moved.conference = id;
                self.replace_alias(moved);
                continue;
            }
            let kept = self
                .alias_owner(&spec.alias)
                .filter(|a| a.conference == id)
                .cloned();
            if let Some(mut kept) = kept {
                kept.description = spec.description;
                self.replace_alias(kept);
                continue;
            }
            self.last_alias_id += 1;
            let alias_id = self.last_alias_id;
            self.replace_alias(AliasRecord {
                id: alias_id,
                alias: spec.alias,
                conference: id,
                description: spec.description,
                view_order: 0,
                creation_time: now.to_owned(),
            });
        }
    }

    /// Delete a room and, by cascade, its aliases. `false` if it did not exist.
    pub(crate) fn delete_conference(&mut self, id: u64) -> bool {
        let Some(record) = self.conferences.remove(&id) else {
            return false;
        };
        self.unindex_room(&record);
        let aliases: Vec<u64> = self.aliases_of(id).map(|a| a.id).collect();
        for alias_id in aliases {
            self.remove_alias(alias_id);
        }
        self.auto_links.retain(|(conference, _)| *conference != id);
        true
    }

    /// Delete every room and alias (`DELETE` on the collection). Live conferences go on.
    pub(crate) fn delete_all_conferences(&mut self) {
        self.conferences.clear();
        self.room_by_name.clear();
        self.rooms_by_tag.clear();
        self.auto_links.clear();
        self.delete_all_aliases();
    }

    /// Create an alias (already validated). Returns the new id.
    pub(crate) fn create_alias(&mut self, write: AliasWrite, now: &str) -> u64 {
        self.last_alias_id += 1;
        let id = self.last_alias_id;
        self.replace_alias(AliasRecord {
            id,
            alias: write.alias,
            conference: write.conference,
            description: write.description,
            view_order: write.view_order,
            creation_time: now.to_owned(),
        });
        id
    }

    /// Apply a validated alias write to alias `id`.
    pub(crate) fn update_alias(&mut self, id: u64, write: AliasWrite) {
        if let Some(mut record) = self.aliases.get(&id).cloned() {
            record.alias = write.alias;
            record.conference = write.conference;
            record.description = write.description;
            record.view_order = write.view_order;
            self.replace_alias(record);
        }
    }

    /// Delete one alias. `false` if it did not exist.
    pub(crate) fn delete_alias(&mut self, id: u64) -> bool {
        self.remove_alias(id).is_some()
    }

    /// Delete every alias (`DELETE` on the alias collection).
    pub(crate) fn delete_all_aliases(&mut self) {
        self.aliases.clear();
        self.alias_by_text.clear();
        self.aliases_by_room.clear();
    }

    fn index_room(&mut self, record: &ConferenceRecord) {
        self.room_by_name
            .insert(record.text("name").to_owned(), record.id);
        self.rooms_by_tag
            .entry(record.text("tag").to_owned())
            .or_default()
            .insert(record.id);
    }

    fn unindex_room(&mut self, record: &ConferenceRecord) {
        let name = record.text("name");
        if self.room_by_name.get(name) == Some(&record.id) {
            self.room_by_name.remove(name);
        }
        let tag = record.text("tag");
        if let Some(ids) = self.rooms_by_tag.get_mut(tag) {
            ids.remove(&record.id);
            if ids.is_empty() {
                self.rooms_by_tag.remove(tag);
            }
        }
    }

    /// Insert or overwrite an alias record, moving its index entries.
    fn replace_alias(&mut self, record: AliasRecord) {
        self.remove_alias(record.id);
        self.alias_by_text.insert(record.alias.clone(), record.id);
        self.aliases_by_room
            .entry(record.conference)
            .or_default()
            .insert(record.id);
        self.aliases.insert(record.id, record);
    }

    fn remove_alias(&mut self, id: u64) -> Option<AliasRecord> {
        let record = self.aliases.remove(&id)?;
        if self.alias_by_text.get(&record.alias) == Some(&id) {
            self.alias_by_text.remove(&record.alias);
        }
        if let Some(ids) = self.aliases_by_room.get_mut(&record.conference) {
            ids.remove(&id);
            if ids.is_empty() {
                self.aliases_by_room.remove(&record.conference);
            }
        }
        Some(record)
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

    fn fields(name: &str, tag: &str) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("name".into(), json!(name));
        map.insert("tag".into(), json!(tag));
        map
    }

    fn spec(alias: &str, existing: Option<u64>) -> AliasSpec {
        AliasSpec {
            alias: alias.into(),
            description: String::new(),
            existing,
        }
    }

    fn alias_texts(store: &Store, room: u64) -> Vec<String> {
        store.aliases_of(room).map(|a| a.alias.clone()).collect()
    }

    #[test]
    fn the_indexes_follow_every_write() {
        let mut store = Store::default();
        let now = "2026-01-01T00:00:00";
        let a = store.create_conference(
            fields("a", "t1"),
            vec![spec("a@x", None)],
            now,
            Duration::ZERO,
        );
        let b = store.create_conference(
            fields("b", "t1"),
            vec![spec("b@x", None)],
            now,
            Duration::ZERO,
        );
        assert_eq!(store.ids_tagged(["t1"]), BTreeSet::from([a, b]));
        assert_eq!(store.ids_named(["a", "b", "c"]), BTreeSet::from([a, b]));
        assert!(store.name_taken("a", None) && !store.name_taken("a", Some(a)));

        // Rename and retag: the old keys are gone, the new ones point at the room.
        store.update_conference(a, fields("a2", "t2"), None, now);
        assert!(store.find_room("a").is_none());
        assert_eq!(store.find_room("a2").map(|r| r.id), Some(a));
        assert_eq!(store.ids_tagged(["t1"]), BTreeSet::from([b]));
        assert_eq!(store.ids_tagged(["t2"]), BTreeSet::from([a]));

        // An alias given by URI moves from b to a; b's other aliases go when not listed.
        let b_alias = store.alias_owner("b@x").unwrap().id;
        store.update_conference(
            a,
            fields("a2", "t2"),
            Some(vec![spec("b@x", Some(b_alias)), spec("new@x", None)]),
            now,
        );
        assert_eq!(alias_texts(&store, a), ["b@x", "new@x"]);
        assert!(alias_texts(&store, b).is_empty());
        assert!(store.alias_owner("a@x").is_none(), "dropped from a");
        assert_eq!(store.find_room("b@x").map(|r| r.id), Some(a));

        // Alias writes and deletes.
        let extra = store.create_alias(
            AliasWrite {
                alias: "extra@x".into(),
                conference: b,
                description: String::new(),
                view_order: 0,
            },
            now,
        );
        store.update_alias(
            extra,
            AliasWrite {
                alias: "renamed@x".into(),
                conference: b,
                description: String::new(),
                view_order: 1,
            },
        );
        assert!(store.alias_owner("extra@x").is_none());
        assert_eq!(alias_texts(&store, b), ["renamed@x"]);
        assert!(store.delete_alias(extra) && !store.delete_alias(extra));
        assert!(store.alias_owner("renamed@x").is_none());

        // Deleting a room cascades to its aliases and its index entries.
        assert!(store.delete_conference(a));
        assert!(store.find_room("a2").is_none() && store.find_room("new@x").is_none());
        assert!(store.ids_tagged(["t2"]).is_empty());
        store.delete_all_conferences();
        assert!(store.find_room("b").is_none() && store.aliases().next().is_none());
    }

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
