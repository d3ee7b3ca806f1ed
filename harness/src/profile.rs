//! Proxy profiles: how to run (or reach) *your* proxy, written once and used with every scenario.
//!
//! A scenario says what load to send and what to judge; a profile says which proxy takes it. Without profiles,
//! testing a proxy other than the reference one meant copying each scenario to give it a `[proxy]` table, or
//! starting the mock and the proxy by hand for every run. `harness run SCENARIO --proxy my-proxy.toml` (or a
//! whole suite with `harness run scenarios/ --proxy my-proxy.toml`) keeps the two apart.
//!
//! A profile holds either `[proxy]` (the harness starts the proxy: the same table as a scenario's `[proxy]`) or
//! `[attach]` (the proxy already runs: its URL, its PID and the external mock behind it), plus what the
//! proxy needs on every request (`[headers]`, e.g. a master key), on its setup calls (`[setup_headers]`),
//! and how it names the mock's keys (`[key_names]`). A profile's fields win over the scenario's; the command
//! line wins over the profile.

use crate::scenario::{MonitorSourceOverride, ProxySpec, ScenarioError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A validated proxy profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile file.
    pub origin: PathBuf,
    /// Name shown in reports (default: the file's stem).
    pub name: String,
    /// One sentence for humans.
    pub description: String,
    /// How the proxy is reached.
    pub mode: ProfileMode,
    /// Request header overrides on every load request (placeholders `{env:NAME}` allowed in values).
    pub headers: BTreeMap<String, String>,
    /// Headers added to every setup call.
    pub setup_headers: BTreeMap<String, String>,
    /// The proxy's names of keys in `X-Key-Used` → the mock's key ids (replaces `[behaviour] key_names`).
    pub key_names: BTreeMap<String, String>,
    /// The response header in which the proxy names the key it used, when not `X-Key-Used`; `Some("")`: the
    /// proxy names none (requests stop requiring `X-Key-Used`, and key agreement is SKIPPED, not failed).
    pub key_header: Option<String>,
    /// `[monitor]`: where the proxy's resources are read (a staging deployment's replicas' metrics), replacing
    /// the scenario's source fields it sets.
    pub monitor: Option<MonitorSourceOverride>,
}

/// Whether the harness starts the proxy or attaches to a running one.
#[derive(Debug, Clone)]
pub enum ProfileMode {
    /// `[proxy]`: started by the harness for every run (`cwd` already resolved against the profile's folder).
    Spawn(ProxySpec),
    /// `[attach]`: already running.
    Attach(AttachSpec),
}

/// `[attach]`: a proxy started elsewhere (a container, a staging replica, a process under a debugger).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachSpec {
    /// Base URL of the proxy (`--target`).
    pub target: String,
    /// Its PID, for resource monitoring and crash detection (`--proxy-pid`).
    #[serde(default)]
    pub pid: Option<u32>,
    /// A file holding its PID (`--proxy-pid-file`; relative to the profile file).
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// Base URL of the external mock-upstream the proxy talks to (`--upstream`).
    #[serde(default)]
    pub upstream: Option<String>,
    /// The external mock's admin token (`--upstream-admin-token`; write `{env:NAME}` rather than the token).
    #[serde(default)]
    pub upstream_admin_token: Option<String>,
    /// The CA certificate of an `https://` external mock (`--upstream-ca`; relative to the profile file).
    #[serde(default)]
    pub upstream_ca: Option<PathBuf>,
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    proxy: Option<Spanned<ProxySpec>>,
    #[serde(default)]
    attach: Option<Spanned<AttachSpec>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    setup_headers: BTreeMap<String, String>,
    #[serde(default)]
    key_names: BTreeMap<String, String>,
    #[serde(default)]
    key_header: Option<String>,
    #[serde(default)]
    monitor: Option<MonitorSourceOverride>,
}

impl Profile {
    /// Reads and validates a profile file; errors name the file, the line and the field.
    pub fn from_file(path: &Path) -> Result<Profile, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Profile::from_str_at(&text, path)
    }

    /// Parses and validates profile text read from `path` (which names it in errors and anchors relative paths).
    pub fn from_str_at(text: &str, path: &Path) -> Result<Profile, ScenarioError> {
        let origin = path.display().to_string();
        let file: ProfileFile =
            toml::from_str(text).map_err(|e| ScenarioError::from_toml(&origin, text, &e))?;
        let invalid = |span: std::ops::Range<usize>, field: &str, message: &str| {
            ScenarioError::invalid(&origin, text, span, field.into(), message.into())
        };
        // Absolute, so that a scenario's own folder (against which its `[proxy]` paths resolve) cannot shift them.
        let parent = path.parent().unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        let base_dir = base_dir.as_path();
        let mode = match (file.proxy, file.attach) {
            (Some(_), Some(attach)) => {
                return Err(invalid(
                    attach.span(),
                    "attach",
                    "a profile either starts the proxy ([proxy]) or attaches to a running one ([attach]), not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    0..0,
                    "proxy",
                    "a profile needs [proxy] (the harness starts the proxy; an empty table = the reference proxy) \
                     or [attach] (target = URL of a running proxy)",
                ))
            }
            (Some(proxy), None) => {
                let mut spec = proxy.into_inner();
                spec.cwd = spec
                    .cwd
                    .map(|cwd| base_dir.join(cwd).display().to_string());
                ProfileMode::Spawn(spec)
            }
            (None, Some(attach)) => {
                let span = attach.span();
                let mut spec = attach.into_inner();
                check_http_url(&spec.target).map_err(|m| {
                    invalid(span.clone(), "attach.target", &m)
                })?;
                if let Some(upstream) = &spec.upstream {
                    check_http_url(upstream)
                        .map_err(|m| invalid(span.clone(), "attach.upstream", &m))?;
                }
                if spec.pid.is_some() && spec.pid_file.is_some() {
                    return Err(invalid(span, "attach.pid_file", "give pid or pid_file, not both"));
                }
                spec.pid_file = spec.pid_file.map(|f| base_dir.join(f));
                spec.upstream_ca = spec.upstream_ca.map(|f| base_dir.join(f));
                ProfileMode::Attach(spec)
            }
        };
        let env = match &mode {
            ProfileMode::Spawn(spec) => Some(&spec.env),
            ProfileMode::Attach(_) => None,
        };
        let tables = [
            ("proxy.env", env),
            ("headers", Some(&file.headers)),
            ("setup_headers", Some(&file.setup_headers)),
            ("key_names", Some(&file.key_names)),
        ];
        for (table, entries) in tables {
            let Some(entries) = entries else { continue };
            if let Some(misplaced) = TOP_LEVEL_FIELDS.iter().find(|f| entries.contains_key(**f)) {
                let at = line_starting_with(text, misplaced);
                return Err(invalid(
                    at..at,
                    &format!("{table}.{misplaced}"),
                    &format!(
                        "`{misplaced}` is a top-level field, but TOML puts every key after a [table] header into that \
                         table; move it above the first [table]"
                    ),
                ));
            }
        }
        for (table, headers) in [
            ("headers", &file.headers),
            ("setup_headers", &file.setup_headers),
        ] {
            if let Some(name) = headers
                .keys()
                .find(|name| http::HeaderName::from_bytes(name.as_bytes()).is_err())
            {
                let at = text.find(&format!("[{table}]")).unwrap_or(0);
                return Err(invalid(
                    at..at,
                    &format!("{table}.{name}"),
                    "not a valid HTTP header name",
                ));
            }
        }
        if let Some(header) = file.key_header.as_deref().filter(|h| !h.is_empty()) {
            if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                let at = text.find("key_header").unwrap_or(0);
                return Err(invalid(
                    at..at,
                    "key_header",
                    "not a valid HTTP header name (\"\" = the proxy names no key)",
                ));
            }
        }
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "profile".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Profile {
            origin: path.to_path_buf(),
            name,
            description: file.description,
            mode,
            headers: file.headers,
            setup_headers: file.setup_headers,
            key_names: file.key_names,
            key_header: file.key_header,
            monitor: file.monitor,
        })
    }
}

/// The profile's top-level fields: written after a table header by mistake, they silently become an entry of
/// that table (an environment variable, a header, a key name), so they are refused there.
const TOP_LEVEL_FIELDS: [&str; 3] = ["name", "description", "key_header"];

/// Byte offset of the first line whose key is `key` (`key = ...`), for pointing an error at it.
fn line_starting_with(text: &str, key: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let is_key = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key {
            return offset + (line.len() - trimmed.len());
        }
        offset += line.len();
    }
    0
}

/// `http://host[:port]` (what the load engine can reach).
fn check_http_url(url: &str) -> Result<(), String> {
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => Ok(()),
        _ => Err(format!("{url:?} is not an http://host[:port] URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile, String> {
        Profile::from_str_at(text, Path::new("/etc/profiles/mine.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn spawn_profile_resolves_cwd_against_its_folder() {
        let p = parse(
            "[proxy]\ncommand = [\"python3\", \"app.py\", \"--port\", \"{port}\"]\ncwd = \"app\"\n\
             [headers]\nAuthorization = \"Bearer {env:MASTER}\"\n[key_names]\n\"key-1\" = \"key1\"\n",
        )
        .expect("valid");
        assert_eq!(p.name, "mine");
        let ProfileMode::Spawn(spec) = &p.mode else {
            panic!("spawn expected")
        };
        assert_eq!(spec.cwd.as_deref(), Some("/etc/profiles/app"));
        assert_eq!(spec.ready_path, "/health");
        assert_eq!(p.headers["Authorization"], "Bearer {env:MASTER}");
        assert_eq!(p.key_names["key-1"], "key1");
        let empty = parse("name = \"reference\"\n[proxy]\n").expect("valid");
        assert!(matches!(empty.mode, ProfileMode::Spawn(ref s) if s.command.is_empty()));
    }

    #[test]
    fn attach_profile_resolves_pid_file() {
        let p = parse(
            "[attach]\ntarget = \"http://127.0.0.1:8000\"\npid_file = \"proxy.pid\"\n\
             upstream = \"http://127.0.0.1:9100\"\nupstream_admin_token = \"{env:TOKEN}\"\n",
        )
        .expect("valid");
        let ProfileMode::Attach(a) = &p.mode else {
            panic!("attach expected")
        };
        assert_eq!(
            a.pid_file.as_deref(),
            Some(Path::new("/etc/profiles/proxy.pid"))
        );
        assert_eq!(a.upstream.as_deref(), Some("http://127.0.0.1:9100"));
    }

    #[test]
    fn monitor_table_overrides_only_what_it_sets() {
        let p = parse(
            "[attach]\ntarget = \"http://127.0.0.1:8000\"\n[monitor]\nsource = \"prometheus\"\n\
             [monitor.prometheus]\nurl = \"http://127.0.0.1:9090\"\nselector = '{job=\"proxy\"}'\n",
        )
        .expect("valid");
        let over = p.monitor.expect("[monitor]");
        assert_eq!(
            over.source,
            Some(crate::scenario::MonitorSourceKind::Prometheus)
        );
        assert_eq!(over.metrics_urls, None);
        let prometheus = over.prometheus.expect("[monitor.prometheus]");
        assert_eq!(prometheus.replica_label, "pod");
        assert_eq!(prometheus.selector, "{job=\"proxy\"}");
        let err = parse("[proxy]\n[monitor]\nsource = \"snmp\"\n").expect_err("unknown source");
        assert!(err.contains("mine.toml:3"), "{err}");
    }

    #[test]
    fn bad_profiles_name_file_line_and_field() {
        let cases = [
            (
                "description = \"x\"\n",
                "mine.toml:1: proxy: a profile needs [proxy]",
            ),
            (
                "[proxy]\n[attach]\ntarget = \"http://x\"\n",
                "mine.toml:2: attach: a profile either starts",
            ),
            (
                "[attach]\ntarget = \"https://x:1\"\n",
                "mine.toml:1: attach.target: \"https://x:1\" is not an http://host[:port] URL",
            ),
            (
                "[attach]\ntarget = \"http://x\"\npid = 3\npid_file = \"p\"\n",
                "attach.pid_file: give pid or pid_file, not both",
            ),
            (
                "[proxy]\ncomand = []\n",
                "mine.toml:2:1: unknown field `comand`",
            ),
            (
                "[proxy]\n[headers]\n\"bad header\" = \"x\"\n",
                "mine.toml:2: headers.bad header: not a valid HTTP header name",
            ),
            (
                "[proxy]\ncommand = [\"p\"]\n[proxy.env]\nA = \"1\"\nkey_header = \"x-litellm-model-id\"\n",
                "mine.toml:5: proxy.env.key_header: `key_header` is a top-level field",
            ),
            (
                "[attach]\ntarget = \"http://x\"\n[headers]\nAuthorization = \"B\"\n description = \"d\"\n",
                "mine.toml:5: headers.description: `description` is a top-level field",
            ),
            (
                "key_header = \"x key\"\n[proxy]\n",
                "mine.toml:1: key_header: not a valid HTTP header name",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: got {err}, want {want}");
        }
    }

    #[test]
    fn every_shipped_profile_is_valid() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(&examples).expect("examples/") {
            let profile = entry.expect("entry").path().join("profile.toml");
            if profile.exists() {
                Profile::from_file(&profile).unwrap_or_else(|e| panic!("{e}"));
                checked += 1;
            }
        }
        assert!(
            checked >= 3,
            "{checked} profiles under {}",
            examples.display()
        );
    }
}
