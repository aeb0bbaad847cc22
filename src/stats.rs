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
}
