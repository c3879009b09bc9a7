//! Tastypie-style list queries (docs/pexip.md §1.3, §1.4): `field=value` and
//! `field__<lookup>=value` filters, `order_by=[-]field`, and `limit`/`offset` pagination with
//! the `{meta, objects}` envelope whose `next`/`previous` are paths keeping the other params.
//!
//! A parameter naming a field the resource does not have is refused with 400 by default
//! (Tastypie skips it silently), so a client's typo shows. [`FilterMode`] switches to
//! Tastypie's rule, and can make fields absent (as on a release without them), so a test can
//! watch a client get the unfiltered list for a filter it relies on.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::store::trailing_id;

/// How a field is compared when filtering and ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterKind {
    Text,
    Int,
    Bool,
    DateTime,
    /// A related resource URI in the given collection; filter by URI or bare id.
    Related(&'static str),
}

/// How list filters on fields the resource does not have are treated (docs/pexip.md §1.4);
/// the JSON body of `PUT /_sim/filters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterMode {
    /// `false` (default): such a filter is refused with 400, stricter than Pexip, so a
    /// client's typo shows. `true`: it is ignored and the list answered without it, as
    /// Tastypie does.
    #[serde(default)]
    pub ignore_unknown: bool,
    /// Fields to treat as absent from every list resource, as on a release without them
    /// (`"*"`: every field). A filter on one is a filter on an unknown field; ordering by
    /// one is refused.
    #[serde(default)]
    pub absent: Vec<String>,
}

impl FilterMode {
    /// Tastypie's rule with every field absent: every filter is ignored, whatever it names.
    pub fn ignore_all() -> Self {
        Self {
            ignore_unknown: true,
            absent: vec!["*".to_owned()],
        }
    }

    fn is_absent(&self, field: &str) -> bool {
        self.absent.iter().any(|f| f == "*" || f == field)
    }
}

/// A list resource: where it lives, what it can be filtered and ordered by, and how the
/// simulator treats filters on other fields.
#[derive(Debug, Clone)]
pub(crate) struct ListSpec<'a> {
    pub(crate) path: &'a str,
    pub(crate) fields: &'a [(&'static str, FilterKind)],
    pub(crate) default_limit: usize,
    pub(crate) max_limit: usize,
    pub(crate) mode: FilterMode,
}

impl ListSpec<'_> {
    fn kind(&self, field: &str) -> Option<FilterKind> {
        if self.mode.is_absent(field) {
            return None;
        }
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, kind)| *kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Exact,
    IExact,
    Contains,
    IContains,
    StartsWith,
    IStartsWith,
    EndsWith,
    IEndsWith,
    In,
    Lt,
    Lte,
    Gt,
    Gte,
    IsNull,
}

impl Lookup {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "exact" => Lookup::Exact,
            "iexact" => Lookup::IExact,
            "contains" => Lookup::Contains,
            "icontains" => Lookup::IContains,
            "startswith" => Lookup::StartsWith,
            "istartswith" => Lookup::IStartsWith,
            "endswith" => Lookup::EndsWith,
            "iendswith" => Lookup::IEndsWith,
            "in" => Lookup::In,
            "lt" => Lookup::Lt,
            "lte" => Lookup::Lte,
            "gt" => Lookup::Gt,
            "gte" => Lookup::Gte,
            "isnull" => Lookup::IsNull,
            _ => return None,
        })
    }

    fn allowed_on(self, kind: FilterKind) -> bool {
        use Lookup::*;
        match kind {
            FilterKind::Text => true,
            FilterKind::Int | FilterKind::DateTime => {
                matches!(self, Exact | In | Lt | Lte | Gt | Gte | IsNull)
            }
            FilterKind::Bool => matches!(self, Exact | IsNull),
            FilterKind::Related(_) => matches!(self, Exact | In | IsNull),
        }
    }
}

/// A filter value parsed for its field's kind.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Text(String),
    Int(i64),
    Bool(bool),
    DateTime(PrimitiveDateTime),
    Id(u64),
    List(Vec<Operand>),
}

#[derive(Debug, Clone)]
struct Filter {
    field: String,
    kind: FilterKind,
    lookup: Lookup,
    operand: Operand,
}

/// A parsed list query.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    filters: Vec<Filter>,
    order: Vec<(String, bool)>,
    limit: usize,
    offset: usize,
    /// Every parameter as given, for `next`/`previous`.
    params: Vec<(String, String)>,
}

/// Parse a query string against `spec`; the error is the `{"error"}` message for a 400.
pub(crate) fn parse(query: Option<&str>, spec: &ListSpec<'_>) -> Result<ListQuery, String> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let mut out = ListQuery {
        filters: Vec::new(),
        order: Vec::new(),
        limit: spec.default_limit,
        offset: 0,
        params: params.clone(),
    };
    for (key, value) in params {
        match key.as_str() {
            "format" => {}
            "limit" => out.limit = count_param("limit", &value)?,
            "offset" => out.offset = count_param("offset", &value)?,
            "order_by" => {
                let (field, descending) = match value.strip_prefix('-') {
                    Some(field) => (field, true),
                    None => (value.as_str(), false),
                };
                if spec.kind(field).is_none() {
                    return Err(format!("No matching '{field}' field for ordering on."));
                }
                out.order.push((field.to_owned(), descending));
            }
            _ => {
                if let Some(filter) = filter(&key, &value, spec)? {
                    out.filters.push(filter);
                }
            }
        }
    }
    // Tastypie: limit=0 means "all", capped like any limit at max_limit.
    if out.limit == 0 || out.limit > spec.max_limit {
        out.limit = spec.max_limit;
    }
    Ok(out)
}

fn count_param(name: &str, value: &str) -> Result<usize, String> {
    match value.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as usize),
        Ok(_) => Err(format!(
            "Invalid {name} '{value}' provided. Please provide a positive integer >= 0."
        )),
        Err(_) => Err(format!(
            "Invalid {name} '{value}' provided. Please provide a positive integer."
        )),
    }
}

/// One filter, or `None` when it names no field and the mode ignores such filters (Tastypie
/// looks at the field first and skips an unknown one before anything else).
fn filter(key: &str, value: &str, spec: &ListSpec<'_>) -> Result<Option<Filter>, String> {
    let mut bits = key.split("__");
    let field = bits.next().unwrap_or_default();
    let lookup_name = bits.next();
    let Some(kind) = spec.kind(field) else {
        if spec.mode.ignore_unknown {
            return Ok(None);
        }
        return Err(format!("The '{field}' field does not allow filtering."));
    };
    if bits.next().is_some() {
        return Err(format!(
            "Lookups are not allowed more than one level deep on the '{field}' field."
        ));
    }
    let lookup = match lookup_name {
        None => Lookup::Exact,
        Some(name) => Lookup::parse(name)
            .filter(|l| l.allowed_on(kind))
            .ok_or_else(|| format!("'{name}' is not an allowed filter on the '{field}' field."))?,
    };
    let operand = match lookup {
        Lookup::IsNull => Operand::Bool(parse_bool(value).ok_or_else(|| bad_value(field, value))?),
        Lookup::In => Operand::List(
            value
                .split(',')
                .map(|item| operand(kind, item).ok_or_else(|| bad_value(field, item)))
                .collect::<Result<_, _>>()?,
        ),
        _ => operand(kind, value).ok_or_else(|| bad_value(field, value))?,
    };
    Ok(Some(Filter {
        field: field.to_owned(),
        kind,
        lookup,
        operand,
    }))
}

fn bad_value(field: &str, value: &str) -> String {
    format!("Invalid value '{value}' for the '{field}' field.")
}

fn operand(kind: FilterKind, value: &str) -> Option<Operand> {
    match kind {
        FilterKind::Text => Some(Operand::Text(value.to_owned())),
        FilterKind::Int => value.trim().parse().ok().map(Operand::Int),
        FilterKind::Bool => parse_bool(value).map(Operand::Bool),
        FilterKind::DateTime => parse_datetime(value).map(Operand::DateTime),
        FilterKind::Related(collection) => trailing_id(value, collection).map(Operand::Id),
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "True" | "1" => Some(true),
        "false" | "False" | "0" => Some(false),
        _ => None,
    }
}

/// Parse a naive ISO datetime as Pexip writes it (fraction optional), or a bare date.
pub(crate) fn parse_datetime(value: &str) -> Option<PrimitiveDateTime> {
    let value = value.trim().trim_end_matches('Z').replacen(' ', "T", 1);
    let with_fraction =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(&value, with_fraction)
        .or_else(|_| PrimitiveDateTime::parse(&value, without))
        .ok()
        .or_else(|| {
            time::Date::parse(&value, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(|d| d.midnight())
        })
}

impl ListQuery {
    /// Whether the query orders its results (`order_by`); unordered lists keep id order.
    pub(crate) fn is_ordered(&self) -> bool {
        !self.order.is_empty()
    }

    /// `(offset, limit)` of the page asked for.
    pub(crate) fn window(&self) -> (usize, usize) {
        (self.offset, self.limit)
    }

    /// Whether an object whose top-level fields `field` gives passes every filter (lets a
    /// store test records before building their JSON).
    pub(crate) fn matches_by<'v>(&self, field: impl Fn(&str) -> Cow<'v, Value>) -> bool {
        self.filters
            .iter()
            .all(|f| f.matches_value(&field(&f.field)))
    }

    /// The texts an exact (`field=v`) or `field__in=a,b` filter on a text field allows, if the
    /// query has such a filter: a store can find the candidates in an index instead of
    /// testing every object (the filters still run on what it finds).
    pub(crate) fn exact_texts(&self, field: &str) -> Option<Vec<&str>> {
        self.filters
            .iter()
            .filter(|f| f.field == field && f.kind == FilterKind::Text)
            .find_map(|f| match (&f.lookup, &f.operand) {
                (Lookup::Exact, Operand::Text(t)) => Some(vec![t.as_str()]),
                (Lookup::In, Operand::List(items)) => items
                    .iter()
                    .map(|i| match i {
                        Operand::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            })
    }
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        self.matches_value(object.get(&self.field).unwrap_or(&Value::Null))
    }

    fn matches_value(&self, value: &Value) -> bool {
        match (&self.lookup, &self.operand) {
            (Lookup::IsNull, Operand::Bool(wanted)) => value.is_null() == *wanted,
            (Lookup::In, Operand::List(items)) => items
                .iter()
                .any(|item| compare(self.kind, value, item) == Some(Ordering::Equal)),
            (Lookup::Exact, operand) => compare(self.kind, value, operand) == Some(Ordering::Equal),
            (Lookup::Lt, operand) => compare(self.kind, value, operand) == Some(Ordering::Less),
            (Lookup::Lte, operand) => matches!(
                compare(self.kind, value, operand),
                Some(Ordering::Less | Ordering::Equal)
            ),
            (Lookup::Gt, operand) => compare(self.kind, value, operand) == Some(Ordering::Greater),
            (Lookup::Gte, operand) => matches!(
                compare(self.kind, value, operand),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            (lookup, Operand::Text(needle)) => {
                let Some(hay) = value.as_str() else {
                    return false;
                };
                let (hay_l, needle_l) = (hay.to_lowercase(), needle.to_lowercase());
                match lookup {
                    Lookup::IExact => hay_l == needle_l,
                    Lookup::Contains => hay.contains(needle.as_str()),
                    Lookup::IContains => hay_l.contains(&needle_l),
                    Lookup::StartsWith => hay.starts_with(needle.as_str()),
                    Lookup::IStartsWith => hay_l.starts_with(&needle_l),
                    Lookup::EndsWith => hay.ends_with(needle.as_str()),
                    Lookup::IEndsWith => hay_l.ends_with(&needle_l),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// Compare an object's value with a filter operand; `None` when incomparable (e.g. null).
fn compare(kind: FilterKind, value: &Value, operand: &Operand) -> Option<Ordering> {
    match (kind, operand) {
        (FilterKind::Text, Operand::Text(s)) => Some(value.as_str()?.cmp(s.as_str())),
        (FilterKind::Int, Operand::Int(n)) => Some(value.as_i64()?.cmp(n)),
        (FilterKind::Bool, Operand::Bool(b)) => Some(value.as_bool()?.cmp(b)),
        (FilterKind::DateTime, Operand::DateTime(at)) => {
            Some(parse_datetime(value.as_str()?)?.cmp(at))
        }
        (FilterKind::Related(collection), Operand::Id(id)) => {
            Some(trailing_id(value.as_str()?, collection)?.cmp(id))
        }
        _ => None,
    }
}

/// Order two JSON values for `order_by`: nulls first, then by type, then by value.
fn order_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Filter, order and paginate `objects` (already in id order) into the list envelope.
pub(crate) fn envelope(objects: Vec<Value>, query: &ListQuery, spec: &ListSpec<'_>) -> Value {
    let mut objects: Vec<Value> = objects
        .into_iter()
        .filter(|o| query.filters.iter().all(|f| f.matches(o)))
        .collect();
    // A stable sort keeps id order among equal keys.
    for (field, descending) in query.order.iter().rev() {
        objects.sort_by(|a, b| {
            let ord = order_values(
                a.get(field).unwrap_or(&Value::Null),
                b.get(field).unwrap_or(&Value::Null),
            );
            if *descending { ord.reverse() } else { ord }
        });
    }
    let total = objects.len();
    let (offset, limit) = query.window();
    let page: Vec<Value> = objects.into_iter().skip(offset).take(limit).collect();
    envelope_page(page, total, query, spec)
}

/// The list envelope of one `page` out of `total` matching objects (already filtered,
/// ordered and cut to [`ListQuery::window`]).
pub(crate) fn envelope_page(
    page: Vec<Value>,
    total: usize,
    query: &ListQuery,
    spec: &ListSpec<'_>,
) -> Value {
    let (limit, offset) = (query.limit, query.offset);
    // Tastypie's paginator: no `previous` when it would start before 0.
    let previous =
        (offset >= limit && offset > 0).then(|| page_path(spec.path, query, offset - limit));
    let next = (offset + limit < total).then(|| page_path(spec.path, query, offset + limit));
    json!({
        "meta": {
            "limit": limit,
            "next": next,
            "offset": offset,
            "previous": previous,
            "total_count": total,
        },
        "objects": page,
    })
}

/// `path?<params>` with `limit` and `offset` set and every other parameter kept in order.
fn page_path(path: &str, query: &ListQuery, offset: usize) -> String {
    let mut params = query.params.clone();
    for (name, value) in [("limit", query.limit), ("offset", offset)] {
        match params.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_string(),
            None => params.push((name.to_owned(), value.to_string())),
        }
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, FilterKind)] = &[
        ("id", FilterKind::Int),
        ("name", FilterKind::Text),
        ("allow_guests", FilterKind::Bool),
        ("creation_time", FilterKind::DateTime),
        ("conference", FilterKind::Related("/c/")),
        ("participant_limit", FilterKind::Int),
    ];
    const SPEC: ListSpec<'static> = ListSpec {
        path: "/r/",
        fields: FIELDS,
        default_limit: 2,
        max_limit: 3,
        mode: FilterMode {
            ignore_unknown: false,
            absent: Vec::new(),
        },
    };

    fn objects() -> Vec<Value> {
        vec![
            json!({"id": 1, "name": "Alpha", "allow_guests": true, "creation_time": "2025-01-01T10:00:00.000001", "conference": "/c/7/", "participant_limit": null}),
            json!({"id": 2, "name": "beta", "allow_guests": false, "creation_time": "2025-01-02T10:00:00.000000", "conference": "/c/8/", "participant_limit": 5}),
            json!({"id": 3, "name": "alphabet", "allow_guests": true, "creation_time": "2025-01-03T10:00:00.5", "conference": "/c/7/", "participant_limit": 10}),
        ]
    }

    fn ids(query: &str) -> Vec<i64> {
        let q = parse(Some(query), &SPEC).unwrap();
        envelope(objects(), &q, &SPEC)["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn exact_and_in_text_filters_name_their_index_keys() {
        let keys = |q: &str| {
            let query = parse(Some(q), &SPEC).unwrap();
            query
                .exact_texts("name")
                .map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>())
        };
        assert_eq!(keys("name=beta"), Some(vec!["beta".to_owned()]));
        assert_eq!(
            keys("name__in=a,b&limit=0"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        // Lookups an index cannot answer leave the store to scan.
        assert_eq!(keys("name__iexact=BETA"), None);
        assert_eq!(keys("name__startswith=a"), None);
        assert_eq!(keys("id=1"), None);
    }

    #[test]
    fn lookups_filter_as_django_does() {
        let cases: &[(&str, &[i64])] = &[
            ("name=beta", &[2]),
            ("name__iexact=ALPHA", &[1]),
            ("name__startswith=alpha", &[3]),
            ("name__istartswith=alpha&limit=0", &[1, 3]),
            ("name__contains=lph", &[1, 3]),
            ("name__icontains=BET&limit=0", &[2, 3]),
            ("name__endswith=ta", &[2]),
            ("name__iendswith=A", &[1, 2]),
            ("id__in=1,3", &[1, 3]),
            ("id__gte=2&limit=0", &[2, 3]),
            ("id__lt=2", &[1]),
            ("allow_guests=True&limit=0", &[1, 3]),
            ("allow_guests=false", &[2]),
            ("participant_limit__isnull=true", &[1]),
            ("participant_limit__gt=5", &[3]),
            ("creation_time__gt=2025-01-02T10:00:00&limit=0", &[3]),
            ("creation_time__lte=2025-01-02", &[1]),
            ("conference=/c/7/&limit=0", &[1, 3]),
            ("conference=8", &[2]),
            ("order_by=-id&limit=0", &[3, 2, 1]),
            ("order_by=name&limit=0", &[1, 3, 2]),
            ("format=json&offset=2", &[3]),
        ];
        for (query, expected) in cases {
            assert_eq!(ids(query), *expected, "{query}");
        }
    }

    #[test]
    fn bad_queries_are_refused_with_a_message() {
        for query in [
            "colour=red",
            "name__regex=a",
            "name__startswith__x=a",
            "id=one",
            "allow_guests__contains=t",
            "allow_guests=maybe",
            "order_by=colour",
            "limit=-1",
            "offset=x",
        ] {
            assert!(
                parse(Some(query), &SPEC).is_err(),
                "{query} should be refused"
            );
        }
    }

    #[test]
    fn in_tastypie_mode_filters_on_unknown_or_absent_fields_are_ignored() {
        let ids_in = |mode: FilterMode, query: &str| -> Result<Vec<i64>, String> {
            let spec = ListSpec { mode, ..SPEC };
            let q = parse(Some(query), &spec)?;
            Ok(envelope(objects(), &q, &spec)["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_i64().unwrap())
                .collect())
        };
        let tastypie = FilterMode {
            ignore_unknown: true,
            absent: Vec::new(),
        };
        // Unknown: ignored, the rest of the query still applies.
        assert_eq!(
            ids_in(tastypie.clone(), "colour=red&limit=0"),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(
            ids_in(tastypie.clone(), "colour__startswith__x=r&name=beta"),
            Ok(vec![2])
        );
        // Known fields still filter, and a bad lookup on one is still refused.
        assert_eq!(ids_in(tastypie.clone(), "name=beta"), Ok(vec![2]));
        assert!(ids_in(tastypie, "name__regex=a").is_err());
        // Absent fields are unknown.
        let no_name = FilterMode {
            ignore_unknown: true,
            absent: vec!["name".into()],
        };
        assert_eq!(
            ids_in(no_name.clone(), "name__startswith=alpha&limit=0"),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(ids_in(no_name.clone(), "id=2&name=x"), Ok(vec![2]));
        assert!(ids_in(no_name, "order_by=name").is_err());
        assert_eq!(
            ids_in(FilterMode::ignore_all(), "id=2&name=beta&limit=0"),
            Ok(vec![1, 2, 3])
        );
        // Absent but not ignored: refused, as an unknown field is by default.
        let strict = FilterMode {
            ignore_unknown: false,
            absent: vec!["name".into()],
        };
        assert!(ids_in(strict, "name=beta").is_err());
    }

    #[test]
    fn pages_link_with_paths_that_keep_other_params() {
        let q = parse(Some("name__icontains=a&limit=1&offset=1"), &SPEC).unwrap();
        let page = envelope(objects(), &q, &SPEC);
        assert_eq!(
            page["meta"],
            json!({"limit": 1, "offset": 1, "total_count": 3,
                   "next": "/r/?name__icontains=a&limit=1&offset=2",
                   "previous": "/r/?name__icontains=a&limit=1&offset=0"})
        );
        let q = parse(Some("limit=50"), &SPEC).unwrap();
        let page = envelope(objects(), &q, &SPEC);
        assert_eq!(page["meta"]["limit"], 3, "capped at max_limit");
        assert_eq!(page["meta"]["next"], Value::Null);
        assert_eq!(page["meta"]["previous"], Value::Null);
    }
}
