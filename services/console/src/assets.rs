//! The console's static files, compiled into the binary (no CDN, no Node at
//! run time). Pages link them as `/assets/<name>?v=<digest>`: a changed file
//! gets a new URL, so browsers may keep each one for a year.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every file served under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/console.js"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/htmx.min.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uPlot.min.css"),
    },
];

fn digests() -> &'static HashMap<&'static str, String> {
    static DIGESTS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| (a.name, hex::encode(&Sha256::digest(a.bytes)[..6])))
            .collect()
    })
}

/// The URL of an asset, with its digest.
pub fn url(name: &str) -> String {
    match digests().get(name) {
        Some(digest) => format!("/assets/{name}?v={digest}"),
        None => format!("/assets/{name}"),
    }
}

pub async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset");
    };
    let digest = &digests()[asset.name];
    let asked = req
        .query_string()
        .split('&')
        .find_map(|p| p.strip_prefix("v="));
    let cache = if asked == Some(digest.as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let etag = format!("\"{digest}\"");
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag))
        .body(asset.bytes)
}
