//! Prometheus alert rules for event-triggered services.
