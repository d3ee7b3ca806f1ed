//! Reproducible randomness under concurrency. Every random choice about a request — does a rule fire, how long
//! is the latency, which words are generated — comes from an RNG derived only from
//! `(seed, key id, route, per-key-per-route request index)`. Two runs that send each key the same sequence of
//! requests therefore get the same faults and delays however the requests interleave across keys.

use crate::route::Route;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Identity of one request for the purpose of random draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSeed {
    mixed: u64,
}

/// Independent random streams drawn for one request, so adding a draw to one purpose never shifts another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Response latency, TTFT and inter-token delays.
    Latency,
    /// Generated text.
    Text,
    /// Fault-rule probability draws (the rule is identified separately).
    Rule,
    /// Parameters of an injected fault (e.g. its extra latency).
    Fault,
}

impl RequestSeed {
    /// Derive the seed of the `index`-th request (0-based) of key `key_id` on `route`.
    pub fn new(seed: u64, key_id: &str, route: Route, index: u64) -> Self {
        let mut hash = fnv1a(FNV_OFFSET, &seed.to_le_bytes());
        hash = fnv1a(hash, key_id.as_bytes());
        hash = fnv1a(hash, &[0xff, route.index() as u8]);
        hash = fnv1a(hash, &index.to_le_bytes());
        RequestSeed {
            mixed: splitmix64(hash),
        }
    }

    /// An RNG for one purpose of this request.
    pub fn rng(&self, purpose: Purpose) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.mixed);
        rng.set_stream(purpose as u64);
        rng
    }

    /// A uniform draw in [0, 1) for the rule identified by `rule_id`, independent of every other rule.
    pub fn rule_draw(&self, rule_id: &str) -> f64 {
        let hash = splitmix64(fnv1a(
            self.mixed ^ (Purpose::Rule as u64),
            rule_id.as_bytes(),
        ));
        (hash >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A 64-bit value for cheap deterministic choices (e.g. where generated text starts).
    pub fn value(&self) -> u64 {
        self.mixed
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// SplitMix64 finaliser: spreads FNV's weak low bits over the whole word.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn each_input_changes_the_seed() {
        let base = RequestSeed::new(1, "k1", Route::ChatCompletions, 0);
        let variants = [
            RequestSeed::new(2, "k1", Route::ChatCompletions, 0),
            RequestSeed::new(1, "k2", Route::ChatCompletions, 0),
            RequestSeed::new(1, "k1", Route::Messages, 0),
            RequestSeed::new(1, "k1", Route::ChatCompletions, 1),
        ];
        for variant in variants {
            assert_ne!(base, variant);
        }
        assert_eq!(base, RequestSeed::new(1, "k1", Route::ChatCompletions, 0));
    }

    #[test]
    fn purposes_and_rules_are_independent_streams() {
        let seed = RequestSeed::new(9, "k", Route::Embeddings, 3);
        let latency: u64 = seed.rng(Purpose::Latency).random();
        let text: u64 = seed.rng(Purpose::Text).random();
        assert_ne!(latency, text);
        assert_ne!(seed.rule_draw("a"), seed.rule_draw("b"));
        assert_eq!(seed.rule_draw("a"), seed.rule_draw("a"));
    }

    #[test]
    fn rule_draws_are_uniform_enough() {
        let hits = (0..10_000)
            .filter(|i| RequestSeed::new(5, "k", Route::ChatCompletions, *i).rule_draw("r") < 0.3)
            .count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
