//! `fit.json`: pretty JSON of a [`FitReport`].
//!
//! JSON has no NaN or infinity. serde_json writes a non-finite `f64` as
//! `null`; a plain read would then fail on that `null`. [`read_fit_json`]
//! therefore reads every `f64` through [`NanTolerant`], which takes `null`
//! (and the strings `"NaN"`, `"inf"`, `"-inf"`, `"Infinity"`, `"-Infinity"`)
//! as non-finite values. `null` reads back as NaN, so an infinite value comes
//! back as NaN: the only loss in a write/read round trip.

use super::FitReport;
use anyhow::Context;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::path::Path;

/// Write `r` as pretty JSON with a trailing newline.
pub fn write_fit_json(path: &Path, r: &FitReport) -> anyhow::Result<()> {
    write_pretty(path, r)
}

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

/// Read a report written by [`write_fit_json`]. Errors name the file and,
/// for malformed content, the line and column.
pub fn read_fit_json(path: &Path) -> anyhow::Result<FitReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let r = parse_fit_json(&text).with_context(|| format!("parsing {}", path.display()))?;
    validate(&r).with_context(|| format!("{}: not a usable fit", path.display()))?;
    Ok(r)
}

/// Everything a reader of a fit.json relies on, checked in one place for
/// every reader (`predict`, `plot`): the same rules `fit` applies when it
/// writes one, so a hand-edited or foreign file is refused with a reason.
fn validate(r: &FitReport) -> anyhow::Result<()> {
    use crate::law::{LawKind, NP, PARAM_NAMES};
    let known = [LawKind::Looplm, LawKind::Chinchilla];
    if !known.iter().any(|k| k.name() == r.law) {
        anyhow::bail!(
            "unknown law '{}' (known: {})",
            r.law,
            known.map(|k| k.name()).join(", ")
        );
    }
    for name in PARAM_NAMES {
        match r.params.get(name) {
            None => anyhow::bail!("parameter {name} is missing"),
            Some(v) if !v.is_finite() => {
                anyhow::bail!("parameter {name} is not finite (null, NaN or infinite)")
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = r.params.keys().find(|k| !PARAM_NAMES.contains(&k.as_str())) {
        anyhow::bail!(
            "unknown parameter {extra} (the {} law has {})",
            r.law,
            PARAM_NAMES.join(", ")
        );
    }
    for (i, c) in r.metrics.per_config.iter().enumerate() {
        if !(c.n > 0.0 && c.n.is_finite() && c.t > 0.0 && c.t.is_finite()) {
            anyhow::bail!(
                "metrics.per_config[{i}] has N = {} and T = {}; both must be positive",
                c.n,
                c.t
            );
        }
    }
    if let Some(b) = &r.bootstrap {
        validate_bootstrap(b, "bootstrap", NP)?;
    }
    Ok(())
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

fn parse_fit_json(text: &str) -> Result<FitReport, serde_json::Error> {
    parse_json(text)
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
    use crate::report::{BackendReport, ConfigMetrics, Metrics, ObjectiveReport, StartsReport};
    use indexmap::IndexMap;

    fn sample() -> FitReport {
        let mut params = IndexMap::new();
        for (k, v) in [
            ("E", 1.8),
            ("A", 268.123456789),
            ("alpha", 0.3),
            ("t1", 1.0e7),
            ("B", 2018.0),
            ("beta", 0.35),
            ("t2", 1.06e7),
            ("C", 0.675),
            ("gamma", 1.0),
            ("t3", 0.5),
        ] {
            params.insert(k.to_string(), v);
        }
        let mut status_counts = IndexMap::new();
        status_counts.insert("converged".to_string(), 30);
        status_counts.insert("max_iter".to_string(), 2);
        FitReport {
            law: "looplm".into(),
            formula: "E + A/(N + t1)^alpha + B/(D + t2)^beta + C/(T + t3)^gamma".into(),
            params,
            fixed: vec!["t1".into()],
            objective: ObjectiveReport {
                loss: "huber".into(),
                space: "log".into(),
                delta: 1e-3,
                value: 1.2345678901234e-7,
            },
            metrics: Metrics {
                r2: 0.998765,
                rmse: 0.0201,
                mae: 0.016,
                mape: 0.52,
                log: None,
                per_config: vec![ConfigMetrics {
                    run: "looplm-53M".into(),
                    n: 53e6,
                    t: 1.0,
                    points: 500,
                    tokens_min: 0.0,
                    tokens_max: 2e10,
                    r2: 0.99,
                    rmse: 0.02,
                    mape: 0.5,
                }],
            },
            starts: StartsReport {
                count: 32,
                at_best: 20,
                status_counts,
                iterations: 412,
                evaluations: 500,
                start_evaluations: 9000,
            },
            backend: BackendReport {
                kind: "cpu".into(),
                device: "16 threads".into(),
            },
            seconds: 1.25,
            points: 500,
            configs: 1,
            notes: vec!["t1 fixed at 1e7".into()],
            polish: None,
            identifiability: None,
            profile: None,
            bootstrap: None,
        }
    }

    #[test]
    fn finite_report_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.json");
        let r = sample();
        write_fit_json(&path, &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\n  \"law\": \"looplm\""), "pretty-printed");
        assert!(text.contains("\"N\": 53000000"));
        assert_eq!(read_fit_json(&path).unwrap(), r);
    }

    #[test]
    fn non_finite_values_read_back_as_nan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.json");
        let mut r = sample();
        r.metrics.per_config[0].r2 = f64::NAN;
        r.objective.delta = f64::INFINITY;
        write_fit_json(&path, &r).unwrap();
        let back = read_fit_json(&path).unwrap();
        assert!(back.metrics.per_config[0].r2.is_nan());
        assert!(back.objective.delta.is_nan());
        // Everything else is untouched.
        let mut fixed = back.clone();
        fixed.metrics.per_config[0].r2 = 0.99;
        fixed.objective.delta = 1e-3;
        assert_eq!(fixed, sample());
    }

    #[test]
    fn non_finite_strings_are_accepted() {
        let text = serde_json::to_string(&sample()).unwrap();
        let text = text.replace("\"seconds\":1.25", "\"seconds\":\"-inf\"");
        assert!(text.contains("\"-inf\""));
        let r = parse_fit_json(&text).unwrap();
        assert_eq!(r.seconds, f64::NEG_INFINITY);
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        let text = serde_json::to_string_pretty(&sample()).unwrap();
        let text = text.replace("\"points\": 500", "\"points\": \"many\"");
        std::fs::write(&path, text).unwrap();
        let msg = format!("{:#}", read_fit_json(&path).unwrap_err());
        assert!(msg.contains("broken.json"), "{msg}");
        assert!(msg.contains("line") && msg.contains("column"), "{msg}");

        let missing = dir.path().join("missing.json");
        let msg = format!("{:#}", read_fit_json(&missing).unwrap_err());
        assert!(msg.contains("missing.json"), "{msg}");
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let text = serde_json::to_string(&sample()).unwrap() + " x";
        assert!(parse_fit_json(&text).is_err());
    }

    fn read_error(r: &FitReport) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.json");
        write_fit_json(&path, r).unwrap();
        format!("{:#}", read_fit_json(&path).unwrap_err())
    }

    #[test]
    fn every_reader_gets_a_validated_fit() {
        let mut r = sample();
        r.params.insert("A".into(), f64::INFINITY);
        let e = read_error(&r);
        assert!(
            e.contains("fit.json: not a usable fit") && e.contains("parameter A"),
            "{e}"
        );

        let mut r = sample();
        r.params.shift_remove("beta");
        assert!(read_error(&r).contains("parameter beta is missing"));

        let mut r = sample();
        r.law = "kaplan".into();
        assert!(read_error(&r).contains("unknown law 'kaplan'"));

        let mut r = sample();
        r.metrics.per_config[0].n = 0.0;
        assert!(read_error(&r).contains("per_config[0]"));

        let mut r = sample();
        r.bootstrap = Some(crate::report::BootstrapReport {
            seed: 0,
            level: 1.5,
            seconds: 0.0,
            resamples: vec![],
            notes: vec![],
        });
        assert!(read_error(&r).contains("bootstrap.level is 1.5"));

        let mut b = r.bootstrap.clone().unwrap();
        b.level = 0.95;
        b.resamples.push(crate::report::ResampleReport {
            kind: "curves".into(),
            replicates: 2,
            converged: 2,
            converged_fraction: 1.0,
            used: 2,
            params: Default::default(),
            samples: vec![vec![1.0; 10], vec![1.0; 9]],
        });
        r.bootstrap = Some(b);
        assert!(read_error(&r).contains("has 9 values"));
    }
}
