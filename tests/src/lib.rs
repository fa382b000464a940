//! Integration tests of perf-suite.
