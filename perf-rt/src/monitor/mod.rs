//! Performance monitor: server timings, resources and browser metrics in one dashboard.

pub mod client;
