//! The time zone every console page shows times in: the current launch's,
//! UTC before one is declared.

use chrono_tz::Tz;
use hypercare_http::ApiError;
use hypercare_kpis::launch::{self, LaunchRow};

use crate::error::ConsoleError;

/// The time zone of a launch (UTC without one).
pub fn launch_tz(launch: Option<&LaunchRow>) -> Tz {
    launch.and_then(|l| l.tz().ok()).unwrap_or(chrono_tz::UTC)
}

/// The current launch's time zone, for pages that need no more of the launch.
pub async fn launch_zone(store: &clickhouse::Client) -> Result<Tz, ConsoleError> {
    let current = launch::current(store).await.map_err(ApiError::storage)?;
    Ok(launch_tz(current.as_ref()))
}
