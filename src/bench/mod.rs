//! Benchmark instance generators.
