//! Token accounting and generated text. The mock does not tokenize: it estimates prompt tokens as
//! ~4 characters per token (what providers' own rough guides say) and generates one word per output token,
//! so `usage` is consistent with the text and with `max_tokens`.

use serde_json::Value;

/// Words the generated text is made of; one word is one output token.
const WORDS: [&str; 32] = [
    "the", "mock", "upstream", "answers", "with", "steady", "words", "so", "that", "load", "tests",
    "can", "count", "every", "token", "while", "faults", "arrive", "on", "schedule", "and",
    "proxies", "route", "around", "them", "without", "leaking", "memory", "or", "losing",
    "requests", "today",
];

/// Estimated tokens of a text (at least 1 for non-empty text).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Estimated tokens of every string inside a JSON value (message contents, system prompts, content parts).
pub fn estimate_value_tokens(value: &Value) -> u64 {
    match value {
        Value::String(text) => estimate_tokens(text),
        Value::Array(items) => items.iter().map(estimate_value_tokens).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(name, _)| matches!(name.as_str(), "content" | "text" | "system" | "input"))
            .map(|(_, v)| estimate_value_tokens(v))
            .sum(),
        _ => 0,
    }
}

/// The `index`-th generated token (a word, with a leading space except for the first).
pub fn token(start: u64, index: u32) -> &'static str {
    const SPACED: [&str; 32] = spaced();
    let word = ((start + u64::from(index)) % WORDS.len() as u64) as usize;
    if index == 0 {
        WORDS[word]
    } else {
        SPACED[word]
    }
}

/// `count` generated tokens starting at word `start`, as one string.
pub fn generate(start: u64, count: u32) -> String {
    let mut text = String::with_capacity(count as usize * 7);
    (0..count).for_each(|index| text.push_str(token(start, index)));
    text
}

const fn spaced() -> [&'static str; 32] {
    [
        " the",
        " mock",
        " upstream",
        " answers",
        " with",
        " steady",
        " words",
        " so",
        " that",
        " load",
        " tests",
        " can",
        " count",
        " every",
        " token",
        " while",
        " faults",
        " arrive",
        " on",
        " schedule",
        " and",
        " proxies",
        " route",
        " around",
        " them",
        " without",
        " leaking",
        " memory",
        " or",
        " losing",
        " requests",
        " today",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimates_tokens_from_message_contents() {
        let messages = json!([
            {"role": "system", "content": "abcdefgh"},
            {"role": "user", "content": [{"type": "text", "text": "abcd"}]},
        ]);
        assert_eq!(estimate_value_tokens(&messages), 3);
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }

    #[test]
    fn words_need_no_json_escaping() {
        // Stream token frames splice words into a pre-rendered template without escaping.
        for word in WORDS.iter().chain(spaced().iter()) {
            assert_eq!(serde_json::to_string(word).unwrap(), format!("\"{word}\""));
        }
    }

    #[test]
    fn generated_text_has_one_word_per_token_and_is_deterministic() {
        let text = generate(5, 10);
        assert_eq!(text.split(' ').count(), 10);
        assert_eq!(text, generate(5, 10));
        assert_ne!(text, generate(6, 10));
        for (word, spaced) in WORDS.iter().zip(spaced()) {
            assert_eq!(format!(" {word}"), spaced);
        }
    }
}
