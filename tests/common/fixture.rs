//! The data dir of the v0.1 release kept under `fixtures/` (made by `fixtures/make-v0.1.sh`),
//! what its `v0.1-expected.json` says it holds, and the small readers the tests of it share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The facts `fixtures/v0.1-expected.json` records about the v0.1 data dir.
pub fn v0_1_expected() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("v0.1-expected.json"))
        .expect("fixtures/v0.1-expected.json");
    serde_json::from_str(&text).expect("expected JSON")
}

/// A private copy of the v0.1 data dir at `<temp>/data`, so the committed fixture is never
/// modified.
pub fn v0_1_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("temp dir");
    super::copy_tree(
        &fixture_dir().join("v0.1-datadir"),
        &copy.path().join("data"),
    );
    copy
}

pub fn list<'a>(expected: &'a Value, key: &str) -> &'a Vec<Value> {
    expected[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in the expected JSON"))
}

pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

pub fn n(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path for the URL: each segment percent-encoded, the slashes kept.
pub fn path_encode(path: &str) -> String {
    path.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}
