//! Small statistical functions shared by the analyses (leak trends, profile regressions).

/// The standard normal upper tail `P(Z > z)`.
///
/// Computed through the complementary error function with the Chebyshev fit of Numerical
/// Recipes' `erfcc`, whose fractional error is below 1.2e-7 everywhere: ample for p-values.
///
/// ```
/// let p = perfkit_core::stats::normal_sf(1.959_964);
/// assert!((p - 0.025).abs() < 1e-6);
/// ```
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (see [`normal_sf`] for its precision).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::normal_sf;

    #[test]
    fn matches_tabulated_quantiles() {
        // (z, P(Z > z)) from standard normal tables; z is rounded to six decimals, which
        // moves P by up to 2e-7, on top of the fit's error.
        for (z, p) in [
            (0.0, 0.5),
            (1.0, 0.158_655_25),
            (1.644_854, 0.05),
            (1.959_964, 0.025),
            (2.575_829, 0.005),
            (3.090_232, 0.001),
            (-1.959_964, 0.975),
        ] {
            let got = normal_sf(z);
            assert!((got - p).abs() <= 3e-7, "z {z}: {got} vs {p}");
        }
    }

    #[test]
    fn tails_are_monotone_and_bounded() {
        let mut last = 1.0;
        for i in -80..=80 {
            let p = normal_sf(i as f64 / 10.0);
            assert!((0.0..=1.0).contains(&p));
            assert!(p <= last);
            last = p;
        }
        assert!(normal_sf(f64::INFINITY) == 0.0);
    }
}
