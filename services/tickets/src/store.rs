//! The SQL of tickets. Every value from a request is bound (`?`); the only text
//! spliced into a statement comes from this file (column lists, a sort column
//! picked from a fixed list).

use clickhouse::Client;
use hypercare_storage::ReadOnly;
use hypercare_storage::catalog::Statement;

use crate::model::{COLUMNS, Priority, State, Ticket};

pub const TABLE: &str = "ticket_events";

/// The rows that are the current state of each ticket.
const CURRENT: &str = "(ticket_id, version) IN \
     (SELECT ticket_id, max(version) FROM ticket_events GROUP BY ticket_id)";

fn latest_sql(by: &str) -> String {
    format!("SELECT {COLUMNS} FROM ticket_events WHERE {by} = ? ORDER BY version DESC LIMIT 1")
}

fn history_sql() -> String {
    format!("SELECT {COLUMNS} FROM ticket_events WHERE ticket_id = ? ORDER BY version")
}

const NEXT_NUMBER_SQL: &str = "SELECT max(number) FROM ticket_events";

fn all_current_sql() -> String {
    format!("SELECT {COLUMNS} FROM ticket_events WHERE {CURRENT} ORDER BY number")
}

fn open_in_category_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM ticket_events WHERE {CURRENT} AND category = ? \
         AND state NOT IN ('resolved', 'closed') ORDER BY created_ms DESC LIMIT 1000"
    )
}

fn page_sql(clause: &str, sort: Sort, direction: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM ticket_events WHERE {clause} \
         ORDER BY {} {direction}, number DESC LIMIT ?, ?",
        sort.column()
    )
}

fn count_sql(clause: &str) -> String {
    format!("SELECT count() FROM ticket_events WHERE {clause}")
}

/// The current state of a ticket, by id or by number.
pub async fn latest(client: &Client, id: &TicketRef) -> clickhouse::error::Result<Option<Ticket>> {
    let query = match id {
        TicketRef::Id(id) => client.query(&latest_sql("ticket_id")).bind(id.as_str()),
        TicketRef::Number(n) => client.query(&latest_sql("number")).bind(*n),
    };
    query.read_only().fetch_optional().await
}

/// Every version of a ticket, oldest first: its audit trail.
pub async fn history(client: &Client, ticket_id: &str) -> clickhouse::error::Result<Vec<Ticket>> {
    client
        .query(&history_sql())
        .bind(ticket_id)
        .read_only()
        .fetch_all()
        .await
}

pub async fn append(client: &Client, row: &Ticket) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<Ticket>(TABLE).await?;
    insert.write(row).await?;
    insert.end().await
}

pub async fn next_number(client: &Client) -> clickhouse::error::Result<u64> {
    let max: u64 = client
        .query(NEXT_NUMBER_SQL)
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
    pub state: Option<State>,
    pub priority: Option<Priority>,
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
    for (given, column) in [
        (filters.state.is_some(), "state"),
        (filters.priority.is_some(), "priority"),
        (filters.category.is_some(), "category"),
        (filters.assignee.is_some(), "assignee"),
        (filters.release.is_some(), "release"),
        (filters.launch.is_some(), "launch"),
    ] {
        if given {
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
    if let Some(state) = filters.state {
        query = query.bind(state.as_str());
    }
    if let Some(priority) = filters.priority {
        query = query.bind(priority.as_str());
    }
    for value in [
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
) -> clickhouse::error::Result<(Vec<Ticket>, u64)> {
    let clause = where_clause(filters);
    let direction = if descending { "DESC" } else { "ASC" };
    let rows = bind_filters(client.query(&page_sql(&clause, sort, direction)), filters)
        .bind(offset)
        .bind(limit)
        .read_only()
        .fetch_all()
        .await?;
    let total = bind_filters(client.query(&count_sql(&clause)), filters)
        .read_only()
        .fetch_one()
        .await?;
    Ok((rows, total))
}

/// Every ticket's current state (for statistics and the breach gauges).
pub async fn all_current(client: &Client) -> clickhouse::error::Result<Vec<Ticket>> {
    client
        .query(&all_current_sql())
        .read_only()
        .fetch_all()
        .await
}

/// Open tickets of a category, newest first: candidates for "similar".
pub async fn open_in_category(
    client: &Client,
    category: &str,
) -> clickhouse::error::Result<Vec<Ticket>> {
    client
        .query(&open_in_category_sql())
        .bind(category)
        .read_only()
        .fetch_all()
        .await
}

/// Every statement of this file with example parameters, for the engine
/// compatibility test (tests/api/compat.rs runs them on 18.16 and on chdb).
pub fn catalog() -> Vec<Statement> {
    let all = Filters {
        state: Some(State::New),
        priority: Some(Priority::P1),
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
    let statement = |origin: &str, sql: String| Statement {
        origin: format!("tickets: {origin}"),
        sql,
    };
    vec![
        statement(
            "page",
            fill(page_sql(&clause, Sort::Priority, "ASC"), &page_values),
        ),
        statement("count", fill(count_sql(&clause), &filter_values)),
        statement("latest by number", fill(latest_sql("number"), &["7"])),
        statement("latest by id", fill(latest_sql("ticket_id"), &["'t-1'"])),
        statement("history", fill(history_sql(), &["'t-1'"])),
        statement("next number", NEXT_NUMBER_SQL.to_owned()),
        statement("all current", all_current_sql()),
        statement("open in category", fill(open_in_category_sql(), &["'bug'"])),
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
