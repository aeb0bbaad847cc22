//! Branch-free f64 ln and exp for the CPU evaluators' loops (the compiled
//! plan's and the row Jacobian's).
//!
//! `ln_recip` and `exp` are the fast paths, for arguments in their domain;
//! the `exact_` versions add the standard library's values at the edges
//! (0, infinities, subnormals, overflow) by selects, for laws whose
//! arguments may reach them.
//!
//! The standard library's ln/exp are calls into libm, one value at a time,
//! which stops the compiler from vectorising the loop over points. These
//! versions use only arithmetic, bit operations and selects, so the same
//! source compiles to 2-, 4- or 8-wide SIMD (see `cpu/compiled` for the runtime
//! dispatch). No maintained crate offers f64 ln/exp that vectorise inside
//! our own loop under runtime feature dispatch, hence they are written
//! here. Accuracy is a few ulp over the ranges the law uses; the unit
//! tests below check that against the standard library.

// ln 2 split so that k * LN2_HI is exact for the k that occur.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LOG2E: f64 = std::f64::consts::LOG2_E;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;

/// a * b + c, fused where the caller's instruction set has FMA (a fused
/// multiply-add without hardware support would be a slow library call).
#[inline(always)]
pub fn mul_add<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Natural log and reciprocal of a positive, normal, finite x, sharing one
/// division (the slowest vector instruction here). Other inputs give
/// meaningless finite values: callers guard the domain themselves.
#[inline(always)]
pub fn ln_recip<const FMA: bool>(x: f64) -> (f64, f64) {
    // Split x = 2^k * m with m in [sqrt(1/2), sqrt(2)).
    let ix = x
        .to_bits()
        .wrapping_add(0x3ff0_0000_0000_0000 - SQRT_HALF_BITS);
    let m = f64::from_bits((ix & 0x000f_ffff_ffff_ffff) + SQRT_HALF_BITS);
    // k as f64 without an int->float conversion (AVX2 has none for i64).
    let k = f64::from_bits((ix >> 52) | 0x4330_0000_0000_0000) - (4_503_599_627_370_496.0 + 1023.0);
    // q = 1/((m+1) x) gives both 1/(m+1) = q x and 1/x = q (m+1).
    let mp1 = m + 1.0;
    let q = 1.0 / (mp1 * x);
    let recip = q * mp1;
    // ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: odd series in s.
    let s = (m - 1.0) * (q * x);
    let z = s * s;
    let mut p = 1.0 / 19.0;
    for c in [
        1.0 / 17.0,
        1.0 / 15.0,
        1.0 / 13.0,
        1.0 / 11.0,
        1.0 / 9.0,
        1.0 / 7.0,
        1.0 / 5.0,
        1.0 / 3.0,
    ] {
        p = mul_add::<FMA>(p, z, c);
    }
    let ln_m = mul_add::<FMA>(2.0 * s * z, p, 2.0 * s);
    (
        mul_add::<FMA>(k, LN2_HI, mul_add::<FMA>(k, LN2_LO, ln_m)),
        recip,
    )
}

/// e^x for finite x; results below ~1e-308 flush towards zero and above
/// ~8e307 saturate. NaN propagates.
#[inline(always)]
pub fn exp<const FMA: bool>(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    let t = mul_add::<FMA>(x, LOG2E, ROUND_MAGIC);
    let k = t - ROUND_MAGIC;
    let r = mul_add::<FMA>(-k, LN2_LO, mul_add::<FMA>(-k, LN2_HI, x));
    // Taylor series of e^r, |r| <= 0.347, to r^13.
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = mul_add::<FMA>(p, r, c);
    }
    // 2^k from the integer the rounding left in t's low bits.
    let two_k = f64::from_bits(
        (t.to_bits()
            .wrapping_sub(ROUND_MAGIC.to_bits())
            .wrapping_add(1023))
            << 52,
    );
    p * two_k
}

/// ln x and 1/x for any x from one fast log, which shares its one division
/// with the reciprocal; the standard library's values outside the fast
/// path's domain, by selects (ln: -inf at 0, NaN below, inf at inf; 1/x:
/// +-inf at +-0, +-0 at +-inf). Subnormals are scaled into range first.
#[inline(always)]
pub fn exact_ln_recip<const FMA: bool>(x: f64) -> (f64, f64) {
    const SCALE: f64 = (1u64 << 54) as f64;
    let a = x.abs();
    let sub = a < f64::MIN_POSITIVE;
    let s = if sub { a * SCALE } else { a };
    // Normal and finite (so neither 0, inf nor NaN).
    let ok = (f64::MIN_POSITIVE..f64::INFINITY).contains(&s);
    let (l, r) = ln_recip::<FMA>(if ok { s } else { 1.0 });
    let l = if sub {
        l - 54.0 * std::f64::consts::LN_2
    } else {
        l
    };
    let r = if sub { r * SCALE } else { r };
    let ln = if ok && x > 0.0 {
        l
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        f64::INFINITY
    } else {
        f64::NAN
    };
    let recip = if ok {
        r.copysign(x)
    } else if a == 0.0 {
        f64::INFINITY.copysign(x)
    } else if a == f64::INFINITY {
        0.0f64.copysign(x)
    } else {
        f64::NAN
    };
    (ln, recip)
}

#[inline(always)]
pub fn exact_exp<const FMA: bool>(x: f64) -> f64 {
    let e = exp::<FMA>(x);
    if x > 709.78 {
        f64::INFINITY
    } else if x < -745.2 {
        0.0
    } else {
        e
    }
}

/// x^y as exp(y ln |x|), with powf's values elsewhere: 0^y, and for a
/// negative base the signed power when y is an integer, else NaN.
#[inline(always)]
pub fn exact_pow<const FMA: bool>(x: f64, y: f64) -> f64 {
    let e = exact_exp::<FMA>(y * exact_ln_recip::<FMA>(x.abs()).0);
    let half = 0.5 * y;
    let integer = y == y.round();
    let odd = integer && half != half.round();
    if x > 0.0 {
        e
    } else if x == 0.0 {
        if y > 0.0 {
            0.0
        } else if y == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else if integer {
        if odd {
            -e
        } else {
            e
        }
    } else {
        f64::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / (b.abs() * f64::EPSILON)).abs()
    }

    #[test]
    fn ln_matches_std_over_many_decades() {
        let mut worst: f64 = 0.0;
        let mut x = 1e-300;
        while x < 1e300 {
            for f in [1.0, 1.0000001, 1.3, std::f64::consts::SQRT_2, 1.5, 1.9999] {
                let v = x * f;
                let (a, b) = (ln_recip::<true>(v).0, v.ln());
                let err = if b.abs() > 1e-3 {
                    ulps(a, b)
                } else {
                    (a - b).abs() / f64::EPSILON
                };
                worst = worst.max(err);
            }
            x *= 7.3;
        }
        assert!(worst <= 4.0, "worst ln error {worst} ulp");
        for v in [1e-30, 3e-7, 0.5, 1.0, 2.7, 1e5, 4e17] {
            let r = ln_recip::<false>(v).1;
            assert!(ulps(r, 1.0 / v) <= 2.0, "1/{v}: {r}");
        }
        assert_eq!(ln_recip::<false>(1.0).0, 0.0);
    }

    #[test]
    fn exp_matches_std_across_its_range() {
        let mut worst: f64 = 0.0;
        let mut x = -700.0;
        while x < 700.0 {
            worst = worst.max(ulps(exp::<false>(x), x.exp()));
            x += 0.0137;
        }
        assert!(worst <= 4.0, "worst exp error {worst} ulp");
        assert_eq!(exp::<false>(0.0), 1.0);
        assert!(exp::<false>(f64::NAN).is_nan());
        assert!(exp::<false>(-1e6) < 1e-300 && exp::<false>(1e6) > 1e300);
    }
}
