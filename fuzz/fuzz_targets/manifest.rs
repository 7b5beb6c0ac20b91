//! A release manifest as helm prints it: splitting into objects, naming
//! them, drift between objects, and the redacted form that status shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use smo::adapters::manifest::{REDACTED, drift, object_ref, parse, redact};

const NAMESPACE: &str = "release-ns";
/// Stands in for every Secret value in the leak check.
const CANARY: &str = "smo-fuzz-canary-";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let objects = match parse(text) {
        Ok(o) => o,
        Err(e) => {
            // A manifest that cannot be parsed cannot be redacted either:
            // status withholds it whole.
            assert_eq!(redact(text, NAMESPACE).err(), Some(e.clone()));
            let _ = e.to_string();
            return;
        }
    };
    for o in &objects {
        assert!(o["apiVersion"].is_string() && o["kind"].is_string(), "{o}");
        names(o);
        // An object never drifts from itself as the API server stores it.
        let paths = drift(o, &as_stored(o));
        assert!(paths.is_empty() || odd_secret(o), "self-drift {paths:?} of {o}");
        for p in &paths {
            assert!(p.starts_with("/stringData/"), "self-drift {p} of {o}");
        }
    }
    // Drift between different objects: paths only (sorted, JSON pointers).
    for pair in objects.windows(2).take(8) {
        for (d, l) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            let paths = drift(d, l);
            assert!(paths.windows(2).all(|w| w[0] <= w[1]), "unsorted {paths:?}");
            assert!(paths.iter().all(|p| p.is_empty() || p.starts_with('/')));
        }
    }

    let redacted = redact(text, NAMESPACE).expect("a parsed manifest redacts");
    let named: Vec<_> = objects.iter().filter_map(|o| object_ref(o, NAMESPACE)).collect();
    assert_eq!(redacted.objects.len(), named.len(), "one summary per named object");
    for (s, r) in redacted.objects.iter().zip(&named) {
        assert_eq!((&s.kind, &s.name, &s.namespace), (&r.kind, &r.name, &r.namespace));
        assert!(s.digest.starts_with("sha256:") && s.digest.len() == 7 + 64);
    }
    // The redacted manifest reads back: the same objects, Secret values hidden.
    let back = parse(&redacted.manifest).expect("the redacted manifest parses");
    let hidden: Vec<Value> = objects.iter().cloned().map(hide).collect();
    assert_eq!(back, hidden, "the redacted manifest reads back as the hidden objects");
    assert_eq!(redact(text, NAMESPACE).as_ref(), Ok(&redacted), "deterministic");

    leak_check(&objects);
});

/// Invariants of an object's name.
fn names(o: &Value) {
    let r = object_ref(o, NAMESPACE);
    let field = |p: &str| o.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty());
    let named = field("/apiVersion").is_some() && field("/kind").is_some() && field("/metadata/name").is_some();
    assert_eq!(r.is_some(), named, "{o}");
    let Some(r) = r else { return };
    assert_eq!(Some(r.name.as_str()), field("/metadata/name"));
    if let Some(ns) = &r.namespace {
        assert_eq!(ns, field("/metadata/namespace").unwrap_or(NAMESPACE));
    }
}

/// The object as the API server keeps it: a Secret's `stringData` merged
/// into `data`, base64-encoded.
fn as_stored(o: &Value) -> Value {
    let mut live = o.clone();
    if o["kind"] != "Secret" {
        return live;
    }
    let Some(map) = live.as_object_mut() else { return live };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return o.clone();
    };
    let data = map.entry("data").or_insert(Value::Null);
    if data.is_null() {
        *data = Value::Object(Default::default());
    }
    if let Value::Object(data) = data {
        for (k, v) in string_data {
            if let Value::String(s) = v {
                data.insert(k, Value::String(base64(s.as_bytes())));
            }
        }
    }
    live
}

/// A Secret the API server would refuse or rewrite (`stringData` not a map
/// of strings, `data` not a map, a key in both): its self-drift is not
/// defined.
fn odd_secret(o: &Value) -> bool {
    if o["kind"] != "Secret" {
        return false;
    }
    let Some(sd) = o.get("stringData") else { return false };
    let Some(sd) = sd.as_object() else { return true };
    let data = o.get("data");
    sd.values().any(|v| !v.is_string())
        || data.is_some_and(|d| !d.is_object() && !d.is_null())
        || sd.keys().any(|k| data.and_then(|d| d.get(k)).is_some())
}

/// What `redact` promises for one object.
fn hide(mut o: Value) -> Value {
    if o["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            match o.get_mut(field) {
                Some(Value::Object(m)) => m.values_mut().for_each(|v| *v = REDACTED.into()),
                Some(v) if !v.is_null() => *v = REDACTED.into(),
                _ => {}
            }
        }
    }
    o
}

/// Every Secret value replaced by a unique canary; none may survive
/// redaction, wherever in the output it would land.
fn leak_check(objects: &[Value]) {
    let plain = serde_json::to_string(objects).expect("objects serialise");
    if plain.contains(CANARY) {
        return;
    }
    let mut n = 0;
    let mut canary = || {
        n += 1;
        Value::String(format!("{CANARY}{n}"))
    };
    let mut manifest = String::new();
    for o in objects {
        let mut o = o.clone();
        plant(&mut o, &mut canary);
        manifest.push_str("---\n");
        manifest.push_str(&serde_json::to_string_pretty(&o).expect("serialises"));
        manifest.push('\n');
    }
    if n == 0 {
        return;
    }
    // Should the canaries make the manifest unreadable, nothing is shown.
    let Ok(redacted) = redact(&manifest, NAMESPACE) else { return };
    assert!(
        !redacted.manifest.contains(CANARY),
        "a Secret value leaked:\n{}",
        redacted.manifest
    );
}

/// Replaces the values of a Secret, or of the Secrets of a List's items.
fn plant(o: &mut Value, canary: &mut impl FnMut() -> Value) {
    if o["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            match o.get_mut(field) {
                Some(Value::Object(m)) => m.values_mut().for_each(|v| *v = canary()),
                Some(v) if !v.is_null() => *v = canary(),
                _ => {}
            }
        }
    }
    if o["kind"] == "List"
        && let Some(Value::Array(items)) = o.get_mut("items")
    {
        items.iter_mut().for_each(|i| plant(i, canary));
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}
