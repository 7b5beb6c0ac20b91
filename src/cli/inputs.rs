//! What the offline planning subcommands (`smo plan`, `smo render`) read
//! first: the state root and the cluster inventory, with the same messages
//! and exit code when either cannot be used.

use crate::desired::loader::load_root_with;
use crate::desired::{Artifacts, DesiredState};
use crate::spec::inventory::{self, Inventory};
use std::path::Path;

/// Loads the state root and the inventory; on failure, reports why on
/// stderr (prefixed with `smo COMMAND:`) and returns the exit code 2.
pub fn load(
    command: &str,
    state: &Path,
    inventory: &Path,
    artifacts: Option<&dyn Artifacts>,
) -> Result<(DesiredState, Inventory), i32> {
    let state = load_root_with(state, artifacts).map_err(|e| {
        eprintln!("smo {command}: {e}");
        2
    })?;
    let inventory = inventory::load(inventory).map_err(|found| {
        eprintln!(
            "smo {command}: the inventory {} is invalid:",
            inventory.display()
        );
        for f in found {
            eprintln!("{f}");
        }
        2
    })?;
    Ok((state, inventory))
}
