//! Prometheus HTTP API: instant queries and configuration reload.
