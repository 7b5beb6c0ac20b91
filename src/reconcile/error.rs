//! Typed failures of a reconcile step. Every adapter error converts into a
//! [`StepError`] by `From`, keeping whether retrying can help
//! ([`Transient`]) and a low-cardinality [`Reason`] that renders its own
//! metric label, so nothing downstream searches a message for a word.

use crate::adapters::grafana::GrafanaError;
use crate::adapters::helm::HelmError;
use crate::adapters::karmada::KarmadaError;
use crate::release::chart::ChartError;
use crate::retry::Transient;
use crate::store::StoreError;
use std::fmt;

/// What kind of thing failed: the label of `smo_reconcile_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidDescriptor,
    Placement,
    Chart,
    Helm,
    Karmada,
    Rules,
    Dashboards,
    Store,
    /// A manifest smo recorded or helm printed cannot be read.
    Manifest,
    /// Acting would touch something smo does not own.
    Ownership,
    /// A task of smo's own failed (a panic in a blocking task).
    Internal,
}

impl Reason {
    /// The metric label (stable: dashboards and alerts select on it).
    pub fn label(self) -> &'static str {
        match self {
            Reason::InvalidDescriptor => "invalid_descriptor",
            Reason::Placement => "placement",
            Reason::Chart => "chart",
            Reason::Helm => "helm",
            Reason::Karmada => "karmada",
            Reason::Rules => "rules",
            Reason::Dashboards => "dashboards",
            Reason::Store => "store",
            Reason::Manifest => "manifest",
            Reason::Ownership => "ownership",
            Reason::Internal => "other",
        }
    }
}

/// A failure of one step: transient ones are retried with back-off,
/// terminal ones wait for a change of the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub reason: Reason,
    pub transient: bool,
    pub message: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StepError {
    pub fn transient(reason: Reason, message: impl Into<String>) -> Self {
        StepError {
            reason,
            transient: true,
            message: message.into(),
        }
    }

    pub fn terminal(reason: Reason, message: impl Into<String>) -> Self {
        StepError {
            reason,
            transient: false,
            message: message.into(),
        }
    }

    fn of(reason: Reason, e: &(impl Transient + fmt::Display)) -> Self {
        StepError {
            reason,
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }

    /// The one to report of two failures: a terminal error outranks a
    /// transient one (retrying cannot help), otherwise the later wins.
    pub fn worse(a: Option<StepError>, b: StepError) -> StepError {
        match a {
            Some(a) if !a.transient => a,
            _ => b,
        }
    }
}

impl From<HelmError> for StepError {
    fn from(e: HelmError) -> Self {
        StepError::of(Reason::Helm, &e)
    }
}

impl From<KarmadaError> for StepError {
    fn from(e: KarmadaError) -> Self {
        StepError::of(Reason::Karmada, &e)
    }
}

impl From<GrafanaError> for StepError {
    fn from(e: GrafanaError) -> Self {
        StepError::of(Reason::Dashboards, &e)
    }
}

impl From<super::rulesync::RuleError> for StepError {
    fn from(e: super::rulesync::RuleError) -> Self {
        StepError::of(Reason::Rules, &e)
    }
}

impl From<ChartError> for StepError {
    fn from(e: ChartError) -> Self {
        // The chart directory is part of the desired state: only an edit
        // can repair it.
        StepError::terminal(Reason::Chart, e.to_string())
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::transient(Reason::Store, format!("state store: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_error_outranks_a_transient_one() {
        let t = StepError::transient(Reason::Helm, "busy");
        let f = StepError::terminal(Reason::Chart, "bad chart");
        assert_eq!(StepError::worse(Some(f.clone()), t.clone()), f);
        assert_eq!(StepError::worse(Some(t.clone()), f.clone()), f);
        assert_eq!(StepError::worse(None, t.clone()), t);
        assert_eq!(Reason::InvalidDescriptor.label(), "invalid_descriptor");
    }
}
