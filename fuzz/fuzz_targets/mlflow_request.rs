//! MLflow request decoding: query string and JSON body into parameters, every typed accessor,
//! and the search filter and order-by parsers. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelyard::api::mlflow::request::{metric, MlflowParams};
use modelyard::api::mlflow::search::{parse_filter, parse_order_by};

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|b| *b == 0) {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    if let Ok(params) = MlflowParams::decode(query, body) {
        let _ = params.key_value();
        let _ = params.run_id();
        let _ = params.i64("max_results");
        let _ = params.bool("archive_existing_versions");
        let _ = params.strings("experiment_ids");
        let _ = params.key_values("tags");
        let _ = params.metrics("metrics");
        let _ = params.metric_value("value");
        let _ = metric(&params);
        if let Ok(Some(filter)) = params.str("filter") {
            let _ = parse_filter(&filter);
        }
        if let Ok(order_by) = params.strings("order_by") {
            let _ = parse_order_by(&order_by);
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_filter(text);
        let _ = parse_order_by(&[text.to_string()]);
    }
});
