//! The schema (`schemas/hdag.schema.json`) and the typed model must accept
//! exactly the same documents. The corpus: every fixture and example, plus
//! systematic mutants of the valid ones (each node replaced by values of
//! other types, or removed).

use crate::support::{fixtures, repo, yaml_files};
use serde_json::{Value, json};
use smo::descriptor::Descriptor;
use smo::validate::schema::{SchemaKind, is_valid};
use smo::validate::yaml::parse_documents;

fn documents() -> Vec<(String, Value)> {
    let mut files = yaml_files(&fixtures("valid"));
    files.extend(yaml_files(&fixtures("invalid")));
    files.push(repo().join("state-example/projects/brussels/image-detection-graph.yaml"));
    files.push(repo().join("state-example/projects/demo2/gpu-offloading-graph.yaml"));
    files
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(&f).ok()?;
            let mut docs = parse_documents(&text).ok()?;
            (docs.len() == 1).then(|| (f.display().to_string(), docs.remove(0).value))
        })
        .collect()
}

/// Every pointer of a value.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn replace(doc: &Value, pointer: &str, with: Option<Value>) -> Option<Value> {
    let mut d = doc.clone();
    let (parent, last) = pointer.rsplit_once('/')?;
    let last = last.replace("~1", "/").replace("~0", "~");
    match d.pointer_mut(parent)? {
        Value::Object(m) => match with {
            Some(v) => {
                m.insert(last, v);
            }
            None => {
                m.remove(&last);
            }
        },
        Value::Array(a) => {
            let i: usize = last.parse().ok()?;
            match with {
                Some(v) => a[i] = v,
                None => {
                    a.remove(i);
                }
            }
        }
        _ => return None,
    }
    Some(d)
}

fn agrees(v: &Value) -> Result<(), String> {
    let schema = is_valid(SchemaKind::Hdag, v);
    let model = serde_json::from_value::<Descriptor>(v.clone());
    if schema == model.is_ok() {
        Ok(())
    } else {
        Err(format!("schema says {schema}, model says {model:?}"))
    }
}

#[test]
fn schema_and_model_accept_the_same_documents() {
    let docs = documents();
    assert!(docs.len() >= 40);
    let replacements = [
        json!(null),
        json!("x"),
        json!(""),
        json!(0),
        json!(-1),
        json!(2.0),
        json!(1.5),
        json!(true),
        json!("True"),
        json!([]),
        json!(["a"]),
        json!({}),
        json!({"id": "a"}),
    ];
    let mut checked = 0;
    let mut accepted = 0;
    let mut disagreements = Vec::new();
    for (name, doc) in &docs {
        let mut candidates = vec![doc.clone()];
        if agrees(doc).is_ok() && is_valid(SchemaKind::Hdag, doc) {
            let mut ps = Vec::new();
            pointers(doc, String::new(), &mut ps);
            for p in ps.iter().filter(|p| !p.is_empty()) {
                candidates.extend(replace(doc, p, None));
                for r in &replacements {
                    candidates.extend(replace(doc, p, Some(r.clone())));
                }
            }
        }
        for c in candidates {
            checked += 1;
            accepted += usize::from(is_valid(SchemaKind::Hdag, &c));
            if let Err(why) = agrees(&c) {
                disagreements.push(format!(
                    "{name}: {why}\n{}",
                    serde_json::to_string(&c).unwrap()
                ));
            }
        }
    }
    assert!(checked > 5_000, "corpus too small: {checked}");
    // Both outcomes must be well represented, or the test proves nothing.
    assert!(
        accepted > 500 && checked - accepted > 500,
        "accepted {accepted} of {checked}"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
