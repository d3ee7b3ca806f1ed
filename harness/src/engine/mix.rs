//! The weighted request mix after tag selection, and seeded picks from it.

use crate::http::{PreparedRequest, TargetError};
use crate::scenario::RequestSpec;
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::Rng;

/// Why no usable mix could be built.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    /// Tag selection removed every request.
    #[error("no request left after tag selection (tags {tags:?}, excluded {excluded:?})")]
    Empty {
        /// `--tags`.
        tags: Vec<String>,
        /// `--exclude-tags`.
        excluded: Vec<String>,
    },
    /// The target URL cannot be combined with the request paths.
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Which requests take part (Locust's `--tags` / `--exclude-tags`).
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Keep only requests with at least one of these tags (empty = all).
    pub include: Vec<String>,
    /// Drop requests with any of these tags.
    pub exclude: Vec<String>,
}

impl TagFilter {
    /// Whether a request with `tags` is selected.
    pub fn selects(&self, tags: &[String]) -> bool {
        let included = self.include.is_empty() || tags.iter().any(|t| self.include.contains(t));
        included && !tags.iter().any(|t| self.exclude.contains(t))
    }
}

/// Selected requests and their weights.
#[derive(Debug)]
pub struct Mix {
    requests: Vec<PreparedRequest>,
    weights: WeightedIndex<u32>,
}

impl Mix {
    /// Builds the mix of `specs` selected by `filter`, against `target`.
    pub fn new(specs: &[RequestSpec], target: &str, filter: &TagFilter) -> Result<Mix, MixError> {
        let selected: Vec<&RequestSpec> = specs
            .iter()
            .filter(|s| s.weight > 0 && filter.selects(&s.tags))
            .collect();
        let empty = || MixError::Empty {
            tags: filter.include.clone(),
            excluded: filter.exclude.clone(),
        };
        let weights = WeightedIndex::new(selected.iter().map(|s| s.weight)).map_err(|_| empty())?;
        let requests = selected
            .iter()
            .map(|s| PreparedRequest::new(s, target))
            .collect::<Result<_, _>>()?;
        Ok(Mix { requests, weights })
    }

    /// Reads the key the proxy used from `header` instead of `X-Key-Used` (`None`: the proxy names no key).
    pub fn with_key_header(mut self, header: Option<&http::HeaderName>) -> Mix {
        for request in &mut self.requests {
            request.key_header = header.cloned();
        }
        self
    }

    /// Picks a request (index into [`Mix::requests`]) and a body variant.
    pub fn pick<R: Rng>(&self, rng: &mut R) -> (usize, usize) {
        let index = self.weights.sample(rng);
        let bodies = self.requests[index].bodies.len();
        let variant = if bodies > 1 {
            rng.random_range(0..bodies)
        } else {
            0
        };
        (index, variant)
    }

    /// The selected requests.
    pub fn requests(&self) -> &[PreparedRequest] {
        &self.requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_filter_table() {
        let cases = [
            (vec![], vec![], vec!["a"], true),
            (vec!["a"], vec![], vec!["a", "b"], true),
            (vec!["a"], vec![], vec!["b"], false),
            (vec!["a"], vec![], vec![], false),
            (vec![], vec!["b"], vec!["a", "b"], false),
            (vec!["a"], vec!["b"], vec!["a"], true),
        ];
        for (include, exclude, request, want) in cases {
            let f = TagFilter {
                include: tags(&include),
                exclude: tags(&exclude),
            };
            assert_eq!(
                f.selects(&tags(&request)),
                want,
                "{include:?} {exclude:?} {request:?}"
            );
        }
    }
}
