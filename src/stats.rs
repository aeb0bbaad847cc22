//! Statistics of samples that several layers read (bootstrap intervals,
//! prediction bands, plots), kept below all of them.

/// Quantile `q` of sorted `s` by linear interpolation between order
/// statistics (the common "type 7" definition).
pub fn quantile(s: &[f64], q: f64) -> f64 {
    let h = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (i, frac) = (h.floor() as usize, h - h.floor());
    if i + 1 < s.len() {
        s[i] + frac * (s[i + 1] - s[i])
    } else {
        s[i]
    }
}

/// The central `level` interval of the values `v` (sorted in place): its
/// percentiles (1 - level) / 2 and (1 + level) / 2.
pub fn central(v: &mut [f64], level: f64) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (quantile(v, tail), quantile(v, 1.0 - tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_order_statistics() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 5.0);
        assert_eq!(quantile(&s, 0.5), 3.0);
        assert_eq!(quantile(&s, 0.125), 1.5);
    }

    #[test]
    fn the_central_interval_cuts_equal_tails() {
        let mut v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(central(&mut v, 0.5), (2.0, 4.0));
        assert_eq!(central(&mut v, 0.75), (1.5, 4.5));
    }
}
