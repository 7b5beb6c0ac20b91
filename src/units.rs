//! Units of the descriptor world: Kubernetes quantities and Prometheus
//! durations.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{0}` is not a Kubernetes quantity (examples: \"500m\", \"2\", \"1Gi\", \"64G\")")]
    Quantity(String),
    #[error("`{0}` is too large for a quantity; write it with a smaller exponent or suffix")]
    QuantityRange(String),
    #[error("`{0}` is not a duration (examples: \"30s\", \"2m\", \"1h30m\")")]
    Duration(String),
}

/// Parses a Kubernetes quantity into base units (cores, bytes, count).
pub fn parse_quantity(text: &str) -> Result<f64, UnitError> {
    let err = || UnitError::Quantity(text.to_owned());
    let t = text.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() || number == "." {
        return Err(err());
    }
    let base: f64 = number.parse().map_err(|_| err())?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..].parse().map_err(|_| err())?;
            10f64.powi(exp)
        }
        _ => return Err(err()),
    };
    // `1e999` (and `0e999`, 0 × ∞) match the syntax but are no number a
    // capacity, a reserve or a placement model can use.
    let quantity = base * factor;
    if !quantity.is_finite() {
        return Err(UnitError::QuantityRange(text.to_owned()));
    }
    Ok(quantity)
}

/// Parses a quantity given as YAML text or number.
pub fn quantity_of(value: &serde_json::Value) -> Result<f64, UnitError> {
    match value {
        serde_json::Value::Number(n) => {
            n.as_f64().ok_or_else(|| UnitError::Quantity(n.to_string()))
        }
        serde_json::Value::String(s) => parse_quantity(s),
        other => Err(UnitError::Quantity(other.to_string())),
    }
}

/// Parses a Prometheus duration: units `y w d h m s ms`, largest first,
/// each at most once (`1h30m`, `90s`, `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let err = || UnitError::Duration(text.to_owned());
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("ms", 1),
        ("m", 60 * 1000),
        ("s", 1000),
    ];
    // Order of appearance required by Prometheus, largest first.
    const ORDER: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if text.is_empty() {
        return Err(err());
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (unit, factor) = UNITS
            .iter()
            .find(|(u, _)| rest.starts_with(u))
            .ok_or_else(err)?;
        let rank = ORDER.iter().position(|u| u == unit).ok_or_else(err)?;
        if last_rank.is_some_and(|r| r >= rank) {
            return Err(err());
        }
        last_rank = Some(rank);
        rest = &rest[unit.len()..];
        millis = n
            .checked_mul(*factor)
            .and_then(|v| millis.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("2").unwrap(), 2.0);
        assert_eq!(parse_quantity("1Gi").unwrap(), 1073741824.0);
        assert_eq!(parse_quantity("64G").unwrap(), 64e9);
        assert_eq!(parse_quantity("1.5").unwrap(), 1.5);
        assert_eq!(parse_quantity("1e3").unwrap(), 1000.0);
        for bad in ["", "abc", "1Xi", "-1", ".", "1 Gi"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_beyond_f64_are_refused() {
        // Found with the `cluster` fuzz target's invariants: a reserve of
        // `1e999` cores was accepted as infinity, `0e999` as NaN.
        for big in ["1e999", "0e999", "1E400", &"9".repeat(400), "9e308"] {
            assert!(
                matches!(parse_quantity(big), Err(UnitError::QuantityRange(_))),
                "{big}"
            );
        }
        assert_eq!(parse_quantity("1e-999").unwrap(), 0.0);
        assert!(parse_quantity("1e300").unwrap().is_finite());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        for bad in ["", "30", "1h30", "30m1h", "1m1m", "2 m", "m", "-1s", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
