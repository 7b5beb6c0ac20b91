//! Where a desired-state revision came from: for a Git source the commit
//! (author, committer, date, subject); for a directory only its digest.
//! Sources produce it, the store keeps it with the journal and each graph,
//! and events carry it. It imports nothing of smo's.

use serde::{Deserialize, Serialize};

/// The Git commit a revision is. Author and committer are written as Git
/// shows them, `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub author: String,
    pub committer: String,
    /// Unix seconds: the committer's date.
    pub date: i64,
    /// The first line of the message.
    pub subject: String,
}

/// The revision in force when smo acted, and its commit for a Git source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// A commit SHA, or `sha256:<hex>` of a directory's content.
    pub revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Commit>,
}

/// The revision that last changed a graph's descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    #[serde(flatten)]
    pub cause: Cause,
    /// The descriptor file that changed, relative to the state root.
    pub file: String,
    /// Unix seconds: when smo first saw the change.
    pub seen_at: u64,
}

impl Commit {
    /// `subject (author)`, for one line of a table.
    pub fn headline(&self) -> String {
        format!("{} ({})", self.subject, self.author)
    }
}
