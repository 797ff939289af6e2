//! The schemas of the answers that handlers write with `serde_json::json!` or
//! from the pure modules' types, for the OpenAPI document: keep them in step
//! with `routes.rs` (the schemathesis run in the end-to-end tests checks every
//! answer against them). The document itself is `routes::ApiDoc`.

#![allow(dead_code)] // The types only describe JSON the handlers write.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use crate::view::AlertView;

/// `GET /v1/alerts`: active alerts and whether a rollback is recommended.
#[derive(ToSchema)]
pub struct AlertBoard {
    rollback: Rollback,
    alerts: Vec<AlertView>,
}

#[derive(ToSchema)]
pub struct Rollback {
    /// `none` or `rollback_recommended`.
    state: String,
    /// The firing alerts of rollback rules.
    #[schema(value_type = Vec<Object>)]
    evidence: Vec<serde_json::Value>,
}

/// `GET /v1/alerts/{id}`: an alert and its changes.
#[derive(ToSchema)]
pub struct AlertWithHistory {
    alert: AlertView,
    history: Vec<AlertChange>,
}

#[derive(ToSchema)]
pub struct AlertChange {
    version: u32,
    change: String,
    at: Option<String>,
    state: String,
}

/// `GET /v1/alerts/history`: alerts that fired in a span, MTTA / MTTR per tier.
#[derive(ToSchema)]
pub struct AlertHistory {
    from: Option<String>,
    to: Option<String>,
    tiers: BTreeMap<String, TierTimes>,
    alerts: Vec<FiredAlert>,
}

#[derive(ToSchema)]
pub struct TierTimes {
    alerts: u64,
    acked: u64,
    resolved: u64,
    mtta_secs: Option<f64>,
    mttr_secs: Option<f64>,
}

#[derive(ToSchema)]
pub struct FiredAlert {
    id: String,
    rule: String,
    tier: String,
    state: String,
    labels: BTreeMap<String, String>,
    fired_at: Option<String>,
    acked_at: Option<String>,
    acked_by: String,
    resolved_at: Option<String>,
    resolved_by: String,
    time_to_ack_secs: Option<f64>,
    time_to_resolve_secs: Option<f64>,
    rollback_trigger: bool,
}

/// `GET /v1/alerts/notifications`: delivery attempts, newest first.
#[derive(ToSchema)]
pub struct Deliveries {
    deliveries: Vec<crate::store::DeliveryRow>,
}

/// A silence as Alertmanager's API shows it.
#[derive(ToSchema)]
pub struct SilenceView {
    id: String,
    status: SilenceStatus,
    matchers: Vec<MatcherView>,
    #[schema(rename = "startsAt")]
    starts_at: Option<String>,
    #[schema(rename = "endsAt")]
    ends_at: Option<String>,
    #[schema(rename = "createdBy")]
    created_by: String,
    comment: String,
}

#[derive(ToSchema)]
pub struct SilenceStatus {
    /// `pending`, `active` or `expired`.
    state: String,
}

#[derive(ToSchema)]
pub struct MatcherView {
    name: String,
    value: String,
    #[schema(rename = "isRegex")]
    is_regex: bool,
    #[schema(rename = "isEqual")]
    is_equal: bool,
}

/// `POST /v1/silences`: the new silence's id.
#[derive(ToSchema)]
pub struct SilenceCreated {
    #[schema(rename = "silenceID")]
    silence_id: String,
}

/// `GET /v1/slos`: every SLO and its error budget at `at`.
#[derive(ToSchema)]
pub struct SloList {
    /// RFC 3339: the end of every window.
    at: String,
    slos: Vec<crate::burn::SloStatus>,
}
