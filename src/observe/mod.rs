//! The observed world, as the planner sees it. Pure: adapters (the offline
//! inventory file, later Karmada) produce an [`Inventory`](crate::spec::inventory::Inventory);
//! this module merges it with the operators' cluster metadata.

pub mod clusters;
