//! Extractors that refuse a request the way the replaced FastAPI service did before its
//! handlers ran, so its callers see the same answers.
//!
//! - [`ApiQuery`]: query parameters read as FastAPI reads them (by name, the last of a
//!   repeated one wins, unknown ones ignored) and converted as Pydantic 2 converts them
//!   (booleans `true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n` in any case; integers
//!   with surrounding spaces, `_` separators or a `.0` fraction). A missing or ill-typed one is
//!   422 with FastAPI's `detail` list, every problem listed.
//! - [`ApiJson`]: a JSON object body. No `Content-Type` is read as JSON, as FastAPI did
//!   before 0.132 made it strict (https://fastapi.tiangolo.com/advanced/strict-content-type/;
//!   the replaced service predates it); another non-JSON type, an empty body, JSON that does
//!   not parse, a body that is not an object, or fields of the wrong type are 422 like FastAPI.
//! - [`ApiPath`], [`ApiBytes`]: the error envelope on rejection (400, 413).
//!
//! The messages and types are Pydantic's, checked against FastAPI 0.165 / Pydantic 2.14.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ApiError, FieldError, Loc};

/// A query parameter struct, read from a [`QueryReader`]. Each field reads its parameter
/// (which records a problem when it is missing or ill-typed) so that every problem is
/// reported at once, as FastAPI does; the value is used only when none was recorded.
pub trait FromQuery: Sized {
    fn from_query(query: &mut QueryReader) -> Self;
}

/// The query string of one request, and the problems found reading it.
pub struct QueryReader {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl QueryReader {
    fn new(query: Option<&str>) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The last value of `name` (Starlette's `QueryParams` keeps the last of repeats).
    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn refuse(&mut self, name: &str, kind: &str, msg: &str, input: Value) {
        self.errors.push(FieldError::new(
            vec![Loc::Name("query".into()), Loc::Name(name.into())],
            kind,
            msg,
            input,
        ));
    }

    /// A required text parameter (an empty value is a value).
    pub fn required_str(&mut self, name: &str) -> String {
        match self.raw(name) {
            Some(value) => value.to_owned(),
            None => {
                self.refuse(name, "missing", "Field required", Value::Null);
                String::new()
            }
        }
    }

    /// A boolean parameter, `default` when absent.
    pub fn bool_or(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match pydantic_bool(raw) {
            Some(value) => value,
            None => {
                let input = Value::String(raw.to_owned());
                self.refuse(
                    name,
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input",
                    input,
                );
                default
            }
        }
    }

    /// A required integer parameter.
    pub fn required_int(&mut self, name: &str) -> i64 {
        let Some(raw) = self.raw(name) else {
            self.refuse(name, "missing", "Field required", Value::Null);
            return 0;
        };
        match pydantic_int(raw) {
            Some(value) => value,
            None => {
                let input = Value::String(raw.to_owned());
                self.refuse(
                    name,
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer",
                    input,
                );
                0
            }
        }
    }
}

/// A string as Pydantic 2 reads a boolean: exactly one of these words, any case, no spaces.
pub fn pydantic_bool(raw: &str) -> Option<bool> {
    const TRUE: [&str; 6] = ["1", "on", "t", "true", "y", "yes"];
    const FALSE: [&str; 6] = ["0", "off", "f", "false", "n", "no"];
    if TRUE.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| raw.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// A string as Pydantic 2 reads an integer: surrounding whitespace ignored, an optional sign,
/// digits with single `_` between them, and an optional fraction of zeros (`1.0`).
pub fn pydantic_int(raw: &str) -> Option<i64> {
    let s = raw.trim();
    let s = match s.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => s,
    };
    let (sign, digits) = match s.as_bytes().first()? {
        b'-' => ("-", &s[1..]),
        b'+' => ("", &s[1..]),
        _ => ("", s),
    };
    let bytes = digits.as_bytes();
    let well_formed = !bytes.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit)
        && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    format!("{sign}{}", digits.replace('_', "")).parse().ok()
}

/// Query parameters of type `T` (see [`FromQuery`]), or 422 listing every problem.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: FromQuery,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut reader = QueryReader::new(parts.uri.query());
        let value = T::from_query(&mut reader);
        if reader.errors.is_empty() {
            Ok(Self(value))
        } else {
            Err(ApiError::RequestValidation(reader.errors))
        }
    }
}

/// A JSON object body deserialised into `T`, or 422 as FastAPI answers it.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = is_json_content_type(req.headers());
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_rejected(e.status(), e.body_text()))?;
        json_body(&bytes, json_type)
            .map(Self)
            .map_err(ApiError::RequestValidation)
    }
}

/// Whether FastAPI would parse the body as JSON: no `Content-Type` (before 0.132), or
/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", subtype)) => subtype == "json" || subtype.ends_with("+json"),
        _ => false,
    }
}

fn body_loc(rest: impl IntoIterator<Item = Loc>) -> Vec<Loc> {
    std::iter::once(Loc::Name("body".into()))
        .chain(rest)
        .collect()
}

const NOT_AN_OBJECT: &str = "Input should be a valid dictionary or object to extract fields from";

/// The body as `T`, or FastAPI's list of problems.
fn json_body<T: DeserializeOwned>(bytes: &[u8], json_type: bool) -> Result<T, Vec<FieldError>> {
    if bytes.is_empty() {
        return Err(vec![FieldError::new(
            body_loc([]),
            "missing",
            "Field required",
            Value::Null,
        )]);
    }
    if !json_type {
        // FastAPI hands the raw body to the model, which is not a dictionary.
        let input = Value::String(String::from_utf8_lossy(bytes).into_owned());
        return Err(vec![FieldError::new(
            body_loc([]),
            "model_attributes_type",
            NOT_AN_OBJECT,
            input,
        )]);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        vec![FieldError {
            ctx: Some(serde_json::json!({ "error": json_error_text(&e) })),
            ..FieldError::new(
                body_loc([Loc::Index(json_error_offset(bytes, &e))]),
                "json_invalid",
                "JSON decode error",
                Value::Object(Map::new()),
            )
        }]
    })?;
    let Value::Object(mut object) = value else {
        return Err(vec![FieldError::new(
            body_loc([]),
            "model_attributes_type",
            NOT_AN_OBJECT,
            value,
        )]);
    };
    // serde stops at the first problem; FastAPI lists them all. Take the field at fault out
    // and try again, until the rest deserialises (or nothing more can be blamed on a field).
    let mut errors = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(Value::Object(object.clone())) {
            Ok(value) if errors.is_empty() => return Ok(value),
            Ok(_) => return Err(errors),
            Err(e) => {
                let (field, error) = field_error(&object, &e);
                let blamed = field.and_then(|f| object.remove(&f));
                if blamed.is_none() && !errors.is_empty() {
                    // A problem only the removals caused (a required field now missing).
                    return Err(errors);
                }
                errors.push(error);
                if blamed.is_none() {
                    return Err(errors);
                }
            }
        }
    }
}

/// The top-level field a serde error is about, and the problem as Pydantic words it.
fn field_error(
    object: &Map<String, Value>,
    e: &serde_path_to_error::Error<serde_json::Error>,
) -> (Option<String>, FieldError) {
    use serde_path_to_error::Segment;
    let message = e.inner().to_string();
    let mut path: Vec<String> = e
        .path()
        .iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            _ => None,
        })
        .collect();
    // `deny_unknown_fields` reports at the object, naming the field in the message.
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    if let Some(name) = &unknown
        && path.last() != Some(name)
    {
        path.push(name.clone());
    }
    let field = path.first().cloned();
    let input = field
        .as_ref()
        .and_then(|f| object.get(f))
        .cloned()
        .unwrap_or(Value::Null);
    let loc = body_loc(path.into_iter().map(Loc::Name));
    let (kind, msg): (&str, String) = if unknown.is_some() {
        ("extra_forbidden", "Extra inputs are not permitted".into())
    } else if message.contains("expected a string") {
        ("string_type", "Input should be a valid string".into())
    } else if message.contains("expected a boolean") {
        ("bool_type", "Input should be a valid boolean".into())
    } else if ["expected u", "expected i", "expected an integer"]
        .iter()
        .any(|m| message.contains(m))
    {
        ("int_type", "Input should be a valid integer".into())
    } else if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
    {
        return (
            None,
            FieldError::new(
                body_loc([Loc::Name(name.to_owned())]),
                "missing",
                "Field required",
                Value::Null,
            ),
        );
    } else {
        ("value_error", format!("Value error, {message}"))
    };
    (field, FieldError::new(loc, kind, &msg, input))
}

/// serde_json's message without its " at line L column C" (the position is in `loc`).
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The character offset Python's `json` reports for `e`: the character at fault (the start
/// of a misspelt `null`/`true`/`false`), or the end of the input when it ended too early.
fn json_error_offset(bytes: &[u8], e: &serde_json::Error) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = text.chars().collect();
    let line_start: usize = text
        .split('\n')
        .take(e.line().saturating_sub(1))
        .map(|line| line.chars().count() + 1)
        .sum();
    let mut offset = if e.is_eof() {
        line_start + e.column()
    } else {
        line_start + e.column().saturating_sub(1)
    };
    if e.to_string().starts_with("expected ident") {
        while offset > 0 && chars.get(offset - 1).is_some_and(char::is_ascii_alphabetic) {
            offset -= 1;
        }
    }
    offset.min(chars.len())
}

/// `axum::extract::Path` with the envelope on rejection.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| ApiError::InvalidPath(e.body_text()))
    }
}

/// The raw body with the envelope on rejection (413 when over the route's limit).
pub struct ApiBytes(pub axum::body::Bytes);

impl<S> FromRequest<S> for ApiBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| body_rejected(e.status(), e.body_text()))
    }
}

/// A body axum could not buffer: over the route's limit (413), or unreadable.
fn body_rejected(status: StatusCode, detail: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge(detail)
    } else {
        ApiError::BodyUnreadable(detail)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn booleans_read_as_pydantic_reads_them() {
        for raw in ["true", "True", "TRUE", "1", "yes", "On", "t", "Y"] {
            assert_eq!(pydantic_bool(raw), Some(true), "{raw}");
        }
        for raw in ["false", "False", "0", "NO", "off", "f", "n"] {
            assert_eq!(pydantic_bool(raw), Some(false), "{raw}");
        }
        for raw in ["", " true", "true ", "maybe", "2", "yess", "nope"] {
            assert_eq!(pydantic_bool(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn integers_read_as_pydantic_reads_them() {
        for (raw, want) in [
            ("5", 5),
            (" 5 ", 5),
            ("+5", 5),
            ("-3", -3),
            ("1_000", 1000),
            ("1.0", 1),
            ("7.00", 7),
        ] {
            assert_eq!(pydantic_int(raw), Some(want), "{raw:?}");
        }
        for raw in [
            "", "abc", "1.5", "1__0", "_1", "1_", "+", "0x10", "1e3", "--1",
        ] {
            assert_eq!(pydantic_int(raw), None, "{raw:?}");
        }
    }

    #[derive(Debug)]
    struct Q {
        flag: bool,
        count: i64,
        name: String,
    }

    impl FromQuery for Q {
        fn from_query(q: &mut QueryReader) -> Self {
            Self {
                flag: q.bool_or("flag", true),
                count: q.required_int("count"),
                name: q.required_str("name"),
            }
        }
    }

    fn read(query: &str) -> Result<Q, Vec<FieldError>> {
        let mut reader = QueryReader::new(Some(query));
        let q = Q::from_query(&mut reader);
        if reader.errors.is_empty() {
            Ok(q)
        } else {
            Err(reader.errors)
        }
    }

    #[test]
    fn a_query_reports_every_problem_in_fastapis_words() {
        let q = read("flag=No&count=3&name=&extra=1").unwrap();
        assert!(!q.flag);
        assert_eq!((q.count, q.name.as_str()), (3, ""));
        assert!(read("count=1&name=a").unwrap().flag, "the default");
        assert!(
            read("flag=no&flag=yes&count=1&name=a").unwrap().flag,
            "the last wins"
        );
        let errors = read("flag=maybe&count=abc").unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            json!([
                {"type": "bool_parsing", "loc": ["query", "flag"],
                 "msg": "Input should be a valid boolean, unable to interpret input",
                 "input": "maybe"},
                {"type": "int_parsing", "loc": ["query", "count"],
                 "msg": "Input should be a valid integer, unable to parse string as an integer",
                 "input": "abc"},
                {"type": "missing", "loc": ["query", "name"], "msg": "Field required",
                 "input": null},
            ])
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only deserialised
    struct Body {
        tag: Option<String>,
        allow_guests: Option<bool>,
        limit: Option<u32>,
    }

    fn body(raw: &str, json_type: bool) -> Value {
        let errors = json_body::<Body>(raw.as_bytes(), json_type).unwrap_err();
        serde_json::to_value(errors).unwrap()
    }

    #[test]
    fn bodies_are_refused_as_fastapi_refuses_them() {
        assert!(json_body::<Body>(br#"{"tag": "x"}"#, true).is_ok());
        assert_eq!(
            body("", true),
            json!([{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}])
        );
        assert_eq!(
            body(r#"{"tag": "a"}"#, false),
            json!([{"type": "model_attributes_type", "loc": ["body"], "msg": NOT_AN_OBJECT,
                    "input": "{\"tag\": \"a\"}"}])
        );
        assert_eq!(
            body("[1]", true),
            json!([{"type": "model_attributes_type", "loc": ["body"], "msg": NOT_AN_OBJECT,
                    "input": [1]}])
        );
        // FastAPI: `{"tag": ` → loc ["body", 8]; `nope` → ["body", 0].
        let eof = body(r#"{"tag": "#, true);
        assert_eq!(eof[0]["type"], "json_invalid");
        assert_eq!(eof[0]["loc"], json!(["body", 8]));
        assert_eq!(eof[0]["msg"], "JSON decode error");
        assert_eq!(eof[0]["input"], json!({}));
        assert!(eof[0]["ctx"]["error"].is_string());
        assert_eq!(body("nope", true)[0]["loc"], json!(["body", 0]));
        assert_eq!(
            body("{\n  \"tag\": x}", true)[0]["loc"],
            json!(["body", 11])
        );
        assert_eq!(
            body(
                r#"{"tag": 5, "allow_guests": "maybe", "name": "z", "limit": -1}"#,
                true
            ),
            // Every problem, in field-name order (FastAPI: the model's field order).
            json!([
                {"type": "bool_type", "loc": ["body", "allow_guests"],
                 "msg": "Input should be a valid boolean", "input": "maybe"},
                {"type": "int_type", "loc": ["body", "limit"],
                 "msg": "Input should be a valid integer", "input": -1},
                {"type": "extra_forbidden", "loc": ["body", "name"],
                 "msg": "Extra inputs are not permitted", "input": "z"},
                {"type": "string_type", "loc": ["body", "tag"],
                 "msg": "Input should be a valid string", "input": 5},
            ])
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json_content_type(&headers)
        };
        assert!(
            is_json_content_type(&HeaderMap::new()),
            "none: read as JSON"
        );
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(with(json), "{json}");
        }
        for other in ["text/plain", "application/x-www-form-urlencoded", "json"] {
            assert!(!with(other), "{other}");
        }
    }
}
