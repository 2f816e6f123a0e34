//! Prometheus metrics: requests by route and status, latency, bytes in and out, uploads in
//! progress. Rendered in the text exposition format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Telemetry {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    uploads_in_progress: AtomicI64,
}

/// Counts an upload as in progress for as long as it lives.
pub struct UploadInProgress(Arc<Telemetry>);

impl Drop for UploadInProgress {
    fn drop(&mut self) {
        self.0.uploads_in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Telemetry {
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((route.to_string(), method.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let histogram = latency.entry(route.to_string()).or_default();
            let seconds = elapsed.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    histogram.counts[i] += 1;
                }
            }
            histogram.count += 1;
            histogram.sum_seconds += seconds;
        }
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    pub fn upload_started(self: &Arc<Self>) -> UploadInProgress {
        self.uploads_in_progress.fetch_add(1, Ordering::Relaxed);
        UploadInProgress(self.clone())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP modelyard_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE modelyard_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "modelyard_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                    escape(route),
                    method,
                    status,
                    n
                );
            }
        }
        out.push_str(
            "# HELP modelyard_http_request_duration_seconds Time to the response head, by route.\n",
        );
        out.push_str("# TYPE modelyard_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, h) in latency.iter() {
                let route = escape(route);
                for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ = writeln!(
                        out,
                        "modelyard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "modelyard_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "modelyard_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "modelyard_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        let gauges = [
            (
                "modelyard_http_received_bytes_total",
                "counter",
                "Request body bytes received.",
                self.bytes_in.load(Ordering::Relaxed) as i64,
            ),
            (
                "modelyard_http_sent_bytes_total",
                "counter",
                "Response body bytes sent.",
                self.bytes_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "modelyard_uploads_in_progress",
                "gauge",
                "File uploads being received now.",
                self.uploads_in_progress.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let t = Arc::new(Telemetry::default());
        t.record_request("/x/{id}", "GET", 200, Duration::from_millis(3));
        t.record_request("/x/{id}", "GET", 200, Duration::from_secs(2));
        t.add_bytes_in(10);
        let guard = t.upload_started();
        let text = t.render();
        assert!(text.contains(
            "modelyard_http_requests_total{route=\"/x/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "modelyard_http_request_duration_seconds_bucket{route=\"/x/{id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("modelyard_http_request_duration_seconds_count{route=\"/x/{id}\"} 2"));
        assert!(text.contains("modelyard_http_received_bytes_total 10"));
        assert!(text.contains("modelyard_uploads_in_progress 1"));
        drop(guard);
        assert!(t.render().contains("modelyard_uploads_in_progress 0"));
    }
}
