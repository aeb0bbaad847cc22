//! Refusing requests that cannot fit in memory, before allocating.
//!
//! `--starts 100000000` or `--bootstrap 18446744073709551615` would
//! otherwise abort in the allocator (after minutes of work) or panic on a
//! capacity overflow. Sizes are estimated in f64 so that absurd requests
//! cannot overflow the estimate itself.

use anyhow::bail;

/// Bytes of memory available to this process: `MemAvailable` on Linux.
/// Elsewhere (or if unreadable) an assumed 64 GiB, which still refuses the
/// absurd requests this guards against.
pub fn available_bytes() -> f64 {
    const FALLBACK: f64 = 64.0 * (1u64 << 30) as f64;
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return FALLBACK;
    };
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemAvailable:")?;
            let kb: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb * 1024.0)
        })
        .unwrap_or(FALLBACK)
}

/// Human-readable bytes: "4.2 GB".
pub fn format_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[u])
    } else if v >= 1e3 {
        format!("{v:.1e} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Refuse `what` when its estimated `bytes` exceed the memory available.
pub fn ensure_fits(what: &str, bytes: f64) -> anyhow::Result<()> {
    ensure_fits_in(what, bytes, available_bytes())
}

fn ensure_fits_in(what: &str, bytes: f64, available: f64) -> anyhow::Result<()> {
    if bytes.is_nan() || bytes > available {
        bail!(
            "{what} would need about {} of memory, but {} is available",
            format_bytes(bytes),
            format_bytes(available)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_than_available_and_names_both() {
        let e = ensure_fits_in("--starts 100000000", 4.4e11, 2.2e10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--starts 100000000"), "{e}");
        assert!(e.contains("440.0 GB") && e.contains("22.0 GB"), "{e}");
        assert!(ensure_fits_in("x", 1e9, 2e9).is_ok());
        assert!(ensure_fits_in("x", f64::INFINITY, 2e9).is_err());
        assert!(ensure_fits_in("x", f64::NAN, 2e9).is_err());
    }

    #[test]
    fn formats_bytes() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1.5e6), "1.5 MB");
        assert_eq!(format_bytes(1.8e28), "1.8e4 YB");
    }

    #[test]
    fn some_memory_is_available() {
        let b = available_bytes();
        assert!(b > 1e6 && b.is_finite());
    }
}
