//! The labels `smo` puts on every object it applies, and the owner (project,
//! graph) they name: pruning and the sweep find `smo`'s objects by these
//! labels only.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The standard label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on `smo`'s objects.
pub const MANAGED_BY: &str = "smo";
/// The project (namespace) whose desired state holds the object.
pub const PROJECT_LABEL: &str = "smo.nephele.eu/project";
/// The graph (`hdaGraph.id`) whose desired state holds the object.
pub const GRAPH_LABEL: &str = "smo.nephele.eu/graph";

/// On a helm release (its storage Secrets): the first 32 hex digits of
/// the inputs hash of the revision, so that an instance whose store lost
/// the release (a new leader, a restored store) knows whether its inputs
/// are still the desired ones without upgrading it.
pub const INPUTS_LABEL: &str = "smo.nephele.eu/inputs";

/// The value of [`INPUTS_LABEL`] for an inputs hash (label values hold 63
/// characters at most).
pub fn inputs_label(hash: &str) -> String {
    hash.chars().take(32).collect()
}

/// The graph an object belongs to: `(project, hdaGraph.id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub project: String,
    pub graph: String,
}

impl Owner {
    /// The labels `smo` puts on the owner's objects (values made
    /// label-safe by [`label_value`]).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
            (PROJECT_LABEL.to_owned(), label_value(&self.project)),
            (GRAPH_LABEL.to_owned(), label_value(&self.graph)),
        ])
    }

    /// Label selector matching exactly the owner's objects.
    pub fn selector(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Longest label value Kubernetes accepts.
const LABEL_VALUE_MAX: usize = 63;
/// Room left for `-` and 8 hex digits of the hash when a value is rewritten.
const LABEL_PREFIX_MAX: usize = LABEL_VALUE_MAX - 9;

/// Makes a string a valid label value, deterministically (pruning selects
/// by these values, so the same input must always give the same label).
///
/// Rule: a value that is already valid — at most 63 characters of
/// `[A-Za-z0-9._-]`, starting and ending with a letter or digit, or empty —
/// is used unchanged; project names and graph ids (DNS-1123 labels) always
/// are. Any other value becomes its characters outside that set replaced
/// by `-`, leading and trailing non-alphanumerics dropped, cut to 54
/// characters, then `-` and the first 8 hex digits of the SHA-256 of the
/// original value, so two different inputs are unlikely to share a label.
pub fn label_value(value: &str) -> String {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let is_valid = value.is_empty()
        || (value.len() <= LABEL_VALUE_MAX
            && value.chars().all(valid_char)
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if is_valid {
        return value.to_owned();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let hash = crate::digest::hex(&digest[..4]);
    let cleaned: String = value
        .chars()
        .map(|c| if valid_char(c) { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let prefix: String = cleaned.chars().take(LABEL_PREFIX_MAX).collect();
    let prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid_and_stable() {
        let long = "a".repeat(70);
        let cases = [
            ("shop", Some("shop")),
            ("my-graph.v1_x", Some("my-graph.v1_x")),
            ("", Some("")),
            ("a b", None),
            ("-lead", None),
            ("trail-", None),
            (long.as_str(), None),
            ("ü", None),
        ];
        for (input, unchanged) in cases {
            let out = label_value(input);
            if let Some(want) = unchanged {
                assert_eq!(out, want);
                continue;
            }
            assert!(out.len() <= 63, "{out}");
            assert!(
                out.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{out}"
            );
            assert!(
                out.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{out}"
            );
            assert!(out.ends_with(|c: char| c.is_ascii_alphanumeric()), "{out}");
            assert_eq!(out, label_value(input), "deterministic");
        }
        assert_ne!(
            label_value("a b"),
            label_value("a-b"),
            "rewritten values carry a hash"
        );
        assert_ne!(label_value("a b"), label_value("a+b"));
    }

    #[test]
    fn owner_selector_matches_its_labels() {
        let o = Owner {
            project: "shop".into(),
            graph: "web".into(),
        };
        assert_eq!(
            o.selector(),
            "app.kubernetes.io/managed-by=smo,smo.nephele.eu/graph=web,smo.nephele.eu/project=shop"
        );
    }
}
