//! `GET /v1/advice/release-window?weeks=4&length=60m` (scope `read`): when to
//! ship the next release, from the traffic of the past weeks.
//!
//! Data flow: the query string -> [`AdviceParams::check`] (400
//! `invalid_request` naming `weeks` (1..=12) or `length` (15m..=12h, a multiple
//! of 15 minutes)) -> the current launch's time zone (UTC without a launch) ->
//! [`store::requests_per_bucket`] (the `http_requests_total` counter; when it
//! has no data, [`store::events_per_bucket`]) over the whole weeks before now
//! -> [`rank::matrix`] per weekday and time of day -> [`rank::quietest`], top
//! 3 -> [`Advice`]. 404 `not_found` when neither holds any traffic; 503
//! `storage_unavailable` when ClickHouse cannot answer.

pub mod cli;
pub mod rank;
pub mod store;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, Duration, NaiveTime, SecondsFormat, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use hypercare_http::auth::{Caller, Scope};
use hypercare_http::error::{ApiError, ErrorBody};
use hypercare_http::openapi::{KeyChecks, StoreChecks};

use crate::{InvestigateError, InvestigateState};
use rank::{Ranked, SLOT_SECS, SLOTS_PER_DAY, SLOTS_PER_WEEK, WEEK_SECS};

/// Windows in an answer.
pub const TOP: usize = 3;
pub const MAX_WEEKS: u32 = 12;
pub const MAX_LENGTH_MINUTES: u32 = 12 * 60;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/advice/release-window",
        web::get().to(get_release_window),
    );
}

/// What the client sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdviceParams {
    pub weeks: Option<String>,
    pub length: Option<String>,
}

impl AdviceParams {
    /// (weeks, window length in minutes).
    pub fn check(&self) -> Result<(u32, u32), InvestigateError> {
        let weeks = crate::logs::filter::number("weeks", self.weeks.as_deref())?.unwrap_or(4);
        if !(1..=MAX_WEEKS).contains(&weeks) {
            return Err(InvestigateError::invalid(
                "weeks",
                format!("must be in 1..={MAX_WEEKS}"),
            ));
        }
        let length = self.length.as_deref().unwrap_or("60m");
        let bad = || {
            InvestigateError::invalid(
                "length",
                format!(
                    "is minutes or hours such as 60m or 2h: a multiple of 15 minutes, at most {}h",
                    MAX_LENGTH_MINUTES / 60
                ),
            )
        };
        let number = |text: &str| text.parse::<u32>().map_err(|_| bad());
        let minutes = if let Some(m) = length.strip_suffix('m') {
            number(m)?
        } else if let Some(h) = length.strip_suffix('h') {
            number(h)?.checked_mul(60).ok_or_else(bad)?
        } else {
            return Err(bad());
        };
        if minutes == 0 || minutes % 15 != 0 || minutes > MAX_LENGTH_MINUTES {
            return Err(bad());
        }
        Ok((weeks, minutes))
    }
}

/// One advised window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Window {
    /// Local weekday and time the window starts, e.g. `Tuesday 03:00`.
    pub starts: String,
    /// Where it ends, e.g. `Tuesday 04:00`.
    pub ends: String,
    /// Its next start after now, RFC 3339 with the zone's offset.
    pub next_start: String,
    /// Mean traffic in the window over the weeks (requests or events).
    pub expected: f64,
    /// Sample standard deviation over the weeks.
    pub stddev: f64,
    /// 10th and 90th percentiles over the weeks.
    pub p10: f64,
    pub p90: f64,
    /// The window's traffic in each week with traffic, oldest first.
    pub per_week: Vec<f64>,
}

/// The advice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Advice {
    /// What was counted: `requests` (the `http_requests_total` counter's
    /// increase) or `events` (when that counter has no data).
    pub basis: String,
    /// The IANA zone of the weekdays and times (the current launch's, else UTC).
    pub time_zone: String,
    pub weeks: u32,
    /// Weeks that held any traffic (the others are left out).
    pub weeks_with_traffic: usize,
    pub length_minutes: u32,
    /// The traffic read (RFC 3339, UTC).
    pub from: String,
    pub to: String,
    /// The quietest windows, quietest first, not overlapping.
    pub windows: Vec<Window>,
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn slot_name(slot: usize) -> String {
    let slot = slot % SLOTS_PER_WEEK;
    let minutes = (slot % SLOTS_PER_DAY) * 15;
    format!(
        "{} {:02}:{:02}",
        WEEKDAYS[slot / SLOTS_PER_DAY],
        minutes / 60,
        minutes % 60
    )
}

/// The first local time after `now` at the slot's weekday and time (a time a
/// clock change skips is taken the week after).
pub fn next_start(slot: usize, now_secs: u64, tz: Tz) -> String {
    let now = DateTime::from_timestamp(i64::try_from(now_secs).unwrap_or(0), 0)
        .unwrap_or_default()
        .with_timezone(&tz);
    let minutes = (slot % SLOTS_PER_DAY) as u32 * 15;
    let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or_default();
    (0..15)
        .filter_map(|d| {
            let date = now.date_naive() + Duration::days(d);
            (date.weekday().num_days_from_monday() as usize == slot / SLOTS_PER_DAY)
                .then(|| tz.from_local_datetime(&date.and_time(time)).earliest())
                .flatten()
        })
        .find(|start| *start > now)
        .map(|start| start.to_rfc3339_opts(SecondsFormat::Secs, false))
        .unwrap_or_default()
}

fn window(ranked: Ranked, slots: usize, now_secs: u64, tz: Tz) -> Window {
    Window {
        starts: slot_name(ranked.start_slot),
        ends: slot_name(ranked.start_slot + slots),
        next_start: next_start(ranked.start_slot, now_secs, tz),
        expected: ranked.mean,
        stddev: ranked.stddev,
        p10: ranked.p10,
        p90: ranked.p90,
        per_week: ranked.per_week,
    }
}

impl InvestigateState {
    /// The quietest windows of the past weeks' traffic, now.
    pub async fn release_window(&self, params: &AdviceParams) -> Result<Advice, InvestigateError> {
        let (weeks, minutes) = params.check()?;
        let now = self.clock.now_ms() / 1000;
        let to = now / SLOT_SECS * SLOT_SECS;
        let from = to.saturating_sub(u64::from(weeks) * WEEK_SECS);
        let tz = match hypercare_kpis::launch::find(&self.store, "current").await? {
            Some(launch) => launch.tz().unwrap_or(chrono_tz::UTC),
            None => chrono_tz::UTC,
        };
        let mut basis = "requests";
        let mut buckets = store::requests_per_bucket(&self.store, from, to).await?;
        if buckets.iter().all(|(_, n)| *n <= 0.0) {
            basis = "events";
            buckets = store::events_per_bucket(&self.store, from, to).await?;
        }
        let traffic = rank::matrix(&buckets, from, weeks as usize, tz);
        let weeks_with_traffic = traffic
            .iter()
            .filter(|week| week.iter().any(|v| *v > 0.0))
            .count();
        let slots = (minutes / 15) as usize;
        let ranked = rank::quietest(&traffic, slots, TOP);
        if ranked.is_empty() {
            return Err(InvestigateError::NoTraffic(weeks));
        }
        Ok(Advice {
            basis: basis.into(),
            time_zone: tz.name().into(),
            weeks,
            weeks_with_traffic,
            length_minutes: minutes,
            from: crate::logs::filter::rfc3339_ns(from * 1_000_000_000),
            to: crate::logs::filter::rfc3339_ns(to * 1_000_000_000),
            windows: ranked
                .into_iter()
                .map(|r| window(r, slots, now, tz))
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AdviceQuery {
    /// Past weeks to learn from, 1..=12; default 4.
    #[param(value_type = Option<u32>)]
    weeks: Option<String>,
    /// The release window's length: `60m`, `90m`, `2h`... (multiple of 15
    /// minutes, at most 12h); default 60m.
    length: Option<String>,
}

/// The quietest windows of the week for a release.
#[utoipa::path(get, path = "/v1/advice/release-window", tag = "investigate", security(("bearer" = []), ("basic" = []), ("api_key" = [])),
    params(AdviceQuery),
    responses(
        (status = 200, description = "The quietest windows, quietest first", body = Advice),
        (status = 400, description = "A parameter is wrong (`invalid_request`, `field` names it)", body = ErrorBody),
        (status = 404, description = "No traffic stored in those weeks (`not_found`)", body = ErrorBody),
        KeyChecks,
        StoreChecks,
    ))]
#[tracing::instrument(name = "investigate.release_window", skip_all, fields(key = %caller.name()))]
pub(crate) async fn get_release_window(
    caller: Caller,
    query: web::Query<AdviceQuery>,
    state: web::Data<InvestigateState>,
) -> Result<HttpResponse, ApiError> {
    caller.authorize(Scope::Read)?;
    let AdviceQuery { weeks, length } = query.into_inner();
    let params = AdviceParams { weeks, length };
    Ok(HttpResponse::Ok().json(state.release_window(&params).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_and_length_are_checked() {
        let check = |weeks: Option<&str>, length: &str| {
            AdviceParams {
                weeks: weeks.map(str::to_owned),
                length: Some(length.into()),
            }
            .check()
        };
        assert_eq!(check(None, "60m").unwrap(), (4, 60));
        assert_eq!(check(Some("2"), "2h").unwrap(), (2, 120));
        for (weeks, length, field) in [
            (Some("0"), "60m", "weeks"),
            (Some("four"), "60m", "weeks"),
            (Some("13"), "60m", "weeks"),
            (None, "50m", "length"),
            (None, "0m", "length"),
            (None, "13h", "length"),
            (None, "1d", "length"),
            (None, "", "length"),
            (None, "m", "length"),
            (None, "99999999999h", "length"),
            (None, "é", "length"),
        ] {
            match check(weeks, length) {
                Err(InvestigateError::Invalid { field: f, .. }) => assert_eq!(f, field, "{length}"),
                other => panic!("{length}: {other:?}"),
            }
        }
    }

    #[test]
    fn windows_are_named_in_local_time_and_the_next_start_follows_now() {
        assert_eq!(slot_name(SLOTS_PER_DAY + 12), "Tuesday 03:00");
        assert_eq!(slot_name(SLOTS_PER_WEEK - 2 + 4), "Monday 00:30");
        // Now: Friday 2026-11-20 10:00 UTC; next Tuesday 03:00 Paris is the 24th.
        let now = 1_795_341_600 - 2 * 86_400;
        assert_eq!(
            next_start(SLOTS_PER_DAY + 12, now, chrono_tz::Europe::Paris),
            "2026-11-24T03:00:00+01:00"
        );
    }
}
