//! Liveness and readiness, from reports of the components that matter.
//!
//! Each component (the ClickHouse probe, each writer) registers with a deadline
//! and reports regularly. `/healthz` fails when a component has not reported within
//! its deadline (it is stuck or dead: restart the process); `/readyz` also fails
//! while a component reports it cannot serve (ClickHouse unreachable: take the
//! replica out of the load balancer, but do not restart it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde::Serialize;

#[derive(Debug, Default, Clone)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<&'static str, Component>>>,
}

#[derive(Debug)]
struct Component {
    deadline: Duration,
    last_report: Instant,
    ready: bool,
    detail: String,
}

/// A component's handle for its reports.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    name: &'static str,
    health: Health,
}

impl HealthReporter {
    /// Says the component is alive, whether it can serve now, and why.
    pub fn report(&self, ready: bool, detail: impl Into<String>) {
        let mut components = self
            .health
            .components
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(component) = components.get_mut(self.name) {
            component.last_report = Instant::now();
            component.ready = ready;
            component.detail = detail.into();
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ComponentStatus {
    alive: bool,
    ready: bool,
    detail: String,
    last_report_secs_ago: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = HealthStatus)]
struct Status {
    /// `ok`, `degraded` (alive, not ready) or `failing` (a component is stuck).
    #[schema(pattern = "^(ok|degraded|failing)$")]
    status: &'static str,
    components: BTreeMap<&'static str, ComponentStatus>,
}

impl Health {
    /// Registers a component that starts not ready until its first report.
    pub fn register(&self, name: &'static str, deadline: Duration) -> HealthReporter {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        components.insert(
            name,
            Component {
                deadline,
                last_report: Instant::now(),
                ready: false,
                detail: "starting".into(),
            },
        );
        HealthReporter {
            name,
            health: self.clone(),
        }
    }

    fn status(&self) -> (bool, bool, Status) {
        let components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let mut all_alive = true;
        let mut all_ready = true;
        let mut out = BTreeMap::new();
        for (name, c) in components.iter() {
            let age = c.last_report.elapsed();
            let alive = age <= c.deadline;
            all_alive &= alive;
            all_ready &= alive && c.ready;
            out.insert(
                *name,
                ComponentStatus {
                    alive,
                    ready: c.ready,
                    detail: c.detail.clone(),
                    last_report_secs_ago: (age.as_secs_f64() * 10.0).round() / 10.0,
                },
            );
        }
        let status = if all_ready {
            "ok"
        } else if all_alive {
            "degraded"
        } else {
            "failing"
        };
        (
            all_alive,
            all_ready,
            Status {
                status,
                components: out,
            },
        )
    }
}

/// The documented health routes.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct ApiDoc;

fn answer(ok: bool, status: Status) -> HttpResponse {
    if ok {
        HttpResponse::Ok().json(status)
    } else {
        HttpResponse::ServiceUnavailable().json(status)
    }
}

/// `GET /healthz`: is the process alive (every component reported in time)?
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses(
        (status = 200, description = "Every component reported in time", body = Status),
        (status = 503, description = "A component is stuck or dead: restart the process", body = Status),
    ))]
pub async fn healthz(health: web::Data<Health>) -> HttpResponse {
    let (alive, _, status) = health.status();
    answer(alive, status)
}

/// `GET /readyz`: can it serve now (alive, and every component ready)?
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Alive and every component ready", body = Status),
        (status = 503, description = "Not ready (e.g. ClickHouse unreachable): take it out of the load balancer", body = Status),
    ))]
pub async fn readyz(health: web::Data<Health>) -> HttpResponse {
    let (_, ready, status) = health.status();
    answer(ready, status)
}
