//! Generic package paths and every name/version/file-name validator: never a panic, and nothing
//! accepted may climb out of its package (`..`, `.`, backslashes, encoded or not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelyard::api::gitlab::generic::split_generic_path;
use modelyard::domain::names;

fn climbs(value: &str) -> bool {
    value.split('/').any(|s| s == ".." || s == ".") || value.contains('\\')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Splitting only cuts the URL; what passes the validators after it must not climb.
    let valid = |parts: &modelyard::domain::package_paths::GenericPath| {
        names::package_name(&parts.name).is_ok()
            && names::package_version(&parts.version).is_ok()
            && names::generic_file_name(&parts.file_name).is_ok()
            && parts.path.as_deref().is_none_or(|p| names::file_path(p).is_ok())
    };
    if let Some(parts) = split_generic_path(text).ok().filter(valid) {
        assert!(!climbs(&parts.name), "{text:?} → name {:?}", parts.name);
        assert!(!climbs(&parts.version), "{text:?} → version {:?}", parts.version);
        assert!(!climbs(&parts.file_name), "{text:?} → file {:?}", parts.file_name);
        if let Some(path) = &parts.path {
            assert!(!climbs(path), "{text:?} → path {path:?}");
        }
    }
    for (accepted, what) in [
        (names::package_name(text).is_ok(), "package name"),
        (names::package_version(text).is_ok(), "package version"),
        (names::generic_file_name(text).is_ok(), "file name"),
        (names::model_file_name(text).is_ok(), "model file name"),
        (names::file_path(text).is_ok(), "file path"),
        (names::model_name(text).is_ok(), "model name"),
    ] {
        if accepted {
            assert!(!climbs(text), "{what} {text:?} climbs");
            assert!(!text.is_empty(), "empty {what}");
        }
    }
    let _ = names::username(text);
    let _ = names::project_path(text);
    let _ = names::path_from_name(text);
    let _ = names::is_traversal(text);
});
