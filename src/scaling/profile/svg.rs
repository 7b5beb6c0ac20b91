//! A small hand-made SVG scatter plot of a [`Profile`]: request rate
//! against replicas, saturated samples filled, the others hollow, and the
//! fitted line. No plotting dependency: a few dozen elements of SVG 1.1.
//! Samples that land on the same half pixel are drawn once, so a week of
//! one-minute samples stays a small file.

use super::Profile;
use std::collections::BTreeSet;
use std::fmt::Write;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 360.0;
/// Room for the axis labels (left, bottom) and the title (top).
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 45.0;
/// Horizontal grid lines and labels of the rate axis.
const RATE_TICKS: u32 = 5;

/// The plot as an SVG document; `title` is escaped.
pub fn render(profile: &Profile, title: &str) -> String {
    let obs = &profile.observations;
    let max_replicas = obs.iter().map(|o| o.replicas).fold(1.0, f64::max).ceil();
    let mut max_rate = obs.iter().map(|o| o.rate).fold(0.0, f64::max);
    if let Some(f) = &profile.fit {
        max_rate = max_rate.max(f.alpha * (max_replicas + 0.5) + f.beta);
    }
    let max_rate = nice_ceiling(max_rate);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // x from 0 to max_replicas + 1 so no sample sits on the frame.
    let x_span = max_replicas + 1.0;
    let px = |r: f64| LEFT + r / x_span * plot_w;
    let py = |rate: f64| TOP + plot_h - rate.clamp(0.0, max_rate) / max_rate * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="13">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Frame, grid and tick labels.
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
    );
    for k in 0..=RATE_TICKS {
        let rate = max_rate * f64::from(k) / f64::from(RATE_TICKS);
        let y = py(rate);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            label(rate)
        );
    }
    for r in 1..=(max_replicas as u32) {
        let x = px(f64::from(r));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{r}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">replicas</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">request rate (req/s)</text>"#,
        TOP + plot_h / 2.0
    );
    // Samples: hollow first, so saturated ones are drawn on top.
    let saturated: BTreeSet<usize> = profile.saturated.iter().copied().collect();
    let mut drawn = BTreeSet::new();
    let mut points = String::new();
    let mut order: Vec<usize> = (0..obs.len()).collect();
    order.sort_by_key(|i| saturated.contains(i));
    for i in order {
        let (x, y) = (px(obs[i].replicas), py(obs[i].rate));
        let sat = saturated.contains(&i);
        if !drawn.insert(((x * 2.0).round() as i64, (y * 2.0).round() as i64, sat)) {
            continue;
        }
        let style = if sat {
            r##"fill="#d62728""##
        } else {
            r##"fill="none" stroke="#999""##
        };
        let _ = writeln!(
            points,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" {style}/>"#
        );
    }
    let _ = writeln!(s, r#"<g class="samples">"#);
    s.push_str(&points);
    let _ = writeln!(s, "</g>");
    if let Some(f) = &profile.fit {
        let r1 = max_replicas + 0.5;
        // Start where the line enters the plot (rates are not negative),
        // so clamping never bends it.
        let r0 = if f.alpha > 0.0 && f.alpha * 0.5 + f.beta < 0.0 {
            (-f.beta / f.alpha).min(r1)
        } else {
            0.5
        };
        let _ = writeln!(
            s,
            r##"<line class="fit" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#1f77b4" stroke-width="2"/>"##,
            px(r0),
            py(f.alpha * r0 + f.beta),
            px(r1),
            py(f.alpha * r1 + f.beta)
        );
    }
    // Legend.
    let lx = LEFT + 10.0;
    let _ = writeln!(
        s,
        r##"<circle cx="{lx}" cy="{:.1}" r="2.5" fill="#d62728"/><text x="{:.1}" y="{:.1}">saturated</text><circle cx="{:.1}" cy="{:.1}" r="2.5" fill="none" stroke="#999"/><text x="{:.1}" y="{:.1}">not saturated</text>"##,
        TOP + 12.0,
        lx + 8.0,
        TOP + 16.0,
        lx + 80.0,
        TOP + 12.0,
        lx + 88.0,
        TOP + 16.0
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// The smallest of 1, 2, 5 × 10^k at or above `x` (1 for nothing to plot).
fn nice_ceiling(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= x)
        .unwrap_or(10.0 * magnitude)
}

fn label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        format!("{x:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::super::fit::Fit;
    use super::super::{Observation, Profile};
    use super::*;

    fn obs(replicas: f64, rate: f64) -> Observation {
        Observation {
            time: 0.0,
            rate,
            replicas,
            cpu: 1.0,
        }
    }

    fn sample() -> Profile {
        Profile {
            observations: vec![
                obs(1.0, 10.0),
                obs(2.0, 20.0),
                obs(2.0, 5.0),
                obs(2.0, 20.0),
            ],
            saturated: vec![0, 1, 3],
            replica_counts: vec![1, 2],
            fit: Some(Fit {
                alpha: 10.0,
                beta: 0.0,
                r2: 1.0,
                rmse: 0.0,
                max_residual: 0.0,
            }),
            missing: vec![],
        }
    }

    #[test]
    fn samples_are_marked_and_duplicates_drawn_once() {
        let svg = render(&sample(), "shop/web/api <R²>");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        let samples = &svg[svg.find("<g class=\"samples\">").unwrap()..svg.find("</g>").unwrap()];
        assert_eq!(samples.matches("fill=\"#d62728\"").count(), 2, "{samples}");
        assert_eq!(samples.matches("stroke=\"#999\"").count(), 1, "{samples}");
        assert!(svg.contains("shop/web/api &lt;R²&gt;"));
        assert_eq!(svg.matches("<line class=\"fit\"").count(), 1);
    }

    #[test]
    fn the_fitted_line_goes_through_its_points() {
        // Rate axis up to 50 (nice ceiling of 30 at 2.5 replicas), x up
        // to 3: the line's ends are at rate 5 and 25.
        let svg = render(&sample(), "t");
        let plot_h = HEIGHT - TOP - BOTTOM;
        let y5 = TOP + plot_h - 5.0 / 50.0 * plot_h;
        let y25 = TOP + plot_h - 25.0 / 50.0 * plot_h;
        assert!(svg.contains(&format!("y1=\"{y5:.1}\"")), "{svg}");
        assert!(svg.contains(&format!("y2=\"{y25:.1}\"")), "{svg}");
    }

    #[test]
    fn an_empty_profile_still_draws_a_frame() {
        let p = Profile {
            observations: vec![],
            saturated: vec![],
            replica_counts: vec![],
            fit: None,
            missing: vec![],
        };
        let svg = render(&p, "t");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(!svg.contains("class=\"fit\""));
    }

    #[test]
    fn axis_ceilings_are_round_numbers() {
        assert_eq!(nice_ceiling(30.0), 50.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }
}
