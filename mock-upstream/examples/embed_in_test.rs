//! Embedding the mock in your own test: start it in-process on a free loopback port with two keys, make one key
//! rate-limited by a fault rule, send a request with each key, and read what the mock saw from its ledger.
//!
//! `cargo run -p mock-upstream --example embed_in_test`

use mock_upstream::{FaultKind, FaultRule, KeyConfig, MockConfig};

fn key(id: &str, secret: &str) -> KeyConfig {
    KeyConfig {
        id: id.to_string(),
        secret: secret.to_string(),
        provider: None,
        rpm: None,
        tpm: None,
        state: Default::default(),
        latency: None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = MockConfig {
        keys: vec![key("k1", "sk-one"), key("k2", "sk-two")],
        ..MockConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock = mock_upstream::spawn(config, listener).await?;
    // Every request with key k2 gets a provider-shaped 429 with its real headers.
    mock.add_rule(FaultRule {
        keys: vec!["k2".into()],
        ..FaultRule::new(FaultKind::RateLimit)
    })?;

    let client = reqwest::Client::new();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    for secret in ["sk-one", "sk-two"] {
        let response = client
            .post(format!("{}/v1/chat/completions", mock.base_url()))
            .bearer_auth(secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        println!(
            "{secret}: {} (retry-after: {retry_after})",
            response.status()
        );
    }

    let ledger = mock.ledger();
    for (id, key) in &ledger.keys {
        println!(
            "ledger {id}: {} requests, {} answered 429",
            key.total_requests, key.rate_limited
        );
    }
    mock.shutdown().await;
    Ok(())
}
