//! `pred.csv`: every point with the fitted law's prediction.

use crate::{
    data::Dataset,
    law::{predict_raw, NP},
};
use std::path::Path;

/// Write one row per point: `run,N,T,tokens,loss,pred,residual`, curves in
/// dataset order. `residual = pred - loss` (the sign the objective uses), so
/// a positive residual means the law over-predicts the loss. Floats use
/// Rust's shortest representation that parses back to the same `f64`.
pub fn write_pred_csv(path: &Path, ds: &Dataset, params: &[f64; NP]) -> anyhow::Result<()> {
    crate::output::write_file(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(["run", "N", "T", "tokens", "loss", "pred", "residual"])?;
        for c in &ds.configs {
            let (n, t) = (c.n.to_string(), c.t.to_string());
            for i in c.range() {
                let (d, y) = (ds.tokens[i], ds.loss[i]);
                let p = predict_raw(params, c.n, d, c.t);
                w.write_record([
                    c.run.as_str(),
                    &n,
                    &t,
                    &d.to_string(),
                    &y.to_string(),
                    &p.to_string(),
                    &(p - y).to_string(),
                ])?;
            }
        }
        w.flush()?;
        Ok(())
    })
}

/// `pred.csv` of a law fitted from a table: every row of the input, its
/// columns as read, then `pred`, `residual` (pred - loss) and `set`
/// (`fit` or `test`, the rows `--test-where` held out).
pub fn write_table_pred_csv(
    path: &Path,
    table: &crate::data::Table,
    loss: &[f64],
    pred: &[f64],
    held_out: &[bool],
) -> anyhow::Result<()> {
    crate::output::write_file(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = table.headers.iter().map(String::as_str).collect();
        header.extend(["pred", "residual", "set"]);
        w.write_record(&header)?;
        for r in 0..table.rows() {
            let mut row: Vec<String> = table.columns.iter().map(|c| c[r].clone()).collect();
            row.push(pred[r].to_string());
            row.push((pred[r] - loss[r]).to_string());
            row.push(if held_out[r] { "test" } else { "fit" }.to_string());
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Row;

    const P: [f64; NP] = [1.8, 268.0, 0.30, 1e7, 2018.0, 0.35, 1.06e7, 0.675, 1.0, 0.5];

    #[test]
    fn rows_round_trip_and_residual_is_pred_minus_loss() {
        let mut rows = Vec::new();
        for (run, n, t) in [("a,b", 53e6, 1.0), ("c", 1.36e9, 2.5)] {
            for k in 0..3 {
                let tokens = 1.0e9 * k as f64 + 0.1;
                rows.push(Row {
                    run: run.into(),
                    n,
                    t,
                    tokens,
                    loss: 3.0 + 0.1 * k as f64,
                    weight: 1.0,
                });
            }
        }
        let ds = Dataset::from_rows(rows);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.csv");
        write_pred_csv(&path, &ds, &P).unwrap();

        let mut r = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            ["run", "N", "T", "tokens", "loss", "pred", "residual"]
        );
        let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(recs.len(), ds.points());
        let mut i = 0;
        for c in &ds.configs {
            for j in c.range() {
                let rec = &recs[i];
                let f = |k: usize| rec[k].parse::<f64>().unwrap();
                assert_eq!(&rec[0], c.run);
                assert_eq!(
                    (f(1), f(2), f(3), f(4)),
                    (c.n, c.t, ds.tokens[j], ds.loss[j])
                );
                let pred = predict_raw(&P, c.n, ds.tokens[j], c.t);
                assert_eq!(f(5), pred);
                assert_eq!(f(6), pred - ds.loss[j]);
                i += 1;
            }
        }
    }

    #[test]
    fn error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("pred.csv");
        let msg = format!(
            "{:#}",
            write_pred_csv(&path, &Dataset::default(), &P).unwrap_err()
        );
        assert!(msg.contains("pred.csv"), "{msg}");
    }
}
