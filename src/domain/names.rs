//! Validation of the names clients choose: package names, versions, file names and paths, as
//! GitLab's generic and ML model package APIs accept them.

use std::sync::LazyLock;

use regex::Regex;

use super::error::{Error, Result};

static PACKAGE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._+-]+$").expect("static regex"));
/// GitLab's generic package version: word characters, `+` and `-`, with single dots between.
static PACKAGE_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\.?[A-Za-z0-9_+-]+\.?)+$").expect("static regex"));
static GENERIC_FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._+-]+$").expect("static regex"));
static MODEL_FILE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._+ -]+$").expect("static regex"));
/// GitLab's ML model name format: ASCII letters, digits, `_ . - / @`; `+` only before a `/`.
static MODEL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@?([A-Za-z0-9_.+-]*/)*[A-Za-z0-9_.-]+@?([A-Za-z0-9_.+-]*/)*[A-Za-z0-9_.-]*$")
        .expect("static regex")
});
static USERNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$").expect("static regex"));
static PROJECT_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$").expect("static regex"));

/// GitLab's traversal rule: refuse `.`/`..`, a leading `../`, a trailing `/..`, an inner
/// `/../` (with `/` or `\`), a newline, or an absolute path.
pub fn is_traversal(value: &str) -> bool {
    let v = value.replace('\\', "/");
    v == "."
        || v == ".."
        || v.starts_with("../")
        || v.ends_with("/..")
        || v.contains("/../")
        || v.contains("/./")
        || v.ends_with("/.")
        || v.starts_with("./")
        || v.contains('\n')
        || v.contains('\r')
        || v.contains('\0')
        || v.starts_with('/')
        || (v.len() >= 2 && v.as_bytes()[1] == b':')
}

fn checked_path_param(param: &str, value: &str) -> Result<()> {
    if is_traversal(value) {
        return Err(Error::invalid_path(param));
    }
    Ok(())
}

pub fn package_name(name: &str) -> Result<()> {
    checked_path_param("package_name", name)?;
    if name.len() > 255 || !PACKAGE_NAME.is_match(name) {
        return Err(Error::invalid("package_name"));
    }
    Ok(())
}

pub fn package_version(version: &str) -> Result<()> {
    if version.len() > 255 || version.contains("..") || !PACKAGE_VERSION.is_match(version) {
        return Err(Error::invalid("package_version"));
    }
    Ok(())
}

/// A file name of the generic API (no spaces).
pub fn generic_file_name(file_name: &str) -> Result<()> {
    checked_path_param("file_name", file_name)?;
    if file_name.len() > 255 || !GENERIC_FILE_NAME.is_match(file_name) {
        return Err(Error::invalid("file_name"));
    }
    Ok(())
}

/// A file name of the ML model files API (spaces allowed).
pub fn model_file_name(file_name: &str) -> Result<()> {
    checked_path_param("file_name", file_name)?;
    if file_name.len() > 255 || !MODEL_FILE_NAME.is_match(file_name) {
        return Err(Error::invalid("file_name"));
    }
    Ok(())
}

/// The optional directory part before a file name. Every segment must be non-empty and no
/// segment may climb out; no backslashes (a separator on Windows clients) or control characters.
pub fn file_path(path: &str) -> Result<()> {
    checked_path_param("path", path)?;
    if path.len() > 1024
        || path.contains('\\')
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(Error::invalid_path("path"));
    }
    Ok(())
}

/// A model name: GitLab's format, at most 255 characters, and no segment that climbs.
pub fn model_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::bad("model name must not be empty"));
    }
    if name.chars().count() > 255 {
        return Err(Error::bad("model name is too long: at most 255 characters"));
    }
    if !MODEL_NAME.is_match(name)
        || is_traversal(name)
        || name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Error::bad(format!(
            "model name '{name}' is invalid: use ASCII letters, digits and _ . - @, with / only between non-empty segments (no spaces). A model's name is also the package name of its versions' files in URLs (GitLab's package name rule), so characters MLflow would allow, like spaces, are refused"
        )));
    }
    Ok(())
}

pub fn username(name: &str) -> Result<()> {
    if !USERNAME.is_match(name) || name.ends_with('.') {
        return Err(Error::invalid("username"));
    }
    Ok(())
}

pub fn project_path(path: &str) -> Result<()> {
    if !PROJECT_PATH.is_match(path) || path.ends_with('.') || path.ends_with(".git") {
        return Err(Error::invalid("path"));
    }
    Ok(())
}

/// A project path derived from a display name: GitLab lower-cases it and turns spaces into dashes.
pub fn path_from_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_gitlab() {
        for ok in [
            "1.2.3",
            "1.2",
            "v1.2.4-build",
            "1.2.3+meta",
            "deadbeef",
            "1.0.0-rc.1",
        ] {
            assert!(package_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "..1.2.3",
            "1.2.3-4/../../",
            "../1.2.3",
            "1.2..3",
            "",
            "1 2",
            "a/b",
            // Found by the `names` fuzz target: a lone dot is a path segment, not a version.
            ".",
        ] {
            assert!(package_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_file_names_refuse_traversal() {
        assert!(package_name("my-package").is_ok());
        assert!(package_name("my_pkg.v2+x").is_ok());
        for bad in ["my-package/../", "..", ".", "a b", "a/b", ""] {
            assert!(package_name(bad).is_err(), "{bad}");
        }
        assert!(generic_file_name("model.onnx").is_ok());
        for bad in [
            "../.ssh/authorized_keys",
            ".ssh/authorized_keys",
            "a b",
            "..",
            "x\ny",
        ] {
            assert!(generic_file_name(bad).is_err(), "{bad}");
        }
        assert!(model_file_name("my model.pkl").is_ok());
        assert!(model_file_name("../x").is_err());
    }

    #[test]
    fn model_names_follow_gitlab() {
        for ok in [
            "fraud",
            "team/fraud-v2",
            "my_model.onnx",
            "@scope/model",
            "a+b/c",
        ] {
            assert!(model_name(ok).is_ok(), "{ok}");
        }
        let long = "m".repeat(256);
        for bad in [
            "",
            "has space",
            "a/../b",
            "..",
            long.as_str(),
            "a+b",
            "tab\tname",
            "ends/",
            "/starts",
            "double//slash",
        ] {
            assert!(model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_may_nest_but_not_climb() {
        assert!(file_path("a/b/c").is_ok());
        for bad in [
            "..", "../x", "a/../b", "a/..", "/etc", "a//b", "a/./b", "C:/x", "a\\..\\b",
            // Found by the `names` fuzz target: backslashes and control characters.
            "%\\b%[b", "a\tb",
        ] {
            assert!(file_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn traversal_errors_name_the_parameter() {
        let err = generic_file_name("../x").unwrap_err();
        assert_eq!(err.to_string(), "file_name should be a valid file path");
        let err = package_version("..1").unwrap_err();
        assert_eq!(err.to_string(), "package_version is invalid");
    }
}
