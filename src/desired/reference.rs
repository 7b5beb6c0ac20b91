//! A descriptor file that is an `hdaGraphRef`: its shape checked, the
//! artifact fetched through [`Artifacts`], and the descriptor inside judged
//! as any other, with the artifact as its root.

use super::Artifacts;
use super::loader::{Loaded, judge_descriptor};
use crate::descriptor::semantic::Context;
use crate::validate::findings::Finding;
use crate::validate::read_document;
use crate::validate::schema::SchemaKind;
use crate::validate::yaml::Document;

/// A file that names an HDAR artifact: the descriptor inside it, judged as
/// any other (local charts resolve inside the artifact), with the artifact
/// recorded; or the findings about the reference. A failed fetch names no
/// graph, so the graph the file declared last time is held, not removed.
pub(super) fn judge(
    doc: &Document,
    ctx: &Context<'_>,
    artifacts: Option<&dyn Artifacts>,
) -> Loaded {
    let shown = ctx.file;
    let (_, mut findings) =
        crate::validate::typed::<serde_json::Value>(SchemaKind::HdagRef, doc, shown);
    if findings.iter().any(Finding::is_error) {
        return Loaded::failed(findings);
    }
    let reference = match crate::hdar::GraphRef::from_value(&doc.value) {
        Ok(r) => r,
        Err(errors) => {
            findings.extend(
                errors
                    .iter()
                    .map(|e| doc.error(shown, "/hdaGraphRef", e.to_string())),
            );
            return Loaded::failed(findings);
        }
    };
    let Some(artifacts) = artifacts else {
        findings.push(doc.error(
            shown,
            "/hdaGraphRef",
            format!("this file names the HDAR artifact {reference}, which is not fetched here; smo run, smo validate and smo plan fetch it"),
        ));
        return Loaded::failed(findings);
    };
    let origin = match artifacts.fetch(&reference) {
        Ok(origin) => origin,
        Err(reason) => {
            findings.push(doc.error(shown, "/hdaGraphRef", reason));
            return Loaded::failed(findings);
        }
    };
    let path = origin.root.join(&origin.descriptor);
    let inner = format!("{shown}[{}]", origin.descriptor);
    let inner_ctx = Context {
        file: &inner,
        dir: path.parent(),
        root: Some(&origin.root),
        known_clusters: ctx.known_clusters,
        charts: ctx.charts,
    };
    // No reference inside an artifact: `None` makes one an error.
    let mut loaded = judge_descriptor(read_document(&path, &inner), &inner_ctx, None);
    findings.append(&mut loaded.findings);
    loaded.findings = findings;
    loaded.origin = Some(origin);
    loaded
}
