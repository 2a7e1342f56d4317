//! `tessera-bench --metrics`: the libraries' metrics recorded as a deployed service
//! records them, to measure what recording costs against a run without a recorder.

use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs a Prometheus recorder (histograms with buckets, as the shop's) as the
/// process's global recorder, with a thread draining its histograms every 5 s, as
/// the shop's does. The handle renders what was recorded.
pub fn install() -> Result<PrometheusHandle, String> {
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| e.to_string())?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        })
        .map_err(|e| e.to_string())?;
    Ok(handle)
}
