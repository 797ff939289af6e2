//! From a request body to records, and from records to a RowBinary chunk.
//!
//! A body is one JSON object, a JSON array of objects, or NDJSON (one object per
//! line). Each record is parsed into a lenient [`Value`] that accepts any JSON, so
//! that a record with a wrong type is rejected alone, with its index, the field and
//! the reason, while the others are kept. Only a body that is not JSON at all is
//! refused whole (400); in NDJSON a line that is not JSON is rejected alone.
//!
//! Strings without escapes are borrowed from the body: parsing allocates one
//! vector per object and nothing per string, which is most of the speed.

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Any JSON value, with strings borrowed from the body where possible and objects
/// kept as ordered lists of fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl Value<'_> {
    /// The JSON type's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(v) => Some(v as f64),
            Value::UInt(v) => Some(v as f64),
            Value::Float(v) => Some(v),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut fields = Vec::with_capacity(16);
        while let Some(key) = map.next_key::<Key<'de>>()? {
            fields.push((key.0, map.next_value()?));
        }
        Ok(Value::Object(fields))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A record that was not stored, and why: the `rejected` entries of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position of the record in the request, from 0 (the line, from 0, in NDJSON).
    pub index: usize,
    /// The offending field, e.g. `timestamp` or `properties.plan`; `record` when the
    /// record as a whole is wrong.
    pub field: String,
    pub reason: String,
    /// A stable, low-cardinality code for metrics (`missing`, `invalid_type`, ...).
    #[serde(skip)]
    pub code: &'static str,
}

impl Rejection {
    pub fn new(field: impl Into<String>, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            index: 0,
            field: field.into(),
            reason: reason.into(),
            code,
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new(field, "missing", "is required")
    }

    pub fn invalid_type(field: &str, expected: &str, got: &Value) -> Self {
        Self::new(
            field,
            "invalid_type",
            format!("must be {expected}, not {}", got.kind()),
        )
    }
}

/// How the body is framed, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One object or an array of objects.
    Json,
    /// One object per line.
    Ndjson,
}

impl Framing {
    /// The framing for a `Content-Type`, or `None` for one we do not read.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Self> {
        let Some(content_type) = content_type else {
            return Some(Framing::Json);
        };
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            // curl -d sends form-urlencoded by default; the body is still JSON.
            ""
            | "application/json"
            | "text/json"
            | "text/plain"
            | "application/x-www-form-urlencoded" => Some(Framing::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(Framing::Ndjson),
            _ => None,
        }
    }
}

/// Why a whole body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefused {
    #[error("the body is empty: send a JSON object, a JSON array or NDJSON")]
    Empty,
    #[error("the body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the body holds {got} records; the limit is {limit} per request")]
    TooManyRecords { got: usize, limit: usize },
}

/// The outcome of a body: accepted rows encoded, rejected records explained.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub rows: usize,
    pub data: BytesMut,
    pub rejected: Vec<Rejection>,
}

/// Splits `body` into records and runs `encode` on each; `encode` appends one
/// RowBinary row to the buffer or says why the record is rejected (and then
/// must not have written anything).
pub fn encode_body<F>(
    body: &[u8],
    framing: Framing,
    max_records: usize,
    mut encode: F,
) -> Result<EncodedBatch, BodyRefused>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyRefused::Empty);
    }
    let mut batch = EncodedBatch {
        data: BytesMut::with_capacity(body.len()),
        ..EncodedBatch::default()
    };
    let mut take = |index: usize, record: Result<Value, Rejection>, batch: &mut EncodedBatch| {
        let outcome = record.and_then(|value| match value {
            Value::Object(_) => encode(&value, &mut batch.data),
            other => Err(Rejection::invalid_type("record", "a JSON object", &other)),
        });
        match outcome {
            Ok(()) => batch.rows += 1,
            Err(mut rejection) => {
                rejection.index = index;
                batch.rejected.push(rejection);
            }
        }
    };
    match framing {
        Framing::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                let hint = if e.to_string().contains("trailing characters") {
                    " (several objects one per line are NDJSON: send them with Content-Type: application/x-ndjson)"
                } else {
                    ""
                };
                BodyRefused::Syntax(format!("{e}{hint}"))
            })?;
            match value {
                Value::Array(records) => {
                    if records.len() > max_records {
                        return Err(BodyRefused::TooManyRecords {
                            got: records.len(),
                            limit: max_records,
                        });
                    }
                    for (index, record) in records.into_iter().enumerate() {
                        take(index, Ok(record), &mut batch);
                    }
                }
                single => take(0, Ok(single), &mut batch),
            }
        }
        Framing::Ndjson => {
            let lines = body.split(|&b| b == b'\n');
            let count = body.split(|&b| b == b'\n').filter(|l| !is_blank(l)).count();
            if count > max_records {
                return Err(BodyRefused::TooManyRecords {
                    got: count,
                    limit: max_records,
                });
            }
            for (index, line) in lines.filter(|l| !is_blank(l)).enumerate() {
                let record = serde_json::from_slice::<Value>(line).map_err(|e| {
                    Rejection::new("record", "invalid_json", format!("not valid JSON: {e}"))
                });
                take(index, record, &mut batch);
            }
        }
    }
    Ok(batch)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str, framing: Framing) -> (Vec<String>, Vec<Rejection>) {
        let mut seen = Vec::new();
        let batch = encode_body(body.as_bytes(), framing, 100, |v, _| {
            let Value::Object(fields) = v else {
                unreachable!()
            };
            match fields.iter().find(|(k, _)| k == "event") {
                Some((_, Value::Str(s))) => {
                    seen.push(s.to_string());
                    Ok(())
                }
                _ => Err(Rejection::missing("event")),
            }
        })
        .unwrap();
        assert_eq!(batch.rows, seen.len());
        (seen, batch.rejected)
    }

    #[test]
    fn an_object_an_array_and_ndjson_are_all_records() {
        assert_eq!(names(r#"{"event":"a"}"#, Framing::Json).0, ["a"]);
        assert_eq!(
            names(r#"[{"event":"a"},{"event":"b"}]"#, Framing::Json).0,
            ["a", "b"]
        );
        assert_eq!(
            names("{\"event\":\"a\"}\n\n{\"event\":\"b\"}\n", Framing::Ndjson).0,
            ["a", "b"]
        );
    }

    #[test]
    fn a_bad_record_is_rejected_alone_with_its_index() {
        let (ok, rejected) = names(
            r#"[{"event":"a"}, 7, {"x":1}, {"event":"d"}]"#,
            Framing::Json,
        );
        assert_eq!(ok, ["a", "d"]);
        assert_eq!(rejected.len(), 2);
        assert_eq!(
            (rejected[0].index, rejected[0].field.as_str()),
            (1, "record")
        );
        assert_eq!(
            (rejected[1].index, rejected[1].field.as_str()),
            (2, "event")
        );
    }

    #[test]
    fn a_broken_ndjson_line_is_rejected_alone() {
        let (ok, rejected) = names(
            "{\"event\":\"a\"}\n{\"event\":\n{\"event\":\"c\"}",
            Framing::Ndjson,
        );
        assert_eq!(ok, ["a", "c"]);
        assert_eq!(rejected[0].index, 1);
        assert!(rejected[0].reason.contains("not valid JSON"));
    }

    #[test]
    fn bodies_that_are_not_json_or_too_long_are_refused_whole() {
        let refuse = |body: &str, framing, max| {
            encode_body(body.as_bytes(), framing, max, |_, _| Ok(())).unwrap_err()
        };
        assert!(matches!(
            refuse("  ", Framing::Json, 10),
            BodyRefused::Empty
        ));
        assert!(matches!(
            refuse("{\"a\":", Framing::Json, 10),
            BodyRefused::Syntax(_)
        ));
        let err = refuse("{}\n{}", Framing::Json, 10);
        assert!(err.to_string().contains("application/x-ndjson"), "{err}");
        assert!(matches!(
            refuse("[{},{},{}]", Framing::Json, 2),
            BodyRefused::TooManyRecords { got: 3, limit: 2 }
        ));
        assert!(matches!(
            refuse("{}\n{}\n{}\n", Framing::Ndjson, 2),
            BodyRefused::TooManyRecords { got: 3, limit: 2 }
        ));
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body = br#"{"a":"plain","b":"esc\"aped"}"#;
        let Value::Object(fields) = serde_json::from_slice::<Value>(body).unwrap() else {
            panic!()
        };
        assert!(matches!(&fields[0].1, Value::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&fields[1].1, Value::Str(Cow::Owned(s)) if s == "esc\"aped"));
    }
}
