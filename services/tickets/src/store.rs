//! The SQL of tickets. Every value from a request is bound (`?`); the only text
//! spliced into a statement comes from this file (column lists, a sort column
//! picked from a fixed list).

use clickhouse::Client;
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;

use crate::model::{COLUMNS, TicketRow};

pub const TABLE: &str = "ticket_events";

/// The rows that are the current state of each ticket.
const CURRENT: &str = "(ticket_id, version) IN \
     (SELECT ticket_id, max(version) FROM ticket_events GROUP BY ticket_id)";

fn latest_sql(by: &str) -> String {
    format!("SELECT {COLUMNS} FROM ticket_events WHERE {by} = ? ORDER BY version DESC LIMIT 1")
}

/// The current state of a ticket, by id or by number.
pub async fn latest(
    client: &Client,
    id: &TicketRef,
) -> clickhouse::error::Result<Option<TicketRow>> {
    let query = match id {
        TicketRef::Id(id) => client.query(&latest_sql("ticket_id")).bind(id.as_str()),
        TicketRef::Number(n) => client.query(&latest_sql("number")).bind(*n),
    };
    query.read_only().fetch_optional().await
}

/// Every version of a ticket, oldest first: its audit trail.
pub async fn history(
    client: &Client,
    ticket_id: &str,
) -> clickhouse::error::Result<Vec<TicketRow>> {
    client
        .query(&format!(
            "SELECT {COLUMNS} FROM ticket_events WHERE ticket_id = ? ORDER BY version"
        ))
        .bind(ticket_id)
        .read_only()
        .fetch_all()
        .await
}

pub async fn append(client: &Client, row: &TicketRow) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<TicketRow>(TABLE).await?;
    insert.write(row).await?;
    insert.end().await
}

pub async fn next_number(client: &Client) -> clickhouse::error::Result<u64> {
    let max: u64 = client
        .query("SELECT max(number) FROM ticket_events")
        .read_only()
        .fetch_one()
        .await?;
    Ok(max + 1)
}

/// How a request names a ticket: its id, or `HC-<number>`.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketRef {
    Id(String),
    Number(u64),
}

impl TicketRef {
    pub fn parse(text: &str) -> TicketRef {
        match text
            .strip_prefix("HC-")
            .or_else(|| text.strip_prefix("hc-"))
            .and_then(|n| n.parse().ok())
        {
            Some(number) => TicketRef::Number(number),
            None => TicketRef::Id(text.to_owned()),
        }
    }
}

/// Filters of `GET /v1/tickets`, each optional.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub state: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub assignee: Option<String>,
    pub release: Option<String>,
    pub launch: Option<String>,
    pub text: Option<String>,
    pub created_from_ms: Option<u64>,
    pub created_to_ms: Option<u64>,
}

/// Sort orders a list may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Created,
    Updated,
    Priority,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "created" => Some(Sort::Created),
            "updated" => Some(Sort::Updated),
            "priority" => Some(Sort::Priority),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Sort::Created => "created_ms",
            Sort::Updated => "at_ms",
            Sort::Priority => "priority",
        }
    }
}

fn where_clause(filters: &Filters) -> String {
    let mut sql = String::from(CURRENT);
    for (value, column) in [
        (&filters.state, "state"),
        (&filters.priority, "priority"),
        (&filters.category, "category"),
        (&filters.assignee, "assignee"),
        (&filters.release, "release"),
        (&filters.launch, "launch"),
    ] {
        if value.is_some() {
            sql.push_str(&format!(" AND {column} = ?"));
        }
    }
    if filters.text.is_some() {
        sql.push_str(
            " AND (positionCaseInsensitiveUTF8(title, ?) > 0 \
             OR positionCaseInsensitiveUTF8(description, ?) > 0)",
        );
    }
    if filters.created_from_ms.is_some() {
        sql.push_str(" AND created_ms >= ?");
    }
    if filters.created_to_ms.is_some() {
        sql.push_str(" AND created_ms < ?");
    }
    sql
}

fn bind_filters(
    mut query: clickhouse::query::Query,
    filters: &Filters,
) -> clickhouse::query::Query {
    for value in [
        &filters.state,
        &filters.priority,
        &filters.category,
        &filters.assignee,
        &filters.release,
        &filters.launch,
    ]
    .into_iter()
    .flatten()
    {
        query = query.bind(value.as_str());
    }
    if let Some(text) = &filters.text {
        query = query.bind(text.as_str()).bind(text.as_str());
    }
    if let Some(from) = filters.created_from_ms {
        query = query.bind(from);
    }
    if let Some(to) = filters.created_to_ms {
        query = query.bind(to);
    }
    query
}

/// A page of current tickets matching `filters`, and how many match in all.
pub async fn list(
    client: &Client,
    filters: &Filters,
    sort: Sort,
    descending: bool,
    offset: u64,
    limit: u64,
) -> clickhouse::error::Result<(Vec<TicketRow>, u64)> {
    let clause = where_clause(filters);
    let direction = if descending { "DESC" } else { "ASC" };
    let page_sql = format!(
        "SELECT {COLUMNS} FROM ticket_events WHERE {clause} \
         ORDER BY {} {direction}, number DESC LIMIT ?, ?",
        sort.column()
    );
    let rows = bind_filters(client.query(&page_sql), filters)
        .bind(offset)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await?;
    let count_sql = format!("SELECT count() FROM ticket_events WHERE {clause}");
    let total = bind_filters(client.query(&count_sql), filters)
        .read_only()
        .fetch_one()
        .await?;
    Ok((rows, total))
}

/// Every ticket's current state (for statistics and the breach gauges).
pub async fn all_current(client: &Client) -> clickhouse::error::Result<Vec<TicketRow>> {
    client
        .query(&format!(
            "SELECT {COLUMNS} FROM ticket_events WHERE {CURRENT} ORDER BY number"
        ))
        .read_only()
        .fetch_all()
        .await
}

/// Open tickets of a category, newest first: candidates for "similar".
pub async fn open_in_category(
    client: &Client,
    category: &str,
) -> clickhouse::error::Result<Vec<TicketRow>> {
    client
        .query(&format!(
            "SELECT {COLUMNS} FROM ticket_events WHERE {CURRENT} AND category = ? \
             AND state NOT IN ('resolved', 'closed') ORDER BY created_ms DESC LIMIT 1000"
        ))
        .bind(category)
        .read_only()
        .fetch_all()
        .await
}

/// The queries with example parameters, for the engine compatibility test.
pub fn catalog() -> Vec<Statement> {
    let all = Filters {
        state: Some("new".into()),
        priority: Some("P1".into()),
        category: Some("bug".into()),
        assignee: Some("ana".into()),
        release: Some("2.4.1".into()),
        launch: Some("spring".into()),
        text: Some("payment".into()),
        created_from_ms: Some(1),
        created_to_ms: Some(2),
    };
    let fill = |sql: String, values: &[&str]| {
        values
            .iter()
            .fold(sql, |sql, value| sql.replacen('?', value, 1))
    };
    let clause = where_clause(&all);
    let filter_values = [
        "'new'",
        "'P1'",
        "'bug'",
        "'ana'",
        "'2.4.1'",
        "'spring'",
        "'payment'",
        "'payment'",
        "1",
        "2",
    ];
    let mut page_values = filter_values.to_vec();
    page_values.extend(["0", "50"]);
    vec![
        Statement {
            origin: "tickets: page".into(),
            sql: fill(
                format!(
                    "SELECT {COLUMNS} FROM ticket_events WHERE {clause} \
                     ORDER BY priority ASC, number DESC LIMIT ?, ?"
                ),
                &page_values,
            ),
        },
        Statement {
            origin: "tickets: count".into(),
            sql: fill(
                format!("SELECT count() FROM ticket_events WHERE {clause}"),
                &filter_values,
            ),
        },
        Statement {
            origin: "tickets: latest".into(),
            sql: fill(latest_sql("number"), &["7"]),
        },
        Statement {
            origin: "tickets: all current".into(),
            sql: format!("SELECT {COLUMNS} FROM ticket_events WHERE {CURRENT} ORDER BY number"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_named_by_id_or_number() {
        assert_eq!(TicketRef::parse("HC-12"), TicketRef::Number(12));
        assert_eq!(TicketRef::parse("5f0c"), TicketRef::Id("5f0c".to_owned()));
    }
}
