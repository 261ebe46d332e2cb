//! Which keys are valid where, for the hint on an unknown key ("did you mean
//! `weight`?"). The key lists come from the raw serde types themselves, so
//! they cannot drift from what the parser accepts.

use serde::de::{self, Deserialize, Visitor};

use super::path::{Seg, YamlPath};
use super::raw::*;

/// The field names serde would accept for `T`.
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Catch<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Catch<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("caught"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Catch(&mut fields));
    fields
}

/// The keys allowed in the mapping at `parent`, if it is a known mapping.
pub fn known_keys(parent: &YamlPath) -> Option<&'static [&'static str]> {
    // Names under `listeners` and `upstreams` are the operator's; indices are
    // positions. Reduce the path to its shape before matching.
    let shape: Vec<&str> = parent
        .0
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Seg::Index(_) => "[]",
            Seg::Key(_) if i == 1 && matches!(&parent.0[0], Seg::Key(k) if k == "listeners" || k == "upstreams") => "*",
            Seg::Key(k) => k.as_str(),
        })
        .collect();
    Some(match shape.as_slice() {
        [] => fields_of::<RawConfig>(),
        ["server"] => fields_of::<RawServer>(),
        ["admin"] => fields_of::<RawAdmin>(),
        ["server", "request_id"] => fields_of::<RawRequestId>(),
        ["listeners", "*"] => fields_of::<RawListener>(),
        ["listeners", "*", "tls"] => fields_of::<RawTls>(),
        ["listeners", "*", "tls", "sni", "[]"] => fields_of::<RawSniCert>(),
        ["upstreams", "*", "tls"] => fields_of::<RawUpstreamTlsSettings>(),
        ["listeners", "*", "routes", "[]"] => fields_of::<RawRoute>(),
        ["listeners", "*", "routes", "[]", "rate_limit"] => fields_of::<RawRateLimit>(),
        ["listeners", "*", "routes", "[]", "sticky"] => fields_of::<RawSticky>(),
        ["listeners", "*", "routes", "[]", "redirect"] => fields_of::<RawRedirect>(),
        ["listeners", "*", "routes", "[]", "request_headers" | "response_headers"] => {
            fields_of::<RawHeaderRules>()
        }
        ["listeners", "*", "routes", "[]", "compress"] => fields_of::<RawCompress>(),
        ["upstreams", "*"] => fields_of::<RawUpstream>(),
        ["upstreams", "*", "backends", "[]"] => fields_of::<RawBackend>(),
        ["upstreams", "*", "health_check"] => fields_of::<RawHealthCheck>(),
        ["upstreams", "*", "circuit_breaker"] => fields_of::<RawCircuitBreaker>(),
        ["upstreams", "*", "queue"] => fields_of::<RawQueue>(),
        ["upstreams", "*", "outlier_detection"] => fields_of::<RawOutlierDetection>(),
        _ => return None,
    })
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_raw_types() {
        let keys = known_keys(&YamlPath::parse("upstreams.api.backends[3]")).unwrap();
        assert_eq!(keys, &["addr", "weight", "max_conns"]);
        let keys = known_keys(&YamlPath::parse("upstreams.x.health_check")).unwrap();
        assert!(keys.contains(&"type"));
        assert!(known_keys(&YamlPath::parse("nowhere.at.all")).is_none());
    }

    #[test]
    fn suggests_typos_only() {
        assert_eq!(closest("wieght", &["addr", "weight"]), Some("weight"));
        assert_eq!(closest("polcy", &["policy", "backends"]), Some("policy"));
        assert_eq!(closest("zzzzzz", &["addr", "weight"]), None);
    }
}
