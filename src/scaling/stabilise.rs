//! Stabilisation of scale-downs: a pure function of the recent decision
//! history and a window.
//!
//! Rule (the one Kubernetes' HPA uses for scale-down): the replicas applied
//! are the highest recommendation made within the last `window_s` seconds,
//! including the new one. A scale-up therefore takes effect at once, while a
//! scale-down only happens once every recommendation in the window agrees
//! that fewer replicas suffice. The result never exceeds the new
//! recommendation when that is a scale-up, and never goes above the current
//! count when it is a scale-down (the window holds back, never pushes up).

use serde::{Deserialize, Serialize};

/// One past recommendation of the scaling model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// Seconds on any monotonic scale shared with `now_s`.
    pub at_s: u64,
    pub replicas: u32,
}

/// Replicas to apply now, given the model's fresh recommendation.
pub fn stabilised(
    current: u32,
    recommended: u32,
    history: &[Recommendation],
    now_s: u64,
    window_s: u64,
) -> u32 {
    if recommended >= current {
        return recommended;
    }
    let highest_recent = history
        .iter()
        .filter(|r| r.at_s <= now_s && now_s - r.at_s < window_s)
        .map(|r| r.replicas)
        .max()
        .unwrap_or(recommended);
    highest_recent.max(recommended).min(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_s: u64, replicas: u32) -> Recommendation {
        Recommendation { at_s, replicas }
    }

    #[test]
    fn scale_up_is_immediate() {
        assert_eq!(stabilised(2, 5, &[rec(90, 1)], 100, 300), 5);
    }

    #[test]
    fn scale_down_waits_for_the_window() {
        let h = [rec(0, 4), rec(100, 3), rec(200, 2)];
        // At 250 the 4 from t=0 is still within 300 s: hold at current 4.
        assert_eq!(stabilised(4, 1, &h, 250, 300), 4);
        // At 350 the oldest left the window; the highest recent is 3.
        assert_eq!(stabilised(4, 1, &h, 350, 300), 3);
        // At 600 nothing recent: follow the recommendation.
        assert_eq!(stabilised(4, 1, &h, 600, 300), 1);
    }

    #[test]
    fn window_never_pushes_above_current() {
        assert_eq!(stabilised(2, 1, &[rec(10, 6)], 20, 300), 2);
    }

    #[test]
    fn zero_window_disables_stabilisation() {
        assert_eq!(stabilised(4, 1, &[rec(10, 4)], 10, 0), 1);
    }
}
