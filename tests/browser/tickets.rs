//! Support's pages: the queue, the intake form, a ticket and its actions, as
//! a support agent and as a read-only key; each page checked with axe-core
//! at 1280 and 390 px.

use fantoccini::Locator;
use hypercare_tests::browser::Browser;
use hypercare_tests::*;
use serde_json::json;

async fn axe_clean(browser: &Browser, page: &str) {
    let problems = browser.accessibility_problems().await;
    assert!(problems.is_empty(), "{page}: {problems:?}");
}

async fn attr(browser: &Browser, css: &str, name: &str) -> Option<String> {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
        .attr(name)
        .await
        .unwrap()
}

async fn value(browser: &Browser, css: &str) -> String {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn total_tickets(app: &TestApp) -> u64 {
    let (status, page) = app.get_json_as("/v1/tickets", SUPPORT_KEY).await;
    assert_eq!(status, 200, "{page}");
    page["total"].as_u64().unwrap()
}

#[tokio::test]
async fn support_creates_a_ticket_through_the_form_and_moves_it_twice() {
    let app = spawn_app().await;
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, SUPPORT_KEY).await;
    // A support key sees the tickets, and nothing it cannot open.
    assert!(
        browser
            .texts("nav.main a")
            .await
            .contains(&"Tickets".to_owned())
    );

    // Pick the category first: its template's fields appear.
    browser.goto(&format!("{}/tickets/new", app.address)).await;
    browser.wait_for("#category").await;
    assert_eq!(
        browser.count("form.intake").await,
        0,
        "no fields before a category"
    );
    axe_clean(&browser, "/tickets/new").await;
    // htmx swaps the fields in on the change (without script, the "Show its
    // fields" button does: the 390 px pass below opens that URL).
    browser.click("#category option[value=bug]").await;
    browser.wait_for("form.intake #release").await;
    let required = browser
        .texts("form.intake fieldset:first-of-type label")
        .await;
    for field in ["Title", "Impact", "Urgency", "Description", "Release"] {
        assert!(
            required
                .iter()
                .any(|l| l.starts_with(field) && l.contains("(required)")),
            "{field} is required for a bug: {required:?}"
        );
    }

    // Without the release the bug template requires.
    browser.fill("#title", "Payment fails at checkout").await;
    browser.click("#impact option[value=high]").await;
    browser.click("#urgency option[value=high]").await;
    browser
        .fill("#description", "Card payments answer 502 since 10:00")
        .await;
    browser.click("form.intake button[type=submit]").await;
    browser.wait_for("#release-error").await;
    assert!(
        browser
            .text("#release-error")
            .await
            .contains("is required for a `bug` ticket"),
        "the reason is next to the field"
    );
    assert_eq!(
        attr(&browser, "#release", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        attr(&browser, "#release", "aria-describedby")
            .await
            .as_deref(),
        Some("release-error")
    );
    assert_eq!(
        attr(&browser, "#title", "aria-invalid").await,
        None,
        "only the wrong field is marked"
    );
    assert_eq!(value(&browser, "#title").await, "Payment fails at checkout");
    assert_eq!(
        value(&browser, "#description").await,
        "Card payments answer 502 since 10:00"
    );
    assert_eq!(value(&browser, "#impact").await, "high");
    axe_clean(&browser, "/tickets/new with an error").await;
    assert_eq!(total_tickets(&app).await, 0, "nothing was stored");

    // Then complete.
    browser.fill("#release", "2.4.1").await;
    browser.click("form.intake button[type=submit]").await;
    browser.wait_for("#sla-heading").await;
    assert!(browser.current_path().await.starts_with("/tickets/HC-1"));
    assert_eq!(total_tickets(&app).await, 1);
    let (_, stored) = app.get_json_as("/v1/tickets/HC-1", SUPPORT_KEY).await;
    assert_eq!(stored["ticket"]["release"], "2.4.1");
    assert_eq!(stored["ticket"]["priority"], "P1");
    assert_eq!(stored["ticket"]["state"], "new");
    // P1: first response within 30 min, still running.
    let clocks = browser.texts(".clocks .tile").await;
    assert!(
        clocks[0].contains("First response") && clocks[0].contains("left"),
        "{clocks:?}"
    );
    assert!(browser.text("p.zone").await.contains("UTC"));
    axe_clean(&browser, "/tickets/HC-1").await;

    // Two moves with the buttons.
    browser.click("form.move button[value=triaged]").await;
    browser.wait_for("p.summary[data-state=triaged]").await;
    browser.click("form.move button[value=in_progress]").await;
    browser.wait_for("p.summary[data-state=in_progress]").await;
    let history = browser.texts("table.history td.change").await;
    assert_eq!(
        history,
        [
            "Created",
            "Moved from New to Triaged",
            "Moved from Triaged to In progress"
        ]
    );
    let (_, stored) = app.get_json_as("/v1/tickets/HC-1", SUPPORT_KEY).await;
    assert_eq!(stored["ticket"]["state"], "in_progress");
    assert_eq!(stored["history"].as_array().unwrap().len(), 3);
    assert_eq!(stored["history"][1]["actor"], "support-key");
    // The first move answered the user: that clock stopped.
    assert!(browser.texts(".clocks .tile").await[0].contains("Met"));

    // Assign and answer the user.
    browser.fill("#assignee", "ana").await;
    browser.click("form.assign button[type=submit]").await;
    browser.wait_for("p.summary[data-version='4']").await;
    assert_eq!(browser.text("#assignee-now").await, "ana");
    browser.fill("#body", "A fix ships in 2.4.2 today.").await;
    browser.click("#visibility option[value=public]").await;
    browser.click("form.comment button[type=submit]").await;
    browser.wait_for("p.summary[data-version='5']").await;
    let history = browser.texts("table.history td.change").await;
    assert_eq!(history[3], "Assigned to ana");
    assert!(history[4].starts_with("Commented (public)") && history[4].contains("2.4.2"));

    // The same problem reported again: each one points at the other.
    let (status, body) = app
        .post_json_as(
            "/v1/tickets",
            SUPPORT_KEY,
            &json!({"title": "Payment fails at checkout on Safari", "category": "bug",
                    "impact": "low", "urgency": "low", "description": "502 at checkout",
                    "release": "2.4.1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    browser.goto(&format!("{}/tickets/HC-1", app.address)).await;
    browser.wait_for("ul.similar").await;
    assert_eq!(browser.text("ul.similar a").await, "HC-2");

    // The queue lists both and links to them.
    browser.goto(&format!("{}/tickets", app.address)).await;
    browser.wait_for("table.tickets").await;
    assert_eq!(
        browser.texts("table.tickets tbody td:first-child a").await,
        ["HC-2", "HC-1"]
    );
    axe_clean(&browser, "/tickets").await;

    // The same pages on a phone.
    browser.client.set_window_size(390, 900).await.unwrap();
    for page in ["/tickets", "/tickets/new?category=bug", "/tickets/HC-1"] {
        browser.goto(&format!("{}{page}", app.address)).await;
        browser.wait_for("main h1").await;
        axe_clean(&browser, &format!("{page} at 390 px")).await;
    }
    browser.close().await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_read_only_key_finds_tickets_but_gets_no_action_and_a_forged_one_is_refused() {
    let app = spawn_app().await;
    for (title, category, impact) in [
        ("Checkout times out", "performance", "high"),
        ("Invoice shows the wrong VAT", "question", "low"),
        ("Login loops on Safari", "question", "low"),
    ] {
        let (status, body) = app
            .post_json_as(
                "/v1/tickets",
                SUPPORT_KEY,
                &json!({"title": title, "category": category, "impact": impact, "urgency": "high"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let browser = Browser::start(1280).await;
    browser.sign_in(&app.address, READ_KEY).await;

    // Filters and search are a URL: P1 means the high-impact one only.
    browser.goto(&format!("{}/tickets", app.address)).await;
    browser.wait_for("form.filters").await;
    assert_eq!(browser.count("a[href='/tickets/new']").await, 0);
    browser.fill("#q", "checkout").await;
    browser.click("#priority option[value=P1]").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for("#count").await;
    let path = browser.current_path().await;
    assert!(
        path.contains("q=checkout") && path.contains("priority=P1"),
        "{path}"
    );
    assert_eq!(browser.texts("table.tickets tbody tr").await.len(), 1);
    assert_eq!(browser.text("table.tickets tbody a").await, "HC-1");
    browser
        .goto(&format!("{}/tickets?sort=priority&order=asc", app.address))
        .await;
    browser.wait_for("table.tickets").await;
    assert_eq!(browser.texts("table.tickets tbody tr").await.len(), 3);
    assert_eq!(
        browser.text("table.tickets tbody a").await,
        "HC-1",
        "P1 first"
    );

    // A ticket: no action at all.
    browser.goto(&format!("{}/tickets/HC-1", app.address)).await;
    browser.wait_for("#sla-heading").await;
    for action in ["transition", "assign", "comments"] {
        assert_eq!(
            browser.count(&format!("form[action$='/{action}']")).await,
            0,
            "{action}"
        );
    }
    assert!(browser.text("#read-only").await.contains("not change them"));
    browser.goto(&format!("{}/tickets/new", app.address)).await;
    browser.wait_for("main").await;
    assert!(
        browser.text("main").await.contains("support"),
        "the missing scope is named"
    );
    browser.close().await;

    // Its session with its own CSRF token still cannot act (scope).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", READ_KEY), ("next", "/tickets/HC-1")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{}/tickets/HC-1", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let forged = http
        .post(format!("{}/tickets/HC-1/transition", app.address))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("expected_version", "1"),
            ("to", "triaged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // And a support session without the token is refused too (CSRF).
    let support = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", SUPPORT_KEY), ("next", "/")])
        .send()
        .await
        .unwrap();
    let support_cookie = support.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let no_token = http
        .post(format!("{}/tickets/HC-1/transition", app.address))
        .header("cookie", &support_cookie)
        .form(&[
            ("csrf", "guessed"),
            ("expected_version", "1"),
            ("to", "triaged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let (_, stored) = app.get_json_as("/v1/tickets/HC-1", READ_KEY).await;
    assert_eq!(stored["ticket"]["state"], "new", "nothing moved");
    assert_eq!(stored["ticket"]["version"], 1);
    app.stop().await.unwrap();
}

/// A session's cookie and CSRF token, signed in over plain HTTP.
async fn session(app: &TestApp, http: &reqwest::Client, key: &str) -> (String, String) {
    let signed_in = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", key), ("next", "/tickets")])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{}/tickets", app.address))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries the CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn hostile_requests_get_a_readable_refusal_and_change_nothing() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json_as(
            "/v1/tickets",
            SUPPORT_KEY,
            &json!({"title": "Checkout times out", "category": "question", "impact": "high", "urgency": "high"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (cookie, csrf) = session(&app, &http, SUPPORT_KEY).await;
    let get = |path: &str| {
        http.get(format!("{}{path}", app.address))
            .header("cookie", &cookie)
            .send()
    };
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", app.address))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };

    // Not signed in: to the sign-in page, and back after it.
    let anonymous = http
        .get(format!("{}/tickets/HC-1", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(
        anonymous.headers()["location"],
        "/sign-in?next=%2Ftickets%2FHC-1"
    );

    // A wrong filter, an unknown ticket, an unknown category: HTML, with the reason.
    for (path, status, reason) in [
        ("/tickets?state=asleep", 400, "`asleep` is not a state"),
        ("/tickets?offset=-3", 400, "`offset` is not a whole number"),
        ("/tickets/HC-999", 404, "no ticket `HC-999`"),
        (
            "/tickets/new?category=gossip",
            400,
            "`gossip` is not one of",
        ),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(reason), "{path}: {page}");
    }

    // Moves the state machine has no room for, a stale version, no version.
    let attempts = [
        (
            vec![
                ("to", "closed".to_owned()),
                ("expected_version", "1".to_owned()),
            ],
            409,
            "cannot move to `closed`",
        ),
        (
            vec![
                ("to", "flying".to_owned()),
                ("expected_version", "1".to_owned()),
            ],
            400,
            "`flying` is not a state",
        ),
        (
            vec![
                ("to", "triaged".to_owned()),
                ("expected_version", "7".to_owned()),
            ],
            409,
            "at version 1, not 7",
        ),
        (
            vec![("to", "triaged".to_owned())],
            400,
            "expected_version is required",
        ),
        (
            vec![
                ("to", "resolved".to_owned()),
                ("expected_version", "1".to_owned()),
            ],
            400,
            "is required to resolve",
        ),
    ];
    for (mut form, status, reason) in attempts {
        form.push(("csrf", csrf.clone()));
        let response = post("/tickets/HC-1/transition", form).await.unwrap();
        assert_eq!(response.status(), status, "{reason}");
        let page = response.text().await.unwrap();
        assert!(page.contains(reason), "{reason}: {page}");
        assert!(
            page.contains("id=\"sla-heading\""),
            "the ticket is shown again"
        );
    }
    let empty_comment = post(
        "/tickets/HC-1/comments",
        vec![
            ("csrf", csrf.clone()),
            ("expected_version", "1".into()),
            ("body", "  ".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(empty_comment.status(), 400);

    // A form over the limit is refused before it is read.
    let huge = post(
        "/tickets/new",
        vec![("csrf", csrf.clone()), ("title", "x".repeat(2_000_000))],
    )
    .await
    .unwrap();
    assert_eq!(huge.status(), 413);
    assert!(huge.text().await.unwrap().contains("larger than the limit"));

    let (_, stored) = app.get_json_as("/v1/tickets/HC-1", SUPPORT_KEY).await;
    assert_eq!(stored["ticket"]["version"], 1, "nothing changed");
    assert_eq!(total_tickets(&app).await, 1, "nothing created");
    app.stop().await.unwrap();
}
