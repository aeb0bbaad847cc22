//! Lists of values as the command line writes them: `1e9`, `1,2,4`,
//! `1e9:40e9:100` (evenly spaced, both ends included), `1e8:1e10:9:log`
//! (log-spaced). `predict --at`, `--N`, `--T`, `--tokens` and
//! `simulate --at` read them.

/// Most values one axis, and most rows the whole grid, may have.
pub const MAX_ROWS: usize = 10_000_000;

/// Parse a comma list of numbers and ranges `START:STOP:COUNT[:lin|:log]`.
/// Numbers use standard float syntax (`2.8e9`, `4`, `0.5`; no `_`
/// separators) and must be finite; `reject` says why a value is not
/// admitted otherwise. COUNT is a whole number >= 1 (20, 1e3); COUNT 1
/// requires START == STOP. `log` spacing needs START and STOP > 0. Spaces
/// around items and fields are ignored. Errors are (offending item,
/// reason).
pub fn parse_list(
    text: &str,
    reject: impl Fn(f64) -> Option<String>,
) -> Result<Vec<f64>, (String, String)> {
    let err = |item: &str, reason: String| (item.to_string(), reason);
    if text.trim().is_empty() {
        return Err(err(text, "expected a number or START:STOP:COUNT".into()));
    }
    let mut values = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(text, "empty item in the comma list".into()));
        }
        let fields: Vec<&str> = item.split(':').map(str::trim).collect();
        let new = match fields.as_slice() {
            [v] => vec![number(v).map_err(|r| err(item, r))?],
            [start, stop, count] => range(start, stop, count, "lin").map_err(|r| err(item, r))?,
            [start, stop, count, spacing] => {
                range(start, stop, count, spacing).map_err(|r| err(item, r))?
            }
            _ => {
                return Err(err(
                    item,
                    "expected a number or START:STOP:COUNT[:lin|:log]".into(),
                ))
            }
        };
        if let Some(reason) = new.iter().find_map(|&v| reject(v)) {
            return Err(err(item, reason));
        }
        if values.len() + new.len() > MAX_ROWS {
            return Err(err(item, format!("more than {MAX_ROWS} values")));
        }
        values.extend(new);
    }
    Ok(values)
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number (standard float syntax, e.g. 2.8e9)"))?;
    if !v.is_finite() {
        return Err(format!("'{s}' is not a finite number"));
    }
    Ok(v)
}

/// `x` rounded to 15 significant digits: a grid value computed as
/// 1e3 * 10^(1/4 * 4) or 0.1 * 3 lands a bit or two off the decimal the user
/// meant (10000.00000000001, 0.30000000000000004), which would then be
/// printed in every row; 15 digits are far below any meaningful spacing.
fn tidy(x: f64) -> f64 {
    format!("{x:.14e}").parse().unwrap_or(x)
}

fn range(start: &str, stop: &str, count: &str, spacing: &str) -> Result<Vec<f64>, String> {
    let (a, b) = (number(start)?, number(stop)?);
    // A count may be written as any number that is whole: 20, 1e3, 100.0.
    let n: usize = match count.parse::<f64>() {
        Ok(c) if c >= 1.0 && c.fract() == 0.0 && c <= MAX_ROWS as f64 => c as usize,
        Ok(c) if c.fract() == 0.0 && c > MAX_ROWS as f64 => {
            return Err(format!("COUNT {count} is more than {MAX_ROWS}"))
        }
        _ => return Err(format!("COUNT '{count}' is not a whole number >= 1")),
    };
    if n > MAX_ROWS {
        return Err(format!("COUNT {n} is more than {MAX_ROWS}"));
    }
    let log = match spacing {
        "lin" => false,
        "log" => true,
        _ => return Err(format!("spacing '{spacing}' is neither lin nor log")),
    };
    if log && !(a > 0.0 && b > 0.0) {
        return Err("log spacing needs START > 0 and STOP > 0".into());
    }
    if n == 1 {
        if a != b {
            return Err("COUNT 1 needs START == STOP (give a single number instead)".into());
        }
        return Ok(vec![a]);
    }
    let last = (n - 1) as f64;
    // In decades: the powers of ten between decade ends come out exact
    // (1e8:1e10:5:log has 1e9, not 999999999.999999).
    let (la, lb) = (a.log10(), b.log10());
    let mut v: Vec<f64> = (0..n)
        .map(|k| {
            let f = k as f64 / last;
            tidy(if log {
                10f64.powf(la + f * (lb - la))
            } else {
                a + f * (b - a)
            })
        })
        .collect();
    // The ends are exactly START and STOP, whatever the rounding inside.
    v[0] = a;
    v[n - 1] = b;
    if v.iter().any(|x| !x.is_finite()) {
        return Err("the range overflows".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<f64> {
        parse_list(text, |_| None).unwrap()
    }

    /// The reason `text` is refused.
    fn reason(text: &str) -> String {
        parse_list(text, |_| None).expect_err(text).1
    }

    #[test]
    fn lists_of_numbers() {
        assert_eq!(ok("2.8e9"), [2.8e9]);
        assert_eq!(ok("1,2, 4 ,0.5"), [1.0, 2.0, 4.0, 0.5]);
        assert_eq!(ok("0,1e9"), [0.0, 1e9]);
        assert_eq!(ok("3,3"), [3.0, 3.0]);
        assert_eq!(ok("+5,.5,5."), [5.0, 0.5, 5.0]);
    }

    #[test]
    fn linear_ranges_include_both_ends() {
        assert_eq!(ok("0:1:5"), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(ok("1:4:4:lin"), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(ok("4:1:4"), [4.0, 3.0, 2.0, 1.0]);
        let v = ok("1e9:40e9:100");
        assert_eq!(v.len(), 100);
        assert_eq!((v[0], v[99]), (1e9, 40e9));
        let step = (40e9 - 1e9) / 99.0;
        for (k, x) in v.iter().enumerate() {
            assert!((x - (1e9 + step * k as f64)).abs() <= 1e-6 * step, "{k}");
        }
        assert_eq!(ok("7:7:1"), [7.0]);
        assert_eq!(ok("7:7:3"), [7.0; 3]);
    }

    #[test]
    fn grid_values_are_the_decimals_meant() {
        assert_eq!(ok("1e3:1e7:5:log"), [1e3, 1e4, 1e5, 1e6, 1e7]);
        assert_eq!(
            ok("0:1:11"),
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        );
        let v = ok("1e9:40e9:100");
        // At most 15 significant digits, none of them rounding noise.
        let digits = |x: &f64| {
            let m = format!("{x:e}");
            m[..m.find('e').unwrap()]
                .chars()
                .filter(char::is_ascii_digit)
                .count()
        };
        assert!(v.iter().all(|x| digits(x) <= 15), "{v:?}");
    }

    #[test]
    fn log_ranges_are_geometric() {
        let v = ok("1e6:1e9:4:log");
        assert_eq!(v.len(), 4);
        assert_eq!((v[0], v[3]), (1e6, 1e9));
        assert!(
            (v[1] - 1e7).abs() < 1e-6 && (v[2] - 1e8).abs() < 1e-5,
            "{v:?}"
        );
        assert_eq!(ok("1e8:1e10:5:log")[2], 1e9);
        let v = ok(" 1e8 : 1e10 : 3 : log ");
        assert_eq!(v[0], 1e8);
        assert!((v[1] - 1e9).abs() < 1e-4);
        assert_eq!(v[2], 1e10);
    }

    #[test]
    fn lists_mix_numbers_and_ranges_in_order() {
        assert_eq!(ok("8,1:3:3,0.5:0.5:1"), [8.0, 1.0, 2.0, 3.0, 0.5]);
    }

    #[test]
    fn a_count_is_any_whole_number_however_written() {
        assert_eq!(ok("1:3:3e0"), [1.0, 2.0, 3.0]);
        assert_eq!(ok("1:1e3:1e3").len(), 1000);
        assert_eq!(ok("1:3:3.0").len(), 3);
        for count in ["2.5", "0", "-3", "nan", "inf"] {
            let r = reason(&format!("1:3:{count}"));
            assert!(r.contains("not a whole number >= 1"), "{count}: {r}");
        }
        assert!(reason("1:3:1e30").contains("is more than"));
    }

    #[test]
    fn errors_name_the_bad_item() {
        let (item, r) = parse_list("1e9,abc", |_| None).unwrap_err();
        assert_eq!(item, "abc");
        assert!(r.contains("'abc' is not a number"), "{r}");
        let (item, r) = parse_list("1e9:40e9:x", |_| None).unwrap_err();
        assert_eq!(item, "1e9:40e9:x");
        assert!(r.contains("COUNT"), "{r}");
        assert!(reason("1:2").contains("START:STOP:COUNT"));
    }

    #[test]
    fn bad_numbers_are_rejected() {
        for (text, needle) in [
            ("1_000", "not a number"),
            ("1e9x", "not a number"),
            ("0x10", "not a number"),
            ("inf", "finite"),
            ("NaN", "finite"),
            ("1e400", "finite"),
            ("0:inf:3", "finite"),
            ("", "expected"),
            ("  ", "expected"),
            ("1,,2", "empty item"),
            ("1,", "empty item"),
            ("1:2:3:4:5", "START:STOP:COUNT"),
        ] {
            let r = reason(text);
            assert!(r.contains(needle), "{text}: {r}");
        }
    }

    #[test]
    fn the_callers_rule_refuses_values_naming_the_item() {
        let positive = |v: f64| (v <= 0.0).then(|| format!("must be > 0, got {v}"));
        let (item, r) = parse_list("1,0:1e9:3", positive).unwrap_err();
        assert_eq!(
            (item.as_str(), r.as_str()),
            ("0:1e9:3", "must be > 0, got 0")
        );
        assert_eq!(parse_list("1,2", positive).unwrap(), [1.0, 2.0]);
    }

    #[test]
    fn bad_counts_and_spacings() {
        for (text, needle) in [
            ("1:2:0", "COUNT '0'"),
            ("1:2:-3", "COUNT"),
            ("1:2:2.5", "COUNT"),
            ("1:2:1", "COUNT 1 needs START == STOP"),
            ("1:2:3:geo", "spacing 'geo'"),
            ("1:2:99999999999", "more than"),
            ("0:1e9:5:log", "log spacing"),
            ("-1.7e308:1.7e308:3", "overflows"),
        ] {
            let r = reason(text);
            assert!(r.contains(needle), "{text}: {r}");
        }
    }
}
