//! `pred.csv`: every point with the fitted law's prediction.

use std::path::Path;

/// `pred.csv` of a law fitted from a table: every row of the input, its
/// columns as read (but `skip`), then `pred`, `residual` (pred - loss)
/// and `set` (`fit` or `test`, the rows `--test-where` held out). Input
/// columns of those names (a pred.csv fitted again) are replaced: two
/// columns of one name would be read as the old one.
pub fn write_table_pred_csv(
    path: &Path,
    table: &crate::data::Table,
    loss: &[f64],
    pred: &[f64],
    held_out: &[bool],
    skip: Option<usize>,
) -> anyhow::Result<()> {
    const ADDED: [&str; 3] = ["pred", "residual", "set"];
    let kept: Vec<usize> = (0..table.headers.len())
        .filter(|&c| Some(c) != skip && !ADDED.contains(&table.headers[c].as_str()))
        .collect();
    crate::output::write_file(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = kept.iter().map(|&c| table.headers[c].as_str()).collect();
        header.extend(ADDED);
        w.write_record(&header)?;
        for r in 0..table.rows() {
            let mut row: Vec<String> = kept
                .iter()
                .map(|&c| table.columns[c][r].to_string())
                .collect();
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

    #[test]
    fn rows_keep_their_columns_and_residual_is_pred_minus_loss() {
        let table = crate::data::Table {
            path: "t.csv".into(),
            headers: vec!["run".into(), "x".into(), "loss".into()],
            columns: vec![
                vec!["a,b", "c"].into(),
                vec!["1", "2"].into(),
                vec!["3", "2.5"].into(),
            ],
            lines: vec![2, 3],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pred.csv");
        write_table_pred_csv(
            &path,
            &table,
            &[3.0, 2.5],
            &[3.25, 2.0],
            &[false, true],
            None,
        )
        .unwrap();
        let mut r = csv::Reader::from_path(&path).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, ["run", "x", "loss", "pred", "residual", "set"]);
        let recs: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(&recs[0][0], "a,b");
        assert_eq!(
            (&recs[0][3], &recs[0][4], &recs[0][5]),
            ("3.25", "0.25", "fit")
        );
        assert_eq!(
            (&recs[1][3], &recs[1][4], &recs[1][5]),
            ("2", "-0.5", "test")
        );
    }

    #[test]
    fn error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("pred.csv");
        let table = crate::data::Table {
            path: "t.csv".into(),
            headers: vec![],
            columns: vec![],
            lines: vec![],
            in_memory: false,
            filled: vec![],
            notes: vec![],
        };
        let msg = format!(
            "{:#}",
            write_table_pred_csv(&path, &table, &[], &[], &[], None).unwrap_err()
        );
        assert!(msg.contains("pred.csv"), "{msg}");
    }
}
