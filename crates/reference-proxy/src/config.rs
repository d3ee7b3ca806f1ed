//! Raw CLI + keys file + environment → one checked [`ProxyConfig`]. Every problem is a [`ConfigError`] that names
//! the file, flag or field, and `main` maps it to exit code [`EXIT_BAD_CONFIG`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::Args;
use crate::key::{KeySpec, Secret};
use crate::pool::{KeyPool, Strategy};
use crate::retry_policy::{CooldownPolicy, RetryBudget};

/// Exit code for bad configuration (flags, keys file, environment).
pub const EXIT_BAD_CONFIG: i32 = 2;

/// A configuration problem; the message names the file and field or the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The keys file could not be read.
    #[error("keys file {path}: cannot read it: {source}")]
    KeysFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The keys file is not valid TOML of the expected shape.
    #[error("keys file {path}: {message}")]
    KeysFileInvalid {
        /// The file.
        path: PathBuf,
        /// Parser message, with line, column and field.
        message: String,
    },
    /// A key entry is unusable.
    #[error("{origin}: {field}: {message}")]
    BadKey {
        /// Where the key came from (file path, `--key`, `PROXY_KEYS`).
        origin: String,
        /// Which entry and field, e.g. `keys[2].id`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The upstream CA file is unusable.
    #[error(transparent)]
    UpstreamCa(#[from] crate::tls::TlsError),
    /// A flag has an unusable value.
    #[error("{flag}: {message}")]
    BadFlag {
        /// The flag, e.g. `--upstream`.
        flag: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The checked configuration the server runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Upstream base URL without a trailing slash.
    pub upstream: String,
    /// For an `https://` upstream: the TLS client config trusting `--upstream-ca`.
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// Pool keys, ids unique.
    pub keys: Vec<KeySpec>,
    /// Key selection strategy.
    pub strategy: Strategy,
    /// Client token, if client auth is on.
    pub client_token: Option<Secret>,
    /// Admin token, if set.
    pub admin_token: Option<Secret>,
    /// Whether non-loopback peers may use the admin API.
    pub admin_allow_remote: bool,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Per-attempt timeout until response headers.
    pub request_timeout: Duration,
    /// Idle timeout between body chunks.
    pub read_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryBudget,
    /// Cooldown lengths.
    pub cooldown: CooldownPolicy,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Upstream requests in flight at most (>= 1).
    pub max_upstream_connections: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeySpec>,
}

impl ProxyConfig {
    /// Validates `args` (reading the keys file it names) into a config.
    pub fn from_args(args: &Args) -> Result<ProxyConfig, ConfigError> {
        let mut keys = match &args.keys_file {
            Some(path) => load_keys_file(path)?,
            None => Vec::new(),
        };
        keys.extend(parse_key_pairs(&args.keys, "--key")?);
        keys.extend(parse_key_pairs(&args.env_keys, "PROXY_KEYS")?);
        check_keys(&keys, args)?;
        check_flags(args)?;
        let upstream = check_upstream(&args.upstream)?;
        let upstream_tls = upstream_tls(&upstream, args.upstream_ca.as_deref())?;
        Ok(ProxyConfig {
            upstream,
            upstream_tls,
            keys,
            strategy: args.strategy,
            client_token: args.client_token.clone().map(Secret::new),
            admin_token: args.admin_token.clone().map(Secret::new),
            admin_allow_remote: args.admin_allow_remote,
            connect_timeout: args.connect_timeout,
            request_timeout: args.request_timeout,
            read_timeout: args.read_timeout,
            retry: RetryBudget {
                max_attempts: args.max_attempts,
                deadline: args.deadline,
            },
            cooldown: CooldownPolicy {
                default_cooldown: args.default_cooldown,
                quota_park: args.quota_park,
                max_cooldown: args.max_cooldown,
            },
            max_body_bytes: args.max_body_bytes,
            max_upstream_connections: args.max_upstream_connections,
        })
    }
}

/// Reads a `[[keys]]` TOML file; unknown fields are errors that name the field, line and column.
pub fn load_keys_file(path: &Path) -> Result<Vec<KeySpec>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::KeysFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse_keys_toml(&text, path)
}

/// Parses keys-file text; `path` is only used in messages.
pub fn parse_keys_toml(text: &str, path: &Path) -> Result<Vec<KeySpec>, ConfigError> {
    let file: KeysFile = toml::from_str(text).map_err(|e| ConfigError::KeysFileInvalid {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " | "),
    })?;
    let origin = path.display().to_string();
    for (index, key) in file.keys.iter().enumerate() {
        check_key_fields(key, &origin, &format!("keys[{index}]"))?;
    }
    Ok(file.keys)
}

/// Parses `ID=SECRET` pairs from `--key` or `PROXY_KEYS`.
fn parse_key_pairs(pairs: &[String], origin: &str) -> Result<Vec<KeySpec>, ConfigError> {
    let mut keys = Vec::with_capacity(pairs.len());
    for (index, pair) in pairs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.trim().is_empty())
    {
        let field = format!("entry {}", index + 1);
        let Some((id, secret)) = pair.trim().split_once('=') else {
            return Err(bad_key(
                origin,
                &field,
                "expected ID=SECRET (the secret itself is not shown)",
            ));
        };
        let key = KeySpec {
            id: id.trim().to_string(),
            secret: Secret::new(secret.trim()),
            provider: None,
        };
        check_key_fields(&key, origin, &field)?;
        keys.push(key);
    }
    Ok(keys)
}

fn check_key_fields(key: &KeySpec, origin: &str, field: &str) -> Result<(), ConfigError> {
    if key.id.trim().is_empty() {
        return Err(bad_key(origin, &format!("{field}.id"), "must not be empty"));
    }
    if key.secret.expose().is_empty() {
        return Err(bad_key(
            origin,
            &format!("{field}.secret"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// Pool-level checks (unique ids, header-safe secrets) by building a throwaway pool.
fn check_keys(keys: &[KeySpec], args: &Args) -> Result<(), ConfigError> {
    KeyPool::new(args.strategy, keys)
        .map(drop)
        .map_err(|e| ConfigError::BadKey {
            origin: "key pool".to_string(),
            field: "id/secret".to_string(),
            message: e.to_string(),
        })
}

fn check_flags(args: &Args) -> Result<(), ConfigError> {
    let bad = |flag, message: &str| {
        Err(ConfigError::BadFlag {
            flag,
            message: message.to_string(),
        })
    };
    if args.max_attempts == 0 {
        return bad("--max-attempts", "must be at least 1");
    }
    if args.max_upstream_connections == 0 {
        return bad("--max-upstream-connections", "must be at least 1");
    }
    if args.admin_allow_remote && args.admin_token.as_deref().is_none_or(str::is_empty) {
        return bad(
            "--admin-allow-remote",
            "requires --admin-token (an open admin API must not be remote)",
        );
    }
    if args.client_token.as_deref() == Some("") {
        return bad(
            "--client-token",
            "must not be empty (omit it to turn client auth off)",
        );
    }
    let zero = [
        ("--connect-timeout", args.connect_timeout),
        ("--request-timeout", args.request_timeout),
        ("--read-timeout", args.read_timeout),
        ("--deadline", args.deadline),
    ];
    match zero.iter().find(|(_, d)| d.is_zero()) {
        Some((flag, _)) => bad(flag, "must be greater than zero"),
        None => Ok(()),
    }
}

/// The TLS client for an `https://` upstream (which needs `--upstream-ca`); `--upstream-ca` with an
/// `http://` upstream is a mistake worth stopping for (the run would not use the CA it was given).
fn upstream_tls(
    upstream: &str,
    ca_file: Option<&Path>,
) -> Result<Option<Arc<rustls::ClientConfig>>, ConfigError> {
    let bad = |flag, message: &str| ConfigError::BadFlag {
        flag,
        message: message.to_string(),
    };
    match (upstream.starts_with("https://"), ca_file) {
        (true, Some(ca_file)) => Ok(Some(crate::tls::client_config(ca_file)?)),
        (true, None) => Err(bad(
            "--upstream",
            "an https:// upstream needs --upstream-ca FILE (the PEM CA certificate to trust)",
        )),
        (false, Some(_)) => Err(bad("--upstream-ca", "only applies to an https:// upstream")),
        (false, None) => Ok(None),
    }
}

fn check_upstream(url: &str) -> Result<String, ConfigError> {
    let bad = |message: String| ConfigError::BadFlag {
        flag: "--upstream",
        message,
    };
    let trimmed = url.trim();
    let (scheme, rest) = ["http://", "https://"]
        .into_iter()
        .find_map(|scheme| Some((scheme, trimmed.strip_prefix(scheme)?)))
        .ok_or_else(|| bad(format!("`{url}` must start with http:// or https://")))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(bad(format!(
            "`{url}` is not a base URL like http://127.0.0.1:9000"
        )));
    }
    let base = format!("{scheme}{rest}");
    let uri: http::Uri = base.parse().map_err(|e| bad(format!("`{url}`: {e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad(format!("`{url}` has no host")));
    }
    Ok(base)
}

fn bad_key(origin: &str, field: &str, message: &str) -> ConfigError {
    ConfigError::BadKey {
        origin: origin.to_string(),
        field: field.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["reference-proxy", "--upstream", "http://127.0.0.1:9"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    fn error(extra: &[&str]) -> String {
        ProxyConfig::from_args(&args(extra))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn keys_file_parses_and_rejects_unknown_fields() {
        let path = Path::new("keys.toml");
        let ok = "[[keys]]\nid = \"a\"\nsecret = \"sk-a\"\n\n[[keys]]\nid = \"b\"\nsecret = \"sk-b\"\nprovider = \"anthropic\"\n";
        let keys = parse_keys_toml(ok, path).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].provider, Some(crate::Provider::Anthropic));

        let cases = [
            (
                "[[keys]]\nid = \"a\"\nsecrt = \"x\"\n",
                &["keys.toml", "secrt", "line 3"][..],
            ),
            (
                "[[keys]]\nid = \"a\"\nsecret = \"\"\n",
                &["keys.toml", "keys[0].secret", "empty"],
            ),
            (
                "[[keys]]\nid = \"\"\nsecret = \"s\"\n",
                &["keys.toml", "keys[0].id"],
            ),
            (
                "[[keys]]\nid = \"a\"\nsecret = \"s\"\nprovider = \"azure\"\n",
                &["keys.toml", "azure"],
            ),
            ("[[keys]]\nsecret = \"s\"\n", &["keys.toml", "id"]),
            ("keyz = []\n", &["keys.toml", "keyz"]),
            ("[[keys]\n", &["keys.toml", "line 1"]),
        ];
        for (text, needles) in cases {
            let message = parse_keys_toml(text, path).unwrap_err().to_string();
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "{text:?}: {message:?} lacks {needle:?}"
                );
            }
        }
    }

    #[test]
    fn keys_come_from_file_flags_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "[[keys]]\nid = \"f\"\nsecret = \"sk-f\"\n").unwrap();
        let file_arg = file.to_str().unwrap();
        let config = ProxyConfig::from_args(&args(&[
            "--keys-file",
            file_arg,
            "--key",
            "c=sk-c",
            "--env-keys",
            "e1=x,e2=y",
        ]))
        .unwrap();
        let ids: Vec<_> = config.keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["f", "c", "e1", "e2"]);
        assert_eq!(config.upstream, "http://127.0.0.1:9");
    }

    #[test]
    fn bad_values_name_the_flag_or_field() {
        let missing = std::env::temp_dir().join("reference-proxy-no-such-file.toml");
        let missing = missing.to_str().unwrap();
        let cases: &[(&[&str], &[&str])] = &[
            (&["--key", "nosecret"], &["--key", "entry 1", "ID=SECRET"]),
            (&["--key", "a=sk-1", "--key", "a=sk-2"], &["`a`", "already"]),
            (&["--key", "a="], &["--key", "entry 1.secret"]),
            (&["--max-attempts", "0"], &["--max-attempts"]),
            (&["--deadline", "0s"], &["--deadline"]),
            (
                &["--admin-allow-remote"],
                &["--admin-allow-remote", "--admin-token"],
            ),
            (&["--client-token", ""], &["--client-token"]),
            (
                &["--keys-file", missing],
                &[
                    "keys file",
                    "reference-proxy-no-such-file.toml",
                    "cannot read",
                ],
            ),
        ];
        for (extra, needles) in cases {
            let message = error(extra);
            for needle in *needles {
                assert!(
                    message.contains(needle),
                    "{extra:?}: {message:?} lacks {needle:?}"
                );
            }
        }
    }

    #[test]
    fn upstream_must_be_an_http_or_https_base_url() {
        let cases = [
            ("http://127.0.0.1:9000/", Ok("http://127.0.0.1:9000")),
            (
                "http://127.0.0.1:9000/openai",
                Ok("http://127.0.0.1:9000/openai"),
            ),
            ("https://api.openai.com/", Ok("https://api.openai.com")),
            ("ftp://h:9", Err("http:// or https://")),
            ("127.0.0.1:9000", Err("http://")),
            ("http://", Err("base URL")),
            ("http://h:9/x?y=1", Err("base URL")),
        ];
        for (url, want) in cases {
            let got = check_upstream(url).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(message), Err(needle)) => {
                    assert!(message.contains(needle), "{url}: {message}")
                }
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn config_errors_never_contain_secrets() {
        let message = error(&["--key", "a=sk-top-secret", "--key", "a=sk-top-secret"]);
        assert!(!message.contains("sk-top-secret"), "{message}");
    }
}
