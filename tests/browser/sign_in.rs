//! Signing in and out, and what a forged action gets.

use hypercare_tests::browser::Browser;
use hypercare_tests::*;

#[tokio::test]
async fn a_wrong_key_is_told_plainly_and_the_right_one_signs_in_and_out() {
    let app = spawn_app().await;
    let browser = Browser::start(1280).await;

    // A page asked before signing in comes back after it.
    browser.goto(&format!("{}/", app.address)).await;
    browser.wait_for("#key").await;
    assert_eq!(browser.current_path().await, "/sign-in?next=%2F");
    assert!(browser.accessibility_problems().await.is_empty());

    browser.fill("#key", "not-a-key-at-all-0000").await;
    browser.click("button[type=submit]").await;
    browser.wait_for("#key-error").await;
    assert!(
        browser
            .text("#key-error")
            .await
            .contains("This key is not known"),
        "the message is shown next to the field"
    );
    assert!(browser.accessibility_problems().await.is_empty());

    browser.sign_in(&app.address, READ_KEY).await;
    assert_eq!(browser.current_path().await, "/");
    assert!(browser.text("header.top .who").await.contains("read-key"));
    assert!(
        browser.accessibility_problems().await.is_empty(),
        "{:?}",
        browser.accessibility_problems().await
    );

    browser.click("form[action='/sign-out'] button").await;
    browser.wait_for("#key").await;
    // Signed out: the console asks for a key again.
    browser.goto(&format!("{}/", app.address)).await;
    browser.wait_for("#key").await;
    browser.close().await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_strict_and_a_forged_action_is_refused() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http
        .post(format!("{}/sign-in", app.address))
        .form(&[("key", ADMIN_KEY), ("next", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/",
        "no redirect to another site"
    );
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: not Secure");
    let session = cookie.split(';').next().unwrap().to_owned();

    // Signing out without the session's CSRF token, or from another site.
    let forged = http
        .post(format!("{}/sign-out", app.address))
        .header("cookie", &session)
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("did not come from a page of this console")
    );
    let cross_site = http
        .post(format!("{}/sign-out", app.address))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);

    // The session still works: the forgeries changed nothing.
    let page = http
        .get(format!("{}/", app.address))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    app.stop().await.unwrap();
}
