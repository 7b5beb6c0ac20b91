//! The `hdaGraphRef` file: a descriptor file in the state root that names
//! an HDAR artifact instead of holding the graph itself.
//!
//! ```yaml
//! hdaGraphRef:
//!   oci: oci://hdar.example.org:5000/project/image-detection-graph
//!   semver: ">=1.0 <2"        # or tag: "1.0.0", or digest: "sha256:…"
//! ```
//!
//! Invariants of a parsed [`GraphRef`]: the repository is a valid OCI
//! distribution name on a host (with an optional port), and exactly one
//! selector is set. Every problem of a file is reported, not only the first.

use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// The top-level key that makes a descriptor file a reference.
pub const REF_KEY: &str = "hdaGraphRef";

/// The file as written (serde stage).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRefFile {
    #[serde(rename = "hdaGraphRef")]
    pub hda_graph_ref: GraphRefSpec,
}

/// `hdaGraphRef` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRefSpec {
    pub oci: String,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub semver: Option<String>,
}

/// A validated reference: where the artifact lives and which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRef {
    pub repository: Repository,
    pub selector: Selector,
}

/// `host[:port]/path/name` of an OCI repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    /// Host with its port, as registries and `helm.insecureRegistries`
    /// spell it (`127.0.0.1:5000`).
    pub registry: String,
    /// The repository path inside the registry (`project/name`).
    pub path: String,
}

/// Which version of the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A tag, resolved to a digest on every source interval (it may move).
    Tag(String),
    /// A pinned digest: never re-resolved.
    Digest(Digest),
    /// The highest tag inside the range, re-resolved on every interval.
    Semver(SemverRange),
}

/// A manifest digest, `sha256:<64 lowercase hex>` (the only algorithm
/// registries use for manifests today, and the one we can verify).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

/// A version range as helm and Flux write it: comparators separated by
/// spaces or commas are all required, `||` separates alternatives, and a
/// bare version means exactly that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverRange {
    text: String,
    alternatives: Vec<semver::VersionReq>,
}

/// One problem of a reference file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("not a reference file: {0}")]
    Shape(String),
    #[error("`oci` must start with oci:// (found `{0}`)")]
    Scheme(String),
    #[error("`oci` has no registry host: expected oci://host[:port]/project/name")]
    Host,
    #[error("`oci` has an invalid port `{0}`")]
    Port(String),
    #[error(
        "`oci` repository path `{0}` is not a valid OCI name (lowercase letters, digits, and . _ - between them, / between components)"
    )]
    Path(String),
    #[error(
        "`oci` must not carry a tag or digest (`{0}`); use the `tag`, `digest` or `semver` field"
    )]
    InlineVersion(String),
    #[error("exactly one of `tag`, `digest` or `semver` must be set (found {0})")]
    SelectorCount(usize),
    #[error("`tag` `{0}` is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")]
    Tag(String),
    #[error("`digest` `{0}` must be sha256: followed by 64 lowercase hex digits")]
    Digest(String),
    #[error("`semver` `{text}` is not a version range: {reason}")]
    Semver { text: String, reason: String },
}

impl GraphRef {
    /// Parses a whole reference file (the document's value). Returns every
    /// problem found.
    pub fn from_value(value: &Value) -> Result<GraphRef, Vec<ReferenceError>> {
        let file: GraphRefFile = serde_json::from_value(value.clone())
            .map_err(|e| vec![ReferenceError::Shape(e.to_string())])?;
        GraphRef::from_spec(&file.hda_graph_ref)
    }

    /// Validates the `hdaGraphRef` block.
    pub fn from_spec(spec: &GraphRefSpec) -> Result<GraphRef, Vec<ReferenceError>> {
        let mut errors = Vec::new();
        let repository = Repository::parse(&spec.oci)
            .map_err(|e| errors.push(e))
            .ok();
        let set = [&spec.tag, &spec.digest, &spec.semver]
            .iter()
            .filter(|v| v.is_some())
            .count();
        let selector = if set != 1 {
            errors.push(ReferenceError::SelectorCount(set));
            None
        } else if let Some(tag) = &spec.tag {
            valid_tag(tag)
                .then(|| Selector::Tag(tag.clone()))
                .ok_or_else(|| errors.push(ReferenceError::Tag(tag.clone())))
                .ok()
        } else if let Some(digest) = &spec.digest {
            Digest::parse(digest)
                .map(Selector::Digest)
                .map_err(|e| errors.push(e))
                .ok()
        } else {
            let text = spec.semver.as_deref().unwrap_or_default();
            SemverRange::parse(text)
                .map(Selector::Semver)
                .map_err(|e| errors.push(e))
                .ok()
        };
        match (repository, selector) {
            (Some(repository), Some(selector)) if errors.is_empty() => Ok(GraphRef {
                repository,
                selector,
            }),
            _ => Err(errors),
        }
    }
}

/// Whether a parsed document is a reference file rather than a graph.
pub fn is_reference(value: &Value) -> bool {
    value.as_object().is_some_and(|m| m.contains_key(REF_KEY))
}

impl fmt::Display for GraphRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Tag(t) => write!(f, "{}:{t}", self.repository.oci_url()),
            Selector::Digest(d) => write!(f, "{}@{d}", self.repository.oci_url()),
            Selector::Semver(r) => write!(f, "{} (semver {r})", self.repository.oci_url()),
        }
    }
}

impl Repository {
    /// Parses `oci://host[:port]/path/name`.
    pub fn parse(url: &str) -> Result<Repository, ReferenceError> {
        let rest = url
            .strip_prefix("oci://")
            .ok_or_else(|| ReferenceError::Scheme(url.to_owned()))?;
        let (registry, path) = rest.split_once('/').ok_or(ReferenceError::Host)?;
        let (host, port) = split_port(registry)?;
        if !valid_host(host) {
            return Err(ReferenceError::Host);
        }
        if let Some(port) = port
            && !port.parse::<u16>().is_ok_and(|p| p != 0)
        {
            return Err(ReferenceError::Port(port.to_owned()));
        }
        if path.contains('@')
            || path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
        {
            return Err(ReferenceError::InlineVersion(url.to_owned()));
        }
        if !valid_path(path) {
            return Err(ReferenceError::Path(path.to_owned()));
        }
        Ok(Repository {
            registry: registry.to_owned(),
            path: path.to_owned(),
        })
    }

    /// `oci://host[:port]/path`.
    pub fn oci_url(&self) -> String {
        format!("oci://{self}")
    }

    /// The host without the port, as Docker's `config.json` may key it.
    pub fn host(&self) -> &str {
        split_port(&self.registry).map_or(self.registry.as_str(), |(h, _)| h)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// `host` and optional port; IPv6 literals are bracketed (`[::1]:5000`).
fn split_port(registry: &str) -> Result<(&str, Option<&str>), ReferenceError> {
    if let Some(inner) = registry.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or(ReferenceError::Host)?;
        return match after {
            "" => Ok((addr, None)),
            p => p
                .strip_prefix(':')
                .map(|p| (addr, Some(p)))
                .ok_or(ReferenceError::Host),
        };
    }
    Ok(match registry.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    })
}

fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The OCI distribution spec's repository name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
fn valid_path(path: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: ".", "_", "__" or one or more "-".
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    }
    path.len() <= 255 && path.split('/').all(component)
}

/// OCI tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| ReferenceError::Digest(text.to_owned()))?;
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest(text.to_owned()))
        } else {
            Err(ReferenceError::Digest(text.to_owned()))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", crate::digest::sha256_hex(bytes)))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SemverRange {
    /// Parses a helm/Flux style range into `semver` requirements.
    pub fn parse(text: &str) -> Result<SemverRange, ReferenceError> {
        let fail = |reason: String| ReferenceError::Semver {
            text: text.to_owned(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(fail("it is empty".into()));
        }
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let normalised = normalise(alternative).map_err(fail)?;
            let req = semver::VersionReq::parse(&normalised).map_err(|e| fail(e.to_string()))?;
            alternatives.push(req);
        }
        Ok(SemverRange {
            text: text.to_owned(),
            alternatives,
        })
    }

    /// Whether `version` is inside the range.
    pub fn matches(&self, version: &semver::Version) -> bool {
        self.alternatives.iter().any(|r| r.matches(version))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for SemverRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One `||` alternative in the `semver` crate's syntax: comparators joined
/// by commas, an operator separated from its version by spaces glued back
/// to it, and a bare version made exact (helm's and Flux's meaning; the
/// `semver` crate would read it as `^`). Hyphen ranges (`1.0 - 2.0`) are
/// refused rather than misread.
fn normalise(alternative: &str) -> Result<String, String> {
    const OPS: [&str; 7] = [">=", "<=", ">", "<", "=", "~", "^"];
    let tokens: Vec<&str> = alternative
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err("an alternative between `||` is empty".into());
    }
    let mut comparators = Vec::new();
    let mut pending_op: Option<&str> = None;
    for token in tokens {
        if token == "-" {
            return Err("hyphen ranges are not supported; write `>=A, <=B`".into());
        }
        if OPS.contains(&token) {
            if pending_op.replace(token).is_some() {
                return Err(format!("operator `{token}` follows another operator"));
            }
            continue;
        }
        let comparator = match pending_op.take() {
            Some(op) => format!("{op}{token}"),
            None if token.starts_with(|c: char| c.is_ascii_digit() || c == 'v' || c == 'V')
                && !is_wildcard(token) =>
            {
                format!("={}", token.trim_start_matches(['v', 'V']))
            }
            None => token.to_owned(),
        };
        comparators.push(strip_v(&comparator));
    }
    if let Some(op) = pending_op {
        return Err(format!("operator `{op}` has no version"));
    }
    Ok(comparators.join(", "))
}

/// `1.2.x`, `1.*`: a wildcard in the version core (not in a pre-release).
fn is_wildcard(version: &str) -> bool {
    version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .any(|part| matches!(part, "x" | "X" | "*"))
}

/// `>=v1.2` → `>=1.2`: helm accepts a leading `v`, the `semver` crate not.
fn strip_v(comparator: &str) -> String {
    let split = comparator
        .find(|c: char| !matches!(c, '>' | '<' | '=' | '~' | '^'))
        .unwrap_or(comparator.len());
    let (op, version) = comparator.split_at(split);
    format!("{op}{}", version.trim_start_matches(['v', 'V']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<GraphRef, Vec<ReferenceError>> {
        GraphRef::from_value(&v)
    }

    #[test]
    fn tag_digest_and_semver_references_parse() {
        let r = parse(
            json!({"hdaGraphRef": {"oci": "oci://127.0.0.1:5000/proj/graph", "tag": "1.0.0"}}),
        )
        .unwrap();
        assert_eq!(r.repository.registry, "127.0.0.1:5000");
        assert_eq!(r.repository.path, "proj/graph");
        assert_eq!(r.repository.host(), "127.0.0.1");
        assert_eq!(r.selector, Selector::Tag("1.0.0".into()));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(json!({"hdaGraphRef": {"oci": "oci://hdar.example.org/p/g", "digest": d}}))
            .unwrap();
        assert!(matches!(&r.selector, Selector::Digest(x) if x.hex() == "a".repeat(64)));
        let r =
            parse(json!({"hdaGraphRef": {"oci": "oci://[::1]:5000/p/g", "semver": ">=1.0 <2"}}))
                .unwrap();
        assert_eq!(r.repository.host(), "::1");
        assert!(matches!(r.selector, Selector::Semver(_)));
    }

    #[test]
    fn every_problem_of_a_reference_is_reported() {
        let errs = parse(json!({"hdaGraphRef": {"oci": "http://x/p", "tag": "1", "semver": "1"}}))
            .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(matches!(errs[0], ReferenceError::Scheme(_)));
        assert!(matches!(errs[1], ReferenceError::SelectorCount(2)));
        let errs = parse(json!({"hdaGraphRef": {"oci": "oci://h/p"}})).unwrap_err();
        assert_eq!(errs, vec![ReferenceError::SelectorCount(0)]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let errs = parse(json!({"hdaGraphRef": {"oci": "oci://h/p", "tag": "1", "tags": "x"}}))
            .unwrap_err();
        assert!(matches!(&errs[0], ReferenceError::Shape(m) if m.contains("tags")));
        let errs = parse(json!({"hdaGraphRef": {"oci": "oci://h/p", "tag": "1"}, "extra": 1}))
            .unwrap_err();
        assert!(matches!(&errs[0], ReferenceError::Shape(_)));
    }

    #[test]
    fn oci_urls_are_validated() {
        for bad in [
            "oci://",
            "oci:///p",
            "oci://h",
            "oci://h:0/p",
            "oci://h:99999/p",
            "oci://h:port/p",
            "oci://-h/p",
            "oci://h/Upper",
            "oci://h/p//q",
            "oci://h/p/",
            "oci://h/p..q",
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad} must be refused");
        }
        assert!(matches!(
            Repository::parse("oci://h/p/g:1.0"),
            Err(ReferenceError::InlineVersion(_))
        ));
        assert!(matches!(
            Repository::parse("oci://h/p/g@sha256:00"),
            Err(ReferenceError::InlineVersion(_))
        ));
        for good in [
            "oci://h/p",
            "oci://h.example:443/a/b-c/d__e.f",
            "oci://h/a--b",
        ] {
            assert!(Repository::parse(good).is_ok(), "{good} must parse");
        }
    }

    #[test]
    fn digests_and_tags_are_validated() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(valid_tag("1.0.0_build.1"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("1.0+x"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    fn matches(range: &str, v: &str) -> bool {
        SemverRange::parse(range)
            .unwrap()
            .matches(&semver::Version::parse(v).unwrap())
    }

    #[test]
    fn semver_ranges_are_read_as_helm_and_flux_read_them() {
        assert!(matches(">=1.0 <2", "1.5.0"));
        assert!(!matches(">=1.0 <2", "2.0.0"));
        assert!(matches(">= 1.0, < 2", "1.0.0"));
        assert!(matches("1.2.3", "1.2.3"), "a bare version is exact");
        assert!(!matches("1.2.3", "1.2.4"), "a bare version is exact, not ^");
        assert!(matches("v1.2.3", "1.2.3"));
        assert!(matches(">=v1.2", "1.3.0"));
        assert!(matches("~1.2", "1.2.9"));
        assert!(!matches("~1.2", "1.3.0"));
        assert!(matches("1.2.x", "1.2.7"));
        assert!(matches("^1 || ^3", "3.1.0"));
        assert!(!matches("^1 || ^3", "2.0.0"));
        assert!(
            !matches(">=1.0", "1.1.0-rc.1"),
            "pre-releases only when asked for"
        );
        for bad in ["", "1.0 - 2.0", ">=", ">= >= 1", "a.b", "1 ||"] {
            assert!(SemverRange::parse(bad).is_err(), "`{bad}` must be refused");
        }
    }

    #[test]
    fn the_schema_and_the_parser_agree() {
        use crate::validate::schema::{SchemaKind, is_valid};
        let d = format!("sha256:{}", "a".repeat(64));
        let oci = "oci://127.0.0.1:5000/proj/graph";
        for v in [
            json!({"hdaGraphRef": {"oci": oci, "tag": "1.0.0"}}),
            json!({"hdaGraphRef": {"oci": oci, "digest": d}}),
            json!({"hdaGraphRef": {"oci": "oci://[::1]/a__b/c-d", "semver": "^1"}}),
            json!({"hdaGraphRef": {"oci": oci}}),
            json!({"hdaGraphRef": {"oci": oci, "tag": "1", "digest": d}}),
            json!({"hdaGraphRef": {"oci": oci, "tag": "1", "extra": 1}}),
            json!({"hdaGraphRef": {"oci": oci, "tag": "1"}, "hdaGraph": {}}),
            json!({"hdaGraphRef": {"oci": "https://h/p", "tag": "1"}}),
            json!({"hdaGraphRef": {"oci": "oci://h/Proj", "tag": "1"}}),
            json!({"hdaGraphRef": {"oci": "oci://h/p:1.0", "tag": "1"}}),
            json!({"hdaGraphRef": {"oci": oci, "digest": "sha256:abc"}}),
            json!({"hdaGraphRef": {"oci": oci, "tag": ".bad"}}),
        ] {
            assert_eq!(
                is_valid(SchemaKind::HdagRef, &v),
                GraphRef::from_value(&v).is_ok(),
                "{v}"
            );
        }
    }

    #[test]
    fn is_reference_looks_at_the_top_level_key() {
        assert!(is_reference(&json!({"hdaGraphRef": {}})));
        assert!(!is_reference(&json!({"hdaGraph": {}})));
        assert!(!is_reference(&json!([1])));
    }
}
