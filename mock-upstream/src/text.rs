//! Token accounting and generated text. The mock does not tokenize: it estimates prompt tokens as
//! ~4 characters per token (what providers' own rough guides say) and generates one word per output token,
//! so `usage` is consistent with the text and with `max_tokens`.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

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

/// The estimated tokens of a JSON value, counted while it is parsed (no `Value` tree is built, which is
/// most of the cost of parsing a chat request). Same rule as [`estimate_value_tokens`]: strings count,
/// arrays sum their items, objects sum their `content`/`text`/`system`/`input` members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountedTokens {
    /// Estimated tokens.
    pub tokens: u64,
    /// Number of items when the value is an array.
    pub items: Option<usize>,
}

impl CountedTokens {
    /// True for a non-empty array.
    pub fn is_non_empty_array(&self) -> bool {
        self.items.is_some_and(|n| n > 0)
    }
}

impl<'de> Deserialize<'de> for CountedTokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountingVisitor)
    }
}

struct CountingVisitor;

impl CountingVisitor {
    fn scalar<E>(self) -> Result<CountedTokens, E> {
        Ok(CountedTokens::default())
    }
}

impl<'de> Visitor<'de> for CountingVisitor {
    type Value = CountedTokens;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<CountedTokens, E> {
        Ok(CountedTokens {
            tokens: estimate_tokens(text),
            items: None,
        })
    }

    fn visit_bool<E>(self, _: bool) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_i64<E>(self, _: i64) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_u64<E>(self, _: u64) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_f64<E>(self, _: f64) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_unit<E>(self) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_none<E>(self) -> Result<CountedTokens, E> {
        self.scalar()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<CountedTokens, D::Error> {
        CountedTokens::deserialize(inner)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CountedTokens, A::Error> {
        let (mut tokens, mut items) = (0, 0);
        while let Some(item) = seq.next_element::<CountedTokens>()? {
            tokens += item.tokens;
            items += 1;
        }
        Ok(CountedTokens {
            tokens,
            items: Some(items),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CountedTokens, A::Error> {
        let mut tokens = 0;
        while let Some(counted) = map.next_key::<CountedMember>()? {
            if counted.0 {
                tokens += map.next_value::<CountedTokens>()?.tokens;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(CountedTokens {
            tokens,
            items: None,
        })
    }
}

/// An object member name: true when its value counts towards the prompt.
struct CountedMember(bool);

impl<'de> Deserialize<'de> for CountedMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = CountedMember;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<CountedMember, E> {
                Ok(CountedMember(matches!(
                    name,
                    "content" | "text" | "system" | "input"
                )))
            }
        }
        deserializer.deserialize_str(NameVisitor)
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
    let mut text = Vec::with_capacity(count as usize * 7);
    write_generated(&mut text, start, count);
    String::from_utf8(text).unwrap_or_default()
}

/// Append the text of [`generate`] to `out` (words need no JSON escaping, so bodies splice them in as is).
pub fn write_generated(out: &mut Vec<u8>, start: u64, count: u32) {
    (0..count).for_each(|index| out.extend_from_slice(token(start, index).as_bytes()));
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
    fn counting_while_parsing_equals_counting_a_value() {
        let cases = [
            r#"[{"role":"system","content":"abcdefgh"},{"role":"user","content":[{"type":"text","text":"abcd"}]}]"#,
            r#"[{"role":"user","content":"esc\"aped \u00e9 text","name":"ignored words here"}]"#,
            r#"[{"role":"user","content":null,"tool_calls":[{"function":{"arguments":"{}"}}]}, 7, true]"#,
            r#""just a string""#,
            r#"{"input":["a","bbbbbbbbb"],"other":{"content":"not counted"}}"#,
            r#"[]"#,
            r#"42"#,
        ];
        for json in cases {
            let value: Value = serde_json::from_str(json).unwrap();
            let counted: CountedTokens = serde_json::from_str(json).unwrap();
            assert_eq!(counted.tokens, estimate_value_tokens(&value), "{json}");
            assert_eq!(counted.items, value.as_array().map(Vec::len), "{json}");
        }
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
