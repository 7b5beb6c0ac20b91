//! Identities, built and parsed in one place: a graph is `(project,
//! hdaGraph.id)`, a service is a graph plus the service id. Their text
//! form `project/graph[/service]` is what the queue, the store, the
//! metrics and the status show; `/` cannot occur inside the parts (they
//! are DNS-1123 labels, checked by validation), so the form is unambiguous.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A graph's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GraphKey {
    pub project: String,
    pub graph: String,
}

/// A service's identity (one Helm release).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub graph: GraphKey,
    pub service: String,
}

/// A text that is not `project/graph` (or `project/graph/service`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not {expected} (names separated by `/`, none empty)")]
pub struct KeyError {
    text: String,
    expected: &'static str,
}

impl GraphKey {
    pub fn new(project: impl Into<String>, graph: impl Into<String>) -> Self {
        GraphKey {
            project: project.into(),
            graph: graph.into(),
        }
    }

    /// The key of one of this graph's services.
    pub fn service(&self, service: impl Into<String>) -> ServiceKey {
        ServiceKey {
            graph: self.clone(),
            service: service.into(),
        }
    }
}

impl ServiceKey {
    pub fn project(&self) -> &str {
        &self.graph.project
    }
}

impl fmt::Display for GraphKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.graph)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.graph, self.service)
    }
}

fn parts<const N: usize>(text: &str, expected: &'static str) -> Result<[String; N], KeyError> {
    let err = || KeyError {
        text: text.to_owned(),
        expected,
    };
    let split: Vec<&str> = text.split('/').collect();
    if split.len() != N || split.iter().any(|p| p.is_empty()) {
        return Err(err());
    }
    Ok(std::array::from_fn(|i| split[i].to_owned()))
}

impl FromStr for GraphKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let [project, graph] = parts::<2>(s, "PROJECT/GRAPH")?;
        Ok(GraphKey { project, graph })
    }
}

impl FromStr for ServiceKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let [project, graph, service] = parts::<3>(s, "PROJECT/GRAPH/SERVICE")?;
        Ok(GraphKey { project, graph }.service(service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text() {
        let g = GraphKey::new("shop", "web");
        assert_eq!(g.to_string(), "shop/web");
        assert_eq!("shop/web".parse::<GraphKey>().unwrap(), g);
        let s = g.service("api");
        assert_eq!(s.to_string(), "shop/web/api");
        assert_eq!("shop/web/api".parse::<ServiceKey>().unwrap(), s);
        assert_eq!(s.project(), "shop");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "shop", "shop/", "/web", "shop/web/api", "a//b"] {
            assert!(bad.parse::<GraphKey>().is_err(), "{bad}");
        }
        for bad in ["shop/web", "shop/web/", "a/b/c/d"] {
            assert!(bad.parse::<ServiceKey>().is_err(), "{bad}");
        }
        let e = "x".parse::<GraphKey>().unwrap_err().to_string();
        assert!(e.contains("PROJECT/GRAPH"), "{e}");
    }
}
