//! The daemon's metrics registry, rendered in the Prometheus text format.
