//! `{name}` placeholders in proxy commands, env values, setup calls and request header overrides.
//!
//! Besides the values the harness knows (`{port}`, `{upstream_url}`, `{ca_file}` of a TLS mock, ...), two
//! families read from outside:
//! `{env:NAME}` (the harness's environment, so a secret such as a master key never has to be written into a
//! profile) and `{key:ID}` (the secret of the mock's key `ID`, for proxies configured through env or files rather
//! than a keys file). Filling is pure apart from reading the environment.

use std::collections::BTreeMap;

/// A template that cannot be filled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaceholderError {
    /// A `}` with no `{` before it (write `}}` for a literal brace).
    #[error("unmatched '}}' in {template:?}")]
    UnmatchedClose {
        /// The template.
        template: String,
    },
    /// A `{` never closed (write `{{` for a literal brace).
    #[error("unclosed '{{' in {template:?}")]
    Unclosed {
        /// The template.
        template: String,
    },
    /// A `{name}` the harness does not fill.
    #[error("unknown placeholder {{{name}}} in {template:?} (known: {known})")]
    Unknown {
        /// The placeholder's name.
        name: String,
        /// The template.
        template: String,
        /// The placeholders the harness fills, e.g. `{port}, {upstream_url}`.
        known: String,
    },
    /// `{env:NAME}` with `NAME` not set in the harness's environment.
    #[error("{{env:{name}}} in {template:?}: environment variable {name} is not set")]
    UnsetEnv {
        /// The variable.
        name: String,
        /// The template.
        template: String,
    },
    /// `{ca_file}` while the mock serves plain HTTP (there is no CA to trust).
    #[error(
        "{{ca_file}} in {template:?}: the mock serves plain HTTP, so there is no CA file; turn TLS on with \
         [upstream.tls] enabled = true (in-process mock) or pass --upstream https://… --upstream-ca FILE"
    )]
    NoCaFile {
        /// The template.
        template: String,
    },
    /// `{key:ID}` with no mock key `ID`.
    #[error("{{key:{id}}} in {template:?}: the mock has no key {id:?} (keys: {known})")]
    UnknownKey {
        /// The key id.
        id: String,
        /// The template.
        template: String,
        /// The mock's key ids.
        known: String,
    },
}

/// Values the harness fills into `[proxy]` templates.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    values: BTreeMap<&'static str, String>,
    /// Mock key id → secret, for `{key:ID}`.
    keys: BTreeMap<String, String>,
    /// The CA certificate file of a TLS mock, for `{ca_file}`.
    ca_file: Option<String>,
}

impl Placeholders {
    /// Placeholders `{upstream_url}`, `{port}`, `{keys_file}`, `{admin_token}`.
    pub fn new(upstream_url: &str, port: u16, keys_file: &str, admin_token: &str) -> Placeholders {
        let mut values = BTreeMap::new();
        values.insert("upstream_url", upstream_url.to_string());
        values.insert("port", port.to_string());
        values.insert("keys_file", keys_file.to_string());
        values.insert("admin_token", admin_token.to_string());
        Placeholders {
            values,
            keys: BTreeMap::new(),
            ca_file: None,
        }
    }

    /// Also fills `{ca_file}` with the CA certificate file of a TLS mock (`None`: the mock is plain HTTP, and
    /// `{ca_file}` is an error).
    pub fn with_ca_file(mut self, ca_file: Option<&std::path::Path>) -> Self {
        self.ca_file = ca_file.map(|p| p.display().to_string());
        self
    }

    /// Whether `{ca_file}` has a value (the mock serves HTTPS with a CA to trust).
    pub fn has_ca_file(&self) -> bool {
        self.ca_file.is_some()
    }

    /// Also fills `{key:ID}` with the secret of the mock's key `ID`.
    pub fn with_keys<'a>(mut self, keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.keys = keys
            .into_iter()
            .map(|(id, secret)| (id.to_string(), secret.to_string()))
            .collect();
        self
    }

    /// Replaces every `{name}` in `template`; `{{` and `}}` stand for literal braces.
    pub fn fill(&self, template: &str) -> Result<String, PlaceholderError> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                out.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(PlaceholderError::UnmatchedClose {
                    template: template.to_string(),
                });
            }
            let end = tail.find('}').ok_or_else(|| PlaceholderError::Unclosed {
                template: template.to_string(),
            })?;
            out.push_str(&self.value(&tail[1..end], template)?);
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of one placeholder (`name` is what stands between the braces).
    fn value(&self, name: &str, template: &str) -> Result<String, PlaceholderError> {
        if let Some(var) = name.strip_prefix("env:") {
            return std::env::var(var).map_err(|_| PlaceholderError::UnsetEnv {
                name: var.to_string(),
                template: template.to_string(),
            });
        }
        if let Some(id) = name.strip_prefix("key:") {
            return self
                .keys
                .get(id)
                .cloned()
                .ok_or_else(|| PlaceholderError::UnknownKey {
                    id: id.to_string(),
                    template: template.to_string(),
                    known: self.keys.keys().cloned().collect::<Vec<_>>().join(", "),
                });
        }
        if name == "ca_file" {
            return self
                .ca_file
                .clone()
                .ok_or_else(|| PlaceholderError::NoCaFile {
                    template: template.to_string(),
                });
        }
        self.values.get(name).cloned().ok_or_else(|| {
            let known: Vec<String> = self
                .values
                .keys()
                .map(|k| format!("{{{k}}}"))
                .chain(["{ca_file}", "{env:NAME}", "{key:ID}"].map(String::from))
                .collect();
            PlaceholderError::Unknown {
                name: name.to_string(),
                template: template.to_string(),
                known: known.join(", "),
            }
        })
    }

    /// Whether `template` uses `{name}`.
    pub fn uses(template: &str, name: &str) -> bool {
        template.contains(&format!("{{{name}}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_table() {
        std::env::set_var("HARNESS_PLACEHOLDER_TEST", "sk-env");
        std::env::remove_var("HARNESS_PLACEHOLDER_UNSET");
        let p = Placeholders::new("http://127.0.0.1:9", 8123, "/tmp/keys.toml", "tok")
            .with_keys([("key1", "sk-one")]);
        let cases = [
            ("--port={port}", Ok("--port=8123")),
            ("{upstream_url}/v1", Ok("http://127.0.0.1:9/v1")),
            ("{keys_file} {admin_token}", Ok("/tmp/keys.toml tok")),
            ("{{literal}}", Ok("{literal}")),
            ("plain", Ok("plain")),
            ("{nope}", Err("unknown placeholder {nope}")),
            ("Bearer {env:HARNESS_PLACEHOLDER_TEST}", Ok("Bearer sk-env")),
            (
                "{env:HARNESS_PLACEHOLDER_UNSET}",
                Err("HARNESS_PLACEHOLDER_UNSET is not set"),
            ),
            ("KEY={key:key1}", Ok("KEY=sk-one")),
            (
                "{key:key9}",
                Err("the mock has no key \"key9\" (keys: key1)"),
            ),
            (
                "{ca_file}",
                Err("the mock serves plain HTTP, so there is no CA file"),
            ),
            ("{nope}", Err("{ca_file}, {env:NAME}")),
            ("{port", Err("unclosed")),
            ("port}", Err("unmatched")),
        ];
        for (template, want) in cases {
            match (p.fill(template), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{template}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{template}: {e}"),
                (got, want) => panic!("{template}: got {got:?}, want {want:?}"),
            }
        }
        let tls = p.with_ca_file(Some(std::path::Path::new("/tmp/mock-ca.pem")));
        assert!(tls.has_ca_file());
        assert_eq!(
            tls.fill("--upstream-ca={ca_file}").unwrap(),
            "--upstream-ca=/tmp/mock-ca.pem"
        );
    }
}
