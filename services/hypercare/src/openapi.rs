//! The OpenAPI document of the whole API, served at `GET /v1/openapi.json`.
//!
//! Each service crate documents its handlers with `#[utoipa::path]` beside them
//! and gathers them in its `ApiDoc`; [`document`] merges those with the routes
//! the binary mounts itself. The test below checks that the document lists
//! exactly the routes [`crate::startup::routes`] mounts, so a route without
//! documentation fails it; the schemathesis run in the end-to-end tests checks
//! the live answers against the schemas.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use hypercare_http::openapi::SecuritySchemes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hypercare",
        description = "Post-launch observability and KPIs from go-live through D+14. \
            Errors are `{\"error\": \"<code>\", \"message\": \"<what to fix>\", \"field\": \"<input>\"}`. \
            Keys go in `Authorization: Bearer <key>`, `Authorization: Basic base64(<key>:)` or `X-API-Key`."
    ),
    paths(openapi_json, hypercare_http::observe::prometheus_metrics),
    modifiers(&SecuritySchemes),
    tags((name = "service", description = "The service itself: health, metrics, this document"))
)]
struct Own;

/// The whole document: the binary's routes and every service crate's.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Own::openapi();
    for part in parts() {
        doc.merge(part);
    }
    doc
}

/// Each service crate's own document.
fn parts() -> [utoipa::openapi::OpenApi; 8] {
    [
        hypercare_http::health::ApiDoc::openapi(),
        hypercare_ingest::api_doc::ApiDoc::openapi(),
        hypercare_capacity::routes::ApiDoc::openapi(),
        hypercare_tickets::routes::ApiDoc::openapi(),
        hypercare_kpis::api_doc::ApiDoc::openapi(),
        hypercare_alerts::api_doc::ApiDoc::openapi(),
        hypercare_report::routes::ApiDoc::openapi(),
        hypercare_investigate::ApiDoc::openapi(),
    ]
}

/// The document this deployment serves: [`document`] with the values its
/// configuration allows (ticket categories, impacts, urgencies).
pub fn document_for(settings: &crate::Settings) -> utoipa::openapi::OpenApi {
    let mut doc = document();
    hypercare_tickets::describe_settings(&mut doc, &settings.tickets);
    doc
}

/// The served document, serialized once at start-up.
pub struct OpenApiJson(pub String);

/// This document (OpenAPI 3.1), for clients and API testing tools.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json(json: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json.0.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use actix_web::http::Method;
    use actix_web::test as actix_test;
    use actix_web::{App, HttpRequest, web};
    use serde_json::Value;

    use super::document;

    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

    fn doc() -> Value {
        serde_json::from_str(&document().to_json().unwrap()).unwrap()
    }

    /// Merging keeps one schema per name: two crates' types of the same name
    /// (`Outcome` of the exit criteria and of the backtest did) would make one
    /// route's answer described by the other's schema.
    #[test]
    fn no_two_crates_describe_different_schemas_under_one_name() {
        let mut seen: std::collections::BTreeMap<String, Value> = Default::default();
        let mut clashes = Vec::new();
        for part in super::parts() {
            let part: Value = serde_json::from_str(&part.to_json().unwrap()).unwrap();
            let Some(schemas) = part["components"]["schemas"].as_object() else {
                continue;
            };
            for (name, schema) in schemas {
                match seen.get(name) {
                    Some(other) if other != schema => clashes.push(name.clone()),
                    Some(_) => {}
                    None => {
                        seen.insert(name.clone(), schema.clone());
                    }
                }
            }
        }
        assert!(clashes.is_empty(), "one name, two schemas: {clashes:?}");
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(target)) => out.push(target),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_is_well_formed_openapi_3() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(doc["info"]["title"], "Hypercare");
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        let mut operation_ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let declared: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let operations: Vec<_> = item
                .as_object()
                .unwrap()
                .iter()
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .collect();
            assert!(!operations.is_empty(), "{path} has no operation");
            for (method, op) in operations {
                let id = op["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(operation_ids.insert(id.clone()), "operationId {id} twice");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
                let in_path: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert_eq!(in_path, declared, "{method} {path}: path parameters");
                for requirement in op["security"].as_array().into_iter().flatten() {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(scheme), "{method} {path}: {scheme}");
                    }
                }
            }
        }
        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        assert!(targets.len() > 50, "schemas are referenced, not inlined");
        for target in targets {
            let pointer = target.strip_prefix('#').expect("local references only");
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
    }

    /// The documented operations, per path.
    fn documented() -> BTreeMap<String, BTreeSet<String>> {
        doc()["paths"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|m| METHODS.contains(&m.as_str()))
                    .cloned()
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    async fn resource_map(req: HttpRequest) -> String {
        format!("{:?}", req.resource_map())
    }

    /// The application's default service answers this for a path and method
    /// nothing is mounted at.
    async fn unmounted() -> actix_web::HttpResponse {
        actix_web::HttpResponse::NotFound().body("unmounted")
    }

    #[actix_web::test]
    async fn the_document_lists_every_mounted_route_and_method() {
        let app = actix_test::init_service(
            App::new()
                .configure(crate::startup::routes)
                .configure(|cfg| {
                    crate::startup::CAPABILITY_ROUTES
                        .iter()
                        .for_each(|routes| routes(cfg))
                })
                .route("/__resource_map", web::get().to(resource_map))
                .default_service(web::to(unmounted)),
        )
        .await;
        let req = actix_test::TestRequest::get()
            .uri("/__resource_map")
            .to_request();
        let map =
            String::from_utf8(actix_test::call_and_read_body(&app, req).await.to_vec()).unwrap();
        // The router's own list of patterns: actix has no public iterator over
        // it, but its Debug output holds each resource's `Single("<pattern>")`.
        let mounted: BTreeSet<String> = map
            .split("Single(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|p| !p.is_empty() && *p != "/__resource_map")
            .map(str::to_owned)
            .collect();
        let documented = documented();
        assert!(
            mounted.len() > 30,
            "patterns read from the router: {mounted:?}"
        );
        let paths: BTreeSet<String> = documented.keys().cloned().collect();
        assert_eq!(
            mounted, paths,
            "mounted routes (left) and documented paths (right) differ"
        );
        // Methods: a method not mounted at a path falls through to the default service.
        for (path, methods) in &documented {
            let concrete: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "track" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for method in METHODS {
                let req = actix_test::TestRequest::default()
                    .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                    .uri(&concrete)
                    .to_request();
                let response = actix_test::call_service(&app, req).await;
                // A resource of its own answers a method it lacks with 405 itself.
                let wrong_method =
                    response.status() == actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
                let body = actix_test::read_body(response).await;
                let is_mounted = body.as_ref() != b"unmounted" && !wrong_method;
                assert_eq!(
                    is_mounted,
                    methods.contains(method),
                    "{method} {path}: mounted {is_mounted}, documented {}",
                    methods.contains(method)
                );
            }
        }
    }
}
