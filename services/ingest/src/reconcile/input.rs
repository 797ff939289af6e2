//! The ids a source system holds, as uploaded, checked and encoded as RowBinary
//! rows `(event String, id String, day Date)` of the request's id table.
//!
//! Three shapes (pure functions, no I/O):
//! - JSON `{"event", "ids": [...], "id_property", "from", "to"}` ([`parse_json`]);
//! - NDJSON, one `{"id" | "event_id", "event"?, "day"?}` per line ([`Framing::Ndjson`]);
//! - CSV lines `id`, `event,id` or `event,id,day`, an optional header first
//!   ([`Framing::Csv`]).
//!
//! The options of NDJSON and CSV uploads come from the query string
//! ([`Options`]). Without `id_property`, ids are event ids (UUIDs), written in
//! the canonical form ClickHouse's `toString(event_id)` gives, so that any
//! spelling of a UUID matches. A day of `0` (1970-01-01) means "not given".
//! Every error names the field (`ids[3]`, `line 12`); the id count is checked
//! before a row is encoded past it.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::NaiveDate;
use hypercare_storage::rowbinary::RowBinaryExt;
use serde::Deserialize;
use uuid::Uuid;

/// Characters in one id at most.
pub const MAX_ID_CHARS: usize = 512;
/// Characters in an event name or property name at most (as ingest allows).
pub const MAX_NAME_CHARS: usize = 200;

/// Why an upload is refused; the field is what a client fixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("more than {limit} ids (ingest.reconcile.max_ids): split the upload by event or day")]
    TooManyIds { limit: usize },
    #[error("no id was sent")]
    NoIds,
}

impl InputError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InputError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn field(&self) -> &str {
        match self {
            InputError::Invalid { field, .. } => field,
            InputError::TooManyIds { .. } | InputError::NoIds => "ids",
        }
    }
}

/// How the ids are compared, whichever shape carried them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The event of rows that name none.
    pub event: Option<String>,
    /// A string property of the events holding the business id; `None`: the event id.
    pub id_property: Option<String>,
    /// First and last UTC day compared (inclusive).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Options {
    /// Checks the options read from a query string or a JSON body.
    pub fn new(
        event: Option<String>,
        id_property: Option<String>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, InputError> {
        if let Some(event) = &event {
            check_name("event", event)?;
        }
        if let Some(property) = &id_property {
            check_name("id_property", property)?;
        }
        let from = from.map(|d| parse_day("from", d)).transpose()?;
        let to = to.map(|d| parse_day("to", d)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(InputError::invalid("from", "must not be after `to`"));
        }
        Ok(Self {
            event,
            id_property,
            from,
            to,
        })
    }
}

/// The encoded rows of an upload, in chunks of at most `chunk_rows` rows, ready
/// to be sent to ClickHouse one after the other.
#[derive(Debug, Default)]
pub struct Rows {
    pub chunks: Vec<Bytes>,
    pub count: usize,
}

/// Encodes rows, refusing the one past `max_ids`.
struct Encoder {
    max_ids: usize,
    chunk_rows: usize,
    current: BytesMut,
    in_current: usize,
    rows: Rows,
}

impl Encoder {
    fn new(max_ids: usize, chunk_rows: usize) -> Self {
        Self {
            max_ids,
            chunk_rows: chunk_rows.max(1),
            current: BytesMut::new(),
            in_current: 0,
            rows: Rows::default(),
        }
    }

    fn push(
        &mut self,
        field: &str,
        options: &Options,
        event: Option<&str>,
        id: &str,
        day: Option<NaiveDate>,
    ) -> Result<(), InputError> {
        if self.rows.count >= self.max_ids {
            return Err(InputError::TooManyIds {
                limit: self.max_ids,
            });
        }
        let event = match event.or(options.event.as_deref()) {
            Some(event) => event,
            None => {
                return Err(InputError::invalid(
                    "event",
                    format!(
                        "is required ({field} names no event and no default `event` was given)"
                    ),
                ));
            }
        };
        check_name(field, event)?;
        let id = id.trim();
        if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
            return Err(InputError::invalid(
                field,
                format!("must be an id of 1 to {MAX_ID_CHARS} characters"),
            ));
        }
        self.current.put_rb_str(event);
        if options.id_property.is_some() {
            self.current.put_rb_str(id);
        } else {
            let uuid = Uuid::parse_str(id).map_err(|_| {
                InputError::invalid(
                    field,
                    format!("`{}` is not an event id (UUID); to compare a business id, give `id_property`", shorten(id)),
                )
            })?;
            self.current.put_rb_str(&uuid.hyphenated().to_string());
        }
        self.current.put_u16_le(day.map_or(0, days_since_epoch));
        self.rows.count += 1;
        self.in_current += 1;
        if self.in_current == self.chunk_rows {
            self.flush();
        }
        Ok(())
    }

    fn flush(&mut self) {
        if self.in_current > 0 {
            self.rows.chunks.push(self.current.split().freeze());
            self.in_current = 0;
        }
    }

    fn finish(mut self) -> Result<Rows, InputError> {
        self.flush();
        if self.rows.count == 0 {
            return Err(InputError::NoIds);
        }
        Ok(self.rows)
    }
}

/// The JSON body of `POST /v1/reconcile`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonUpload {
    pub event: String,
    pub ids: Vec<JsonId>,
    #[serde(default)]
    pub id_property: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// An id in a JSON list: a string, or an integer (a business id).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum JsonId {
    Text(String),
    Number(u64),
}

/// Checks a JSON upload: its options, then each id.
pub fn parse_json(
    upload: JsonUpload,
    max_ids: usize,
    chunk_rows: usize,
) -> Result<(Options, Rows), InputError> {
    if upload.ids.len() > max_ids {
        return Err(InputError::TooManyIds { limit: max_ids });
    }
    let options = Options::new(
        Some(upload.event),
        upload.id_property,
        upload.from.as_deref(),
        upload.to.as_deref(),
    )?;
    let mut encoder = Encoder::new(max_ids, chunk_rows);
    for (i, id) in upload.ids.iter().enumerate() {
        let text = match id {
            JsonId::Text(text) => text.clone(),
            JsonId::Number(n) => n.to_string(),
        };
        encoder.push(&format!("ids[{i}]"), &options, None, &text, None)?;
    }
    Ok((options, encoder.finish()?))
}

/// Line-based uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Ndjson,
    Csv,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NdjsonLine {
    #[serde(default, alias = "event_id")]
    id: Option<serde_json::Value>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    day: Option<String>,
}

/// Checks an NDJSON or CSV upload line by line (blank lines skipped).
pub fn parse_lines(
    body: &[u8],
    framing: Framing,
    options: &Options,
    max_ids: usize,
    chunk_rows: usize,
) -> Result<Rows, InputError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| InputError::invalid("body", format!("is not UTF-8 text ({e})")))?;
    let mut encoder = Encoder::new(max_ids, chunk_rows);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let field = format!("line {}", n + 1);
        if line.is_empty() || (n == 0 && framing == Framing::Csv && is_csv_header(line)) {
            continue;
        }
        let (event, id, day) = match framing {
            Framing::Csv => split_csv(line, &field)?,
            Framing::Ndjson => {
                let row: NdjsonLine = serde_json::from_str(line).map_err(|e| {
                    InputError::invalid(
                        &field,
                        format!("is not an object {{\"id\", \"event\", \"day\"}}: {e}"),
                    )
                })?;
                let id = match row.id {
                    Some(serde_json::Value::String(s)) => s,
                    Some(serde_json::Value::Number(n)) if n.is_u64() => n.to_string(),
                    _ => {
                        return Err(InputError::invalid(
                            &field,
                            "needs `id` (or `event_id`): a string or an integer",
                        ));
                    }
                };
                (row.event, id, row.day)
            }
        };
        let day = day
            .filter(|d| !d.trim().is_empty())
            .map(|d| parse_day(&field, d.trim()))
            .transpose()?;
        let outside = match day {
            Some(day) => {
                options.from.is_some_and(|from| day < from) || options.to.is_some_and(|to| day > to)
            }
            None => false,
        };
        // A source row of a day outside the range is not compared at all, as
        // the events of that day are not.
        if outside {
            continue;
        }
        encoder.push(&field, options, event.as_deref(), &id, day)?;
    }
    encoder.finish()
}

fn is_csv_header(line: &str) -> bool {
    matches!(
        line.to_ascii_lowercase().replace(' ', "").as_str(),
        "id" | "event_id" | "event,id" | "event,event_id" | "event,id,day" | "event,event_id,day"
    )
}

/// `id`, `event,id` or `event,id,day`; fields may be double-quoted (no quote
/// or comma inside: ids and names never hold them).
fn split_csv(
    line: &str,
    field: &str,
) -> Result<(Option<String>, String, Option<String>), InputError> {
    let parts: Vec<String> = line
        .split(',')
        .map(|p| p.trim().trim_matches('"').to_owned())
        .collect();
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(id), None, None, None) => Ok((None, id, None)),
        (Some(event), Some(id), None, None) => Ok((Some(event), id, None)),
        (Some(event), Some(id), Some(day), None) => Ok((Some(event), id, Some(day))),
        _ => Err(InputError::invalid(
            field,
            "must be `id`, `event,id` or `event,id,day`",
        )),
    }
}

fn check_name(field: &str, name: &str) -> Result<(), InputError> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(InputError::invalid(
            field,
            format!("must be a name of 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

fn parse_day(field: &str, text: &str) -> Result<NaiveDate, InputError> {
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        InputError::invalid(
            field,
            format!("`{}` is not a day (YYYY-MM-DD)", shorten(text)),
        )
    })?;
    // ClickHouse's Date runs from 1970-01-02 (day 0 means "not given" here) to 2105.
    let first = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap_or_default();
    let last = NaiveDate::from_ymd_opt(2105, 12, 31).unwrap_or_default();
    if day < first || day > last {
        return Err(InputError::invalid(
            field,
            "must be a day from 1970-01-02 to 2105-12-31",
        ));
    }
    Ok(day)
}

/// Days since 1970-01-01, as ClickHouse's `Date` stores them.
pub fn days_since_epoch(day: NaiveDate) -> u16 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    u16::try_from((day - epoch).num_days()).unwrap_or(0)
}

/// The day a `Date` of ClickHouse holds; `None` for day 0 ("not given").
pub fn day_of(days: u16) -> Option<NaiveDate> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    (days > 0).then(|| epoch + chrono::Days::new(u64::from(days)))
}

fn shorten(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1B4E28BA-2FA1-11D2-883F-0016D3CCA427";

    fn options(event: Option<&str>, property: Option<&str>) -> Options {
        Options::new(
            event.map(str::to_owned),
            property.map(str::to_owned),
            None,
            None,
        )
        .unwrap()
    }

    /// Decodes rows back: (event, id, days).
    fn decode(rows: &Rows) -> Vec<(String, String, u16)> {
        let mut out = Vec::new();
        for chunk in &rows.chunks {
            let mut b = &chunk[..];
            while !b.is_empty() {
                let mut field = || {
                    let len = b[0] as usize; // short strings only in these tests
                    let s = String::from_utf8(b[1..1 + len].to_vec()).unwrap();
                    b = &b[1 + len..];
                    s
                };
                let event = field();
                let id = field();
                let day = u16::from_le_bytes([b[0], b[1]]);
                b = &b[2..];
                out.push((event, id, day));
            }
        }
        out
    }

    #[test]
    fn event_ids_are_written_as_clickhouse_spells_them() {
        let upload: JsonUpload =
            serde_json::from_str(&format!(r#"{{"event": "lead", "ids": ["{A}"]}}"#)).unwrap();
        let (_, rows) = parse_json(upload, 10, 10).unwrap();
        assert_eq!(
            decode(&rows),
            [(
                "lead".into(),
                "1b4e28ba-2fa1-11d2-883f-0016d3cca427".into(),
                0
            )]
        );
    }

    #[test]
    fn a_bad_id_is_named_by_its_index() {
        let upload: JsonUpload =
            serde_json::from_str(&format!(r#"{{"event": "lead", "ids": ["{A}", "x"]}}"#)).unwrap();
        let error = parse_json(upload, 10, 10).unwrap_err();
        assert_eq!(error.field(), "ids[1]");
    }

    #[test]
    fn business_ids_may_be_any_text_or_integers() {
        let upload: JsonUpload = serde_json::from_str(
            r#"{"event": "lead", "ids": ["L-1", 42], "id_property": "lead_id"}"#,
        )
        .unwrap();
        let (options, rows) = parse_json(upload, 10, 10).unwrap();
        assert_eq!(options.id_property.as_deref(), Some("lead_id"));
        let ids: Vec<_> = decode(&rows).into_iter().map(|r| r.1).collect();
        assert_eq!(ids, ["L-1", "42"]);
    }

    #[test]
    fn the_id_past_the_limit_is_refused_before_it_is_encoded() {
        let body = format!("{A}\n{A}\n{A}\n");
        let error = parse_lines(
            body.as_bytes(),
            Framing::Csv,
            &options(Some("e"), None),
            2,
            10,
        )
        .unwrap_err();
        assert_eq!(error, InputError::TooManyIds { limit: 2 });
        assert_eq!(error.field(), "ids");
    }

    #[test]
    fn csv_rows_carry_their_event_and_day_and_the_header_is_skipped() {
        let body = "event,id,day\nlead,L-1,2026-11-20\n\nsignup,S-2\nL-3\n";
        let rows = parse_lines(
            body.as_bytes(),
            Framing::Csv,
            &options(Some("lead"), Some("ref")),
            10,
            2,
        )
        .unwrap();
        assert_eq!(rows.count, 3);
        assert_eq!(rows.chunks.len(), 2, "chunks of two rows");
        let day = days_since_epoch(NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
        assert_eq!(
            decode(&rows),
            [
                ("lead".into(), "L-1".into(), day),
                ("signup".into(), "S-2".into(), 0),
                ("lead".into(), "L-3".into(), 0),
            ]
        );
        assert_eq!(day_of(day), NaiveDate::from_ymd_opt(2026, 11, 20));
        assert_eq!(day_of(0), None);
    }

    #[test]
    fn rows_of_days_outside_the_range_are_left_out() {
        let o = Options::new(
            Some("lead".into()),
            Some("ref".into()),
            Some("2026-11-20"),
            Some("2026-11-21"),
        )
        .unwrap();
        let body = "lead,a,2026-11-19\nlead,b,2026-11-20\nlead,c\nlead,d,2026-11-22\n";
        let rows = parse_lines(body.as_bytes(), Framing::Csv, &o, 10, 10).unwrap();
        let ids: Vec<_> = decode(&rows).into_iter().map(|r| r.1).collect();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn ndjson_lines_take_id_or_event_id() {
        let body = format!(
            "{{\"event_id\": \"{A}\"}}\n{{\"id\": \"{A}\", \"event\": \"b\", \"day\": \"2026-01-02\"}}\n"
        );
        let rows = parse_lines(
            body.as_bytes(),
            Framing::Ndjson,
            &options(Some("a"), None),
            10,
            10,
        )
        .unwrap();
        assert_eq!(rows.count, 2);
    }

    #[test]
    fn each_bad_line_or_option_is_named() {
        let o = options(None, None);
        let field = |body: &str, framing| {
            parse_lines(body.as_bytes(), framing, &o, 10, 10)
                .unwrap_err()
                .field()
                .to_owned()
        };
        assert_eq!(field(&format!("{A}\n"), Framing::Csv), "event");
        assert_eq!(field("e,x,y,z\n", Framing::Csv), "line 1");
        assert_eq!(
            field(&format!("e,{A}\ne,{A},monday\n"), Framing::Csv),
            "line 2"
        );
        assert_eq!(
            field("{\"id\": 1.5, \"event\": \"e\"}\n", Framing::Ndjson),
            "line 1"
        );
        assert_eq!(field("\"x\"\n", Framing::Ndjson), "line 1");
        assert_eq!(field("\n\n", Framing::Csv), "ids");
        let bad_range = Options::new(None, None, Some("2026-02-02"), Some("2026-02-01"));
        assert_eq!(bad_range.unwrap_err().field(), "from");
        assert_eq!(
            Options::new(Some(String::new()), None, None, None)
                .unwrap_err()
                .field(),
            "event"
        );
    }
}
