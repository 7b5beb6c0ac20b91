//! Real Prometheus and Alertmanager processes for the conditional-deployment and scaling tests.
