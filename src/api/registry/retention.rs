//! A model's retention: the dry run (what would go, and the bytes that would be freed) and the
//! real run (the same plan, executed), both for Maintainers, both answering the same shape.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::views::ErrorView;
use super::Segments;
use crate::api::gitlab::views::time;
use crate::api::gitlab::{ApiResult, GitlabCaller};
use crate::domain::access::Action;
use crate::domain::ml_records::ModelVersion;
use crate::domain::retention::{Protection, RetentionReport, RetentionRules};
use crate::state::AppState;

/// A model's retention rules; each optional, and without any nothing goes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionRulesView {
    /// Keep the newest N patch releases of each minor (`1.2.x`); older releases of it go.
    pub keep_patches_per_minor: Option<u32>,
    /// Prereleases created more than D days ago go.
    pub prerelease_max_age_days: Option<u32>,
    /// Versions downloaded in the last X days stay whatever the rules say.
    pub keep_downloaded_within_days: Option<u32>,
}

impl RetentionRulesView {
    pub fn of(rules: &RetentionRules) -> Self {
        RetentionRulesView {
            keep_patches_per_minor: rules.keep_patches_per_minor,
            prerelease_max_age_days: rules.prerelease_max_age_days,
            keep_downloaded_within_days: rules.keep_downloaded_within_days,
        }
    }
}

/// What keeps a version a rule would take.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProtectionView {
    /// `sealed`, `aliased`, `stage` (MLflow's Staging or Production) or `downloaded_recently`.
    pub protection: String,
    /// The aliases naming the version (`aliased`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// The stage (`stage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The last download (`downloaded_recently`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_downloaded_at: Option<String>,
}

/// A version a rule takes (in `delete`) or would take but a protection keeps (in `keep`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionVersionView {
    pub id: u64,
    pub version: String,
    pub created_at: String,
    /// The rule: `keep_patches_per_minor` or `prerelease_max_age_days`.
    pub rule: String,
    /// Why the rule takes it, in words.
    pub reason: String,
    /// The size of its files (`delete` only; shared blobs included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_count: Option<usize>,
    /// What keeps it (`keep` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected_by: Option<Vec<ProtectionView>>,
}

/// A planned version a real run left, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedView {
    pub version: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionModelView {
    pub id: u64,
    pub name: String,
    pub project_id: u64,
}

/// A retention run: the plan (the same for the dry and the real run) and, for a real run, what
/// it deleted and reclaimed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionReportView {
    pub model: RetentionModelView,
    pub dry_run: bool,
    pub rules: RetentionRulesView,
    /// The time the rules judged ages by.
    pub evaluated_at: String,
    pub versions_examined: usize,
    /// The versions that go, newest first.
    pub delete: Vec<RetentionVersionView>,
    /// The versions a rule would take but a protection keeps.
    pub keep: Vec<RetentionVersionView>,
    /// The bytes of the blobs nothing else references once `delete` is gone (shared blobs are
    /// not counted).
    pub bytes_freed: u64,
    pub blobs_freed: usize,
    /// The versions a real run deleted (`null` for a dry run).
    pub deleted: Option<Vec<String>>,
    /// Planned versions a real run left (aliased, sealed or downloaded meanwhile).
    pub skipped: Vec<SkippedView>,
    /// The blobs a real run removed, and their bytes (`null` for a dry run).
    pub blobs_removed: Option<usize>,
    pub bytes_reclaimed: Option<u64>,
}

fn protection(p: &Protection) -> ProtectionView {
    let mut view = ProtectionView {
        protection: String::new(),
        aliases: None,
        stage: None,
        last_downloaded_at: None,
    };
    match p {
        Protection::Sealed => view.protection = "sealed".into(),
        Protection::Aliased(aliases) => {
            view.protection = "aliased".into();
            view.aliases = Some(aliases.clone());
        }
        Protection::Stage(stage) => {
            view.protection = "stage".into();
            view.stage = Some(stage.clone());
        }
        Protection::DownloadedRecently(at) => {
            view.protection = "downloaded_recently".into();
            view.last_downloaded_at = Some(time(at));
        }
    }
    view
}

fn version_view(version: &ModelVersion, rule: &str, reason: &str) -> RetentionVersionView {
    RetentionVersionView {
        id: version.id,
        version: version.version.clone(),
        created_at: time(&version.created_at),
        rule: rule.to_string(),
        reason: reason.to_string(),
        bytes: None,
        file_count: None,
        protected_by: None,
    }
}

/// The report as both routes and `modelyard retention run` answer it.
pub fn report_view(report: &RetentionReport) -> RetentionReportView {
    let plan = &report.plan;
    let real = !report.dry_run;
    RetentionReportView {
        model: RetentionModelView {
            id: plan.model.id,
            name: plan.model.name.clone(),
            project_id: plan.model.project_id,
        },
        dry_run: report.dry_run,
        rules: RetentionRulesView::of(&plan.rules),
        evaluated_at: time(&plan.now),
        versions_examined: plan.examined,
        delete: plan
            .delete
            .iter()
            .map(|d| RetentionVersionView {
                bytes: Some(d.bytes),
                file_count: Some(d.files),
                ..version_view(&d.version, d.rule.as_str(), &d.reason)
            })
            .collect(),
        keep: plan
            .keep
            .iter()
            .map(|k| RetentionVersionView {
                protected_by: Some(k.protections.iter().map(protection).collect()),
                ..version_view(&k.version, k.rule.as_str(), &k.reason)
            })
            .collect(),
        bytes_freed: plan.bytes_freed(),
        blobs_freed: plan.freed.len(),
        deleted: real.then(|| report.deleted.clone()),
        skipped: report
            .skipped
            .iter()
            .map(|(version, reason)| SkippedView {
                version: version.clone(),
                reason: reason.clone(),
            })
            .collect(),
        blobs_removed: real.then_some(report.blobs_removed),
        bytes_reclaimed: real.then_some(report.bytes_reclaimed),
    }
}

async fn run(
    state: AppState,
    caller: GitlabCaller,
    path: Segments,
    dry_run: bool,
) -> ApiResult<Json<RetentionReportView>> {
    let GitlabCaller(caller) = caller;
    let registry = &state.registry;
    let access = registry.project_for_action(&caller, path.project(), Action::ManageRetention)?;
    let model = registry.find_model(access.project.id, path.get("model"))?;
    let report = registry
        .run_retention(&caller, &access, model.id, dry_run)
        .await?;
    Ok(Json(report_view(&report)))
}

/// What the model's retention rules would delete, with the bytes freed: nothing changes
/// (Maintainers). A body, if any, is ignored.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models/{model}/retention/dry_run", tag = "retention",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    responses((status = 200, description = "The plan", body = RetentionReportView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn dry_run(
    State(state): State<AppState>,
    caller: GitlabCaller,
    path: Segments,
) -> ApiResult<Json<RetentionReportView>> {
    run(state, caller, path, true).await
}

/// Runs the model's retention rules (Maintainers): the dry run's plan, executed. Each version
/// goes through the version delete (webhooks, audit), then the blobs nothing references any
/// more are removed; one audit event names the run. A body, if any, is ignored.
#[utoipa::path(post, path = "/api/v4/projects/{id}/ml/models/{model}/retention/run", tag = "retention",
    params(("id" = String, Path, description = "Project id or URL-encoded path"),
           ("model" = String, Path, description = "Model id or URL-encoded name")),
    responses((status = 200, description = "What was deleted and reclaimed", body = RetentionReportView),
              (status = 401, body = ErrorView), (status = 403, body = ErrorView),
              (status = 404, body = ErrorView)))]
pub async fn run_now(
    State(state): State<AppState>,
    caller: GitlabCaller,
    path: Segments,
) -> ApiResult<Json<RetentionReportView>> {
    run(state, caller, path, false).await
}
