//! `{name}` placeholders in proxy commands, env values and setup calls (pure).

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
}

/// Values the harness fills into `[proxy]` templates.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    values: BTreeMap<&'static str, String>,
}

impl Placeholders {
    /// Placeholders `{upstream_url}`, `{port}`, `{keys_file}`, `{admin_token}`.
    pub fn new(upstream_url: &str, port: u16, keys_file: &str, admin_token: &str) -> Placeholders {
        let mut values = BTreeMap::new();
        values.insert("upstream_url", upstream_url.to_string());
        values.insert("port", port.to_string());
        values.insert("keys_file", keys_file.to_string());
        values.insert("admin_token", admin_token.to_string());
        Placeholders { values }
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
            let name = &tail[1..end];
            let value = self.values.get(name).ok_or_else(|| {
                let known: Vec<String> = self.values.keys().map(|k| format!("{{{k}}}")).collect();
                PlaceholderError::Unknown {
                    name: name.to_string(),
                    template: template.to_string(),
                    known: known.join(", "),
                }
            })?;
            out.push_str(value);
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
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
        let p = Placeholders::new("http://127.0.0.1:9", 8123, "/tmp/keys.toml", "tok");
        let cases = [
            ("--port={port}", Ok("--port=8123")),
            ("{upstream_url}/v1", Ok("http://127.0.0.1:9/v1")),
            ("{keys_file} {admin_token}", Ok("/tmp/keys.toml tok")),
            ("{{literal}}", Ok("{literal}")),
            ("plain", Ok("plain")),
            ("{nope}", Err("unknown placeholder {nope}")),
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
    }
}
