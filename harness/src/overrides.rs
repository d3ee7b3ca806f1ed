//! What a proxy profile and the command line change in a scenario before it runs.
//!
//! Precedence is the same everywhere: the command line wins over the profile, the profile over the scenario.
//! Header overrides work like curl's `-H`: `Name: value` replaces a header of that name (case-insensitively) or
//! adds it, `Name:` with nothing after the colon removes it. Load requests get `-H` and the profile's
//! `[headers]`; setup calls get only `--setup-header` and the profile's `[setup_headers]`, so a client token
//! meant for the load never reaches the proxy's admin routes by accident. Values may use `{env:NAME}`, so
//! secrets stay in the environment rather than in files. Only header *names* are ever echoed into results.

use crate::cli::RunArgs;
use crate::error::HarnessError;
use crate::profile::{Profile, ProfileMode};
use crate::scenario::Scenario;
use crate::sut::Placeholders;
use std::collections::BTreeMap;
use toml::Spanned;

/// Header overrides in the order they apply (later entries win).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderOverrides {
    /// Header name → value template; `None` removes the header.
    entries: Vec<(String, Option<String>)>,
}

impl HeaderOverrides {
    /// The profile's table, then the command line's `Name: value` arguments of `flag` (`-H`, `--setup-header`).
    pub fn new(
        profile: &BTreeMap<String, String>,
        flag: &str,
        args: &[String],
    ) -> Result<HeaderOverrides, HarnessError> {
        let mut entries: Vec<(String, Option<String>)> = profile
            .iter()
            .map(|(name, value)| (name.clone(), Some(value.clone())))
            .collect();
        for arg in args {
            entries.push(parse_header_arg(flag, arg)?);
        }
        Ok(HeaderOverrides { entries })
    }

    /// Whether there is nothing to override.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The overridden header names (for `summary.json`; values may be secrets).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.iter().map(|(n, _)| n.clone()).collect();
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        names
    }

    /// Fills `{env:NAME}` in every value and checks it is a valid header value; the error names the header, never
    /// the value.
    pub fn filled(&self, flag: &str) -> Result<HeaderOverrides, HarnessError> {
        let values = Placeholders::default();
        let entries = self
            .entries
            .iter()
            .map(|(name, value)| {
                let Some(template) = value else {
                    return Ok((name.clone(), None));
                };
                let filled = values
                    .fill(template)
                    .map_err(|e| HarnessError::BadInput(format!("{flag} {name}: {e}")))?;
                http::HeaderValue::from_str(&filled).map_err(|_| {
                    HarnessError::BadInput(format!(
                        "{flag} {name}: the value is not a valid header value (control characters?)"
                    ))
                })?;
                Ok((name.clone(), Some(filled)))
            })
            .collect::<Result<_, HarnessError>>()?;
        Ok(HeaderOverrides { entries })
    }

    /// Applies the overrides to one request's (or setup call's) headers.
    pub fn apply(&self, headers: &mut BTreeMap<String, String>) {
        for (name, value) in &self.entries {
            headers.retain(|existing, _| !existing.eq_ignore_ascii_case(name));
            if let Some(value) = value {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

/// `Name: value` (curl's `-H`); `Name:` removes the header.
fn parse_header_arg(flag: &str, arg: &str) -> Result<(String, Option<String>), HarnessError> {
    let bad = |why: &str| HarnessError::BadInput(format!("{flag} {arg:?}: {why}"));
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| bad("expected 'Name: value' (or 'Name:' to remove the header)"))?;
    let name = name.trim();
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(bad("not a valid HTTP header name"));
    }
    let value = value.trim();
    Ok((
        name.to_string(),
        (!value.is_empty()).then(|| value.to_string()),
    ))
}

/// What the overrides changed that the run and its results need.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The profile used, if any (its file and name).
    pub profile: Option<(String, String)>,
    /// Names of the request headers overridden on every load request.
    pub request_headers: Vec<String>,
    /// The response header naming the key the proxy used (`None`: the proxy names none).
    pub key_header: Option<http::HeaderName>,
}

impl Default for Applied {
    fn default() -> Self {
        Applied {
            profile: None,
            request_headers: Vec::new(),
            key_header: Some(crate::engine::KEY_USED_HEADER),
        }
    }
}

/// Applies `profile` (if any) and the command line's header flags to `scenario` and `args`:
/// a `[proxy]` profile replaces the scenario's `[proxy]`; a profile's `[monitor]` replaces the monitor source
/// fields it sets; an `[attach]` profile fills `--target`,
/// `--proxy-pid(-file)`, `--upstream` and its token where the command line left them unset; key names replace
/// `[behaviour] key_names`; header overrides are applied to every request and setup call.
pub fn apply(
    scenario: &mut Scenario,
    args: &mut RunArgs,
    profile: Option<&Profile>,
) -> Result<Applied, HarnessError> {
    let empty = BTreeMap::new();
    let mut applied = Applied::default();
    if let Some(profile) = profile {
        applied.profile = Some((profile.origin.display().to_string(), profile.name.clone()));
        apply_mode(scenario, args, profile)?;
        if let Some(monitor) = &profile.monitor {
            scenario.monitor.apply_override(monitor);
            scenario
                .monitor
                .validate_source()
                .map_err(|(field, message)| {
                    HarnessError::BadInput(format!(
                        "{}: monitor.{field}: {message}",
                        profile.origin.display()
                    ))
                })?;
        }
        if !profile.key_names.is_empty() {
            let mut behaviour = scenario
                .behaviour
                .take()
                .map(Spanned::into_inner)
                .unwrap_or_default();
            behaviour.key_names = profile.key_names.clone();
            if args.upstream.is_none() {
                let mock_ids: Vec<String> = crate::sut::mock_config(scenario, 0)
                    .keys
                    .into_iter()
                    .map(|k| k.id)
                    .collect();
                behaviour.validate_key_names(&mock_ids).map_err(|e| {
                    HarnessError::BadInput(format!("{}: {e}", profile.origin.display()))
                })?;
            }
            scenario.behaviour = Some(Spanned::new(0..0, behaviour));
        }
        if let Some(header) = &profile.key_header {
            applied.key_header = (!header.is_empty())
                .then(|| http::HeaderName::from_bytes(header.as_bytes()).ok())
                .flatten();
            for request in &mut scenario.requests {
                let request = request.get_mut();
                if request.expect_header.as_deref().is_some_and(|h| {
                    h.eq_ignore_ascii_case(crate::engine::KEY_USED_HEADER.as_str())
                }) {
                    request.expect_header = applied.key_header.as_ref().map(|h| h.to_string());
                }
            }
        }
    }
    let request_headers =
        HeaderOverrides::new(profile.map_or(&empty, |p| &p.headers), "-H", &args.headers)?
            .filled("-H")?;
    for request in &mut scenario.requests {
        request_headers.apply(&mut request.get_mut().headers);
    }
    applied.request_headers = request_headers.names();
    let setup_headers = HeaderOverrides::new(
        profile.map_or(&empty, |p| &p.setup_headers),
        "--setup-header",
        &args.setup_headers,
    )?;
    if !setup_headers.is_empty() {
        if let Some(proxy) = scenario.proxy.as_mut() {
            for call in &mut proxy.get_mut().setup {
                setup_headers.apply(&mut call.headers);
            }
        }
    }
    Ok(applied)
}

fn apply_mode(
    scenario: &mut Scenario,
    args: &mut RunArgs,
    profile: &Profile,
) -> Result<(), HarnessError> {
    match &profile.mode {
        ProfileMode::Spawn(spec) => {
            if args.target.is_some() {
                return Err(HarnessError::BadInput(format!(
                    "--target attaches to a running proxy, but the profile {} starts one ([proxy]); use one or the other",
                    profile.origin.display()
                )));
            }
            scenario.proxy = Some(Spanned::new(0..0, spec.clone()));
        }
        ProfileMode::Attach(attach) => {
            if args.target.is_none() {
                args.target = Some(attach.target.clone());
                if args.proxy_pid.is_none() && args.proxy_pid_file.is_none() {
                    args.proxy_pid = attach.pid;
                    args.proxy_pid_file = attach.pid_file.clone();
                }
            }
            if args.upstream.is_none() {
                args.upstream = attach.upstream.clone();
                if args.upstream_ca.is_none() {
                    args.upstream_ca = attach.upstream_ca.clone();
                }
            }
            if args.upstream_admin_token.is_none() {
                if let Some(token) = &attach.upstream_admin_token {
                    let filled = Placeholders::default().fill(token).map_err(|e| {
                        HarnessError::BadInput(format!(
                            "{}: attach.upstream_admin_token: {e}",
                            profile.origin.display()
                        ))
                    })?;
                    args.upstream_admin_token = Some(filled);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn header_overrides_replace_add_and_remove_case_insensitively() {
        std::env::set_var("HARNESS_OVERRIDES_TEST_KEY", "sk-master");
        let profile = headers(&[("authorization", "Bearer {env:HARNESS_OVERRIDES_TEST_KEY}")]);
        let flags = [
            "X-Team: blue".to_string(),
            "Accept:".to_string(),
            "x-team:  red ".to_string(),
        ];
        let overrides = HeaderOverrides::new(&profile, "-H", &flags)
            .and_then(|o| o.filled("-H"))
            .expect("valid");
        let mut request = headers(&[
            ("Authorization", "Bearer client-token"),
            ("Accept", "text/event-stream"),
            ("Content-Type", "application/json"),
        ]);
        overrides.apply(&mut request);
        assert_eq!(
            request,
            headers(&[
                ("authorization", "Bearer sk-master"),
                ("Content-Type", "application/json"),
                ("x-team", "red"),
            ])
        );
        assert_eq!(
            overrides.names(),
            ["authorization", "X-Team", "Accept", "x-team"]
        );
    }

    #[test]
    fn load_headers_skip_setup_calls_and_setup_headers_skip_the_load() {
        let text = "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 1\nrun_time = \"1s\"\n\
                    [[request]]\nname = \"a\"\npath = \"/\"\nheaders = { Authorization = \"Bearer client\" }\n\
                    [proxy]\ncommand = [\"p\"]\n[[proxy.setup]]\npath = \"/admin/keys\"\n\
                    headers = { Authorization = \"Bearer {admin_token}\" }\n";
        let mut scenario =
            Scenario::from_str_at(text, "t.toml", std::path::Path::new(".")).expect("valid");
        let mut args = RunArgs {
            headers: vec!["Authorization: Bearer load".into()],
            setup_headers: vec!["X-Admin: yes".into()],
            ..RunArgs::default()
        };
        let applied = apply(&mut scenario, &mut args, None).expect("applied");
        assert_eq!(applied.request_headers, ["Authorization"]);
        assert_eq!(
            scenario.requests[0].get_ref().headers,
            headers(&[("Authorization", "Bearer load")])
        );
        let proxy = scenario.proxy.as_ref().expect("[proxy]").get_ref();
        assert_eq!(
            proxy.setup[0].headers,
            headers(&[
                ("Authorization", "Bearer {admin_token}"),
                ("X-Admin", "yes")
            ])
        );
    }

    #[test]
    fn a_profiles_monitor_table_replaces_the_source_fields_it_sets() {
        let text = "name = \"t\"\n[load]\nmodel = \"closed\"\nusers = 1\nrun_time = \"1s\"\n\
                    [[request]]\nname = \"a\"\npath = \"/\"\n[monitor]\ninterval = \"2s\"\njudge_leaks = true\n";
        let profile_dir = std::path::Path::new("/etc/profiles/staging.toml");
        let cases = [
            (
                "[attach]\ntarget = \"http://127.0.0.1:8000\"\n[monitor]\nsource = \"metrics\"\n\
                 metrics_urls = [\"http://127.0.0.1:9101/metrics\"]\n",
                Ok(crate::scenario::MonitorSourceKind::Metrics),
            ),
            (
                "[attach]\ntarget = \"http://127.0.0.1:8000\"\n[monitor]\nsource = \"metrics\"\n",
                Err("staging.toml: monitor.metrics_urls: source = \"metrics\" needs"),
            ),
        ];
        for (profile_text, want) in cases {
            let profile = Profile::from_str_at(profile_text, profile_dir).expect("profile parses");
            let mut scenario =
                Scenario::from_str_at(text, "t.toml", std::path::Path::new(".")).expect("valid");
            let mut args = RunArgs::default();
            match (apply(&mut scenario, &mut args, Some(&profile)), want) {
                (Ok(_), Ok(source)) => {
                    assert_eq!(scenario.monitor.source, source);
                    assert_eq!(
                        scenario.monitor.metrics_urls,
                        ["http://127.0.0.1:9101/metrics"]
                    );
                    // Fields the profile does not set stay the scenario's.
                    assert_eq!(scenario.monitor.interval, std::time::Duration::from_secs(2));
                    assert!(scenario.monitor.judge_leaks);
                }
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e}"),
                (got, want) => panic!("{profile_text}: got {:?}, want {want:?}", got.map(|_| ())),
            }
        }
    }

    #[test]
    fn bad_header_arguments_name_the_flag_and_never_the_secret() {
        std::env::remove_var("HARNESS_OVERRIDES_UNSET");
        let cases = [
            ("NoColon", "-H \"NoColon\": expected 'Name: value'"),
            ("Bad Name: x", "not a valid HTTP header name"),
            (
                "Authorization: Bearer {env:HARNESS_OVERRIDES_UNSET}",
                "-H Authorization: {env:HARNESS_OVERRIDES_UNSET}",
            ),
        ];
        for (arg, want) in cases {
            let err = HeaderOverrides::new(&BTreeMap::new(), "-H", &[arg.to_string()])
                .and_then(|o| o.filled("-H"))
                .expect_err(arg)
                .to_string();
            assert!(err.contains(want), "{arg}: {err}");
        }
        std::env::set_var("HARNESS_OVERRIDES_CTL", "sk-secret\nInjected: yes");
        let err = HeaderOverrides::new(
            &BTreeMap::new(),
            "-H",
            &["Authorization: {env:HARNESS_OVERRIDES_CTL}".to_string()],
        )
        .and_then(|o| o.filled("-H"))
        .expect_err("control characters")
        .to_string();
        assert!(
            err.contains("-H Authorization: the value is not a valid header value"),
            "{err}"
        );
        assert!(!err.contains("sk-secret"), "{err}");
    }
}
