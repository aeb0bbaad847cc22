//! `fit.json` and the other JSON sweepfit writes: pretty-printed, with
//! numbers that are not finite written as `null` and read back as NaN.
//!
//! JSON has no NaN or infinity. serde_json writes a non-finite `f64` as
//! `null`; a plain read would then fail on that `null`. [`parse_json`]
//! therefore reads every `f64` through [`NanTolerant`], which takes `null`
//! (and the strings `"NaN"`, `"inf"`, `"-inf"`, `"Infinity"`, `"-Infinity"`)
//! as non-finite values. `null` reads back as NaN, so an infinite value comes
//! back as NaN: the only loss in a write/read round trip.

use anyhow::Context;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::Path;

/// `value` as pretty JSON with a trailing newline, the form of every JSON
/// file sweepfit writes (NaN becomes null).
pub fn pretty_json<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    text.push('\n');
    Ok(text)
}

/// Write `value` to `path` as [`pretty_json`].
pub fn write_pretty<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    crate::output::write_bytes(path, pretty_json(value)?.as_bytes())
}

/// A fit.json's bootstrap section (at `field`, e.g. "groups[2].bootstrap")
/// as the writer makes it: a level strictly between 0 and 1, each scheme
/// named once and known, and one sample of `n` finite values per used
/// replicate. Prediction bands are computed from exactly these.
pub(crate) fn validate_bootstrap(
    b: &crate::report::BootstrapReport,
    field: &str,
    n: usize,
) -> anyhow::Result<()> {
    const KINDS: [&str; 2] = ["curves", "points"];
    if !(b.level > 0.0 && b.level < 1.0) {
        anyhow::bail!(
            "{field}.level is {}; it must lie strictly between 0 and 1",
            b.level
        );
    }
    for (i, rs) in b.resamples.iter().enumerate() {
        let at = format!("{field}.resamples[{i}]");
        if !KINDS.contains(&rs.kind.as_str()) {
            anyhow::bail!(
                "{at}.kind is '{}'; the schemes are {}",
                rs.kind,
                KINDS.join(", ")
            );
        }
        if b.resamples[..i].iter().any(|o| o.kind == rs.kind) {
            anyhow::bail!("{at}.kind '{}' appears twice", rs.kind);
        }
        if rs.samples.len() != rs.used || rs.used > rs.replicates {
            anyhow::bail!(
                "{at} ('{}') has {} samples for {} used of {} replicates; \
                 there is one sample per used replicate",
                rs.kind,
                rs.samples.len(),
                rs.used,
                rs.replicates
            );
        }
        for (j, s) in rs.samples.iter().enumerate() {
            if s.len() != n {
                anyhow::bail!(
                    "{at}.samples[{j}] ('{}') has {} values, not {n}",
                    rs.kind,
                    s.len()
                );
            }
            if s.iter().any(|v| !v.is_finite()) {
                anyhow::bail!(
                    "{at}.samples[{j}] ('{}') has a value that is not finite",
                    rs.kind
                );
            }
        }
    }
    Ok(())
}

/// Parse JSON written by sweepfit, where a number that is not finite
/// (an R² of one point) is written as `null`.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let r = T::deserialize(NanTolerant(&mut de))?;
    de.end()?;
    Ok(r)
}

/// Deserializer adapter: `f64`/`f32` requests accept `null` and a few
/// spellings of non-finite numbers; everything else is passed through, with
/// nested values wrapped again so the rule holds at any depth. Wrapping the
/// streaming deserializer (rather than going through `serde_json::Value`)
/// keeps serde_json's line/column in errors.
struct NanTolerant<D>(D);

/// Visitor/access wrapper that re-wraps nested deserializers.
struct Wrap<T>(T);

/// Visitor for a float that also takes unit and non-finite strings.
struct FloatVisitor<V>(V);

macro_rules! forward_wrapped {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                self.0.$method(Wrap(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for NanTolerant<D> {
    type Error = D::Error;

    forward_wrapped!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // serde_json's number path rejects null before calling the visitor,
        // so ask for "any" and sort it out in FloatVisitor.
        self.0.deserialize_any(FloatVisitor(visitor))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(FloatVisitor(visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // Enum payloads are not wrapped: the report has no enums with floats.
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.0.visit_bool(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.visit_i64(v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        self.0.visit_i128(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        self.0.visit_u128(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.visit_f64(v)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
        self.0.visit_char(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(v)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.0.visit_borrowed_str(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.0.visit_string(v)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.0.visit_bytes(v)
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.0.visit_borrowed_bytes(v)
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.0.visit_byte_buf(v)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }
    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.0.visit_some(NanTolerant(d))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }
    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.0.visit_newtype_struct(NanTolerant(d))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(data)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Wrap(seed))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<S> {
    type Value = S::Value;

    fn deserialize<D2: Deserializer<'de>>(self, d: D2) -> Result<S::Value, D2::Error> {
        self.0.deserialize(NanTolerant(d))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FloatVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(" (or null for a non-finite value)")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_f64(f64::NAN)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_f64(f64::NAN)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.visit_f64(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let x = match v {
            "NaN" | "nan" => f64::NAN,
            "inf" | "Infinity" | "+inf" => f64::INFINITY,
            "-inf" | "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        };
        self.0.visit_f64(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        value: f64,
        nested: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        r2: f64,
    }

    #[test]
    fn non_finite_numbers_read_back_as_they_were_written() {
        let text = r#"{"value": null, "nested": [{"r2": "-inf"}, {"r2": "NaN"}, {"r2": 0.5}]}"#;
        let s: Sample = parse_json(text).unwrap();
        assert!(s.value.is_nan());
        assert_eq!(s.nested[0].r2, f64::NEG_INFINITY);
        assert!(s.nested[1].r2.is_nan());
        assert_eq!(s.nested[2].r2, 0.5);
    }

    #[test]
    fn errors_give_the_position_and_trailing_garbage_is_rejected() {
        let e = parse_json::<Sample>("{\n\"value\": \"many\", \"nested\": []}").unwrap_err();
        assert_eq!(e.line(), 2, "{e}");
        assert!(parse_json::<Sample>(r#"{"value": 1, "nested": []} x"#).is_err());
    }
}
