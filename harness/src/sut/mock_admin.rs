//! An external mock-upstream driven through its admin API (`--upstream URL`): reset and epoch at the start, the
//! scenario's base fault rules, latency, Retry-After grace and served models, timeline rules added and deleted by
//! id, the
//! effective config and the ledger.
//! A wrong token and an unreachable mock are told apart, because one is the user's flag and the other a
//! system that is not up. An `https://` mock is reached through rustls trusting only its `--upstream-ca`
//! (reqwest's TLS features would pull a platform verifier and a second crypto library into every client of
//! the workspace); a plain one through reqwest as before.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mock_upstream::{FaultRule, LatencySettings, LedgerSnapshot, MockConfig};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one admin call may take (the mock answers admin calls at once; a ledger is at most a few MB).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Nothing answered (connection refused, timeout, not HTTP).
    #[error("mock-upstream admin API at {url} is unreachable: {reason}")]
    Unreachable {
        /// The call's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// 401/403: wrong or missing `--upstream-admin-token`, or a non-loopback peer.
    #[error("mock-upstream admin API at {url} refused the harness ({status}): {message} — check --upstream-admin-token / HARNESS_UPSTREAM_ADMIN_TOKEN")]
    Unauthorized {
        /// The call's URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The mock's error message.
        message: String,
    },
    /// Any other non-success answer (e.g. 400 for a rule the mock rejects, 404 for a path that is not a mock).
    #[error("mock-upstream admin API: {method} {url} answered {status}: {message}")]
    Refused {
        /// HTTP method.
        method: String,
        /// The call's URL.
        url: String,
        /// Status code.
        status: u16,
        /// The mock's error message (or the body's start).
        message: String,
    },
    /// `--upstream` / `--upstream-ca` do not fit together, or the CA file is unusable.
    #[error("{0}")]
    Tls(String),
    /// A 2xx whose body is not what the admin API returns.
    #[error("mock-upstream admin API: {url} answered something that is not its JSON: {reason}")]
    BadAnswer {
        /// The call's URL.
        url: String,
        /// The decoding error.
        reason: String,
    },
}

/// Client of one mock's `/__admin` API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Transport,
    ca_file: Option<PathBuf>,
}

type TlsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// How admin calls travel: plain HTTP through reqwest, HTTPS through rustls trusting the given CA.
#[derive(Debug, Clone)]
enum Transport {
    Plain(reqwest::Client),
    /// Boxed: the connector is large and admin clients are few.
    Tls(Box<TlsClient>),
}

impl AdminClient {
    /// A client for the mock at `base_url` (its provider base URL; the admin API is under `/__admin`); an
    /// `https://` mock needs `ca_file`, the PEM CA certificate to trust.
    pub fn new(
        base_url: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<AdminClient, AdminError> {
        let base = base_url.trim_end_matches('/').to_string();
        let http = match (base.starts_with("https://"), ca_file) {
            (false, None) => Transport::Plain(
                reqwest::Client::builder()
                    .timeout(ADMIN_TIMEOUT)
                    .no_proxy()
                    .build()
                    .map_err(|e| AdminError::Unreachable {
                        url: base.clone(),
                        reason: e.to_string(),
                    })?,
            ),
            (true, Some(ca_file)) => Transport::Tls(Box::new(tls_client(ca_file)?)),
            (true, None) => {
                return Err(AdminError::Tls(format!(
                    "--upstream {base}: an https:// mock needs --upstream-ca FILE (the PEM CA certificate it \
                     prints as `ca file:`)"
                )))
            }
            (false, Some(ca_file)) => {
                return Err(AdminError::Tls(format!(
                    "--upstream-ca {}: only applies to an https:// --upstream (got {base})",
                    ca_file.display()
                )))
            }
        };
        Ok(AdminClient {
            base,
            token,
            http,
            ca_file: ca_file.map(Path::to_path_buf),
        })
    }

    /// The CA certificate file trusted for an `https://` mock.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The mock's base URL (what the proxy is pointed at).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /__admin/config`: the effective config, secrets redacted.
    pub async fn config(&self) -> Result<MockConfig, AdminError> {
        self.call_json(Method::GET, "config", None).await
    }

    /// `GET /__admin/ledger`.
    pub async fn ledger(&self) -> Result<LedgerSnapshot, AdminError> {
        self.call_json(Method::GET, "ledger", None).await
    }

    /// `POST /__admin/reset`: ledger, limiters, request indexes and rule counters start over.
    pub async fn reset(&self) -> Result<(), AdminError> {
        self.call(Method::POST, "reset", None).await.map(drop)
    }

    /// `POST /__admin/epoch`: rule time windows restart now.
    pub async fn set_epoch_now(&self) -> Result<(), AdminError> {
        self.call(Method::POST, "epoch", None).await.map(drop)
    }

    /// `PUT /__admin/rules`: replaces every rule atomically.
    pub async fn set_rules(&self, rules: &[FaultRule]) -> Result<(), AdminError> {
        let body = serde_json::json!({ "rules": rules });
        self.call(Method::PUT, "rules", Some(body)).await.map(drop)
    }

    /// `PUT /__admin/latency`: replaces the mock-wide latency profile and route overrides.
    pub async fn set_latency(&self, latency: &LatencySettings) -> Result<(), AdminError> {
        let body = self.to_body("latency", latency)?;
        self.call(Method::PUT, "latency", Some(body))
            .await
            .map(drop)
    }

    /// `PUT /__admin/retry-after-grace`: how long after a retry window opens an arrival is still a race.
    pub async fn set_retry_after_grace(&self, grace: Duration) -> Result<(), AdminError> {
        let body = serde_json::json!({
            "retry_after_grace": human_duration::format(grace),
        });
        self.call(Method::PUT, "retry-after-grace", Some(body))
            .await
            .map(drop)
    }

    /// `PUT /__admin/models`: the mock serves only these models from now on (empty = any model).
    pub async fn set_models(&self, models: &[String]) -> Result<(), AdminError> {
        let body = serde_json::json!({ "models": models });
        self.call(Method::PUT, "models", Some(body)).await.map(drop)
    }

    /// `POST /__admin/rules`: adds one rule, returns its id.
    pub async fn add_rule(&self, rule: &FaultRule) -> Result<String, AdminError> {
        #[derive(serde::Deserialize)]
        struct Added {
            id: String,
        }
        let body = self.to_body("rules", rule)?;
        let added: Added = self.call_json(Method::POST, "rules", Some(body)).await?;
        Ok(added.id)
    }

    /// `DELETE /__admin/rules/{id}`; a rule already gone (its `ttl` ran out, someone cleared the rules) is fine.
    pub async fn remove_rule(&self, id: &str) -> Result<(), AdminError> {
        match self
            .call(Method::DELETE, &format!("rules/{id}"), None)
            .await
        {
            Ok(_) | Err(AdminError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn to_body<T: serde::Serialize>(
        &self,
        path: &str,
        value: &T,
    ) -> Result<serde_json::Value, AdminError> {
        serde_json::to_value(value).map_err(|e| AdminError::BadAnswer {
            url: self.url(path),
            reason: e.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/__admin/{path}", self.base)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, AdminError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| AdminError::BadAnswer {
            url: self.url(path),
            reason: e.to_string(),
        })
    }

    /// One admin call; the body of a 2xx answer, or the error it stands for.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<bytes::Bytes, AdminError> {
        let url = self.url(path);
        let (status, bytes) =
            self.exchange(method.clone(), &url, body)
                .await
                .map_err(|reason| AdminError::Unreachable {
                    url: url.clone(),
                    reason,
                })?;
        if status.is_success() {
            return Ok(bytes);
        }
        let message = error_message(&bytes);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => AdminError::Unauthorized {
                url,
                status: status.as_u16(),
                message,
            },
            _ => AdminError::Refused {
                method: method.to_string(),
                url,
                status: status.as_u16(),
                message,
            },
        })
    }
}

impl AdminClient {
    /// Sends one request and reads the whole answer; an error is why nothing usable came back.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), String> {
        match &self.http {
            Transport::Plain(client) => {
                let mut request = client.request(method, url);
                if let Some(token) = &self.token {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let bytes = response.bytes().await.map_err(|e| e.to_string())?;
                Ok((status, bytes))
            }
            Transport::Tls(client) => {
                let mut request = http::Request::builder().method(method).uri(url);
                if let Some(token) = &self.token {
                    request =
                        request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
                }
                let payload = match body {
                    Some(body) => {
                        request = request.header(http::header::CONTENT_TYPE, "application/json");
                        Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?)
                    }
                    None => Bytes::new(),
                };
                let request = request
                    .body(Full::new(payload))
                    .map_err(|e| e.to_string())?;
                let exchange = async {
                    let response = client.request(request).await.map_err(|e| {
                        let source = std::error::Error::source(&e)
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default();
                        format!("{e}{source}")
                    })?;
                    let status = response.status();
                    let bytes = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    Ok((status, bytes))
                };
                tokio::time::timeout(ADMIN_TIMEOUT, exchange)
                    .await
                    .map_err(|_| format!("no answer within {ADMIN_TIMEOUT:?}"))?
            }
        }
    }
}

/// An HTTPS client (HTTP/2 or HTTP/1.1 by ALPN) trusting only the PEM certificates in `ca_file`.
fn tls_client(ca_file: &Path) -> Result<TlsClient, AdminError> {
    let mut config = (*reference_proxy::tls::client_config(ca_file)
        .map_err(|e| AdminError::Tls(e.to_string()))?)
    .clone();
    // The connector offers ALPN itself (and refuses a config that already does).
    config.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// The admin API's `{"error":{"message":…}}`, or the start of whatever else came back.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_admin_shape_or_the_body_start() {
        let cases: [(&[u8], &str); 3] = [
            (
                br#"{"error":{"type":"unauthorized","message":"missing or wrong admin bearer token"}}"#,
                "missing or wrong admin bearer token",
            ),
            (b"Not Found", "Not Found"),
            (b"", ""),
        ];
        for (body, want) in cases {
            assert_eq!(error_message(body), want);
        }
        let long = vec![b'x'; 1000];
        assert_eq!(error_message(&long).len(), 200);
    }
}
