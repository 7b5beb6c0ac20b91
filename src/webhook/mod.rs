//! Alertmanager webhook payloads and how their alerts become triggers.
