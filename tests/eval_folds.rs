//! The hold-out protocols hold out exactly the points they should. Every
//! expectation here is computed from the raw dataset (sizes, steps, token
//! counts), independently of how folds encode them as weightings.

use std::collections::BTreeSet;

use sweepfit::data::{Dataset, Row};
use sweepfit::eval::{folds, EvalOptions, Protocol};
use sweepfit::simulate::{simulate_looplm20, SimOptions};

fn looplm20() -> Dataset {
    simulate_looplm20(&SimOptions {
        points_per_curve: 41,
        ..SimOptions::default()
    })
}

fn only(p: Protocol) -> EvalOptions {
    EvalOptions {
        protocols: vec![p],
        ..EvalOptions::default()
    }
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
    let (fs, notes) = folds(&ds, &only(Protocol::Sizes)).unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(fs.len(), 10);
    let mut train_sets = BTreeSet::new();
    for f in &fs {
        let held: BTreeSet<usize> = f.held_out(&ds).into_iter().collect();
        let held_sizes: BTreeSet<u64> = held.iter().map(|&i| nt[i].0 as u64).collect();
        let train_sizes: BTreeSet<u64> = (0..ds.points())
            .filter(|i| !held.contains(i))
            .map(|i| nt[i].0 as u64)
            .collect();
        assert_eq!(held_sizes.len(), 2, "{}", f.label);
        assert_eq!(train_sizes.len(), 3, "{}", f.label);
        assert!(held_sizes.is_disjoint(&train_sizes));
        // Held out is every point of the held-out sizes, all T included.
        let expected: BTreeSet<usize> = (0..ds.points())
            .filter(|&i| held_sizes.contains(&(nt[i].0 as u64)))
            .collect();
        assert_eq!(held, expected, "{}", f.label);
        assert_eq!(f.train_points(&ds) + held.len(), ds.points());
        train_sets.insert(train_sizes);
    }
    assert_eq!(train_sets.len(), 10, "every 3-of-5 choice exactly once");
}

#[test]
fn token_folds_hold_out_each_curves_tail_beyond_the_fraction() {
    let ds = looplm20();
    let (fs, _) = folds(&ds, &only(Protocol::Tokens)).unwrap();
    assert_eq!(fs.len(), 3);
    for (f, frac) in fs.iter().zip([0.25, 0.5, 0.75]) {
        let mut expected = Vec::new();
        for c in &ds.configs {
            let max = c.range().map(|i| ds.tokens[i]).fold(0.0, f64::max);
            expected.extend(c.range().filter(|&i| ds.tokens[i] > frac * max));
        }
        assert_eq!(f.held_out(&ds), expected, "{}", f.label);
        // 41 points from 0 to 20B: the fraction's share, boundary included.
        let per_curve = 41 - (40.0 * frac) as usize - 1;
        assert_eq!(expected.len(), 20 * per_curve, "{}", f.label);
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
                loss: 3.0,
                weight: 1.0,
            });
        }
    }
    let ds = Dataset::from_rows(rows);
    let opts = EvalOptions {
        protocols: vec![Protocol::Tokens],
        fractions: vec![0.5],
        ..EvalOptions::default()
    };
    let (fs, _) = folds(&ds, &opts).unwrap();
    // Curve a: tokens 6..10 of 0..10; curve b: 60..100 of 0..100.
    let held = fs[0].held_out(&ds);
    assert_eq!(held, vec![6, 7, 8, 9, 10, 17, 18, 19, 20, 21]);
}

#[test]
fn leave_t_folds_hold_out_exactly_one_step() {
    let ds = looplm20();
    let nt = point_nt(&ds);
    let (fs, _) = folds(&ds, &only(Protocol::LeaveT)).unwrap();
    assert_eq!(fs.len(), 4);
    for (f, t) in fs.iter().zip([1.0, 2.0, 3.0, 4.0]) {
        let expected: Vec<usize> = (0..ds.points()).filter(|&i| nt[i].1 == t).collect();
        assert_eq!(f.held_out(&ds), expected, "{}", f.label);
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
                loss: 3.0,
                weight: 1.0,
            });
        }
    }
    let ds = Dataset::from_rows(rows);
    let (fs, notes) = folds(&ds, &EvalOptions::default()).unwrap();
    let count = |p: Protocol| fs.iter().filter(|f| f.protocol == p).count();
    assert_eq!(count(Protocol::Sizes), 4, "3 of 4 sizes");
    assert_eq!(count(Protocol::Tokens), 3);
    assert_eq!(count(Protocol::LeaveT), 0);
    assert!(
        notes.iter().any(|n| n.starts_with("leave-t: skipped")),
        "{notes:?}"
    );

    let few = EvalOptions {
        protocols: vec![Protocol::Sizes],
        train_sizes: 4,
        ..EvalOptions::default()
    };
    let (fs, notes) = folds(&ds, &few).unwrap();
    assert!(fs.is_empty());
    assert!(notes[0].starts_with("sizes: skipped"), "{notes:?}");

    let bad = EvalOptions {
        protocols: vec![Protocol::Tokens],
        fractions: vec![1.5],
        ..EvalOptions::default()
    };
    assert!(folds(&ds, &bad).is_err());
}
