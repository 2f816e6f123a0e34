//! Retention: per-model rules that say which versions go (keep the newest N patch releases of
//! each minor; delete prereleases older than D days), and the protections no rule overrides
//! (sealed versions, aliased ones, ones in an MLflow stage, ones downloaded in the last X days).
//!
//! One function plans: it walks the model's versions index newest first, a page at a time, and
//! lists each version a rule takes, with why and its bytes, each version a rule would take but a
//! protection keeps, and the bytes of the blobs nothing else references once those versions are
//! gone (content-addressed blobs are shared: another version, a generic package or an OCI layer
//! may hold the same bytes). A dry run reports the plan; a real run executes that same plan:
//! each version is deleted through the ordinary version delete (webhooks and audit events fire;
//! a version aliased or sealed meanwhile is skipped), then the blobs no record references any
//! more are removed and the bytes actually reclaimed reported, and one audit event names the run.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::ml_records::{Model, ModelVersion};
use super::projects::ProjectAccess;
use super::records::{now, Timestamp};
use super::schema::{self, models::Models, Seek};
use super::Registry;

/// The longest age a rule may name, in days (a century).
const MAX_DAYS: u32 = 36_500;
/// How many versions one read of the versions index returns.
const PAGE: usize = 100;

/// A model's retention rules; each is optional, and without any nothing goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionRules {
    /// Keep the newest N patch releases of each minor (`1.2.x`); older releases of that minor go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_patches_per_minor: Option<u32>,
    /// Prereleases (`2.0.0-rc.1`) created more than D days ago go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerelease_max_age_days: Option<u32>,
    /// A version downloaded in the last X days stays, whatever the rules say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_downloaded_within_days: Option<u32>,
}

impl RetentionRules {
    /// Whether any rule deletes something (the download window only protects).
    pub fn deletes_anything(&self) -> bool {
        self.keep_patches_per_minor.is_some() || self.prerelease_max_age_days.is_some()
    }

    pub fn check(&self) -> Result<()> {
        if self.keep_patches_per_minor == Some(0) {
            return Err(Error::InvalidParam {
                param: "retention.keep_patches_per_minor".into(),
                problem: "must be at least 1 (it is how many patch releases of each minor stay)"
                    .into(),
            });
        }
        for (name, value) in [
            (
                "retention.prerelease_max_age_days",
                self.prerelease_max_age_days,
            ),
            (
                "retention.keep_downloaded_within_days",
                self.keep_downloaded_within_days,
            ),
        ] {
            if value.is_some_and(|days| days > MAX_DAYS) {
                return Err(Error::InvalidParam {
                    param: name.into(),
                    problem: format!("must be at most {MAX_DAYS} days"),
                });
            }
        }
        Ok(())
    }

    /// The rules as JSON (each rule present, `null` when unset).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "keep_patches_per_minor": self.keep_patches_per_minor,
            "prerelease_max_age_days": self.prerelease_max_age_days,
            "keep_downloaded_within_days": self.keep_downloaded_within_days,
        })
    }
}

/// The rule that takes a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    KeepPatchesPerMinor,
    PrereleaseMaxAge,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::KeepPatchesPerMinor => "keep_patches_per_minor",
            Rule::PrereleaseMaxAge => "prerelease_max_age_days",
        }
    }
}

/// What keeps a version a rule would take.
#[derive(Debug, Clone, PartialEq)]
pub enum Protection {
    Sealed,
    Aliased(Vec<String>),
    /// In MLflow's `Staging` or `Production` stage.
    Stage(String),
    DownloadedRecently(Timestamp),
}

/// A version the plan deletes.
#[derive(Debug, Clone)]
pub struct Doomed {
    pub version: ModelVersion,
    pub rule: Rule,
    pub reason: String,
    /// The size of the version's files (shared or not).
    pub bytes: u64,
    pub files: usize,
    /// Each of its file records: id, sha256 and size.
    pub blobs: Vec<(u64, String, u64)>,
}

/// A version a rule would take but a protection keeps.
#[derive(Debug, Clone)]
pub struct Spared {
    pub version: ModelVersion,
    pub rule: Rule,
    pub reason: String,
    pub protections: Vec<Protection>,
}

/// What a run of a model's rules does, planned once: a dry run reports it, a real run executes it.
#[derive(Debug, Clone)]
pub struct RetentionPlan {
    pub model: Model,
    pub rules: RetentionRules,
    /// The time the rules judged ages by.
    pub now: Timestamp,
    pub examined: usize,
    pub delete: Vec<Doomed>,
    pub keep: Vec<Spared>,
    /// Blobs (sha256, size) that nothing references once the planned versions are gone.
    pub freed: Vec<(String, u64)>,
}

impl RetentionPlan {
    pub fn bytes_freed(&self) -> u64 {
        self.freed.iter().map(|(_, size)| size).sum()
    }
}

/// What a run did: the plan, and for a real run what it deleted and reclaimed.
#[derive(Debug, Clone)]
pub struct RetentionReport {
    pub plan: RetentionPlan,
    pub dry_run: bool,
    /// The versions deleted (a real run), in the plan's order.
    pub deleted: Vec<String>,
    /// Planned versions a real run left, with why (aliased or sealed meanwhile, say).
    pub skipped: Vec<(String, String)>,
    /// What a real run removed from the blob store.
    pub blobs_removed: usize,
    pub bytes_reclaimed: u64,
}

/// The rules' verdict on each version, given newest first by SemVer precedence: the patch rule
/// counts the releases of each minor as they come (a minor's versions are contiguous in that
/// order), the age rule compares a prerelease's creation with `now`.
pub(crate) struct Judge<'a> {
    rules: &'a RetentionRules,
    now: Timestamp,
    minor: Option<(u64, u64)>,
    releases_seen: u32,
}

impl<'a> Judge<'a> {
    pub(crate) fn new(rules: &'a RetentionRules, now: Timestamp) -> Self {
        Judge {
            rules,
            now,
            minor: None,
            releases_seen: 0,
        }
    }

    /// The rule that takes `version` (and why), if one does. Call in precedence order, newest
    /// first.
    pub(crate) fn verdict(
        &mut self,
        version: &Version,
        created_at: Timestamp,
    ) -> Option<(Rule, String)> {
        if !version.pre.is_empty() {
            let days = self.rules.prerelease_max_age_days?;
            let age = self.now.signed_duration_since(created_at);
            return (age > chrono::Duration::days(i64::from(days))).then(|| {
                (
                    Rule::PrereleaseMaxAge,
                    format!(
                        "prerelease created {} days ago (more than {days})",
                        age.num_days()
                    ),
                )
            });
        }
        let minor = (version.major, version.minor);
        if self.minor != Some(minor) {
            self.minor = Some(minor);
            self.releases_seen = 0;
        }
        self.releases_seen = self.releases_seen.saturating_add(1);
        let keep = self.rules.keep_patches_per_minor?;
        (self.releases_seen > keep).then(|| {
            (
                Rule::KeepPatchesPerMinor,
                format!(
                    "not among the {keep} newest patch releases of {}.{}",
                    minor.0, minor.1
                ),
            )
        })
    }
}

impl Registry {
    /// The time retention judges ages by: the clock, plus the configured offset (tests).
    pub fn retention_now(&self) -> Timestamp {
        now() + self.retention_clock_offset
    }

    /// Sets (or, with `None` or no rules, removes) a model's retention rules (Maintainers).
    pub async fn set_retention(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        rules: Option<RetentionRules>,
    ) -> Result<Model> {
        access.check(caller, Action::ManageRetention)?;
        if let Some(rules) = &rules {
            rules.check()?;
        }
        let rules = rules.filter(|r| *r != RetentionRules::default());
        self.project_model(access, model_id)?;
        self.update_record::<Models>(model_id, "Model", |model| {
            model.retention = rules.clone();
            model.updated_at = now();
        })
        .await
    }

    /// Plans a run of a model's rules as of `at` (see the module's description). Reads the
    /// model's versions a page at a time; only versions a rule takes are looked at further.
    pub async fn plan_retention(&self, model: &Model, at: Timestamp) -> Result<RetentionPlan> {
        let rules = model.retention.clone().unwrap_or_default();
        let mut plan = RetentionPlan {
            model: model.clone(),
            rules: rules.clone(),
            now: at,
            examined: 0,
            delete: Vec::new(),
            keep: Vec::new(),
            freed: Vec::new(),
        };
        if !rules.deletes_anything() {
            return Ok(plan);
        }
        let mut aliased: HashMap<u64, Vec<String>> = HashMap::new();
        for (alias, version_id) in self.aliases(model.id)? {
            aliased.entry(version_id).or_default().push(alias);
        }
        let recent = rules
            .keep_downloaded_within_days
            .map(|days| at - chrono::Duration::days(i64::from(days)));
        let mut judge = Judge::new(&rules, at);
        let mut seek = Seek::Offset(0);
        loop {
            let (ids, next) =
                schema::versions::page(self.meta.as_ref(), model.id, false, &seek, PAGE)?;
            for id in ids {
                let version = self.version(id)?;
                plan.examined += 1;
                let Ok(parsed) = Version::parse(&version.version) else {
                    continue;
                };
                let Some((rule, reason)) = judge.verdict(&parsed, version.created_at) else {
                    continue;
                };
                let mut protections = Vec::new();
                if version.seal.is_some() {
                    protections.push(Protection::Sealed);
                }
                if let Some(aliases) = aliased.get(&version.id) {
                    protections.push(Protection::Aliased(aliases.clone()));
                }
                if let Some(stage) = version
                    .stage
                    .as_ref()
                    .filter(|s| matches!(s.as_str(), "Staging" | "Production"))
                {
                    protections.push(Protection::Stage(stage.clone()));
                }
                if let Some(since) = recent {
                    let usage = self.package_usage(version.package_id)?;
                    if let Some(last) = usage.last_downloaded_at.filter(|t| *t >= since) {
                        protections.push(Protection::DownloadedRecently(last));
                    }
                }
                if !protections.is_empty() {
                    plan.keep.push(Spared {
                        version,
                        rule,
                        reason,
                        protections,
                    });
                    continue;
                }
                let files = self.package_files(version.package_id)?;
                plan.delete.push(Doomed {
                    rule,
                    reason,
                    bytes: files.iter().map(|f| f.size).sum(),
                    files: files.len(),
                    blobs: files
                        .into_iter()
                        .map(|f| (f.id, f.sha256, f.size))
                        .collect(),
                    version,
                });
            }
            match next {
                Some(key) => seek = Seek::After(key),
                None => break,
            }
        }
        let doomed_files: HashSet<u64> = plan
            .delete
            .iter()
            .flat_map(|d| d.blobs.iter().map(|(id, _, _)| *id))
            .collect();
        plan.freed = self
            .unreferenced_after(
                plan.delete.iter().flat_map(|d| d.blobs.iter()),
                &doomed_files,
            )
            .await?;
        Ok(plan)
    }

    /// Of the blobs of `files` (file id, sha256, size), those that exist and that no file record
    /// outside `gone` and no OCI blob or manifest references, with their sizes, by sha256.
    async fn unreferenced_after<'f>(
        &self,
        files: impl Iterator<Item = &'f (u64, String, u64)>,
        gone: &HashSet<u64>,
    ) -> Result<Vec<(String, u64)>> {
        let mut blobs: HashMap<&str, (u64, usize)> = HashMap::new();
        for (_, sha256, size) in files {
            let entry = blobs.entry(sha256.as_str()).or_insert((*size, 0));
            entry.1 += 1;
        }
        let mut candidates: HashMap<String, u64> = HashMap::new();
        for (sha256, (size, records)) in blobs {
            // Every file record of this content is among the `records` gone, unless one more
            // (or one not gone) turns up in the content index.
            let holders =
                schema::files::anywhere_with_sha256(self.meta.as_ref(), sha256, records + 1)?;
            if holders.iter().all(|(_, file, _)| gone.contains(file))
                && self.blobs.exists(sha256).await?
            {
                candidates.insert(sha256.to_string(), size);
            }
        }
        for used in self.oci_uses(&candidates)? {
            candidates.remove(&used);
        }
        let mut freed: Vec<(String, u64)> = candidates.into_iter().collect();
        freed.sort();
        Ok(freed)
    }

    /// Which of `digests` an OCI blob or manifest record references. OCI records have no
    /// index by content, so this reads them once (only when there is something to check).
    fn oci_uses(&self, digests: &HashMap<String, u64>) -> Result<Vec<String>> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let mut used = Vec::new();
        for digest in self.oci_referenced_blobs()? {
            let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
            if digests.contains_key(hex) {
                used.push(hex.to_string());
            }
        }
        Ok(used)
    }

    /// Runs a model's rules: `dry_run` reports the plan; otherwise the plan is executed (each
    /// version deleted through the version delete, then the blobs nothing references removed)
    /// and audited. Maintainers.
    pub async fn run_retention(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        dry_run: bool,
    ) -> Result<RetentionReport> {
        access.check(caller, Action::ManageRetention)?;
        let model = self.project_model(access, model_id)?;
        // Blobs stored from now on may be about to be recorded by an upload: never removed here.
        let started = SystemTime::now();
        let plan = self.plan_retention(&model, self.retention_now()).await?;
        let mut report = RetentionReport {
            plan,
            dry_run,
            deleted: Vec::new(),
            skipped: Vec::new(),
            blobs_removed: 0,
            bytes_reclaimed: 0,
        };
        if dry_run {
            return Ok(report);
        }
        let recent = report
            .plan
            .rules
            .keep_downloaded_within_days
            .map(|days| report.plan.now - chrono::Duration::days(i64::from(days)));
        let mut gone_files = HashSet::new();
        let mut gone_versions = HashSet::new();
        for doomed in &report.plan.delete {
            let version = &doomed.version;
            // Downloads are counted in memory: look once more right before deleting.
            if let Some(since) = recent {
                let usage = self.package_usage(version.package_id)?;
                if usage.last_downloaded_at.is_some_and(|t| t >= since) {
                    report
                        .skipped
                        .push((version.version.clone(), "downloaded meanwhile".into()));
                    continue;
                }
            }
            let outcome = self
                .delete_version_unless(caller, access, version.id, |now, aliases| {
                    if !aliases.is_empty() {
                        Some(format!("aliased meanwhile ({})", aliases.join(", ")))
                    } else if now.seal.is_some() {
                        Some("sealed meanwhile".into())
                    } else {
                        None
                    }
                })
                .await;
            match outcome {
                Ok(()) => {
                    report.deleted.push(version.version.clone());
                    gone_versions.insert(version.id);
                    gone_files.extend(doomed.blobs.iter().map(|(id, _, _)| *id));
                }
                Err(Error::Conflict(why)) => report.skipped.push((version.version.clone(), why)),
                Err(Error::Sealed(_)) => report
                    .skipped
                    .push((version.version.clone(), "sealed meanwhile".into())),
                Err(Error::NotFound(_)) => report
                    .skipped
                    .push((version.version.clone(), "deleted meanwhile".into())),
                Err(other) => return Err(other),
            }
        }
        // What the deleted versions' files held and nothing references now.
        let unreferenced = self
            .unreferenced_after(
                report
                    .plan
                    .delete
                    .iter()
                    .filter(|d| gone_versions.contains(&d.version.id))
                    .flat_map(|d| d.blobs.iter()),
                &gone_files,
            )
            .await?;
        for (sha256, _) in &unreferenced {
            if let Some(bytes) = self
                .blobs
                .remove_unless_stored_since(sha256, started)
                .await?
            {
                report.blobs_removed += 1;
                report.bytes_reclaimed += bytes;
            }
        }
        if !report.deleted.is_empty() || report.blobs_removed > 0 {
            self.audit_retention(&report).await?;
        }
        Ok(report)
    }

    /// The models that have retention rules (every project), for `modelyard retention run`.
    pub fn models_with_retention(&self) -> Result<Vec<Model>> {
        let mut out = Vec::new();
        for project in self.all_projects()? {
            let mut seek = Seek::Offset(0);
            loop {
                let (ids, next) = schema::models::page(
                    self.meta.as_ref(),
                    project.id,
                    schema::models::Order::Created,
                    false,
                    &seek,
                    PAGE,
                )?;
                for id in ids {
                    let model = self.model(id)?;
                    if model
                        .retention
                        .as_ref()
                        .is_some_and(RetentionRules::deletes_anything)
                    {
                        out.push(model);
                    }
                }
                match next {
                    Some(key) => seek = Seek::After(key),
                    None => break,
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64) -> Timestamp {
        now() - chrono::Duration::days(days_ago)
    }

    /// The verdicts on versions given newest first, as (version, rule) of those taken.
    fn taken(rules: &RetentionRules, versions: &[(&str, i64)]) -> Vec<(String, Rule)> {
        let mut judge = Judge::new(rules, now());
        versions
            .iter()
            .filter_map(|(v, days_ago)| {
                judge
                    .verdict(&Version::parse(v).unwrap(), at(*days_ago))
                    .map(|(rule, _)| (v.to_string(), rule))
            })
            .collect()
    }

    #[test]
    fn the_patch_rule_keeps_the_newest_releases_of_each_minor() {
        let rules = RetentionRules {
            keep_patches_per_minor: Some(2),
            ..RetentionRules::default()
        };
        let versions = [
            ("2.0.0", 1),
            ("2.0.0-rc.1", 400),
            ("1.3.0", 1),
            ("1.2.3", 1),
            ("1.2.3-rc.1", 1),
            ("1.2.2+build.7", 1),
            ("1.2.1", 1),
            ("1.2.0", 1),
            ("0.9.1", 1),
        ];
        assert_eq!(
            taken(&rules, &versions),
            vec![
                ("1.2.1".to_string(), Rule::KeepPatchesPerMinor),
                ("1.2.0".to_string(), Rule::KeepPatchesPerMinor),
            ]
        );
    }

    #[test]
    fn the_age_rule_takes_only_old_prereleases() {
        let rules = RetentionRules {
            prerelease_max_age_days: Some(30),
            ..RetentionRules::default()
        };
        let versions = [
            ("2.0.0-rc.2", 29),
            ("2.0.0-rc.1", 31),
            ("1.0.0", 400),
            ("1.0.0-beta", 400),
        ];
        assert_eq!(
            taken(&rules, &versions),
            vec![
                ("2.0.0-rc.1".to_string(), Rule::PrereleaseMaxAge),
                ("1.0.0-beta".to_string(), Rule::PrereleaseMaxAge),
            ]
        );
    }

    #[test]
    fn no_rules_take_nothing_and_bad_rules_are_refused() {
        let none = RetentionRules::default();
        assert!(taken(&none, &[("1.0.0", 9999), ("1.0.0-rc.1", 9999)]).is_empty());
        assert!(!none.deletes_anything());
        let zero = RetentionRules {
            keep_patches_per_minor: Some(0),
            ..RetentionRules::default()
        };
        assert!(zero.check().is_err());
        let long = RetentionRules {
            prerelease_max_age_days: Some(MAX_DAYS + 1),
            ..RetentionRules::default()
        };
        assert!(long.check().is_err());
        let only_window = RetentionRules {
            keep_downloaded_within_days: Some(14),
            ..RetentionRules::default()
        };
        assert!(!only_window.deletes_anything());
        assert!(only_window.check().is_ok());
    }
}
