//! The HTTP endpoint (tiny_http): Alertmanager webhook, health, readiness, metrics.
