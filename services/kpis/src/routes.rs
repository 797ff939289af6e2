//! The launches and KPI HTTP API (see the crate documentation).

use hypercare_storage::ReadOnly;
use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use hypercare_http::auth::{AuthError, Caller, Scope};
use hypercare_http::body::JsonBody;
use hypercare_http::error::ErrorBody;
use hypercare_http::openapi::{BodyChecks, KeyChecks, QueryChecks};
use hypercare_storage::catalog::Statement;

use crate::clock::{SharedClock, SystemClock};
use crate::definition::{Grain, Kpi, Status, round_to};
use crate::pace::{self, Comparison, Window};
use crate::query::{self, QueryError, buckets, day_start, empty_is_zero};
use crate::rollup::{self, RollupSettings};

pub struct KpiState {
    pub store: clickhouse::Client,
    pub(crate) cache: query::BucketCache,
    pub(crate) definitions: RwLock<BTreeMap<String, (Kpi, u32)>>,
    /// "Now" of the answers (a manual clock in tests).
    clock: SharedClock,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct DefinitionRow {
    kpi_id: String,
    version: u32,
    definition: String,
    source: String,
    at_ms: u64,
    actor: String,
}

#[derive(Debug, Clone, clickhouse::Row, Serialize, Deserialize)]
struct LaunchRow {
    launch_id: String,
    name: String,
    release: String,
    d0: String,
    d0_secs: u64,
    tz: String,
    window_days: u16,
    baseline_days: u16,
    stages: String,
    created_ms: u64,
    actor: String,
}

const LATEST_DEFINITIONS: &str = "SELECT kpi_id, version, definition, source, at_ms, actor \
     FROM kpi_definitions WHERE (kpi_id, version) IN \
     (SELECT kpi_id, max(version) FROM kpi_definitions GROUP BY kpi_id) ORDER BY kpi_id";
const LAUNCH_COLUMNS: &str = "launch_id, name, release, d0, d0_secs, tz, window_days, \
     baseline_days, stages, created_ms, actor";

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl KpiState {
    /// Loads the stored definitions and records the file's that are new or
    /// changed as new versions (source `file`).
    pub async fn load(
        store: clickhouse::Client,
        from_file: Vec<Kpi>,
        clock: Option<SharedClock>,
    ) -> anyhow::Result<Self> {
        let state = Self {
            store,
            cache: query::BucketCache::default(),
            definitions: RwLock::new(BTreeMap::new()),
            clock: clock.unwrap_or_else(|| std::sync::Arc::new(SystemClock)),
        };
        state.reload().await?;
        for kpi in from_file {
            state.save(kpi, "file", "kpis.file").await?;
        }
        Ok(state)
    }

    /// Now, in epoch seconds, by the KPI clock.
    pub fn now_secs(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    async fn reload(&self) -> clickhouse::error::Result<()> {
        let rows: Vec<DefinitionRow> = self
            .store
            .query(LATEST_DEFINITIONS)
            .read_only()
            .fetch_all()
            .await?;
        let mut definitions = self.definitions.write().await;
        definitions.clear();
        for row in rows {
            match serde_json::from_str::<Kpi>(&row.definition) {
                Ok(kpi) => {
                    definitions.insert(row.kpi_id, (kpi, row.version));
                }
                Err(error) => {
                    tracing::error!(kpi = %row.kpi_id, %error, "A stored KPI definition no longer parses; it is skipped.")
                }
            }
        }
        Ok(())
    }

    /// Stores `kpi` as a new version unless it equals the current one.
    async fn save(&self, kpi: Kpi, source: &str, actor: &str) -> clickhouse::error::Result<u32> {
        let mut definitions = self.definitions.write().await;
        let version = match definitions.get(&kpi.id) {
            Some((current, version)) if *current == kpi => return Ok(*version),
            Some((_, version)) => version + 1,
            None => 1,
        };
        let row = DefinitionRow {
            kpi_id: kpi.id.clone(),
            version,
            definition: serde_json::to_string(&kpi).unwrap_or_default(),
            source: source.to_owned(),
            at_ms: now_ms(),
            actor: actor.to_owned(),
        };
        let mut insert = self
            .store
            .insert::<DefinitionRow>("kpi_definitions")
            .await?;
        insert.write(&row).await?;
        insert.end().await?;
        definitions.insert(kpi.id.clone(), (kpi, version));
        Ok(version)
    }
}

impl KpiState {
    /// Keeps the rollups of the current definitions up to date (see [`crate::rollup`]).
    /// `store` runs the rollup statements: a client with the deadlines of
    /// background work, longer than an API request's.
    pub fn spawn_rollup_worker(
        self: std::sync::Arc<Self>,
        settings: RollupSettings,
        store: clickhouse::Client,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(settings.interval_secs.max(1));
            loop {
                let kpis: Vec<Kpi> = self
                    .definitions
                    .read()
                    .await
                    .values()
                    .map(|(kpi, _)| kpi.clone())
                    .collect();
                let started = std::time::Instant::now();
                match rollup::catch_up(&store, &kpis, settings.days).await {
                    Ok(0) => {}
                    Ok(hours) => tracing::info!(
                        hours,
                        seconds = started.elapsed().as_secs_f64(),
                        "KPI rollups brought up to date."
                    ),
                    Err(error) => tracing::warn!(
                        %error,
                        "Could not compute KPI rollups; retrying on the next pass."
                    ),
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/kpis", web::get().to(board))
        .route("/v1/kpis/{id}", web::get().to(show))
        .route("/v1/kpis/{id}", web::put().to(put))
        .route("/v1/kpis/{id}/series", web::get().to(series))
        .route("/v1/launches", web::post().to(create_launch))
        .route("/v1/launches", web::get().to(list_launches))
        .route("/v1/launches/{id}", web::get().to(show_launch))
        .route("/v1/launches/{id}/days", web::get().to(days));
}

#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the ClickHouse query failed: {0}; retry later")]
    Store(#[from] clickhouse::error::Error),
}

fn invalid(field: &str, reason: impl Into<String>) -> KpiError {
    KpiError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl ResponseError for KpiError {
    fn status_code(&self) -> StatusCode {
        match self {
            KpiError::Auth(e) => e.status_code(),
            KpiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            KpiError::NotFound(_) => StatusCode::NOT_FOUND,
            KpiError::Query(QueryError::TooSlow) => StatusCode::GATEWAY_TIMEOUT,
            KpiError::Query(_) | KpiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let KpiError::Auth(e) = self {
            return e.error_response();
        }
        let code = match self {
            KpiError::Invalid { .. } => "invalid_request",
            KpiError::NotFound(_) => "not_found",
            KpiError::Query(QueryError::TooSlow) => "query_too_slow",
            _ => "query_failed",
        };
        let mut body = serde_json::json!({"error": code, "message": self.to_string()});
        if let KpiError::Invalid { field, .. } = self {
            body["field"] = field.as_str().into();
        }
        HttpResponse::build(self.status_code()).json(body)
    }
}

fn parse_tz(field: &str, name: &str) -> Result<Tz, KpiError> {
    name.parse().map_err(|_| {
        invalid(
            field,
            format!("`{name}` is not an IANA time zone such as Europe/Paris"),
        )
    })
}

/// A day's value of one KPI.
#[derive(Debug, Clone, Serialize)]
struct DayValue {
    value: Option<f64>,
    status: Status,
}

/// The value of each local day of `ranges` (`(date, [from, to))`, in order):
/// a day without any event at all (`with_data`) has none, whatever the KPI.
async fn daily(
    state: &KpiState,
    kpi: &Kpi,
    tz: Tz,
    ranges: &[(NaiveDate, (u64, u64))],
    with_data: &BTreeSet<u64>,
) -> Result<BTreeMap<NaiveDate, Option<f64>>, KpiError> {
    let spans: Vec<(u64, u64)> = ranges.iter().map(|(_, r)| *r).collect();
    let values = query::run(
        &state.store,
        &state.cache,
        kpi,
        Grain::Day,
        tz.name(),
        &spans,
    )
    .await?;
    Ok(ranges
        .iter()
        .map(|(date, (from, _))| {
            let value = match values.get(from) {
                _ if !with_data.contains(from) => None,
                Some(v) => *v,
                None if empty_is_zero(kpi.aggregation) => Some(0.0),
                None => None,
            };
            (*date, value)
        })
        .collect())
}

async fn current_launch(state: &KpiState) -> Result<Option<LaunchRow>, KpiError> {
    Ok(state
        .store
        .query(&format!(
            "SELECT {LAUNCH_COLUMNS} FROM launches ORDER BY created_ms DESC LIMIT 1"
        ))
        .read_only()
        .fetch_optional()
        .await?)
}

fn local_date(secs: u64, tz: Tz) -> NaiveDate {
    tz.timestamp_opt(secs as i64, 0)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

fn window_of(launch: &LaunchRow, tz: Tz) -> Window {
    Window::new(
        local_date(launch.d0_secs, tz),
        launch.window_days,
        launch.baseline_days,
    )
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardEntry {
    pub id: String,
    pub title: String,
    pub unit: String,
    pub owner: String,
    pub date: String,
    /// `complete_day`, or `pace_to_HH:MM`: the day up to that local time
    /// against the other days up to the same time.
    pub comparison: String,
    /// The day so far (at pace), or the whole day.
    pub value: Option<f64>,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
    /// Against the levels, scaled to the share of the day for counts and sums
    /// at pace; `no_data` when no event at all arrived that day.
    pub status: Status,
    /// The mean of the baseline days that have data, compared like for like
    /// (up to the same time at pace).
    pub baseline: Option<f64>,
    /// (value - baseline) / baseline, in percent.
    pub delta_vs_baseline_pct: Option<f64>,
    /// Against the day before, like for like: `up`, `down`, `flat`, or `unknown`.
    pub trend: &'static str,
    /// Whether the trend is good news given the KPI's direction.
    pub trend_is_good: Option<bool>,
    /// At pace, for counts and sums: the levels the status was judged against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceLevels>,
}

/// A count or a sum at pace: the share of a day's volume that the baseline
/// had reached by this time, and the day's levels scaled by it.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct PaceLevels {
    pub share_of_day: f64,
    pub target: f64,
    pub warning: f64,
    pub critical: f64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct BoardQuery {
    /// A local day (`YYYY-MM-DD`) instead of the default one.
    date: Option<String>,
}

/// The KPI board: every KPI on one day (today by default; the window's last day
/// once it has ended) against its target and the launch baseline (scope `read`).
#[utoipa::path(get, path = "/v1/kpis", operation_id = "kpi_board", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(BoardQuery),
    responses(
        (status = 200, description = "The board", body = Board),
        (status = 400, description = "A bad `date` (`invalid_request`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn board(
    caller: Caller,
    query: web::Query<BoardQuery>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    let asked = match &query.date {
        Some(text) => Some(
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|e| invalid("date", format!("is not a YYYY-MM-DD date ({e})")))?,
        ),
        None => None,
    };
    let board = state.board_on(asked, false).await?;
    Ok(HttpResponse::Ok().json(board))
}

/// The board: every KPI on one day against its target and the launch baseline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub launch: Option<String>,
    pub tz: String,
    pub date: String,
    /// `complete_day` or `pace_to_HH:MM` (see [`BoardEntry::comparison`]).
    pub comparison: String,
    /// Whether now is inside the current launch's window (D0..D+N); `None`
    /// without a launch. KPI alert conditions hold only inside it.
    pub in_window: Option<bool>,
    /// The window's first and last days.
    pub window: Option<(String, String)>,
    pub kpis: Vec<BoardEntry>,
}

/// A KPI now, for the alert evaluator.
pub type KpiNow = BoardEntry;

impl KpiState {
    /// The board by default: today at pace, the window's last day once it has ended.
    pub async fn board(&self) -> Result<Board, KpiError> {
        self.board_on(None, false).await
    }

    /// Today at pace whatever the window, for the alert evaluator (which looks
    /// at [`Board::in_window`] itself).
    pub async fn board_now(&self) -> Result<Board, KpiError> {
        self.board_on(None, true).await
    }

    pub(crate) async fn board_on(
        &self,
        asked: Option<NaiveDate>,
        today: bool,
    ) -> Result<Board, KpiError> {
        let state = self;
        let launch = current_launch(state).await?;
        let tz = match &launch {
            Some(l) => parse_tz("tz", &l.tz)?,
            None => chrono_tz::UTC,
        };
        let window = launch.as_ref().map(|l| window_of(l, tz));
        let now = self.now_secs();
        let reference = pace::reference(now, tz, window.as_ref().filter(|_| !today), asked)
            .map_err(|reason| invalid("date", reason))?;
        let date = reference.date;
        let cut = match reference.comparison {
            Comparison::Pace(time) => Some(time),
            Comparison::CompleteDay => None,
        };
        let yesterday = date.pred_opt().unwrap_or(date);
        let baseline_dates: Vec<NaiveDate> = window
            .map(|w| w.baseline_dates())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| *d < date)
            .collect();
        // Each day up to the same local time (whole days when complete).
        let mut dates: Vec<NaiveDate> = baseline_dates.clone();
        dates.extend([yesterday, date]);
        dates.sort();
        dates.dedup();
        let prefixes: Vec<(NaiveDate, (u64, u64))> = dates
            .iter()
            .map(|d| (*d, pace::day_range(*d, tz, cut)))
            .collect();
        let whole: Vec<(NaiveDate, (u64, u64))> = baseline_dates
            .iter()
            .map(|d| (*d, pace::day_range(*d, tz, None)))
            .collect();
        // Whether a day has any event: the board's day so far, the others whole.
        let data_days: Vec<(u64, (u64, u64))> = dates
            .iter()
            .map(|d| {
                let range = pace::day_range(*d, tz, (*d == date).then_some(cut).flatten());
                (range.0, range)
            })
            .collect();
        let with_data = query::days_with_data(&state.store, &data_days).await?;
        let (day_from, day_to) = pace::day_range(date, tz, None);
        let elapsed = (pace::day_range(date, tz, cut).1 - day_from) as f64
            / (day_to - day_from).max(1) as f64;

        let definitions = state.definitions.read().await.clone();
        // The KPIs' queries run side by side: ClickHouse answers them in parallel.
        let all_values = futures_util::future::join_all(definitions.values().map(|(kpi, _)| {
            let (prefixes, whole, with_data) = (&prefixes, &whole, &with_data);
            async move {
                let at_pace = daily(state, kpi, tz, prefixes, with_data).await?;
                // Whole baseline days, for the share of the day that scales the
                // levels of counts and sums at pace (cached once rolled up).
                let full = if cut.is_some() && kpi.accumulates() && !whole.is_empty() {
                    Some(daily(state, kpi, tz, whole, with_data).await?)
                } else {
                    None
                };
                Ok::<_, KpiError>((at_pace, full))
            }
        }))
        .await;
        let mut entries = Vec::new();
        for ((kpi, _), values) in definitions.values().zip(all_values) {
            let (values, full) = values?;
            let on = |date: NaiveDate| values.get(&date).copied().flatten();
            let value = on(date);
            let previous = on(yesterday).filter(|_| yesterday < date);
            let round = |x: f64| round_to(x, kpi.decimals());
            let baseline = pace::mean(baseline_dates.iter().map(|d| on(*d))).map(round);
            let pace_levels = match (&full, cut) {
                (Some(full), Some(_)) => {
                    let full_mean = pace::mean(
                        baseline_dates
                            .iter()
                            .map(|d| full.get(d).copied().flatten()),
                    );
                    let share = pace::share_of_day(baseline, full_mean, elapsed);
                    let (target, (warning, critical)) = kpi.levels_at_share(share);
                    Some(PaceLevels {
                        share_of_day: round_to(share, 4),
                        target: round(target),
                        warning: round(warning),
                        critical: round(critical),
                    })
                }
                (None, Some(_)) if kpi.accumulates() => {
                    let share = pace::share_of_day(None, None, elapsed);
                    let (target, (warning, critical)) = kpi.levels_at_share(share);
                    Some(PaceLevels {
                        share_of_day: round_to(share, 4),
                        target: round(target),
                        warning: round(warning),
                        critical: round(critical),
                    })
                }
                _ => None,
            };
            let (trend, trend_is_good) = match (value, previous) {
                (Some(v), Some(y)) if (v - y).abs() < 1e-9 => ("flat", None),
                (Some(v), Some(y)) => {
                    let up = v > y;
                    let good = match kpi.direction {
                        crate::definition::Direction::HigherIsBetter => up,
                        crate::definition::Direction::LowerIsBetter => !up,
                    };
                    (if up { "up" } else { "down" }, Some(good))
                }
                _ => ("unknown", None),
            };
            entries.push(BoardEntry {
                id: kpi.id.clone(),
                title: kpi.title.clone(),
                unit: kpi.unit.clone(),
                owner: kpi.owner.clone(),
                date: date.to_string(),
                comparison: reference.comparison.label(),
                value,
                target: kpi.target,
                warning: kpi.warning,
                critical: kpi.critical,
                status: kpi.status_at_share(value, pace_levels.map_or(1.0, |p| p.share_of_day)),
                baseline,
                delta_vs_baseline_pct: match (value, baseline) {
                    (Some(v), Some(b)) if b != 0.0 => Some(round_to((v - b) / b * 100.0, 2)),
                    _ => None,
                },
                trend,
                trend_is_good,
                pace: pace_levels,
            });
        }
        let today_local = local_date(now, tz);
        Ok(Board {
            launch: launch.as_ref().map(|l| l.launch_id.clone()),
            tz: tz.name().to_owned(),
            date: date.to_string(),
            comparison: reference.comparison.label(),
            in_window: window.map(|w| w.contains(today_local)),
            window: window.map(|w| (w.d0.to_string(), w.last.to_string())),
            kpis: entries,
        })
    }

    /// The value of KPI `id` over its bucket (hour or day, in the current
    /// launch's time zone) holding `at` (epoch seconds), up to `at`: the same
    /// part of the bucket as the board's value now, for `change_pct` rules.
    pub async fn value_at(&self, id: &str, at: u64) -> Result<Option<f64>, KpiError> {
        let Some((kpi, _)) = self.definitions.read().await.get(id).cloned() else {
            return Ok(None);
        };
        let tz = match current_launch(self).await? {
            Some(l) => parse_tz("tz", &l.tz)?,
            None => chrono_tz::UTC,
        };
        let start = match kpi.grain {
            Grain::Hour => buckets(Grain::Hour, tz, at, at + 1)
                .first()
                .copied()
                .unwrap_or(at),
            Grain::Day => day_start(local_date(at, tz), tz),
        };
        let values = query::run(
            &self.store,
            &self.cache,
            &kpi,
            kpi.grain,
            tz.name(),
            &[(start, at.max(start + 1))],
        )
        .await?;
        Ok(match values.get(&start) {
            Some(v) => *v,
            None if empty_is_zero(kpi.aggregation) => Some(0.0),
            None => None,
        })
    }
}

/// A KPI definition and its versions (scope `read`).
#[utoipa::path(get, path = "/v1/kpis/{id}", operation_id = "show_kpi", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id")),
    responses(
        (status = 200, description = "The definition and its history", body = crate::api_doc::KpiDefinitions),
        (status = 404, description = "No such KPI or launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn show(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    let rows: Vec<DefinitionRow> = state
        .store
        .query("SELECT kpi_id, version, definition, source, at_ms, actor FROM kpi_definitions WHERE kpi_id = ? ORDER BY version")
        .bind(path.as_str())
        .read_only().fetch_all()
        .await?;
    let Some(last) = rows.last() else {
        return Err(KpiError::NotFound(format!("KPI `{path}`")));
    };
    let current: serde_json::Value = serde_json::from_str(&last.definition).unwrap_or_default();
    let history: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "version": r.version, "source": r.source, "actor": r.actor,
                "at": DateTime::from_timestamp_millis(r.at_ms as i64).unwrap_or_default().to_rfc3339(),
                "definition": serde_json::from_str::<serde_json::Value>(&r.definition).unwrap_or_default(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": last.kpi_id, "version": last.version, "definition": current, "history": history,
    })))
}

/// Stores a KPI definition as a new version (scope `admin`); `id` defaults to the path's.
#[utoipa::path(put, path = "/v1/kpis/{id}", operation_id = "put_kpi", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id")),
    request_body(content((Kpi = "application/json"))),
    responses(
        (status = 200, description = "The version now current", body = crate::api_doc::KpiSaved),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks, BodyChecks,
        QueryChecks,
    ))]
async fn put(
    caller: Caller,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Admin)?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| invalid("body", format!("is not JSON: {e}")))?;
    if let Some(map) = value.as_object_mut() {
        map.entry("id").or_insert_with(|| path.as_str().into());
    }
    let kpi: Kpi = serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        let field = message.split('`').nth(1).unwrap_or("body").to_owned();
        KpiError::Invalid {
            field,
            reason: format!("is not valid: {message}"),
        }
    })?;
    if kpi.id != *path {
        return Err(invalid(
            "id",
            format!("`{}` differs from the path's `{path}`", kpi.id),
        ));
    }
    kpi.validate()
        .map_err(|(field, reason)| invalid(&field, reason))?;
    let version = state.save(kpi, "api", caller.name()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": path.as_str(), "version": version})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SeriesQuery {
    /// RFC 3339; default 14 days before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `hour` or `day`; default the KPI's grain.
    grain: Option<Grain>,
    /// Time zone of the buckets; default the current launch's, else UTC.
    tz: Option<String>,
}

/// A KPI per hour or day with gaps filled (scope `read`).
#[utoipa::path(get, path = "/v1/kpis/{id}/series", operation_id = "kpi_series", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The KPI id"), SeriesQuery),
    responses(
        (status = 200, description = "One point per bucket", body = crate::api_doc::KpiSeries),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),(status = 404, description = "No such KPI or launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn series(
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<SeriesQuery>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    let kpi = state
        .definitions
        .read()
        .await
        .get(path.as_str())
        .map(|(k, _)| k.clone())
        .ok_or_else(|| KpiError::NotFound(format!("KPI `{path}`")))?;
    let time = |field: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp().max(0) as u64)
            .map_err(|e| invalid(field, format!("is not an RFC 3339 time ({e})")))
    };
    let to = match &query.to {
        Some(t) => time("to", t)?,
        None => state.now_secs(),
    };
    let from = match &query.from {
        Some(t) => time("from", t)?,
        None => to.saturating_sub(14 * 86_400),
    };
    if from >= to || to - from > 400 * 86_400 {
        return Err(invalid(
            "from",
            "must be before `to`, at most 400 days earlier",
        ));
    }
    let tz = match &query.tz {
        Some(name) => parse_tz("tz", name)?,
        None => match current_launch(&state).await? {
            Some(l) => parse_tz("tz", &l.tz)?,
            None => chrono_tz::UTC,
        },
    };
    let grain = query.grain.unwrap_or(kpi.grain);
    let values = query::run(
        &state.store,
        &state.cache,
        &kpi,
        grain,
        tz.name(),
        &[(from, to)],
    )
    .await?;
    let points: Vec<serde_json::Value> = buckets(grain, tz, from, to)
        .into_iter()
        .map(|start| {
            let value = match values.get(&start) {
                Some(v) => *v,
                None if empty_is_zero(kpi.aggregation) => Some(0.0),
                None => None,
            };
            serde_json::json!({
                "start": tz.timestamp_opt(start as i64, 0).single().map(|t| t.to_rfc3339()),
                "value": value,
                "status": kpi.status(value),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "id": kpi.id, "grain": grain, "tz": tz.name(), "target": kpi.target, "points": points,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewLaunch {
    name: String,
    release: String,
    /// Go-live, RFC 3339 with its offset (e.g. `2026-11-20T09:00:00+01:00`).
    #[schema(format = DateTime)]
    d0: String,
    tz: String,
    #[serde(default = "fourteen")]
    window_days: u16,
    #[serde(default = "seven")]
    baseline_days: u16,
    #[serde(default)]
    stages: Vec<Stage>,
}

fn fourteen() -> u16 {
    14
}

fn seven() -> u16 {
    7
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LaunchStage)]
struct Stage {
    name: String,
    percent: f64,
    #[schema(format = DateTime)]
    starts_at: String,
}

/// Records a launch: D0, time zone, window, baseline, stages (scope `admin`).
#[utoipa::path(post, path = "/v1/launches", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    request_body(content((NewLaunch = "application/json"))),
    responses(
        (status = 201, description = "The launch", body = crate::api_doc::Launch),
        (status = 400, description = "A field is missing or wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        KeyChecks, BodyChecks,
        QueryChecks,
    ))]
async fn create_launch(
    caller: Caller,
    body: JsonBody,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Admin)?;
    let input: NewLaunch = serde_json::from_slice(&body).map_err(|e| {
        let message = e.to_string();
        KpiError::Invalid {
            field: message.split('`').nth(1).unwrap_or("body").to_owned(),
            reason: format!("is not valid: {message}"),
        }
    })?;
    if input.name.trim().is_empty() {
        return Err(invalid("name", "is required"));
    }
    parse_tz("tz", &input.tz)?;
    let d0 = DateTime::parse_from_rfc3339(&input.d0)
        .map_err(|e| invalid("d0", format!("is not an RFC 3339 time ({e})")))?;
    if !(1..=90).contains(&input.window_days) {
        return Err(invalid("window_days", "must be between 1 and 90"));
    }
    if input.baseline_days > 90 {
        return Err(invalid("baseline_days", "must be at most 90"));
    }
    for (i, stage) in input.stages.iter().enumerate() {
        if !(0.0..=100.0).contains(&stage.percent) {
            return Err(invalid(
                &format!("stages[{i}].percent"),
                "must be between 0 and 100",
            ));
        }
        DateTime::parse_from_rfc3339(&stage.starts_at)
            .map_err(|_| invalid(&format!("stages[{i}].starts_at"), "is not an RFC 3339 time"))?;
    }
    let row = LaunchRow {
        launch_id: uuid::Uuid::new_v4().to_string(),
        name: input.name,
        release: input.release,
        d0: input.d0,
        d0_secs: d0.timestamp().max(0) as u64,
        tz: input.tz,
        window_days: input.window_days,
        baseline_days: input.baseline_days,
        stages: serde_json::to_string(&input.stages).unwrap_or_default(),
        created_ms: now_ms(),
        actor: caller.name().to_owned(),
    };
    let mut insert = state.store.insert::<LaunchRow>("launches").await?;
    insert.write(&row).await?;
    insert.end().await?;
    Ok(HttpResponse::Created().json(launch_json(&row)))
}

fn launch_json(row: &LaunchRow) -> serde_json::Value {
    serde_json::json!({
        "id": row.launch_id, "name": row.name, "release": row.release, "d0": row.d0,
        "tz": row.tz, "window_days": row.window_days, "baseline_days": row.baseline_days,
        "stages": serde_json::from_str::<serde_json::Value>(&row.stages).unwrap_or_default(),
    })
}

async fn find_launch(state: &KpiState, id: &str) -> Result<LaunchRow, KpiError> {
    let row = if id == "current" {
        current_launch(state).await?
    } else {
        state
            .store
            .query(&format!(
                "SELECT {LAUNCH_COLUMNS} FROM launches WHERE launch_id = ? LIMIT 1"
            ))
            .bind(id)
            .read_only()
            .fetch_optional()
            .await?
    };
    row.ok_or_else(|| KpiError::NotFound(format!("launch `{id}`")))
}

/// Every launch, newest first (scope `read`).
#[utoipa::path(get, path = "/v1/launches", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The launches", body = Vec<crate::api_doc::Launch>),
        KeyChecks,
        QueryChecks,
    ))]
async fn list_launches(
    caller: Caller,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    let rows: Vec<LaunchRow> = state
        .store
        .query(&format!(
            "SELECT {LAUNCH_COLUMNS} FROM launches ORDER BY created_ms DESC"
        ))
        .read_only()
        .fetch_all()
        .await?;
    Ok(HttpResponse::Ok().json(rows.iter().map(launch_json).collect::<Vec<_>>()))
}

/// One launch (scope `read`).
#[utoipa::path(get, path = "/v1/launches/{id}", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The launch id, or `current`")),
    responses(
        (status = 200, description = "The launch", body = crate::api_doc::Launch),
        (status = 404, description = "No such KPI or launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn show_launch(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    Ok(HttpResponse::Ok().json(launch_json(&find_launch(&state, &path).await?)))
}

/// The baseline days D-B..D-1 (marked `baseline`) and each day D0..D+N of a
/// launch, with every KPI's value and status that day. Today is the board's
/// (at pace, `complete: false`); days to come have no data.
#[utoipa::path(get, path = "/v1/launches/{id}/days", operation_id = "launch_days", tag = "kpis", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(("id" = String, Path, description = "The launch id, or `current`")),
    responses(
        (status = 200, description = "One entry per day", body = crate::api_doc::LaunchDays),
        (status = 404, description = "No such KPI or launch (`not_found`)", body = ErrorBody),
        KeyChecks,
        QueryChecks,
    ))]
async fn days(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<KpiState>,
) -> Result<HttpResponse, KpiError> {
    caller.authorize(Scope::Read)?;
    let launch = find_launch(&state, &path).await?;
    let tz = parse_tz("tz", &launch.tz)?;
    let window = window_of(&launch, tz);
    let today = local_date(state.now_secs(), tz);
    let mut dates = window.baseline_dates();
    dates.extend(window.d0.iter_days().take_while(|d| *d <= window.last));
    let ranges: Vec<(NaiveDate, (u64, u64))> = dates
        .iter()
        .map(|d| (*d, pace::day_range(*d, tz, None)))
        .collect();
    let past: Vec<(u64, (u64, u64))> = ranges
        .iter()
        .filter(|(d, _)| *d <= today)
        .map(|(_, r)| (r.0, *r))
        .collect();
    let with_data = query::days_with_data(&state.store, &past).await?;
    let definitions = state.definitions.read().await.clone();
    let all_values = futures_util::future::join_all(
        definitions
            .values()
            .map(|(kpi, _)| daily(&state, kpi, tz, &ranges, &with_data)),
    )
    .await;
    let mut per_kpi = BTreeMap::new();
    for ((id, (kpi, _)), values) in definitions.iter().zip(all_values) {
        per_kpi.insert(id.clone(), (kpi, values?));
    }
    // Today is judged as the board judges it, like for like; only when this
    // launch is the current one (the board reads the current launch).
    let current = current_launch(&state).await?;
    let today_board = match current {
        Some(c) if c.launch_id == launch.launch_id && dates.contains(&today) => {
            Some(state.board_on(Some(today), false).await?)
        }
        _ => None,
    };
    let mut out = Vec::new();
    for date in dates {
        let n = (date - window.d0).num_days();
        let kpis: BTreeMap<&String, DayValue> = per_kpi
            .iter()
            .map(|(id, (kpi, values))| {
                let value = values.get(&date).copied().flatten();
                let from_board = today_board
                    .as_ref()
                    .filter(|_| date == today)
                    .and_then(|b| b.kpis.iter().find(|k| &k.id == id));
                let day = match from_board {
                    Some(entry) => DayValue {
                        value: entry.value,
                        status: entry.status,
                    },
                    None => DayValue {
                        value,
                        status: kpi.status(value),
                    },
                };
                (id, day)
            })
            .collect();
        out.push(serde_json::json!({
            "day": if n < 0 { format!("D{n}") } else { format!("D+{n}") },
            "date": date.to_string(),
            "baseline": n < 0,
            "complete": date < today,
            "kpis": kpis,
        }));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "launch": launch_json(&launch), "days": out,
    })))
}

/// The KPI engine's statements with example parameters, for the compatibility test.
pub fn catalog() -> Vec<Statement> {
    let kpis = crate::definition::parse(include_str!("../../../config/kpis.example.yaml"))
        .unwrap_or_default();
    let mut statements: Vec<Statement> = kpis
        .iter()
        .flat_map(|kpi| {
            [Grain::Day, Grain::Hour].map(|grain| Statement {
                origin: format!("kpis: {} per {grain:?}", kpi.id),
                sql: query::compile(
                    kpi,
                    grain,
                    "Europe/Paris",
                    &[
                        (1_795_000_000, 1_795_030_000),
                        (1_795_086_400, 1_795_400_000),
                    ],
                )
                .inline(),
            })
        })
        .collect();
    // Rollup-backed queries: stored hours in the middle, events around them.
    let trusted: std::collections::BTreeSet<u64> =
        (1_795_100_400..1_795_200_000).step_by(3600).collect();
    for kpi in &kpis {
        for grain in [Grain::Day, Grain::Hour] {
            statements.push(Statement {
                origin: format!("kpis: {} per {grain:?} with rollups", kpi.id),
                sql: query::compile_with_rollups(
                    kpi,
                    grain,
                    "Europe/Paris",
                    &[
                        (1_795_000_000, 1_795_200_000),
                        (1_795_300_000, 1_795_400_000),
                    ],
                    &trusted,
                )
                .inline(),
            });
        }
        statements.push(Statement {
            origin: format!("kpis: {} rollup pieces", kpi.id),
            sql: rollup::pieces_sql(kpi, &[(1_795_000_000, 1_795_086_400)]).inline(),
        });
        statements.push(Statement {
            origin: format!("kpis: {} recent pieces", kpi.id),
            sql: rollup::pieces_sql_from(
                kpi,
                &[(1_795_000_000, 1_795_003_600)],
                rollup::EventsTable::Recent,
            )
            .inline(),
        });
    }
    let measure = query::Bind::Str("0123abcd".into());
    let (from, to) = (
        query::Bind::U64(1_795_000_000),
        query::Bind::U64(1_795_400_000),
    );
    statements.push(Statement {
        origin: "kpis: rollup hours computed".into(),
        sql: query::Sql {
            text: rollup::COMPUTED_SQL.into(),
            binds: vec![measure, from.clone(), to.clone()],
        }
        .inline(),
    });
    statements.push(Statement {
        origin: "kpis: late hours".into(),
        sql: query::Sql {
            text: rollup::MARKS_SQL.into(),
            binds: vec![from, to],
        }
        .inline(),
    });
    statements.push(Statement {
        origin: "kpis: events_recent days".into(),
        sql: rollup::RECENT_PARTITIONS_SQL.into(),
    });
    statements.push(Statement {
        origin: "ingest: mark late hours".into(),
        sql: hypercare_storage::late::MARK_SQL
            .replacen('?', "[1795000000, 1795003600]", 1)
            .replacen('?', "1795400000000", 1),
    });
    statements.push(Statement {
        origin: "kpis: days with data".into(),
        sql: query::days_with_data_sql(&[
            (1_795_000_000, (1_795_000_000, 1_795_086_400)),
            (1_795_086_400, (1_795_086_400, 1_795_120_000)),
        ])
        .inline(),
    });
    statements.push(Statement {
        origin: "kpis: latest definitions".into(),
        sql: LATEST_DEFINITIONS.into(),
    });
    statements
}
