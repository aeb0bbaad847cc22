//! The hold-out protocols hold out exactly the rows they should. Every
//! expectation here is computed from the raw dataset (sizes, steps, token
//! counts), independently of how `eval` builds its folds.

use std::collections::BTreeSet;
use std::path::Path;

use sweepfit::data::{Dataset, Row, Table};
use sweepfit::law::{builtin, LawFile};
use sweepfit::lawfit::{self, BindOptions, LawEvalOptions, LawFitOptions, Protocol};
use sweepfit::simulate::{simulate_looplm20, SimOptions};

fn looplm20() -> Dataset {
    simulate_looplm20(&SimOptions {
        points_per_curve: 41,
        ..SimOptions::default()
    })
}

fn opts(protocols: Option<Vec<Protocol>>) -> LawEvalOptions {
    LawEvalOptions {
        protocols,
        train_sizes: 3,
        fractions: vec![0.25, 0.5, 0.75],
        leave: "T".into(),
        lenient: false,
    }
}

fn only(p: Protocol) -> LawEvalOptions {
    opts(Some(vec![p]))
}

/// Per fold, its label and held-out rows.
type Folds = Vec<(String, Vec<usize>)>;

/// `eval` of the looplm law on `ds` (rows in the dataset's order) with
/// one short start per fold: the folds' held-out rows (as row indices)
/// and labels, and the report's notes.
fn folds(ds: &Dataset, eo: &LawEvalOptions) -> anyhow::Result<(Folds, Vec<String>)> {
    let text = builtin("looplm").unwrap();
    let mut table = Table::from_dataset(ds, Path::new("sweep"));
    let file = LawFile::parse(text, "looplm")?;
    let b = lawfit::bind(file, text, "looplm", &mut table, &BindOptions::default())?;
    let mut fit = LawFitOptions {
        starts: 1,
        ..LawFitOptions::default()
    };
    fit.lbfgs.max_iter = 3;
    let out = lawfit::evaluate(&b, &table, &fit, eo, |_| {})?;
    let folds = out
        .report
        .folds
        .iter()
        .zip(&out.held_out)
        .map(|(f, h)| {
            let rows = (0..h.len()).filter(|&r| h[r]).collect();
            (f.fold.clone(), rows)
        })
        .collect();
    Ok((folds, out.report.notes.clone()))
}

/// N and T of every point.
fn point_nt(ds: &Dataset) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); ds.points()];
    for c in &ds.configs {
        for i in c.range() {
            out[i] = (c.n, c.t);
        }
    }
    out
}

#[test]
fn sizes_folds_are_every_three_of_five_and_hold_out_the_other_two_sizes() {
    let ds = looplm20();
    let nt = point_nt(&ds);
    let (fs, _) = folds(&ds, &only(Protocol::Sizes)).unwrap();
    assert_eq!(fs.len(), 10);
    let mut train_sets = BTreeSet::new();
    for (label, held) in &fs {
        let held: BTreeSet<usize> = held.iter().copied().collect();
        let held_sizes: BTreeSet<u64> = held.iter().map(|&i| nt[i].0 as u64).collect();
        let train_sizes: BTreeSet<u64> = (0..ds.points())
            .filter(|i| !held.contains(i))
            .map(|i| nt[i].0 as u64)
            .collect();
        assert_eq!(held_sizes.len(), 2, "{label}");
        assert_eq!(train_sizes.len(), 3, "{label}");
        assert!(held_sizes.is_disjoint(&train_sizes));
        // Held out is every point of the held-out sizes, all T included.
        let expected: BTreeSet<usize> = (0..ds.points())
            .filter(|&i| held_sizes.contains(&(nt[i].0 as u64)))
            .collect();
        assert_eq!(held, expected, "{label}");
        train_sets.insert(train_sizes);
    }
    assert_eq!(train_sets.len(), 10, "every 3-of-5 choice exactly once");
}

#[test]
fn token_folds_hold_out_each_curves_tail_beyond_the_fraction() {
    let ds = looplm20();
    let (fs, _) = folds(&ds, &only(Protocol::Tokens)).unwrap();
    assert_eq!(fs.len(), 3);
    for ((label, held), frac) in fs.iter().zip([0.25, 0.5, 0.75]) {
        let mut expected = Vec::new();
        for c in &ds.configs {
            let max = c.range().map(|i| ds.tokens[i]).fold(0.0, f64::max);
            expected.extend(c.range().filter(|&i| ds.tokens[i] > frac * max));
        }
        assert_eq!(held, &expected, "{label}");
        // 41 points from 0 to 20B: the fraction's share, boundary included.
        let per_curve = 41 - (40.0 * frac) as usize - 1;
        assert_eq!(expected.len(), 20 * per_curve, "{label}");
    }
}

#[test]
fn token_folds_cut_each_curve_at_its_own_length() {
    // Two curves of different lengths: the cut is relative to each one.
    let mut rows = Vec::new();
    for (run, n, last) in [("a", 1e8, 10.0), ("b", 2e8, 100.0)] {
        for k in 0..=10 {
            rows.push(Row {
                run: run.into(),
                n,
                t: 1.0,
                tokens: last * k as f64 / 10.0,
                loss: 3.0 - 0.01 * k as f64,
                weight: 1.0,
            });
        }
    }
    let ds = Dataset::from_rows(rows);
    let eo = LawEvalOptions {
        fractions: vec![0.5],
        ..only(Protocol::Tokens)
    };
    let (fs, _) = folds(&ds, &eo).unwrap();
    // Curve a: tokens 6..10 of 0..10; curve b: 60..100 of 0..100.
    assert_eq!(fs[0].1, vec![6, 7, 8, 9, 10, 17, 18, 19, 20, 21]);
}

#[test]
fn leave_t_folds_hold_out_exactly_one_step() {
    let ds = looplm20();
    let nt = point_nt(&ds);
    let (fs, _) = folds(&ds, &only(Protocol::LeaveT)).unwrap();
    assert_eq!(fs.len(), 4);
    for ((label, held), t) in fs.iter().zip([1.0, 2.0, 3.0, 4.0]) {
        let expected: Vec<usize> = (0..ds.points()).filter(|&i| nt[i].1 == t).collect();
        assert_eq!(held, &expected, "{label}");
    }
}

#[test]
fn protocols_that_do_not_apply_are_skipped_with_a_note() {
    // Pythia's shape: four sizes, a single T.
    let mut rows = Vec::new();
    for n in [14e6, 70e6, 160e6, 410e6] {
        for k in 1..=20 {
            rows.push(Row {
                run: format!("{n}"),
                n,
                t: 1.0,
                tokens: k as f64 * 1e9,
                loss: 3.0 + 1e8 / n - 0.01 * k as f64,
                weight: 1.0,
            });
        }
    }
    let ds = Dataset::from_rows(rows);
    let (fs, notes) = folds(&ds, &opts(None)).unwrap();
    let count = |p: &str| fs.iter().filter(|f| f.0.starts_with(p)).count();
    assert_eq!(count("train N = "), 4, "3 of 4 sizes");
    assert_eq!(count("first "), 3);
    assert_eq!(count("leave out"), 0);
    assert!(
        notes.iter().any(|n| n.starts_with("leave-t: ")),
        "{notes:?}"
    );

    // Asked for explicitly, a protocol that does not apply is an error.
    let few = LawEvalOptions {
        train_sizes: 4,
        ..only(Protocol::Sizes)
    };
    let e = folds(&ds, &few).unwrap_err().to_string();
    assert!(e.starts_with("sizes: the data has 4 values of N"), "{e}");

    let bad = LawEvalOptions {
        fractions: vec![1.5],
        ..only(Protocol::Tokens)
    };
    assert!(folds(&ds, &bad).is_err());
}

/// A fold trained on one size holds N at one value: the term in N is a
/// constant there, so its coefficient is fixed at 0 for that fold (as
/// `fit` on those rows fixes it) and said so, rather than left free to
/// run away (A = 3e58 before) and extrapolate wildly to the other sizes.
#[test]
fn a_fold_that_holds_a_terms_variables_at_one_value_fixes_its_coefficient() {
    let ds = looplm20();
    let text = builtin("looplm").unwrap();
    let mut table = Table::from_dataset(&ds, Path::new("sweep"));
    let file = LawFile::parse(text, "looplm").unwrap();
    let b = lawfit::bind(file, text, "looplm", &mut table, &BindOptions::default()).unwrap();
    let fit = LawFitOptions {
        starts: 4,
        ..LawFitOptions::default()
    };
    let eo = LawEvalOptions {
        train_sizes: 1,
        ..only(Protocol::Sizes)
    };
    let out = lawfit::evaluate(&b, &table, &fit, &eo, |_| {}).unwrap();
    let r = &out.report;
    assert_eq!(r.folds.len(), 5, "one fold per size");
    // The fit on all rows keeps A free.
    assert!(r.full.params["A"] > 0.0, "{:?}", r.full.params);
    let losses = &ds.loss;
    let spread = losses.iter().cloned().fold(f64::MIN, f64::max)
        - losses.iter().cloned().fold(f64::MAX, f64::min);
    for f in &r.folds {
        assert_eq!(f.params["A"], 0.0, "fold {}: {:?}", f.fold, f.params);
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains(&format!("fold '{}'", f.fold)) && n.contains("fixed A = 0")),
            "fold {}: {:?}",
            f.fold,
            r.notes
        );
        // Wrong by less than the losses' whole spread.
        assert!(
            f.rmse < spread,
            "fold {}: RMSE {} (spread {spread})",
            f.fold,
            f.rmse
        );
    }
}
