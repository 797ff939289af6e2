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
use std::cell::Cell;
use std::fmt;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::budget::{Budget, OverBudget};

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
        let remaining = Cell::new(usize::MAX);
        let over = Cell::new(false);
        deserializer.deserialize_any(ValueVisitor {
            remaining: &remaining,
            over: &over,
        })
    }
}

/// Parses one value while counting every value in it against `remaining`;
/// `over` tells the caller that the count, not the syntax, stopped the parse.
#[derive(Clone, Copy)]
struct ValueSeed<'c> {
    remaining: &'c Cell<usize>,
    over: &'c Cell<bool>,
}

impl<'de> de::DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value<'de>, D::Error> {
        deserializer.deserialize_any(ValueVisitor {
            remaining: self.remaining,
            over: self.over,
        })
    }
}

struct ValueVisitor<'c> {
    remaining: &'c Cell<usize>,
    over: &'c Cell<bool>,
}

impl ValueVisitor<'_> {
    fn seed(&self) -> ValueSeed<'_> {
        ValueSeed {
            remaining: self.remaining,
            over: self.over,
        }
    }

    /// Takes one value from the budget.
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.remaining.get().checked_sub(1) {
            Some(left) => {
                self.remaining.set(left);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom("too many values in one record"))
            }
        }
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value<'de>, E> {
        self.spend()?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        self.spend()?;
        // Grown as elements arrive: a size hint is the sender's word, not a fact.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.seed())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        self.spend()?;
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            fields.push((key.0, map.next_value_seed(self.seed())?));
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
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

/// The outcome of a body: accepted rows encoded, rejected records explained.
#[derive(Debug, Default)]
pub struct EncodedBatch {
    pub rows: usize,
    pub data: BytesMut,
    pub rejected: Vec<Rejection>,
}

/// Splits `body` into records and runs `encode` on each as it is parsed; `encode`
/// appends one RowBinary row to the buffer or says why the record is rejected
/// (and then must not have written anything).
///
/// Records are parsed one at a time (a JSON array is streamed, not built), so
/// that memory holds one record's values and the rows so far; parsing stops at
/// the first record over `budget.max_records`, and at the first row that takes
/// the encoded bytes over `budget.max_encoded_bytes`.
pub fn encode_body<F>(
    body: &[u8],
    framing: Framing,
    budget: &Budget,
    mut encode: F,
) -> Result<EncodedBatch, BodyRefused>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyRefused::Empty);
    }
    let mut sink = Sink {
        batch: EncodedBatch {
            data: BytesMut::with_capacity(body.len().min(budget.max_encoded_bytes)),
            ..EncodedBatch::default()
        },
        encode: &mut encode,
        budget,
        refused: None,
        next: 0,
    };
    match framing {
        Framing::Json => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let parsed = de::DeserializeSeed::deserialize(Top { sink: &mut sink }, &mut de)
                .and_then(|()| de.end());
            if let Some(refused) = sink.refused.take() {
                return Err(refused.into());
            }
            parsed.map_err(|e| {
                let hint = if e.to_string().contains("trailing characters") {
                    " (several objects one per line are NDJSON: send them with Content-Type: application/x-ndjson)"
                } else {
                    ""
                };
                BodyRefused::Syntax(format!("{e}{hint}"))
            })?;
        }
        Framing::Ndjson => {
            for line in body.split(|&b| b == b'\n').filter(|l| !is_blank(l)) {
                let remaining = Cell::new(budget.max_values_per_record);
                let refused = Cell::new(false);
                let seed = ValueSeed {
                    remaining: &remaining,
                    over: &refused,
                };
                let mut de = serde_json::Deserializer::from_slice(line);
                let record = de::DeserializeSeed::deserialize(seed, &mut de)
                    .and_then(|v| de.end().map(|()| v));
                if refused.get() {
                    return Err(OverBudget::Values {
                        limit: budget.max_values_per_record,
                    }
                    .into());
                }
                let record = record.map_err(|e| {
                    Rejection::new("record", "invalid_json", format!("not valid JSON: {e}"))
                });
                sink.take(record)?;
            }
        }
    }
    Ok(sink.batch)
}

/// Where parsed records go: checked against the budget, then encoded.
struct Sink<'b, F> {
    batch: EncodedBatch,
    encode: &'b mut F,
    budget: &'b Budget,
    /// Set when the budget stops the parse; the parser's own error is then moot.
    refused: Option<OverBudget>,
    /// Index of the next record.
    next: usize,
}

impl<F> Sink<'_, F>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    fn take(&mut self, record: Result<Value, Rejection>) -> Result<(), OverBudget> {
        let index = self.next;
        self.next += 1;
        self.budget.check_records(self.next)?;
        let outcome = record.and_then(|value| match value {
            Value::Object(_) => (self.encode)(&value, &mut self.batch.data),
            other => Err(Rejection::invalid_type("record", "a JSON object", &other)),
        });
        match outcome {
            Ok(()) => self.batch.rows += 1,
            Err(mut rejection) => {
                rejection.index = index;
                self.batch.rejected.push(rejection);
            }
        }
        self.budget.check_encoded(self.batch.data.len())
    }
}

/// The body as a whole: an array is streamed record by record, anything else is
/// one record.
struct Top<'s, 'b, F> {
    sink: &'s mut Sink<'b, F>,
}

impl<'de, F> de::DeserializeSeed<'de> for Top<'_, '_, F>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<F> Top<'_, '_, F>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    fn one<E: de::Error>(self, value: Value<'_>) -> Result<(), E> {
        self.sink.take(Ok(value)).map_err(|over| {
            self.sink.refused = Some(over);
            E::custom("over budget")
        })
    }

    /// A budget for one record's values.
    fn values(&self) -> Cell<usize> {
        Cell::new(self.sink.budget.max_values_per_record)
    }
}

impl<'de, F> Visitor<'de> for Top<'_, '_, F>
where
    F: FnMut(&Value, &mut BytesMut) -> Result<(), Rejection>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or an array of objects")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.one(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.one(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.one(Value::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.one(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.one(Value::Str(Cow::Borrowed("")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.one(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let remaining = self.values();
            let over = Cell::new(false);
            let seed = ValueSeed {
                remaining: &remaining,
                over: &over,
            };
            let item = match seq.next_element_seed(seed) {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(()),
                Err(e) => {
                    if over.get() {
                        self.sink.refused = Some(OverBudget::Values {
                            limit: self.sink.budget.max_values_per_record,
                        });
                    }
                    return Err(e);
                }
            };
            if let Err(over) = self.sink.take(Ok(item)) {
                self.sink.refused = Some(over);
                return Err(de::Error::custom("over budget"));
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let remaining = self.values();
        let over = Cell::new(false);
        let visitor = ValueVisitor {
            remaining: &remaining,
            over: &over,
        };
        match visitor.visit_map(map) {
            Ok(value) => self.one(value),
            Err(e) => {
                if over.get() {
                    self.sink.refused = Some(OverBudget::Values {
                        limit: self.sink.budget.max_values_per_record,
                    });
                }
                Err(e)
            }
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str, framing: Framing) -> (Vec<String>, Vec<Rejection>) {
        let mut seen = Vec::new();
        let batch = encode_body(body.as_bytes(), framing, &Budget::records(100), |v, _| {
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
            encode_body(body.as_bytes(), framing, &Budget::records(max), |_, _| {
                Ok(())
            })
            .unwrap_err()
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
            BodyRefused::OverBudget(OverBudget::Records { limit: 2 })
        ));
        assert!(matches!(
            refuse("{}\n{}\n{}\n", Framing::Ndjson, 2),
            BodyRefused::OverBudget(OverBudget::Records { limit: 2 })
        ));
    }

    #[test]
    fn an_array_is_streamed_and_stops_at_the_first_record_over_the_limit() {
        let body = format!("[{}]", vec!["{}"; 100_000].join(","));
        let mut seen = 0;
        let err = encode_body(
            body.as_bytes(),
            Framing::Json,
            &Budget::records(10),
            |_, _| {
                seen += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            BodyRefused::OverBudget(OverBudget::Records { limit: 10 })
        ));
        assert_eq!(seen, 10);
        assert!(err.to_string().contains("max_records_per_request = 10"));
    }

    #[test]
    fn a_record_with_more_values_than_its_budget_refuses_the_body() {
        let budget = Budget {
            max_values_per_record: 5,
            ..Budget::records(10)
        };
        let refuse = |body: &str, framing| {
            encode_body(body.as_bytes(), framing, &budget, |_, _| Ok(())).unwrap_err()
        };
        for (body, framing) in [
            (r#"[{"a":[1,2,3,4,5,6]}]"#, Framing::Json),
            (r#"{"a":[1,2,3,4,5,6]}"#, Framing::Json),
            ("{\"a\":[1,2,3,4,5,6]}\n", Framing::Ndjson),
        ] {
            assert!(
                matches!(
                    refuse(body, framing),
                    BodyRefused::OverBudget(OverBudget::Values { limit: 5 })
                ),
                "{body}"
            );
        }
        let ok = encode_body(br#"[{"a":[1,2,3]}]"#, Framing::Json, &budget, |_, _| Ok(()));
        assert_eq!(ok.unwrap().rows, 1);
    }

    #[test]
    fn encoding_stops_at_the_first_row_past_the_encoded_bound() {
        let budget = Budget {
            max_encoded_bytes: 25,
            ..Budget::records(100)
        };
        let mut written = 0;
        let err = encode_body(b"{}\n{}\n{}\n{}\n{}", Framing::Ndjson, &budget, |_, out| {
            written += 1;
            out.extend_from_slice(&[0; 10]);
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(
            err,
            BodyRefused::OverBudget(OverBudget::Encoded(_))
        ));
        assert_eq!(written, 3);
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
