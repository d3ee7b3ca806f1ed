//! The provider surface the mock imitates: which provider an endpoint belongs to and the route names used by
//! fault rules, latency overrides, the ledger and metrics.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An LLM provider whose API shape the mock reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI: `Authorization: Bearer`, `{"error":{...}}` bodies, `x-ratelimit-*` headers.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic: `x-api-key`, `{"type":"error",...}` bodies, `anthropic-ratelimit-*` headers.
    Anthropic,
}

/// One provider endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /v1/chat/completions` (OpenAI).
    ChatCompletions,
    /// `POST /v1/embeddings` (OpenAI).
    Embeddings,
    /// `GET /v1/models` and `GET /v1/models/{id}` (OpenAI).
    Models,
    /// `POST /v1/messages` (Anthropic).
    Messages,
}

impl Route {
    /// Every route, in a fixed order (used to index per-route counters).
    pub const ALL: [Route; 4] = [
        Route::ChatCompletions,
        Route::Embeddings,
        Route::Models,
        Route::Messages,
    ];

    /// The provider whose API this route belongs to.
    pub fn provider(self) -> Provider {
        match self {
            Route::Messages => Provider::Anthropic,
            _ => Provider::OpenAi,
        }
    }

    /// Stable snake_case name, as in config files and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat_completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
            Route::Messages => "messages",
        }
    }

    /// Position in [`Route::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Provider {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, route) in Route::ALL.iter().enumerate() {
            assert_eq!(route.index(), position);
        }
        assert_eq!(Route::Messages.provider(), Provider::Anthropic);
        assert_eq!(Route::ChatCompletions.provider(), Provider::OpenAi);
    }
}
