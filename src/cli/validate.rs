//! `smo validate [PATH...] [--format text|json]`.
//!
//! A PATH is a state root (a directory) or individual files, each judged by
//! its content. Exit codes: 0 no errors (warnings allowed), 1 errors,
//! 2 usage or I/O failure — what a pre-commit hook needs.

use crate::desired::loader::{
    LoadError, load_descriptor_text_with, load_files_with, load_root_with,
};
use crate::desired::{Artifacts, DesiredState};
use crate::validate::findings::{self, Finding};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// State roots (directories) or individual files; default `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

#[derive(Debug, Serialize)]
struct GraphSummary {
    project: String,
    id: String,
    services: usize,
    /// The information model the file declares (0.3.0 files are read as
    /// 0.4.0, with a warning).
    #[serde(rename = "imVersion")]
    im_version: String,
}

#[derive(Debug, Serialize)]
struct Report {
    findings: Vec<Finding>,
    graphs: Vec<GraphSummary>,
}

/// Loads every PATH and merges the results; `hdaGraphRef` files and
/// `oci://` arguments are pulled through `artifacts`.
pub fn collect(
    paths: &[PathBuf],
    artifacts: Option<&dyn Artifacts>,
) -> Result<Vec<DesiredState>, LoadError> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    };
    let mut states = Vec::new();
    let mut rest = Vec::new();
    for p in paths {
        match p.to_str().and_then(super::pull::reference_file) {
            Some(text) => states.push(load_descriptor_text_with(
                &text,
                &p.display().to_string(),
                artifacts,
            )),
            None => rest.push(p),
        }
    }
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = rest.into_iter().partition(|p| p.is_dir());
    for dir in dirs {
        states.push(load_root_with(&dir, artifacts)?);
    }
    if !files.is_empty() {
        states.push(load_files_with(&files, artifacts)?);
    }
    Ok(states)
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let session = super::pull::Session::new(&args.registry)?;
    let artifacts = session.artifacts();
    let states = match collect(&args.paths, Some(&artifacts)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smo validate: {e}");
            return Ok(2);
        }
    };
    let mut all: Vec<Finding> = states
        .iter()
        .flat_map(|s| s.findings.iter().cloned())
        .collect();
    findings::sort(&mut all);
    let graphs: Vec<GraphSummary> = states
        .iter()
        .flat_map(DesiredState::valid_graphs)
        .map(|g| GraphSummary {
            project: g.project.clone(),
            id: g.id().to_owned(),
            services: g.descriptor.hda_graph.services.len(),
            im_version: g.descriptor.hda_graph.im_version.0.clone(),
        })
        .collect();
    let errors = all.iter().filter(|f| f.is_error()).count();
    let warnings = all.len() - errors;
    let invalid = states
        .iter()
        .flat_map(|s| &s.graphs)
        .filter(|g| g.graph.is_none())
        .count();
    match args.format {
        Format::Text => {
            for f in &all {
                writeln!(out, "{f}")?;
            }
            writeln!(
                out,
                "{} valid graph(s), {invalid} invalid; {errors} error(s), {warnings} warning(s)",
                graphs.len()
            )?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut *out,
                &Report {
                    findings: all,
                    graphs,
                },
            )?;
            writeln!(out)?;
        }
    }
    Ok(i32::from(errors > 0))
}
