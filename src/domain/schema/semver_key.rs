//! An order-preserving byte encoding of SemVer 2.0.0 versions: comparing two encodings byte by
//! byte gives `semver::Version`'s own order (precedence, then build metadata as the tie-break),
//! so an ordered index walks versions newest or oldest first without decoding anything.
//!
//! Layout: major, minor and patch as big-endian u64; the prerelease identifiers (numeric ones
//! as `0x01`, digit count, digits; others as `0x02`, bytes, `0x00`) closed by `0x00`, or `0xFF`
//! for a release, which so sorts above its prereleases; then the build identifiers the same way
//! (numeric ones ordered as the semver crate does: significant digits, then total length)
//! closed by `0x00`.

use semver::Version;

const NUMERIC: u8 = 0x01;
const ALPHANUMERIC: u8 = 0x02;
const END: u8 = 0x00;
const RELEASE: u8 = 0xFF;

fn is_numeric(identifier: &str) -> bool {
    identifier.bytes().all(|b| b.is_ascii_digit())
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
}

fn push_alphanumeric(out: &mut Vec<u8>, identifier: &str) {
    out.push(ALPHANUMERIC);
    out.extend_from_slice(identifier.as_bytes());
    out.push(END);
}

/// The precedence part alone: equal for versions that differ only in build metadata.
pub fn precedence_key(version: &Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&version.major.to_be_bytes());
    out.extend_from_slice(&version.minor.to_be_bytes());
    out.extend_from_slice(&version.patch.to_be_bytes());
    if version.pre.is_empty() {
        out.push(RELEASE);
    } else {
        for identifier in version.pre.as_str().split('.') {
            if is_numeric(identifier) {
                out.push(NUMERIC);
                push_len(&mut out, identifier.len());
                out.extend_from_slice(identifier.as_bytes());
            } else {
                push_alphanumeric(&mut out, identifier);
            }
        }
        out.push(END);
    }
    out
}

/// The full key: precedence, then build metadata.
pub fn version_key(version: &Version) -> Vec<u8> {
    let mut out = precedence_key(version);
    if !version.build.is_empty() {
        for identifier in version.build.as_str().split('.') {
            if is_numeric(identifier) {
                let significant = identifier.trim_start_matches('0');
                out.push(NUMERIC);
                push_len(&mut out, significant.len());
                out.extend_from_slice(significant.as_bytes());
                push_len(&mut out, identifier.len());
            } else {
                push_alphanumeric(&mut out, identifier);
            }
        }
    }
    out.push(END);
    out
}

/// The smallest key of every version with this major, minor and patch (its prereleases first).
pub fn triple_floor(major: u64, minor: u64, patch: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&major.to_be_bytes());
    out.extend_from_slice(&minor.to_be_bytes());
    out.extend_from_slice(&patch.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn the_spec_examples_sort_in_order() {
        // semver.org §11, plus build metadata tie-breaks.
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.0+0",
            "1.0.0+00",
            "1.0.0+1",
            "1.0.0+a",
            "1.0.1",
            "1.9.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (v(pair[0]), v(pair[1]));
            assert!(a < b, "semver: {a} < {b}");
            assert!(version_key(&a) < version_key(&b), "key: {a} < {b}");
        }
        assert_eq!(precedence_key(&v("1.0.0+a")), precedence_key(&v("1.0.0+b")));
        assert!(triple_floor(1, 0, 0) < version_key(&v("1.0.0-0")));
        assert!(version_key(&v("0.9.9")) < triple_floor(1, 0, 0));
    }

    fn identifier(numeric_leading_zeros: bool) -> impl Strategy<Value = String> {
        let numeric = if numeric_leading_zeros {
            "[0-9]{1,4}".boxed()
        } else {
            prop_oneof!["0", "[1-9][0-9]{0,3}"].boxed()
        };
        prop_oneof![numeric, "[0-9A-Za-z-]{0,3}[A-Za-z-][0-9A-Za-z-]{0,3}"]
    }

    fn version() -> impl Strategy<Value = Version> {
        (
            0u64..4,
            prop_oneof![0u64..3, Just(u64::MAX)],
            0u64..12,
            prop::collection::vec(identifier(false), 0..4),
            prop::collection::vec(identifier(true), 0..3),
        )
            .prop_map(|(major, minor, patch, pre, build)| {
                let mut text = format!("{major}.{minor}.{patch}");
                if !pre.is_empty() {
                    text.push('-');
                    text.push_str(&pre.join("."));
                }
                if !build.is_empty() {
                    text.push('+');
                    text.push_str(&build.join("."));
                }
                Version::parse(&text).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn keys_order_as_semver_orders(a in version(), b in version()) {
            prop_assert_eq!(version_key(&a).cmp(&version_key(&b)), a.cmp(&b), "{} vs {}", a, b);
            prop_assert_eq!(
                precedence_key(&a).cmp(&precedence_key(&b)),
                a.cmp_precedence(&b),
                "precedence {} vs {}", a, b
            );
        }

        #[test]
        fn equal_keys_are_equal_versions(a in version(), b in version()) {
            prop_assert_eq!(version_key(&a) == version_key(&b), a == b);
        }
    }
}
