//! SemVer versions and requirements: never a panic; a resolved version always matches its
//! requirement and no matching version is higher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelyard::domain::semver_rules::{latest, next_patch, parse_requirement, parse_version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (requirement, candidates) = text.split_once('\n').unwrap_or((text, ""));
    let versions: Vec<semver::Version> = candidates
        .split_whitespace()
        .filter_map(|v| parse_version(v).ok())
        .collect();
    if let Some(top) = latest(versions.iter()) {
        assert!(next_patch(Some(top)) > *top);
    }
    if let Ok(parsed) = parse_requirement(requirement) {
        if let Some(best) = parsed.resolve(versions.iter()) {
            assert!(parsed.matches(best), "{requirement:?} resolved to {best} which it does not match");
            for v in &versions {
                if parsed.matches(v) {
                    assert!(v.cmp_precedence(best) != std::cmp::Ordering::Greater, "{v} beats {best}");
                }
            }
        }
    }
});
