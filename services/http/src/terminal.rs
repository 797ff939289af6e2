//! What the terminal commands that talk to a running Hypercare share
//! (`hypercare report`, `rules review`, `reconcile`, `logs`, `timeline`,
//! `advice`): the key to send, and the API's answer or its error in words.

/// The key given (`--key` or `HYPERCARE_API_KEY`), else the local
/// development key.
pub fn key(given: Option<String>, development: Option<String>) -> anyhow::Result<String> {
    given
        .or(development)
        .ok_or_else(|| anyhow::anyhow!("no API key: pass --key or set HYPERCARE_API_KEY"))
}

/// Sends `request` (to the API at `url`) and answers its body, or an error
/// that reads `400 Bad Request: <the API's message>` (the message names the
/// field already).
pub async fn answer(url: &str, request: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let response = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Hypercare at {url}: {e}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or(body);
        anyhow::bail!("{status}: {message}");
    }
    Ok(body)
}

/// [`answer`], read as JSON.
pub async fn answer_json(
    url: &str,
    request: reqwest::RequestBuilder,
) -> anyhow::Result<serde_json::Value> {
    let body = answer(url, request).await?;
    serde_json::from_str(&body).map_err(|_| anyhow::anyhow!("the answer is not JSON: {body}"))
}
