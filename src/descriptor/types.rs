//! Small value types of the descriptor model whose parsing enforces what the
//! schema enforces, so that the typed model accepts exactly the documents
//! the schema accepts.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DnsLabel(String);

impl DnsLabel {
    pub fn is_valid(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DnsLabel {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if DnsLabel::is_valid(&s) {
            Ok(DnsLabel(s))
        } else {
            Err(format!("`{s}` is not a DNS-1123 label"))
        }
    }
}

impl From<DnsLabel> for String {
    fn from(l: DnsLabel) -> String {
        l.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for DnsLabel {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A non-empty string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NonEmpty(String);

impl NonEmpty {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NonEmpty {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() {
            Err("must not be empty")
        } else {
            Ok(NonEmpty(s))
        }
    }
}

impl From<NonEmpty> for String {
    fn from(s: NonEmpty) -> String {
        s.0
    }
}

impl std::ops::Deref for NonEmpty {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A boolean that also accepts the strings "True"/"False" (and lower case),
/// which occur in real NEPHELE descriptors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(into = "bool")]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(b) => Ok(Flag(b)),
            Raw::Text(t) => match t.as_str() {
                "True" | "true" => Ok(Flag(true)),
                "False" | "false" => Ok(Flag(false)),
                _ => Err(serde::de::Error::custom(format!("`{t}` is not a boolean"))),
            },
        }
    }
}

/// `{enabled: Flag}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    #[serde(default)]
    pub enabled: Flag,
}

impl Enabled {
    pub fn on(&self) -> bool {
        self.enabled.0
    }
}

/// A version written as text or as a bare number (`1.0`), kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct VersionText(pub String);

impl From<VersionText> for String {
    fn from(v: VersionText) -> String {
        v.0
    }
}

impl<'de> Deserialize<'de> for VersionText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(VersionText(s)),
            serde_json::Value::Number(n) => Ok(VersionText(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a version, found {other}"
            ))),
        }
    }
}

/// An integer ≥ 1. JSON Schema's `integer` includes numbers such as `2.0`,
/// so this does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u32")]
pub struct Positive(pub u32);

impl From<Positive> for u32 {
    fn from(p: Positive) -> u32 {
        p.0
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        let v = n.as_f64().unwrap_or(f64::NAN);
        if v.fract() == 0.0 && v >= 1.0 && v <= f64::from(u32::MAX) {
            // The checks above make the cast exact.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Positive(v as u32))
        } else {
            Err(serde::de::Error::custom(format!(
                "expected an integer of at least 1, found {n}"
            )))
        }
    }
}

/// A number ≥ 0 (an explicit null is rejected, as the schema does).
pub fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let x = f64::deserialize(d)?;
    if x < 0.0 {
        Err(serde::de::Error::custom("must not be negative"))
    } else {
        Ok(Some(x))
    }
}

/// serde's derived structs also accept a sequence of their fields
/// (`energyEfficiency: []`); the schema only accepts maps. Struct-typed
/// fields go through these helpers so that the model agrees.
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    if !v.is_object() {
        return Err(serde::de::Error::custom("expected a map"));
    }
    T::deserialize(v).map_err(serde::de::Error::custom)
}

/// [`object`] for optional fields.
pub fn object_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    object(d).map(Some)
}

/// A list of maps.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let items = Vec::<serde_json::Value>::deserialize(d)?;
    items
        .into_iter()
        .map(|v| {
            if v.is_object() {
                T::deserialize(v).map_err(serde::de::Error::custom)
            } else {
                Err(serde::de::Error::custom("expected a map"))
            }
        })
        .collect()
}

/// A non-empty list of maps.
pub fn non_empty_objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v: Vec<T> = objects(d)?;
    if v.is_empty() {
        Err(serde::de::Error::custom("must not be empty"))
    } else {
        Ok(v)
    }
}

/// For optional fields: absence gives `None` (with `#[serde(default)]`),
/// but an explicit `null` is rejected, as the schema rejects it.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A list with at least one element.
pub fn non_empty_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        Err(serde::de::Error::custom("must not be empty"))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_accept_nephele_spellings() {
        for (v, want) in [
            (json!(true), true),
            (json!("True"), true),
            (json!("False"), false),
            (json!("false"), false),
        ] {
            assert_eq!(serde_json::from_value::<Flag>(v).unwrap().0, want);
        }
        assert!(serde_json::from_value::<Flag>(json!("yes")).is_err());
        assert!(serde_json::from_value::<Flag>(json!(1)).is_err());
    }

    #[test]
    fn dns_labels() {
        assert!(DnsLabel::is_valid("image-detection"));
        assert!(DnsLabel::is_valid("a1"));
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!DnsLabel::is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn positive_integers_follow_json_schema() {
        assert_eq!(serde_json::from_value::<Positive>(json!(2.0)).unwrap().0, 2);
        assert!(serde_json::from_value::<Positive>(json!(0)).is_err());
        assert!(serde_json::from_value::<Positive>(json!(1.5)).is_err());
    }
}
