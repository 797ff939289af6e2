//! A real headless Chromium for the console's tests, driven through WebDriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/install-deps --tests`
//! installs them). One `chromedriver` serves the test process; each
//! [`Browser`] is a session of its own, with an empty profile.

use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::sync::OnceCell;

struct Driver {
    url: String,
}

static DRIVER: OnceCell<Driver> = OnceCell::const_new();

async fn driver() -> &'static Driver {
    DRIVER
        .get_or_init(|| async {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            // A thread of its own spawns chromedriver and waits for it: the
            // parent-death signal follows that thread, which lives until the
            // test process ends, so no chromedriver outlives the tests.
            let (started, pid) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut command = Command::new("chromedriver");
                command
                    .arg(format!("--port={port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                hypercare_storage::local::die_with_parent(&mut command);
                match command.spawn() {
                    Ok(mut child) => {
                        started.send(Ok(child.id())).ok();
                        child.wait().ok();
                    }
                    Err(e) => {
                        started.send(Err(e)).ok();
                    }
                }
            });
            pid.recv()
                .expect("the chromedriver thread answers")
                .expect("starting chromedriver (install it: scripts/install-deps --tests)");
            let url = format!("http://127.0.0.1:{port}");
            let status = format!("{url}/status");
            for _ in 0..100 {
                if let Ok(response) = reqwest::get(&status).await
                    && response.status().is_success()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Driver { url }
        })
        .await
}

/// A headless Chromium session.
pub struct Browser {
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser `width` pixels wide (1280 for a desktop, 390 for a phone).
    pub async fn start(width: u32) -> Browser {
        let driver = driver().await;
        let profile = tempfile::tempdir().unwrap();
        // Without the network flags, Chromium reaches for Google's services,
        // which this machine's closed network refuses.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},900"),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a Chromium session through chromedriver");
        client
            .set_window_size(width, 900)
            .await
            .expect("sizing the window");
        Browser {
            client,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("opening the page");
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            texts.push(element.text().await.unwrap());
        }
        texts
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field `{css}`: {e}"));
        field.clear().await.ok();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at `{css}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits until an element matches `css` (a page loaded, a fragment swapped).
    pub async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` did not appear: {e}"));
    }

    pub async fn current_path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Signs in through the sign-in form.
    pub async fn sign_in(&self, address: &str, key: &str) {
        self.goto(&format!("{address}/sign-in")).await;
        self.fill("#key", key).await;
        self.click("form[action='/sign-in'] button[type=submit]")
            .await;
        self.wait_for("header.top .who").await;
    }

    /// Accessibility problems axe-core finds on the page, serious or critical
    /// only, as "rule: description (n nodes)".
    pub async fn accessibility_problems(&self) -> Vec<String> {
        let axe = include_str!("../browser/vendor/axe.min.js");
        self.client
            .execute(axe, vec![])
            .await
            .expect("injecting axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                    .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length}))))
                    .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: 0}]));",
                vec![],
            )
            .await
            .expect("running axe-core");
        result
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                format!(
                    "{}: {} ({} nodes)",
                    v["id"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or("?"),
                    v["nodes"]
                )
            })
            .collect()
    }

    /// A PNG of the visible page.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("a screenshot")
    }

    pub async fn close(self) {
        self.client.close().await.ok();
    }
}
