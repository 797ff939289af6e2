//! OpenAPI parts every route's documentation shares.
//!
//! Each service crate documents its own handlers with `#[utoipa::path]` beside
//! them and gathers them in an `ApiDoc`; the binary merges those into the one
//! document it serves at `GET /v1/openapi.json`. What is here is what they all
//! refer to: the security schemes (the three ways a key is sent, see
//! [`crate::auth`]), the JSON error body and the answers of the key checks.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify};

use crate::error::ErrorBody;

/// Security scheme names, as the routes' `security(...)` lists name them.
pub const BEARER: &str = "bearer";
pub const BASIC: &str = "basic";
pub const API_KEY: &str = "api_key";

/// Adds the three security schemes a key may come by.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "`Authorization: Basic base64(<key>:)`, as Segment libraries and Prometheus `basic_auth` send it",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "`X-API-Key: <key>`",
            ))),
        );
    }
}

/// The answers of the key checks, which every route with a key has
/// (see [`crate::auth::AuthError`]).
#[derive(IntoResponses)]
pub enum KeyChecks {
    /// No key, or a key that is not configured (`unauthorized`).
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// The key lacks the scope this route needs (`forbidden`).
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// Over the key's rate limit (`rate_limited`); retry after `Retry-After` seconds.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
    RateLimited(#[to_schema] ErrorBody),
}

/// The answer of a route that reads ClickHouse when it cannot (a store down or
/// past its deadline).
#[derive(IntoResponses)]
pub enum StoreChecks {
    /// ClickHouse cannot answer: retry.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// [`StoreChecks`], and the query stopped at its deadline (KPI reads).
#[derive(IntoResponses)]
pub enum QueryChecks {
    /// ClickHouse cannot answer: retry.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
    /// The query took too long (`query_too_slow`).
    #[response(status = 504)]
    TooSlow(#[to_schema] ErrorBody),
}

/// The answers of reading a body (see [`crate::body::BodyError`]).
#[derive(IntoResponses)]
pub enum BodyChecks {
    /// The body is over the size limit after decompression (`payload_too_large`).
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// A `Content-Type` or `Content-Encoding` that is not read here.
    #[response(status = 415)]
    Unsupported(#[to_schema] ErrorBody),
}

/// Opaque bytes in the document (`type: string, format: binary`): protobuf
/// and snappy bodies, whose schema is their `.proto`, not JSON.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for Binary {}
