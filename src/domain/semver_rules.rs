//! Versions of models are Semantic Versioning 2.0.0 strings: parsing, ordering, the automatic
//! patch bump, and resolution of a requirement (`^1.2`, `~1.2`, `1.x`, `>=1.2, <2`, `latest`).

use semver::{BuildMetadata, Version, VersionReq};

use super::error::{Error, Result};

pub const SEMVER_RULE: &str = "must follow semantic versioning 2.0.0 (MAJOR.MINOR.PATCH with optional -prerelease and +build, no leading zeros, no 'v' prefix), e.g. 1.2.3 or 1.2.3-rc.1";

/// Parses a model version; the error says what the rule is.
pub fn parse_version(raw: &str) -> Result<Version> {
    if raw.len() > 255 {
        let start: String = raw.chars().take(16).collect();
        return Err(Error::bad(format!(
            "version '{start}…' is too long: at most 255 characters"
        )));
    }
    Version::parse(raw).map_err(|e| Error::bad(format!("version '{raw}' {SEMVER_RULE} ({e})")))
}

/// The version that follows `latest` when none is given: a patch bump (`1.2.3` → `1.2.4`); a
/// prerelease becomes its release (`2.0.0-rc.1` → `2.0.0`); the first version is `1.0.0`. A
/// latest version whose patch number is the largest there is has no next patch: a 400 that names
/// it, so that the caller gives a version explicitly (the bump never wraps around to `x.y.0`).
pub fn next_patch(latest: Option<&Version>) -> Result<Version> {
    match latest {
        None => Ok(Version::new(1, 0, 0)),
        Some(v) if !v.pre.is_empty() => Ok(Version::new(v.major, v.minor, v.patch)),
        Some(v) => match v.patch.checked_add(1) {
            Some(patch) => Ok(Version::new(v.major, v.minor, patch)),
            None => Err(Error::bad(format!(
                "the latest version {v} has the largest possible patch number, so no next version can be chosen automatically: give the version explicitly"
            ))),
        },
    }
}

/// The highest version by SemVer precedence (build metadata does not count).
pub fn latest<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Option<&'a Version> {
    versions
        .into_iter()
        .max_by(|a, b| a.cmp_precedence(b).then_with(|| a.cmp(b)))
}

/// A parsed requirement.
#[derive(Debug, Clone)]
pub enum Requirement {
    /// The highest release (prereleases excluded).
    Latest,
    Range {
        req: VersionReq,
        names_prerelease: bool,
    },
}

/// Parses `latest`, `*`, `1.x`, `^1.2`, `~1.2`, `>=1.2, <2`, `=1.2.3`, `1.2` (= `^1.2`).
pub fn parse_requirement(raw: &str) -> Result<Requirement> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::bad("requirement is empty"));
    }
    if trimmed.eq_ignore_ascii_case("latest") {
        return Ok(Requirement::Latest);
    }
    if trimmed.len() > 255 {
        return Err(Error::bad(
            "requirement is too long: at most 255 characters",
        ));
    }
    let req = VersionReq::parse(trimmed).map_err(|e| {
        Error::bad(format!(
            "requirement '{trimmed}' is not a SemVer requirement ({e}); use e.g. ^1.2, ~1.2, 1.x, >=1.2, <2 or latest"
        ))
    })?;
    let names_prerelease = req.comparators.iter().any(|c| !c.pre.is_empty());
    Ok(Requirement::Range {
        req,
        names_prerelease,
    })
}

impl Requirement {
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            Requirement::Latest => version.pre.is_empty(),
            Requirement::Range {
                req,
                names_prerelease,
            } => {
                if version.pre.is_empty() {
                    return req.matches(version);
                }
                if !names_prerelease {
                    return false;
                }
                // A prerelease matches when the bounds admit it, whichever comparator names it:
                // `>=2.0.0-rc.1, <2.0.0` admits 2.0.0-rc.1.
                req.comparators
                    .iter()
                    .all(|c| comparator_admits(c, version))
            }
        }
    }

    /// Whether a prerelease can match at all (only when the requirement names one).
    pub fn admits_prereleases(&self) -> bool {
        matches!(
            self,
            Requirement::Range {
                names_prerelease: true,
                ..
            }
        )
    }

    /// Where matching versions lie: at or above the first triple (its prereleases included)
    /// and below the second, as far as the comparators bound them. A superset: callers still
    /// test [`Requirement::matches`].
    pub fn bounds(&self) -> (Option<Triple>, Option<Triple>) {
        let Requirement::Range { req, .. } = self else {
            return (None, None);
        };
        let mut lower: Option<Triple> = None;
        let mut upper: Option<Triple> = None;
        for c in &req.comparators {
            if let Some(floor) = comparator_floor(c) {
                lower = Some(lower.map_or(floor, |l| l.max(floor)));
            }
            if let Some(ceiling) = comparator_ceiling(c) {
                upper = Some(upper.map_or(ceiling, |u| u.min(ceiling)));
            }
        }
        (lower, upper)
    }

    /// The highest version matching this requirement.
    pub fn resolve<'a>(
        &self,
        versions: impl IntoIterator<Item = &'a Version>,
    ) -> Option<&'a Version> {
        latest(versions.into_iter().filter(|v| self.matches(v)))
    }
}

/// A version's major, minor and patch.
pub type Triple = (u64, u64, u64);

/// The lowest triple a comparator admits versions of.
fn comparator_floor(c: &semver::Comparator) -> Option<Triple> {
    use semver::Op;
    match c.op {
        Op::Less | Op::LessEq => None,
        _ => Some((c.major, c.minor.unwrap_or(0), c.patch.unwrap_or(0))),
    }
}

/// The first triple above every version a comparator admits.
fn comparator_ceiling(c: &semver::Comparator) -> Option<Triple> {
    use semver::Op;
    let next_major = || Some((c.major.checked_add(1)?, 0, 0));
    let next_minor = |minor: u64| Some((c.major, minor.checked_add(1)?, 0));
    match (c.op, c.minor, c.patch) {
        (Op::Greater | Op::GreaterEq, _, _) => None,
        (Op::Exact | Op::Less | Op::LessEq, Some(minor), Some(patch)) => {
            Some((c.major, minor, patch.checked_add(1)?))
        }
        (Op::Exact | Op::Less | Op::LessEq | Op::Tilde | Op::Wildcard, Some(minor), None) => {
            next_minor(minor)
        }
        (Op::Tilde, Some(minor), Some(_)) => next_minor(minor),
        (Op::Caret, Some(minor), patch) => match (c.major, minor, patch) {
            (0, 0, Some(patch)) => Some((0, 0, patch.checked_add(1)?)),
            (0, minor, _) => next_minor(minor),
            _ => next_major(),
        },
        (_, None, _) => next_major(),
        // An operator the semver crate may add later: no bound, the walk tests each version.
        _ => None,
    }
}

/// Whether one comparator admits `version` by plain precedence, prerelease included.
fn comparator_admits(c: &semver::Comparator, version: &Version) -> bool {
    use semver::Op;
    let bound = Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: BuildMetadata::EMPTY,
    };
    let ord = version.cmp_precedence(&bound);
    match c.op {
        Op::Greater => ord.is_gt(),
        Op::GreaterEq => ord.is_ge(),
        Op::Less => ord.is_lt(),
        Op::LessEq => ord.is_le(),
        Op::Exact => ord.is_eq(),
        // ^, ~ and wildcards: the semver crate's own rule for a single comparator.
        _ => VersionReq {
            comparators: vec![c.clone()],
        }
        .matches(version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn valid_and_invalid_versions() {
        for ok in [
            "1.2.3",
            "1.2.3-rc.1",
            "1.2.3+build.5",
            "0.0.0",
            "10.20.30-alpha.beta+exp.sha.5114f85",
        ] {
            assert!(parse_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1",
            "1.2",
            "v1.2.3",
            "1.2.3.beta",
            "01.2.3",
            "1.02.3",
            "",
            " 1.2.3",
            "1.2.3-",
        ] {
            let err = parse_version(bad).unwrap_err().to_string();
            assert!(err.contains("semantic versioning"), "{bad}: {err}");
        }
        // Found by the `semver_requirement` fuzz target: a long version whose 16th byte falls
        // inside a multi-byte character once panicked while quoting it.
        let long = format!("2.2 ){}", "¹".repeat(200));
        let err = parse_version(&long).unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn ordering_is_semver_precedence() {
        assert!(v("1.10.0") > v("1.9.0"));
        assert!(v("2.0.0-rc.1") < v("2.0.0"));
        assert!(v("2.0.0-rc.2") > v("2.0.0-rc.1"));
        let all = [v("1.9.0"), v("1.10.0"), v("2.0.0-rc.1")];
        assert_eq!(latest(all.iter()), Some(&v("2.0.0-rc.1")));
    }

    #[test]
    fn patch_bump() {
        let next = |latest: Option<&str>| next_patch(latest.map(v).as_ref()).map(|n| n.to_string());
        assert_eq!(next(None).unwrap(), "1.0.0");
        assert_eq!(next(Some("1.2.3")).unwrap(), "1.2.4");
        assert_eq!(next(Some("1.2.3+b.1")).unwrap(), "1.2.4");
        assert_eq!(next(Some("2.0.0-rc.1")).unwrap(), "2.0.0");
        let max = format!("1.0.{}", u64::MAX);
        assert_eq!(next(Some(&format!("{max}-rc.1"))).unwrap(), max);
        let overflow = next(Some(&max)).unwrap_err().to_string();
        assert!(overflow.contains(&max), "{overflow}");
    }

    #[test]
    fn resolution_of_the_issue_examples() {
        let versions: Vec<Version> = ["1.2.0", "1.2.7", "1.3.0", "2.0.0-rc.1", "2.0.0"]
            .iter()
            .map(|s| v(s))
            .collect();
        let resolve = |r: &str| {
            parse_requirement(r)
                .unwrap()
                .resolve(versions.iter())
                .map(|v| v.to_string())
        };
        assert_eq!(resolve("^1.2").as_deref(), Some("1.3.0"));
        assert_eq!(resolve("~1.2").as_deref(), Some("1.2.7"));
        assert_eq!(resolve("1.x").as_deref(), Some("1.3.0"));
        assert_eq!(resolve(">=1.2, <2").as_deref(), Some("1.3.0"));
        assert_eq!(resolve("latest").as_deref(), Some("2.0.0"));
        assert_eq!(
            resolve(">=2.0.0-rc.1, <2.0.0").as_deref(),
            Some("2.0.0-rc.1")
        );
        assert_eq!(resolve("^3"), None);
        assert_eq!(resolve("=1.2.7").as_deref(), Some("1.2.7"));
        assert_eq!(resolve("*").as_deref(), Some("2.0.0"));
        assert!(parse_requirement("not a req").is_err());
    }

    #[test]
    fn prereleases_only_when_named() {
        let versions = [v("1.0.0"), v("1.1.0-beta.1")];
        let resolve = |r: &str| {
            parse_requirement(r)
                .unwrap()
                .resolve(versions.iter())
                .map(|v| v.to_string())
        };
        assert_eq!(resolve("^1").as_deref(), Some("1.0.0"));
        assert_eq!(resolve("latest").as_deref(), Some("1.0.0"));
        assert_eq!(resolve(">=1.1.0-beta.1").as_deref(), Some("1.1.0-beta.1"));
        assert_eq!(resolve("^1.1.0-beta.0").as_deref(), Some("1.1.0-beta.1"));
    }
}
