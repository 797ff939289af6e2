//! The one error shape, end to end, for what no capability answers itself.

use hypercare_tests::*;

#[tokio::test]
async fn an_unknown_path_is_404_and_a_known_path_with_another_method_is_405_both_json() {
    let app = spawn_app().await;

    let (status, body) = app.get_json("/v1/no-such-thing").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("/v1/no-such-thing")
    );

    for method in ["TRACE", "PATCH"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = app.json(method.clone(), "/v1/kpis", ADMIN_KEY, None).await;
        assert_eq!(status, 405, "{method} /v1/kpis: {body}");
        assert_eq!(body["error"], "method_not_allowed");
        assert!(body["message"].as_str().unwrap().contains(method.as_str()));
    }
    // A path with parameters is matched by its pattern.
    let (status, body) = app
        .json(
            reqwest::Method::PATCH,
            "/v1/kpis/checkout_rate",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 405, "{body}");
    app.stop().await.unwrap();
}
