//! Placeholder replaced by the browser-metrics branch.
#![allow(missing_docs, dead_code)]
use std::net::IpAddr;
pub const SCRIPT: &str = "";
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub max_body_bytes: usize,
    pub burst: u32,
    pub per_minute: u32,
    pub max_clients: usize,
    pub max_routes: usize,
}
#[derive(Debug)]
pub struct ClientMetrics;
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientReport {
    pub accepted: u64,
    pub rejected: u64,
    pub rate_limited: u64,
    pub routes:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, MetricSummary>>,
}
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MetricSummary {
    pub count: u64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}
#[derive(Debug)]
pub enum BeaconError {
    RateLimited,
}
impl BeaconError {
    pub fn status(&self) -> u16 {
        429
    }
}
impl std::fmt::Display for BeaconError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rate limited")
    }
}
impl ClientMetrics {
    pub fn new(_c: ClientConfig) -> Self {
        ClientMetrics
    }
    pub fn ingest(
        &self,
        _p: IpAddr,
        _b: &[u8],
        _k: &dyn Fn(&str) -> bool,
    ) -> Result<usize, BeaconError> {
        Err(BeaconError::RateLimited)
    }
    pub fn report(&self) -> ClientReport {
        ClientReport::default()
    }
    pub fn clear(&self) {}
}
