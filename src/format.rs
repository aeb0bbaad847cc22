//! How sweepfit writes numbers for people: counts with a unit suffix,
//! values to 4 significant digits, a row of numbers in one style. Every
//! layer that words a message uses these, so they live below all of them.

/// Compact count with a K/M/B/T suffix and 3 significant digits, trailing
/// zeros dropped: 53e6 -> "53M", 1.36e9 -> "1.36B", 14067712 -> "14.1M",
/// 2e10 -> "20B", 512 -> "512".
pub fn format_count(n: f64) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    if n < 0.0 {
        return format!("-{}", format_count(-n));
    }
    const UNITS: [&str; 5] = ["", "K", "M", "B", "T"];
    let mut k = 0;
    let mut scaled = n;
    // 999.5 rather than 1000 so a value that rounds up moves to the next
    // unit ("1B", not "1000M").
    while scaled >= 999.5 && k + 1 < UNITS.len() {
        k += 1;
        scaled = n / 1000f64.powi(k as i32);
    }
    let decimals = if scaled >= 99.95 {
        0
    } else if scaled >= 9.995 {
        1
    } else {
        2
    };
    let mut s = format!("{scaled:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s + UNITS[k]
}

/// 4 significant digits; exponent form ("1.234e9") outside [1e-3, 1e5).
pub(crate) fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    // Exponent after rounding to 4 digits, so 9999.9 counts as 1e4.
    let e = format!("{v:.3e}");
    let exp: i32 = e[e.find('e').map_or(e.len(), |i| i + 1)..]
        .parse()
        .unwrap_or(0);
    if !(-3..5).contains(&exp) {
        e
    } else {
        let decimals = (3 - exp).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// One style for a row of numbers: [`format_value`]'s fixed decimals where
/// every finite one of them gets those, else 4 significant digits in
/// scientific notation for all.
pub(crate) fn row_format(values: &[f64]) -> impl Fn(f64) -> String {
    let scientific = values
        .iter()
        .any(|v| v.is_finite() && *v != 0.0 && format_value(*v).contains('e'));
    move |v: f64| {
        if scientific && v.is_finite() && v != 0.0 {
            format!("{v:.3e}")
        } else {
            format_value(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_count_examples() {
        assert_eq!(format_count(53e6), "53M");
        assert_eq!(format_count(134e6), "134M");
        assert_eq!(format_count(1.36e9), "1.36B");
        assert_eq!(format_count(14067712.0), "14.1M");
        assert_eq!(format_count(2e10), "20B");
        assert_eq!(format_count(999.7e6), "1B");
        assert_eq!(format_count(512.0), "512");
        assert_eq!(format_count(1500.0), "1.5K");
        assert_eq!(format_count(0.0), "0");
        assert_eq!(format_count(3e12), "3T");
    }

    #[test]
    fn format_value_examples() {
        assert_eq!(format_value(1.234e9), "1.234e9");
        assert_eq!(format_value(1e7), "1.000e7");
        assert_eq!(format_value(268.0), "268.0");
        assert_eq!(format_value(0.3), "0.3000");
        assert_eq!(format_value(2018.0), "2018");
        assert_eq!(format_value(-0.675), "-0.6750");
        assert_eq!(format_value(1.2344e-7), "1.234e-7");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn a_row_of_numbers_has_one_style() {
        let f = row_format(&[57194.0, 1.791e6, 2.5e6]);
        assert_eq!(
            [f(57194.0), f(1.791e6), f(0.0)],
            ["5.719e4", "1.791e6", "0"]
        );
        let f = row_format(&[0.012, 0.3, 0.41]);
        assert_eq!([f(0.012), f(0.3)], ["0.01200", "0.3000"]);
    }
}
