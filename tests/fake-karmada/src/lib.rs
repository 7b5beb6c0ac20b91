//! Fake Karmada API server (test-only).
