//! The admin API over HTTP: rules CRUD (atomic), TTL, epoch, reset, config redaction, ledger, runtime latency,
//! grace and models, bearer auth.

mod common;

use common::*;
use mock_upstream::{FaultKind, FaultRule, MockConfig};
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "admin-secret";

async fn admin_mock() -> mock_upstream::RunningMock {
    let mut config = keys(&[("k1", "sk-one")]);
    config.admin.token = Some(TOKEN.into());
    start(config).await
}

fn admin(
    mock: &mock_upstream::RunningMock,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client()
        .request(method, format!("{}/__admin{path}", mock.base_url()))
        .bearer_auth(TOKEN)
}

#[tokio::test]
async fn wrong_or_missing_token_gets_401_and_changes_nothing() {
    let mock = admin_mock().await;
    let url = format!("{}/__admin/rules", mock.base_url());
    let body = json!({"action": "hang"});
    let wrong = client()
        .post(&url)
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["type"],
        "unauthorized"
    );
    let missing = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert!(mock.rules().is_empty());
    let ok = admin(&mock, reqwest::Method::GET, "/rules")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    mock.shutdown().await;
}

#[tokio::test]
async fn rules_crud_is_atomic_and_validated() {
    let mock = admin_mock().await;
    use reqwest::Method;
    let created = admin(&mock, Method::POST, "/rules")
        .json(&json!({"id": "a", "action": "close", "keys": ["k1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["id"], "a");

    let replaced = admin(&mock, Method::PUT, "/rules")
        .json(&json!({"rules": [{"id": "b", "action": "error", "status": 502}, {"action": "hang", "probability": 0.5}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    let listed: Value = admin(&mock, Method::GET, "/rules")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], "b");

    // A bad rule anywhere in the batch rejects the whole batch.
    let bad = admin(&mock, Method::PUT, "/rules")
        .json(&json!({"rules": [{"action": "close"}, {"action": "error", "probability": 7}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("probability"));
    let typo = admin(&mock, Method::POST, "/rules")
        .json(&json!({"action": "close", "kyes": ["k1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(typo.status(), 400);
    assert!(typo.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("kyes"));
    assert_eq!(mock.rules().len(), 2);

    let patched = admin(&mock, Method::PATCH, "/rules")
        .json(&json!({"remove": ["b"], "add": [{"id": "c", "action": "quota"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let ids: Vec<String> = mock.rules().into_iter().filter_map(|r| r.id).collect();
    assert_eq!(ids[1], "c");
    assert_eq!(
        admin(&mock, Method::DELETE, "/rules/c")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        admin(&mock, Method::DELETE, "/rules/c")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        admin(&mock, Method::DELETE, "/rules")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(mock.rules().is_empty());
    mock.shutdown().await;
}

#[tokio::test]
async fn ttl_rules_remove_themselves() {
    let mock = start(MockConfig::default()).await;
    mock.add_rule(FaultRule {
        ttl: Some(Duration::from_millis(150)),
        status: Some(503),
        ..FaultRule::new(FaultKind::Error)
    })
    .unwrap();
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 503);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 200);
    assert!(mock.rules().is_empty());
    mock.shutdown().await;
}

#[tokio::test]
async fn epoch_moves_time_windows() {
    let config = MockConfig {
        rules: vec![FaultRule {
            until: Some(Duration::from_millis(300)),
            status: Some(500),
            ..FaultRule::new(FaultKind::Error)
        }],
        ..Default::default()
    };
    let mock = start(config).await;
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 500);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(post_chat(&mock, "k", &chat(1, false)).await.status(), 200);
    let epoch = client()
        .post(format!("{}/__admin/epoch", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert!(
        epoch.json::<Value>().await.unwrap()["epoch_ms"]
            .as_u64()
            .unwrap()
            >= 350
    );
    assert_eq!(
        post_chat(&mock, "k", &chat(1, false)).await.status(),
        500,
        "window restarts at the new epoch"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn reset_config_and_ledger() {
    let mock = admin_mock().await;
    use reqwest::Method;
    assert_eq!(
        post_chat(&mock, "sk-one", &chat(2, false)).await.status(),
        200
    );
    let ledger: Value = admin(&mock, Method::GET, "/ledger")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["keys"]["k1"]["total_requests"], 1);
    let typed: mock_upstream::LedgerSnapshot = serde_json::from_value(ledger).unwrap();
    assert_eq!(typed.keys["k1"], mock.ledger().keys["k1"]);

    let config: Value = admin(&mock, Method::GET, "/config")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["keys"][0]["secret"], "***");
    assert_eq!(config["admin"]["token"], "***");
    assert!(!config.to_string().contains("sk-one"));

    assert_eq!(
        admin(&mock, Method::POST, "/reset")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(mock.ledger().keys["k1"].total_requests, 0);
    mock.shutdown().await;
}

#[tokio::test]
async fn latency_and_grace_are_replaced_at_runtime() {
    use reqwest::Method;
    let mock = admin_mock().await;
    let get = |path: &'static str| {
        let request = admin(&mock, Method::GET, path);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(
        get("/latency").await,
        json!({"latency": {}, "route_latency": {}})
    );
    let started = std::time::Instant::now();
    assert_eq!(
        post_chat(&mock, "sk-one", &chat(1, false)).await.status(),
        200
    );
    assert!(started.elapsed() < Duration::from_millis(200));

    let slow = json!({"latency": {"base": {"fixed": "50ms"}}, "route_latency": {"chat_completions": {"base": {"fixed": "300ms"}}}});
    let put = admin(&mock, Method::PUT, "/latency")
        .json(&slow)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(get("/latency").await, slow);
    let started = std::time::Instant::now();
    assert_eq!(
        post_chat(&mock, "sk-one", &chat(1, false)).await.status(),
        200
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the route's runtime latency applies: {:?}",
        started.elapsed()
    );
    let config = get("/config").await;
    assert_eq!(config["route_latency"], slow["route_latency"]);

    // Bad bodies: 400 naming the problem, nothing changed.
    let bad_bodies = [
        (
            json!({"latency": {"base": {"fixed": "soon"}}}),
            "latency.base",
        ),
        (json!({"latnecy": {}}), "latnecy"),
        (
            json!({"latency": {"base": {"uniform": {"min": "2s", "max": "1s"}}}}),
            "latency.base",
        ),
    ];
    for (body, named) in bad_bodies {
        let refused = admin(&mock, Method::PUT, "/latency")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{body}");
        let message = refused.json::<Value>().await.unwrap()["error"]["message"].to_string();
        assert!(message.contains(named), "{body}: {message}");
    }
    assert_eq!(get("/latency").await, slow);
    let anonymous = client()
        .put(format!("{}/__admin/latency", mock.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    assert_eq!(
        get("/retry-after-grace").await,
        json!({"retry_after_grace": "250ms"})
    );
    let put = admin(&mock, Method::PUT, "/retry-after-grace")
        .json(&json!({"retry_after_grace": "1s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(get("/config").await["retry_after_grace"], "1s");
    let refused = admin(&mock, Method::PUT, "/retry-after-grace")
        .json(&json!({"retry_after_grace": "often"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        get("/retry-after-grace").await,
        json!({"retry_after_grace": "1s"})
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn models_are_replaced_at_runtime_validated_and_kept_by_reset() {
    use reqwest::Method;
    let mock = admin_mock().await;
    let get = |path: &'static str| {
        let request = admin(&mock, Method::GET, path);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let put = |body: Vec<u8>| {
        let request = admin(&mock, Method::PUT, "/models")
            .header("content-type", "application/json")
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let chat_status = |model: &'static str| {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1});
        let mock = &mock;
        async move { post_chat(mock, "sk-one", &body).await.status().as_u16() }
    };
    assert_eq!(
        get("/models").await,
        json!({"models": null}),
        "any model by default"
    );
    assert_eq!(chat_status("gpt-5").await, 200);

    let only = json!({"models": ["gpt-4.1", "o3"]});
    let answer = put(only.to_string().into_bytes()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap(), only);
    assert_eq!(get("/models").await, only);
    assert_eq!(get("/config").await["models"], only["models"]);
    assert_eq!(mock.models(), ["gpt-4.1", "o3"]);
    assert_eq!(
        (chat_status("gpt-5").await, chat_status("o3").await),
        (404, 200)
    );

    // Bad bodies: 400 naming the problem, nothing changed.
    let bad_bodies: [(&[u8], &str); 6] = [
        (
            br#"{"models": ["gpt-5", ""]}"#,
            "`models[1]`: must be a non-empty model name",
        ),
        (
            br#"{"models": ["o3", "o3"]}"#,
            "`models[1]`: `o3` is listed twice",
        ),
        (br#"{"models": "gpt-5"}"#, "at `models`"),
        (br#"{}"#, "missing field `models`"),
        (br#"{"model": ["gpt-5"]}"#, "unknown field `model`"),
        (b"models: gpt-5", "invalid JSON body"),
    ];
    for (body, named) in bad_bodies {
        let refused = put(body.to_vec()).await;
        assert_eq!(refused.status(), 400, "{}", String::from_utf8_lossy(body));
        let error = refused.json::<Value>().await.unwrap()["error"].clone();
        assert_eq!(error["type"], "invalid_request");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(named),
            "{}: {message}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(get("/models").await, only);

    let anonymous = client()
        .put(format!("{}/__admin/models", mock.base_url()))
        .json(&json!({"models": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let anonymous_read = client()
        .get(format!("{}/__admin/models", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_read.status(), 401);
    assert_eq!(get("/models").await, only);

    let reset = admin(&mock, Method::POST, "/reset").send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(get("/models").await, only, "reset keeps settings");

    for any in [r#"{"models": null}"#, r#"{"models": []}"#] {
        put(br#"{"models": ["o3"]}"#.to_vec()).await;
        let answer = put(any.as_bytes().to_vec()).await;
        assert_eq!(answer.status(), 200, "{any}");
        assert_eq!(
            answer.json::<Value>().await.unwrap(),
            json!({"models": null})
        );
        assert_eq!(chat_status("model-from-next-month").await, 200, "{any}");
    }
    assert_eq!(get("/config").await["models"], json!([]));
    mock.shutdown().await;
}
