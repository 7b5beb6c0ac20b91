//! Shared helpers: paths, a builder for descriptors, fixture expectations.

use std::fmt::Write;
use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures(kind: &str) -> PathBuf {
    repo().join("tests/fixtures").join(kind)
}

/// YAML files of a directory, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Builds descriptor YAML: `graph("g").service("a").cpu("small")…`.
#[derive(Debug, Clone, Default)]
pub struct GraphBuilder {
    id: String,
    services: Vec<ServiceBuilder>,
}

#[derive(Debug, Clone, Default)]
pub struct ServiceBuilder {
    id: String,
    cpu: Option<String>,
    deps: Vec<String>,
    chart: Option<String>,
    /// Event-triggered (condition ANY) by one event of this id, instead
    /// of `auto`.
    event: Option<String>,
}

pub fn graph(id: &str) -> GraphBuilder {
    GraphBuilder {
        id: id.into(),
        services: Vec::new(),
    }
}

impl GraphBuilder {
    pub fn service(mut self, id: &str) -> Self {
        self.services.push(ServiceBuilder {
            id: id.into(),
            ..Default::default()
        });
        self
    }
    fn last(&mut self) -> &mut ServiceBuilder {
        self.services.last_mut().expect("call service() first")
    }
    pub fn cpu(mut self, class: &str) -> Self {
        self.last().cpu = Some(class.into());
        self
    }
    pub fn depends_on(mut self, id: &str) -> Self {
        self.last().deps.push(id.into());
        self
    }
    /// An `event` trigger with one event of this id (its alert deploys
    /// the service) instead of `auto` dependencies.
    pub fn event(mut self, id: &str) -> Self {
        self.last().event = Some(id.into());
        self
    }
    pub fn chart(mut self, reference: &str) -> Self {
        self.last().chart = Some(reference.into());
        self
    }
    pub fn yaml(&self) -> String {
        let mut s = format!(
            "hdaGraph:\n  imVersion: 0.4.0\n  id: {}\n  services:\n",
            self.id
        );
        for svc in &self.services {
            let _ = writeln!(s, "    - id: {}", svc.id);
            let _ = writeln!(s, "      deployment:");
            if let Some(event) = &svc.event {
                let _ = writeln!(
                    s,
                    "        trigger:\n          event:\n            condition: ANY\n            events:\n              - id: {event}\n                condition:\n                  promQuery: up > 0\n                  gracePeriod: 1m"
                );
            } else {
                let _ = writeln!(
                    s,
                    "        trigger:\n          auto:\n            dependencies: [{}]",
                    svc.deps.join(", ")
                );
            }
            let _ = writeln!(s, "        intent:");
            let _ = writeln!(
                s,
                "          compute: {{cpu: {}}}",
                svc.cpu.as_deref().unwrap_or("light")
            );
            let chart = svc
                .chart
                .clone()
                .unwrap_or_else(|| format!("oci://127.0.0.1:5000/charts/{}", svc.id));
            let _ = writeln!(s, "      artifact:\n        ociImage: {chart}");
        }
        s
    }
}

/// One `# expect: SEVERITY LINE POINTER` line of a fixture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expect {
    pub severity: String,
    pub line: usize,
    pub pointer: String,
}

/// What loading `path` on its own reports, as sorted expectations, and
/// the state it loaded.
pub fn findings_of(path: &Path) -> (Vec<Expect>, smo::desired::DesiredState) {
    let state = smo::desired::loader::load_files(&[path.to_owned()]).unwrap();
    let mut actual: Vec<Expect> = state
        .findings
        .iter()
        .map(|f| Expect {
            severity: f.severity.to_string(),
            line: f.line,
            pointer: f.pointer.clone(),
        })
        .collect();
    actual.sort();
    (actual, state)
}

pub fn expectations(path: &Path) -> Vec<Expect> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<Expect> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ' ');
            Expect {
                severity: parts.next().unwrap().to_owned(),
                line: parts.next().unwrap().parse().unwrap(),
                pointer: parts.next().unwrap_or("").trim().to_owned(),
            }
        })
        .collect();
    v.sort();
    v
}
