//! Which model names the mock serves. Provider model names change every few weeks, and a load test should not
//! fail because a client asks for this month's model, so by default any name is accepted and echoed back. A
//! `models` list restricts the mock to those names (anything else gets the provider's 404), for tests of how a
//! proxy handles an unknown model. The same check applies to the config file, a scenario's `[upstream]` and
//! `PUT /__admin/models`.

use bytes::Bytes;
use std::collections::HashSet;

/// What `GET /v1/models` lists when any model is accepted: current provider names, so a client that picks a
/// model from the listing gets one a real provider would know.
pub const LISTED_WHEN_UNRESTRICTED: &[&str] = &[
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
];

/// A `models` list that cannot be used: (index of the entry, what is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`models[{index}]`: {problem}")]
pub struct ModelListError {
    /// Position in the list.
    pub index: usize,
    /// What is wrong with that entry.
    pub problem: String,
}

/// Checks a `models` list: every name non-blank and listed once (a duplicate is usually a typo of another).
/// An empty list is valid and means any model.
pub fn validate_models(models: &[String]) -> Result<(), ModelListError> {
    let mut seen = HashSet::new();
    for (index, name) in models.iter().enumerate() {
        let problem = if name.trim().is_empty() {
            "must be a non-empty model name".to_string()
        } else if name.trim() != name {
            format!("`{name}` has leading or trailing whitespace")
        } else if !seen.insert(name.as_str()) {
            format!("`{name}` is listed twice")
        } else {
            continue;
        };
        return Err(ModelListError { index, problem });
    }
    Ok(())
}

/// The served models in force: the restriction (if any) and the pre-rendered `GET /v1/models` body, which a
/// monitoring client may poll as often as it likes.
#[derive(Debug, Clone)]
pub(crate) struct ServedModels {
    configured: Vec<String>,
    restriction: Option<HashSet<String>>,
    listing_body: Bytes,
}

impl ServedModels {
    /// From a validated `models` list; empty = any model.
    pub(crate) fn new(models: &[String]) -> ServedModels {
        let listed: Vec<String> = if models.is_empty() {
            LISTED_WHEN_UNRESTRICTED
                .iter()
                .map(|m| m.to_string())
                .collect()
        } else {
            models.to_vec()
        };
        ServedModels {
            configured: models.to_vec(),
            restriction: (!models.is_empty()).then(|| models.iter().cloned().collect()),
            listing_body: crate::providers::openai::models_body(&listed),
        }
    }

    /// Whether a request for `model` is served (else the provider's 404).
    pub(crate) fn accepts(&self, model: &str) -> bool {
        self.restriction
            .as_ref()
            .is_none_or(|allowed| allowed.contains(model))
    }

    /// The configured list (empty = any model).
    pub(crate) fn configured(&self) -> &[String] {
        &self.configured
    }

    /// The `GET /v1/models` body.
    pub(crate) fn listing_body(&self) -> Bytes {
        self.listing_body.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn validation_table() {
        /// A list, and the index and problem it is refused for (None = valid).
        type Case = (&'static [&'static str], Option<(usize, &'static str)>);
        let cases: [Case; 6] = [
            (&[], None),
            (&["gpt-4.1", "claude-sonnet-4-5"], None),
            (&["gpt-4.1", ""], Some((1, "non-empty"))),
            (&["  "], Some((0, "non-empty"))),
            (&[" gpt-5"], Some((0, "whitespace"))),
            (&["o3", "gpt-5", "o3"], Some((2, "listed twice"))),
        ];
        for (list, expected) in cases {
            let got = validate_models(&names(list));
            match (got, expected) {
                (Ok(()), None) => {}
                (Err(err), Some((index, problem))) => {
                    assert_eq!(err.index, index, "{list:?}");
                    assert!(err.problem.contains(problem), "{list:?}: {err}");
                    assert!(err.to_string().starts_with(&format!("`models[{index}]`")));
                }
                (got, expected) => panic!("{list:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn unrestricted_accepts_anything_and_lists_current_names() {
        let any = ServedModels::new(&[]);
        for model in ["claude-sonnet-4-5", "gpt-7-preview", "x"] {
            assert!(any.accepts(model), "{model}");
        }
        let listing: serde_json::Value = serde_json::from_slice(&any.listing_body()).unwrap();
        let ids: Vec<&str> = listing["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, LISTED_WHEN_UNRESTRICTED);
        assert!(any.configured().is_empty());
    }

    #[test]
    fn a_list_restricts_and_is_what_is_listed() {
        let only = ServedModels::new(&names(&["gpt-4.1", "claude-opus-4-1"]));
        let cases = [
            ("gpt-4.1", true),
            ("claude-opus-4-1", true),
            ("gpt-4", false),
            ("GPT-4.1", false),
        ];
        for (model, accepted) in cases {
            assert_eq!(only.accepts(model), accepted, "{model}");
        }
        let listing: serde_json::Value = serde_json::from_slice(&only.listing_body()).unwrap();
        assert_eq!(listing["data"][1]["id"], "claude-opus-4-1");
        assert_eq!(listing["data"][1]["owned_by"], "anthropic");
        assert_eq!(listing["data"].as_array().unwrap().len(), 2);
    }
}
