//! `laws`: list the built-in laws, or print one's law file.

use anyhow::bail;
use clap::Args;

use super::term::say;
use sweepfit::law::{builtin, builtin_law, builtin_names, DEFAULT_LAW};

#[derive(Args)]
pub(crate) struct LawsArgs {
    /// A built-in law: print its law file (TOML) as it is built in.
    name: Option<String>,
}

pub(crate) fn cmd_laws(a: LawsArgs) -> anyhow::Result<()> {
    match a.name {
        Some(name) => print_file(&name),
        None => {
            list();
            Ok(())
        }
    }
}

fn print_file(name: &str) -> anyhow::Result<()> {
    let Some(text) = builtin(name) else {
        bail!(
            "no built-in law is called {name:?}; the built-in laws are {}",
            builtin_names().join(", ")
        );
    };
    // The text as is (it ends with its own newline).
    say!("{}", text.strip_suffix('\n').unwrap_or(text));
    Ok(())
}

/// Name and formula on one line, the defs it uses below, then the
/// description: formulas are too long for a column of their own.
fn list() {
    let width = builtin_names().iter().map(|n| n.len()).max().unwrap_or(0) + 2;
    let indent = " ".repeat(width);
    for (i, &name) in builtin_names().iter().enumerate() {
        let law = builtin_law(name).expect("a listed name is built in");
        if i > 0 {
            say!();
        }
        say!("{name:width$}{}", law.formula);
        for (def, expr) in &law.defs {
            say!("{indent}  {def} = {expr}");
        }
        let default = if name == DEFAULT_LAW {
            " (default)"
        } else {
            ""
        };
        say!("{indent}{}{default}", law.description);
    }
    say!();
    say!("sweepfit laws NAME prints a law's file to start your own from, e.g. sweepfit laws moe > my-law.toml");
    say!("sweepfit fit DATA.csv --law NAME (or --law-file FILE, or --law 'FORMULA') fits one");
}
