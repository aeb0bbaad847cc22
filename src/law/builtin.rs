//! The built-in laws: law files under laws/ at the repository root,
//! compiled in. Nothing about a law is written anywhere but its file.

use super::file::LawFile;

/// Lists the names once; each is the stem of its file under laws/, so a
/// name and its file cannot disagree.
macro_rules! builtins {
    ($($name:literal),+ $(,)?) => {
        const NAMES: &[&str] = &[$($name),+];
        const TEXTS: &[&str] = &[$(include_str!(concat!("../../laws/", $name, ".toml"))),+];
    };
}

// In the order `sweepfit laws` lists them: the default first.
builtins!(
    "looplm",
    "looplm-total",
    "chinchilla",
    "kaplan",
    "data-constrained",
    "moe",
    "vocab",
    "rectified",
    "multi-power",
    "lr-annealing",
);

/// The law fitted when none is named.
pub const DEFAULT_LAW: &str = "looplm";

/// The names of the built-in laws, the default first.
pub fn builtin_names() -> &'static [&'static str] {
    NAMES
}

/// The text of a built-in law file, exactly as under laws/.
pub fn builtin(name: &str) -> Option<&'static str> {
    NAMES.iter().position(|&n| n == name).map(|i| TEXTS[i])
}

/// A built-in law, parsed. Every built-in parses (tests/laws.rs).
pub fn builtin_law(name: &str) -> Option<LawFile> {
    let text = builtin(name)?;
    let origin = format!("laws/{name}.toml (built in)");
    Some(LawFile::parse(text, &origin).unwrap_or_else(|e| panic!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_under_its_own_name() {
        assert_eq!(NAMES.len(), TEXTS.len());
        for &name in builtin_names() {
            assert_eq!(builtin_law(name).unwrap().name, name);
        }
        assert!(builtin("no-such-law").is_none() && builtin_law("no-such-law").is_none());
        assert_eq!(builtin_names()[0], DEFAULT_LAW);
    }
}
