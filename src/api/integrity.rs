//! The digest headers of every upload and download surface: RFC 9530's `Content-Digest` and
//! `Repr-Digest` (`sha-256=:base64:`, `sha-512` too), Artifactory's `X-Checksum-Sha256`,
//! `X-Checksum-Sha1`, `X-Checksum-Md5` (hex) and `X-Checksum-Deploy: true`.

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;

use crate::domain::Error;
use crate::store::checksum::Expected;

/// What an upload's headers declare: the digests its body must have, and whether it is a deploy
/// by checksum. Malformed or contradicting headers are a 400 naming the header.
pub fn declared(headers: &HeaderMap) -> Result<(Expected, bool), Error> {
    let mut expected = Expected::default();
    for name in ["content-digest", "repr-digest"] {
        for value in headers.get_all(name) {
            let text = value
                .to_str()
                .map_err(|_| bad_header(name, "is not ASCII"))?;
            for (algorithm, hex) in parse_digest_field(text).map_err(|p| bad_header(name, &p))? {
                let slot = match algorithm.as_str() {
                    "sha-256" => &mut expected.sha256,
                    "sha-512" => &mut expected.sha512,
                    // RFC 9530 §2: algorithms a server does not know are ignored.
                    _ => continue,
                };
                set(slot, hex, name)?;
            }
        }
    }
    for (name, len) in [
        ("x-checksum-sha256", 64),
        ("x-checksum-sha1", 40),
        ("x-checksum-md5", 32),
    ] {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let hex = value
            .to_str()
            .ok()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| bad_header(name, &format!("must be {len} hexadecimal digits")))?;
        let slot = match name {
            "x-checksum-sha256" => &mut expected.sha256,
            "x-checksum-sha1" => &mut expected.sha1,
            _ => &mut expected.md5,
        };
        set(slot, hex, name)?;
    }
    let deploy = match headers.get("x-checksum-deploy") {
        None => false,
        Some(value) => match value.to_str().map(|v| v.trim().to_ascii_lowercase()) {
            Ok(v) if v == "true" => true,
            Ok(v) if v == "false" => false,
            _ => return Err(bad_header("x-checksum-deploy", "must be true or false")),
        },
    };
    Ok((expected, deploy))
}

fn bad_header(name: &str, problem: &str) -> Error {
    Error::bad(format!("The {name} header {problem}"))
}

/// Records a declared digest; the same algorithm declared twice must agree.
fn set(slot: &mut Option<String>, hex: String, name: &str) -> Result<(), Error> {
    match slot {
        Some(earlier) if *earlier != hex => Err(bad_header(
            name,
            "contradicts another digest header of the request",
        )),
        _ => {
            *slot = Some(hex);
            Ok(())
        }
    }
}

/// The members of an RFC 9530 digest field (an RFC 8941 dictionary of byte sequences), as
/// (algorithm, lower-case hex). Parameters after a member are allowed and ignored.
fn parse_digest_field(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for member in text.split(',') {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .ok_or_else(|| format!("has a member without a value: {member:?}"))?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b))
        {
            return Err(format!("has an invalid algorithm name: {key:?}"));
        }
        let value = value.trim();
        let encoded = value
            .strip_prefix(':')
            .and_then(|rest| rest.split_once(':'))
            .filter(|(_, params)| params.is_empty() || params.starts_with(';'))
            .map(|(encoded, _)| encoded)
            .ok_or_else(|| format!("value of {key} is not a byte sequence (:base64:)"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| format!("value of {key} is not valid base64"))?;
        let expected_len = match key {
            "sha-256" => Some(32),
            "sha-512" => Some(64),
            _ => None,
        };
        if expected_len.is_some_and(|len| len != bytes.len()) {
            return Err(format!("value of {key} has the wrong length"));
        }
        out.push((key.to_string(), hex::encode(bytes)));
    }
    Ok(out)
}

/// `sha-256=:<base64>:` for a download's `Repr-Digest`.
pub fn repr_digest(sha256_hex: &str) -> Option<HeaderValue> {
    let bytes = hex::decode(sha256_hex).ok()?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    HeaderValue::from_str(&format!("sha-256=:{encoded}:")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    // sha256("abc")
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const ABC_B64: &str = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

    #[test]
    fn rfc_9530_fields_and_hex_headers_are_read() {
        let field = format!("sha-256=:{ABC_B64}:, unixsum=:AAA=:");
        let (expected, deploy) = declared(&headers(&[("content-digest", &field)])).unwrap();
        assert_eq!(expected.sha256.as_deref(), Some(ABC));
        assert!(!deploy);
        let (expected, deploy) = declared(&headers(&[
            ("repr-digest", &format!("sha-256=:{ABC_B64}:;x=1")),
            ("x-checksum-sha256", &ABC.to_uppercase()),
            ("x-checksum-deploy", "true"),
        ]))
        .unwrap();
        assert_eq!(expected.sha256.as_deref(), Some(ABC));
        assert!(deploy);
        assert_eq!(
            repr_digest(ABC).unwrap().to_str().unwrap(),
            format!("sha-256=:{ABC_B64}:")
        );
    }

    #[test]
    fn malformed_or_contradicting_headers_are_refused() {
        for bad in [
            vec![("content-digest", "sha-256=abc")],
            vec![("content-digest", "sha-256=:!!:")],
            vec![("content-digest", "sha-256=:AAAA:")],
            vec![("x-checksum-sha1", "xyz")],
            vec![("x-checksum-deploy", "yes")],
            vec![
                ("content-digest", &*format!("sha-256=:{ABC_B64}:")),
                ("x-checksum-sha256", &*"0".repeat(64)),
            ],
        ] {
            assert!(declared(&headers(&bad)).is_err(), "{bad:?}");
        }
    }
}
