//! Ordinary least squares of a line `y ≈ alpha·x + beta`, with its
//! quality. Pure arithmetic, no I/O.

use serde::Serialize;

/// A fitted line and how well it fits the points it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    /// Slope: requests per second one more replica serves.
    pub alpha: f64,
    /// Intercept: requests per second at zero replicas (often negative).
    pub beta: f64,
    /// Coefficient of determination, 1 − SSres/SStot (1 when every point
    /// is on the line; 1 too when every y is the same and on the line).
    pub r2: f64,
    /// Root mean square of the residuals, in the unit of y.
    pub rmse: f64,
    /// Largest absolute residual, in the unit of y.
    pub max_residual: f64,
}

/// The least-squares line through `points` (x, y), or `None` when no
/// line is determined: fewer than two points, a non-finite value, or
/// every x the same.
pub fn least_squares(points: &[(f64, f64)]) -> Option<Fit> {
    if points.len() < 2 || points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    // Centred sums: numerically stable for large x or y.
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    // Relative to the spread of x, so a scale change of x does not change
    // the verdict; 1e-12 is far below any real spread of replica counts.
    if sxx <= 1e-12 * (1.0 + mean_x * mean_x) * n {
        return None;
    }
    let alpha = sxy / sxx;
    let beta = mean_y - alpha * mean_x;
    let residuals = points.iter().map(|p| p.1 - (alpha * p.0 + beta));
    let ss_res: f64 = residuals.clone().map(|r| r * r).sum();
    let max_residual = residuals.map(f64::abs).fold(0.0, f64::max);
    let r2 = if syy > 0.0 { 1.0 - ss_res / syy } else { 1.0 };
    Some(Fit {
        alpha,
        beta,
        r2,
        rmse: (ss_res / n).sqrt(),
        max_residual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn a_noiseless_line_is_recovered_exactly() {
        let points: Vec<(f64, f64)> = (1..=6)
            .map(|r| (f64::from(r), 25.0 * f64::from(r) - 7.5))
            .collect();
        let fit = least_squares(&points).unwrap();
        assert!(close(fit.alpha, 25.0, 1e-9), "{fit:?}");
        assert!(close(fit.beta, -7.5, 1e-9), "{fit:?}");
        assert!(close(fit.r2, 1.0, 1e-12), "{fit:?}");
        assert!(fit.rmse < 1e-9 && fit.max_residual < 1e-9, "{fit:?}");
    }

    #[test]
    fn symmetric_noise_averages_out() {
        // Each replica count seen with +e and −e: the least-squares line
        // is the noiseless one, and the residual is exactly e.
        let mut points = Vec::new();
        for r in 1..=5 {
            let y = 10.0 * f64::from(r) + 3.0;
            points.push((f64::from(r), y + 2.0));
            points.push((f64::from(r), y - 2.0));
        }
        let fit = least_squares(&points).unwrap();
        assert!(close(fit.alpha, 10.0, 1e-9), "{fit:?}");
        assert!(close(fit.beta, 3.0, 1e-9), "{fit:?}");
        assert!(close(fit.rmse, 2.0, 1e-9), "{fit:?}");
        assert!(close(fit.max_residual, 2.0, 1e-9), "{fit:?}");
        assert!(fit.r2 > 0.95 && fit.r2 < 1.0, "{fit:?}");
    }

    #[test]
    fn pseudo_random_noise_stays_close_to_the_truth() {
        // A fixed LCG: ±10 % uniform noise on 600 points.
        let mut state: u64 = 42;
        let mut noise = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let points: Vec<(f64, f64)> = (0..600)
            .map(|i| {
                let r = f64::from(1 + i % 6);
                (r, (40.0 * r + 20.0) * (1.0 + 0.1 * noise()))
            })
            .collect();
        let fit = least_squares(&points).unwrap();
        assert!(close(fit.alpha, 40.0, 2.0), "{fit:?}");
        assert!(close(fit.beta, 20.0, 4.0), "{fit:?}");
        assert!(fit.r2 > 0.8, "{fit:?}");
    }

    #[test]
    fn one_point_or_one_replica_count_determines_no_line() {
        assert_eq!(least_squares(&[]), None);
        assert_eq!(least_squares(&[(2.0, 10.0)]), None);
        assert_eq!(
            least_squares(&[(3.0, 10.0), (3.0, 12.0), (3.0, 11.0)]),
            None
        );
    }

    #[test]
    fn a_non_finite_value_determines_no_line() {
        assert_eq!(least_squares(&[(1.0, 1.0), (2.0, f64::NAN)]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (f64::INFINITY, 2.0)]), None);
    }

    #[test]
    fn a_flat_line_has_zero_slope_and_full_r2() {
        let fit = least_squares(&[(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)]).unwrap();
        assert!(close(fit.alpha, 0.0, 1e-12) && close(fit.beta, 5.0, 1e-12));
        assert_eq!(fit.r2, 1.0);
    }
}
