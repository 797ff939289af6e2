//! The tickets service: the domain rules ([`crate::lifecycle`],
//! [`crate::intake`]) applied to the stored tickets ([`crate::store`]) at the
//! time of the one clock ([`hypercare_runtime::Context::clock`]).
//!
//! A change is read-check-append under a lock per ticket: read the current
//! version, refuse a stale `expected_version`, apply the pure rule, append the
//! next version. New tickets take their number from the highest one stored,
//! one creation at a time. Both locks live in this process (see the crate
//! documentation about replicas).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use chrono_tz::Tz;
use prometheus::{IntGaugeVec, Opts, Registry};

use hypercare_runtime::SharedClock;
use hypercare_telemetry::metric_name;

use crate::config::TicketSettings;
use crate::error::TicketError;
use crate::intake::Intake;
use crate::lifecycle::Changed;
use crate::model::{Priority, Ticket};
use crate::similar::{Similar, similar, similar_to};
use crate::sla::sla;
use crate::stats::{DayStats, per_day};
use crate::store::{self, Filters, Sort, TicketRef};
use crate::view::TicketView;

/// What the ticket routes share; one per application.
pub struct TicketService {
    pub settings: TicketSettings,
    store: clickhouse::Client,
    clock: SharedClock,
    /// One lock per ticket: its changes are read-check-append sequences.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Ticket numbers come from the highest one stored, one creation at a time.
    numbering: tokio::sync::Mutex<()>,
    gauges: Gauges,
}

impl TicketService {
    pub fn new(
        settings: TicketSettings,
        store: clickhouse::Client,
        clock: SharedClock,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        Ok(Self {
            settings,
            store,
            clock,
            locks: Mutex::new(HashMap::new()),
            numbering: tokio::sync::Mutex::new(()),
            gauges: Gauges::register(registry)?,
        })
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A ticket as the API shows it, its SLA clocks read now.
    pub fn view(&self, ticket: Ticket) -> TicketView {
        TicketView::new(ticket, &self.settings, self.now_ms())
    }

    fn lock_for(&self, ticket_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the locks nobody holds, so the map stays as small as the work in flight.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(ticket_id.to_owned()).or_default().clone()
    }

    /// Stores a new ticket; answers it with the open tickets that read alike.
    pub async fn create(
        &self,
        intake: Intake,
        actor: &str,
    ) -> Result<(Ticket, Vec<Similar>), TicketError> {
        let candidates = store::open_in_category(&self.store, &intake.category).await?;
        let suggestions = similar(&intake.title, &intake.description, &candidates);
        let _numbering = self.numbering.lock().await;
        let number = store::next_number(&self.store).await?;
        let opened = Ticket::open(
            intake,
            uuid::Uuid::new_v4().to_string(),
            number,
            actor,
            self.now_ms(),
        );
        store::append(&self.store, &opened.ticket).await?;
        tracing::info!(ticket = %opened.ticket.key(), priority = %opened.ticket.priority, "Ticket created.");
        Ok((opened.ticket, suggestions))
    }

    /// Applies `rule` to the current version of ticket `id` (id or `HC-n`),
    /// under its lock, after checking the version the caller saw; appends and
    /// answers the next version.
    pub async fn change(
        &self,
        id: &str,
        expected_version: Option<u32>,
        rule: impl FnOnce(&Ticket, u64) -> Result<Changed, TicketError>,
    ) -> Result<Ticket, TicketError> {
        let expected = expected_version.ok_or_else(|| {
            TicketError::invalid(
                "expected_version",
                "is required: the version of the ticket you are changing",
            )
        })?;
        let found = self.current(&TicketRef::parse(id), id).await?;
        let lock = self.lock_for(&found.ticket_id);
        let _guard = lock.lock().await;
        // Read again under the lock: another change may have landed meanwhile.
        let current = self.current(&TicketRef::Id(found.ticket_id), id).await?;
        if current.version != expected {
            return Err(TicketError::VersionConflict {
                expected,
                current: current.version,
            });
        }
        let changed = rule(&current, self.now_ms())?;
        store::append(&self.store, &changed.ticket).await?;
        tracing::info!(ticket = %changed.ticket.key(), version = changed.ticket.version, events = ?changed.events, "Ticket changed.");
        Ok(changed.ticket)
    }

    async fn current(&self, by: &TicketRef, id: &str) -> Result<Ticket, TicketError> {
        store::latest(&self.store, by)
            .await?
            .ok_or_else(|| TicketError::NotFound(id.to_owned()))
    }

    /// The current version of a ticket and every version, oldest first.
    pub async fn show(&self, id: &str) -> Result<(Ticket, Vec<Ticket>), TicketError> {
        let current = self.current(&TicketRef::parse(id), id).await?;
        let history = store::history(&self.store, &current.ticket_id).await?;
        Ok((current, history))
    }

    /// Open tickets of the same category that read like `ticket`: maybe the
    /// same problem, reported twice.
    pub async fn similar_to(&self, ticket: &Ticket) -> Result<Vec<Similar>, TicketError> {
        let candidates = store::open_in_category(&self.store, &ticket.category).await?;
        Ok(similar_to(ticket, &candidates))
    }

    /// A page of current tickets, and how many match in all.
    pub async fn list(
        &self,
        filters: &Filters,
        sort: Sort,
        descending: bool,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Ticket>, u64), TicketError> {
        Ok(store::list(&self.store, filters, sort, descending, offset, limit).await?)
    }

    /// Per-day statistics from `from` to `to` (inclusive), days cut in `tz`.
    pub async fn stats(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tz: Tz,
    ) -> Result<Vec<DayStats>, TicketError> {
        let tickets = store::all_current(&self.store).await?;
        Ok(per_day(
            &tickets,
            from,
            to,
            tz,
            &self.settings,
            self.now_ms(),
        ))
    }

    /// Day `date` (cut in `tz`) for the daily report: its statistics and the
    /// clusters of similar tickets opened that day.
    pub async fn day(
        &self,
        date: NaiveDate,
        tz: Tz,
    ) -> Result<(DayStats, Vec<crate::similar::Cluster>), TicketError> {
        let tickets = store::all_current(&self.store).await?;
        let stats = per_day(&tickets, date, date, tz, &self.settings, self.now_ms())
            .pop()
            .unwrap_or_default();
        let start = crate::stats::day_start_ms(date, tz);
        let end = crate::stats::day_start_ms(date.succ_opt().unwrap_or(date), tz);
        let opened: Vec<Ticket> = tickets
            .into_iter()
            .filter(|t| t.created_ms >= start && t.created_ms < end)
            .collect();
        Ok((stats, crate::similar::clusters(&opened)))
    }

    /// Recomputes the open and breached gauges from every ticket's current state.
    pub async fn refresh_gauges(&self) -> Result<(), TicketError> {
        let tickets = store::all_current(&self.store).await?;
        self.gauges
            .set(&Counts::of(&tickets, &self.settings, self.now_ms()));
        Ok(())
    }
}

/// Open and breached tickets by priority: what the gauges show.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    /// Per priority: (open, first response breached, resolution breached).
    pub by_priority: [(i64, i64, i64); 4],
}

impl Counts {
    /// Counts the open tickets and those past a target without meeting it.
    pub fn of(tickets: &[Ticket], settings: &TicketSettings, now_ms: u64) -> Counts {
        let mut counts = Counts::default();
        for ticket in tickets.iter().filter(|t| !t.state.is_done()) {
            let slot = &mut counts.by_priority[priority_index(ticket.priority)];
            slot.0 += 1;
            let status = sla(ticket, settings, now_ms);
            if status.first_response.breached && status.first_response.met_at.is_none() {
                slot.1 += 1;
            }
            if status.resolution.breached {
                slot.2 += 1;
            }
        }
        counts
    }
}

fn priority_index(priority: Priority) -> usize {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(Priority::ALL.len() - 1)
}

#[derive(Clone)]
struct Gauges {
    open: IntGaugeVec,
    breached: IntGaugeVec,
}

impl Gauges {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let open = IntGaugeVec::new(
            Opts::new(
                metric_name("tickets_open"),
                "Tickets not resolved, by priority.",
            ),
            &["priority"],
        )?;
        let breached = IntGaugeVec::new(
            Opts::new(
                metric_name("tickets_sla_breached"),
                "Open tickets past an SLA target, by priority and clock (first_response, resolution): feed for the alert tiers.",
            ),
            &["priority", "clock"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(breached.clone()))?;
        Ok(Self { open, breached })
    }

    fn set(&self, counts: &Counts) {
        for (priority, (open, first_response, resolution)) in
            Priority::ALL.iter().zip(counts.by_priority)
        {
            let p = priority.as_str();
            self.open.with_label_values(&[p]).set(open);
            self.breached
                .with_label_values(&[p, "first_response"])
                .set(first_response);
            self.breached
                .with_label_values(&[p, "resolution"])
                .set(resolution);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::NewTicket;
    use crate::lifecycle::Visibility;
    use crate::model::State;

    const MINUTE: u64 = 60_000;

    fn p1() -> Ticket {
        let new: NewTicket = serde_json::from_value(serde_json::json!({
            "title": "Orders lost", "category": "question", "impact": "high", "urgency": "high"
        }))
        .unwrap();
        let intake = new.check(&TicketSettings::default()).unwrap();
        Ticket::open(intake, "t".into(), 1, "ana", 0).ticket
    }

    #[test]
    fn counts_are_open_tickets_past_a_target_not_met() {
        let settings = TicketSettings::default();
        let late = p1();
        let answered = p1()
            .comment("on it", Visibility::Public, "ana", 40 * MINUTE)
            .ticket;
        let done = p1()
            .transition(State::Resolved, "dup", "ana", MINUTE)
            .unwrap()
            .ticket;
        // P1: first response 30 min, resolution 8 h. At 45 min, `late` missed
        // its first response; `answered` was answered late but is answered.
        let counts = Counts::of(&[late, answered, done], &settings, 45 * MINUTE);
        assert_eq!(counts.by_priority[0], (2, 1, 0));
        assert_eq!(counts.by_priority[3], (0, 0, 0));
        let counts = Counts::of(&[p1()], &settings, 9 * 60 * MINUTE);
        assert_eq!(counts.by_priority[0], (1, 1, 1));
    }
}
