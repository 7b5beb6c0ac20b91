//! Intent translation: compute classes to resources, with the table from
//! `smo.yaml` (DESIGN.md defaults otherwise).

use crate::descriptor::model::Service;
use crate::spec::settings::IntentTable;
use serde::Serialize;

/// What one replica of a service needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu_cores: f64,
    pub memory_bytes: f64,
    pub storage_bytes: f64,
    pub gpu: bool,
}

pub fn translate(service: &Service, table: &IntentTable) -> Resources {
    let c = &service.deployment.intent.compute;
    Resources {
        cpu_cores: table.cpu(c.cpu),
        memory_bytes: table.ram(c.ram),
        storage_bytes: table.storage(c.storage),
        gpu: c.gpu.on(),
    }
}
