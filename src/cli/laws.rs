//! `laws`: list the built-in laws, print one's law file, or show what a
//! law compiles to: its evaluation plan and its GPU kernels.

use anyhow::Context;
use clap::Args;

use super::args::law_source;
use super::term::say;
use sweepfit::backend::gpu::{gauss_newton_kernel, kernel, Layout};
use sweepfit::law::plan::Plan;
use sweepfit::law::{builtin, builtin_law, builtin_names, DEFAULT_LAW};

#[derive(Args)]
pub(crate) struct LawsArgs {
    /// A built-in law: print its law file (TOML) as it is built in. A law
    /// file's path may stand here too: it is checked (errors name its line
    /// and column) and printed, or shown by --plan and --wgsl.
    name: Option<String>,
    /// Print the law's evaluation plan instead: every node of the law and
    /// of its derivatives, by where it runs (once per fit, per parameter
    /// vector, per curve, per distinct value of the axis variable, per
    /// point), for curves along the law's axis with its other variables
    /// constant along each curve.
    #[arg(long, requires = "name", conflicts_with = "wgsl")]
    plan: bool,
    /// Print the WGSL compute kernels generated for the law instead (the
    /// points layout, and the grid layout when the law has an axis, with
    /// the grid's Gauss-Newton kernel for a law separable along it), as
    /// the GPU backend runs them.
    #[arg(long, requires = "name")]
    wgsl: bool,
}

pub(crate) fn cmd_laws(a: LawsArgs) -> anyhow::Result<()> {
    match a.name {
        Some(name) if a.plan || a.wgsl => {
            say!("{}", compiled(&name, a.wgsl)?.trim_end());
            Ok(())
        }
        Some(name) => print_file(&name),
        None => {
            list();
            Ok(())
        }
    }
}

/// The plan (or with `wgsl`, the kernels) of the built-in law `name`, or
/// of the law file at that path.
pub(crate) fn compiled(name: &str, wgsl: bool) -> anyhow::Result<String> {
    let path = std::path::Path::new(name);
    let (file, _, origin) = match builtin(name) {
        Some(_) => law_source(Some(name), None)?,
        None if path.is_file() => law_source(None, Some(path))?,
        None => return Err(not_a_law(name)),
    };
    let law = file.compile(&origin)?;
    let axis = file
        .axis
        .as_ref()
        .and_then(|a| law.variables.iter().position(|v| v == a));
    let curve_vars = (0..law.variables.len())
        .filter(|&v| Some(v) != axis)
        .fold(0u64, |m, v| m | 1 << v);
    let plan = Plan::new(&law, curve_vars, axis.map(|a| a as u16));
    let along = match axis {
        Some(a) => format!("curves along {}", law.variables[a]),
        None => "no axis: every variable constant along each curve".to_string(),
    };
    if !wgsl {
        return Ok(format!(
            "law {}: {}\nplan for {along}\n{}",
            file.name,
            file.formula,
            plan.listing(&law)
        ));
    }
    let mut out = String::new();
    let layouts: &[Layout] = if axis.is_some() {
        &[Layout::Points, Layout::Grid]
    } else {
        &[Layout::Points]
    };
    for &layout in layouts {
        let k = kernel(&plan, layout)
            .with_context(|| format!("the {} of law {}", layout.describe(), file.name))?;
        out.push_str(&format!(
            "// law {}, {}, {along}\n{}\n",
            file.name,
            layout.describe(),
            k.source.trim_end()
        ));
    }
    // A law separable along its axis also has the grid's Gauss-Newton
    // kernel, which least squares runs.
    if axis.is_some() {
        if let Some(k) = gauss_newton_kernel(&plan)
            .with_context(|| format!("the Gauss-Newton kernel of law {}", file.name))?
        {
            out.push_str(&format!(
                "// law {}, {}, Gauss-Newton moments, {along}\n{}\n",
                file.name,
                Layout::Grid.describe(),
                k.source.trim_end()
            ));
        }
    }
    Ok(out)
}

/// Why `name` is neither a built-in law nor a law file: a name that reads
/// as a path is named as a missing file or a directory.
fn not_a_law(name: &str) -> anyhow::Error {
    let path = std::path::Path::new(name);
    let as_path = name.contains(['/', '\\']) || name.ends_with(".toml");
    if path.is_dir() {
        anyhow::anyhow!("{name} is a directory, not a law file")
    } else if as_path {
        anyhow::anyhow!("law file {name} not found")
    } else {
        anyhow::anyhow!(
            "no built-in law or law file is called {name:?}; the built-in laws are {}",
            builtin_names().join(", ")
        )
    }
}

fn print_file(name: &str) -> anyhow::Result<()> {
    let path = std::path::Path::new(name);
    let text = match builtin(name) {
        Some(text) => text.to_string(),
        // A law file of one's own: checked and compiled, errors naming
        // its line and column, then printed as it is.
        None if path.is_file() => {
            let (file, text, origin) = law_source(None, Some(path))?;
            file.compile(&origin)?;
            text
        }
        None => return Err(not_a_law(name)),
    };
    // The text as is (it ends with its own newline).
    say!("{}", text.strip_suffix('\n').unwrap_or(&text));
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
