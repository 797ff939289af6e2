//! What can be wrong with a scenario, before any request is sent: each error
//! names the field or option and says what to fix. The command line turns
//! them into its exit message (`anyhow`); the library returns them typed.

/// A value that does not parse: a duration, a fraction, a ramp, a threshold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` has no unit (use us, ms, s, m or h)")]
    NoUnit(String),
    #[error("`{0}` does not start with a number")]
    NotANumber(String),
    #[error("`{0}` is not a unit (use us, ms, s, m or h)")]
    UnknownUnit(String),
    #[error("`{0}` is not a fraction (e.g. 1% or 0.01)")]
    NotAFraction(String),
    #[error("`{0}` is outside 0..100%")]
    FractionOutOfRange(String),
    #[error("--ramp `{0}`: expected FROM:TO:STEPS:STEP_DURATION, e.g. 100:5000:10:30s")]
    RampShape(String),
    #[error("--ramp `{text}`: `{part}` is not a number")]
    RampNumber { text: String, part: String },
    #[error("--ramp `{text}`: `{part}` is not a step count")]
    RampSteps { text: String, part: String },
    #[error("expected `METRIC OP VALUE`, e.g. `p99 < 300ms`")]
    ThresholdShape,
    #[error("`{0}` is not an operator (<, <=, >, >=)")]
    Operator(String),
    #[error("`{0}` is not a percentile (p50, p99, p99.9)")]
    Percentile(String),
    #[error("`{0}` is outside p0..p100")]
    PercentileRange(String),
    #[error("`{0}` is not a metric (pNN, mean, max, error_rate, rps)")]
    Metric(String),
    #[error("`{0}` is not a rate")]
    Rate(String),
}

/// A template (path, header value, body) that does not parse; `placeholder`
/// is the text between the braces.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at byte {at} is never closed with `}}}}`")]
    Unclosed { at: usize },
    #[error("`{{{{{placeholder}}}}}`: `{value}` is not an integer")]
    NotAnInteger { placeholder: String, value: String },
    #[error("`{{{{{placeholder}}}}}`: {low} is greater than {high}")]
    EmptyRange {
        placeholder: String,
        low: i64,
        high: i64,
    },
    #[error("`{{{{{placeholder}}}}}`: environment variable {name} is not set")]
    MissingEnv { placeholder: String, name: String },
    #[error(
        "`{{{{{0}}}}}` is not a placeholder: use uuid, now_ms, now_rfc3339, seq, rand_int A B or env NAME"
    )]
    Unknown(String),
}

/// A scenario that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// The YAML does not parse or does not have the scenario's shape.
    #[error("scenario: {0}")]
    Yaml(String),
    #[error("`{name}` is not a built-in scenario (known: {known})")]
    UnknownBuiltin { name: String, known: &'static str },
    /// A field is missing or wrong; `field` is its path (`requests[2].method`).
    #[error("{field}: {reason}")]
    Field { field: String, reason: String },
    #[error("{field}: {error}")]
    Value { field: String, error: ValueError },
    #[error("{field}: {error}")]
    Template { field: String, error: TemplateError },
    /// A `--ramp` option that does not parse (its message names the option).
    #[error("{0}")]
    Ramp(ValueError),
    #[error("thresholds: `{text}`: {error}")]
    Threshold { text: String, error: ValueError },
    #[error("target `{0}` is not on loopback: load tests against other hosts need --allow-remote")]
    RemoteTarget(String),
}

impl ScenarioError {
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ScenarioError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn value(field: impl Into<String>) -> impl FnOnce(ValueError) -> Self {
        let field = field.into();
        move |error| ScenarioError::Value { field, error }
    }

    pub fn template(field: impl Into<String>) -> impl FnOnce(TemplateError) -> Self {
        let field = field.into();
        move |error| ScenarioError::Template { field, error }
    }
}
