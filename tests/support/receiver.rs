//! A local webhook receiver for end-to-end tests of what Hypercare sends
//! (alert notifications, report deliveries): it records every POST by path
//! and can answer 500 to the first requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;

use crate::eventually;

/// A webhook receiver: records every POST by path, with when it arrived (and
/// its headers); answers 500 to the first `fail_first` requests.
#[derive(Clone, Default)]
pub struct Pager {
    pub received: Arc<Mutex<Vec<(String, Value, Instant)>>>,
    /// (User-Agent, Content-Type) of every request, failed ones included.
    pub headers: Arc<Mutex<Vec<(String, String)>>>,
    pub fail_first: Arc<AtomicUsize>,
    pub port: u16,
}

impl Pager {
    pub async fn start(fail_first: usize) -> Pager {
        let mut pager = Pager {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            ..Pager::default()
        };
        let state = pager.clone();
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .default_service(web::to(
                    move |req: actix_web::HttpRequest, body: web::Bytes| {
                        let state = state.clone();
                        async move {
                            let header = |name: &str| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            state
                                .headers
                                .lock()
                                .unwrap()
                                .push((header("user-agent"), header("content-type")));
                            if state
                                .fail_first
                                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                    n.checked_sub(1)
                                })
                                .is_ok()
                            {
                                return HttpResponse::InternalServerError().body("pager down");
                            }
                            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            state.received.lock().unwrap().push((
                                req.path().to_owned(),
                                value,
                                Instant::now(),
                            ));
                            HttpResponse::Ok().finish()
                        }
                    },
                ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        pager.port = server.addrs()[0].port();
        tokio::spawn(server.run());
        pager
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// What `receiver` got so far, with when each arrived.
    pub fn arrivals(&self, receiver: &str) -> Vec<(Value, Instant)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _, _)| path == &format!("/{receiver}"))
            .map(|(_, v, at)| (v.clone(), *at))
            .collect()
    }

    pub fn to(&self, receiver: &str) -> Vec<Value> {
        self.arrivals(receiver)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Waits until `receiver` got at least `n` notifications (fails after `within`).
    pub async fn wait_for(&self, receiver: &str, n: usize, within: Duration) -> Vec<Value> {
        eventually(
            &format!("{n} notifications to {receiver}"),
            within,
            || async { Some(self.to(receiver)).filter(|got| got.len() >= n) },
        )
        .await
    }
}
