//! The JSON shapes of the native model registry API, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::gitlab::views::time;
use crate::domain::event_records::AliasMove;
use crate::domain::ml_records::{
    Candidate, CiJob, Experiment, KeyValue, Lifecycle, MetricPoint, Model, ModelVersion, TagOwner,
};
use crate::domain::models::ModelSummary;
use crate::domain::page_reads::{HistoryPreview, ModelDetails, RunDetails, VersionDetails};
use crate::domain::records::{PackageFile, User};
use crate::domain::schema::usage::Counted;
use crate::domain::usage::UsageView;
use crate::domain::{Error, Registry, Result};

/// A user as the registry shows authors.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: u64,
    pub username: String,
    pub name: String,
}

/// A metadata entry (MLflow tag) of a model, version or candidate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetadataView {
    pub key: String,
    pub value: String,
}

/// A parameter of a candidate; its value never changes once logged.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamView {
    pub key: String,
    pub value: String,
}

/// One logged metric value. `value` is null for NaN and infinities (JSON has no such numbers).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricView {
    pub key: String,
    pub value: Option<f64>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub step: i64,
}

/// The CI/CD job that produced a candidate or version.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct CiJobView {
    pub job_id: Option<String>,
    pub name: Option<String>,
    pub url: Option<String>,
    pub pipeline_id: Option<String>,
    pub pipeline_url: Option<String>,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub sha: Option<String>,
    pub merge_request_iid: Option<String>,
    pub merge_request_title: Option<String>,
    pub merge_request_url: Option<String>,
    /// The user who triggered the job.
    pub user: Option<String>,
    /// Who verified the link (`gitlab job token: <GitLab URL>`, `oidc: <issuer>`) when a CI
    /// identity created the thing; ignored in requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
}

impl From<&CiJob> for CiJobView {
    fn from(ci: &CiJob) -> Self {
        CiJobView {
            job_id: ci.job_id.clone(),
            name: ci.job_name.clone(),
            url: ci.job_url.clone(),
            pipeline_id: ci.pipeline_id.clone(),
            pipeline_url: ci.pipeline_url.clone(),
            ref_name: ci.ref_name.clone(),
            sha: ci.commit_sha.clone(),
            merge_request_iid: ci.merge_request_iid.clone(),
            merge_request_title: ci.merge_request_title.clone(),
            merge_request_url: ci.merge_request_url.clone(),
            user: ci.user.clone(),
            verified_by: ci.verified_by.clone(),
        }
    }
}

impl From<CiJobView> for CiJob {
    fn from(view: CiJobView) -> Self {
        CiJob {
            job_id: view.job_id,
            job_name: view.name,
            job_url: view.url,
            pipeline_id: view.pipeline_id,
            pipeline_url: view.pipeline_url,
            ref_name: view.ref_name,
            commit_sha: view.sha,
            merge_request_iid: view.merge_request_iid,
            merge_request_title: view.merge_request_title,
            merge_request_url: view.merge_request_url,
            user: view.user,
            verified_by: None,
        }
    }
}

/// A file of a version's (or candidate's) package.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub id: u64,
    /// The path inside the package, `/`-separated.
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    pub md5: String,
    pub created_at: String,
    /// Where to GET the bytes (relative to the server).
    pub download_path: String,
    /// How often the file was downloaded, and when last (`null`: never).
    pub download_count: u64,
    pub last_downloaded_at: Option<String>,
    /// `safetensors`, `gguf`, `onnx`, `pickle` or `pytorch` (a zip with `data.pkl`), found
    /// while the file was uploaded; absent for other files.
    pub format: Option<String>,
    /// Safetensors and GGUF: the number of tensors in the header.
    pub tensor_count: Option<u64>,
    /// Safetensors and GGUF: the tensors' dtypes, sorted.
    pub dtypes: Option<Vec<String>>,
    /// Safetensors and GGUF: the sum of the tensors' element counts.
    pub parameter_count: Option<u64>,
    /// Why the header's facts are missing (malformed, truncated, larger than 16 MiB).
    pub format_error: Option<String>,
    /// Pickle-based formats run code when loaded: this says so.
    pub format_warning: Option<String>,
}

/// A version as lists and models show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionBrief {
    pub id: u64,
    pub version: String,
    /// True when the version has a SemVer prerelease part (`1.2.0-rc.1`).
    pub prerelease: bool,
    pub description: String,
    pub author: Option<UserView>,
    pub package_id: u64,
    /// Whether the version is sealed: its files never change again.
    pub sealed: bool,
    /// `sha256:<hex>` of the sealed manifest's canonical JSON (what `GET .../manifest` serves);
    /// usable in the version slot of downloads, archives and this API to pin that content.
    pub manifest_digest: Option<String>,
    pub sealed_at: Option<String>,
    /// The username (or CI identity) that sealed the version.
    pub sealed_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// How often the version's files were downloaded, and when last (`null`: never).
    pub download_count: u64,
    pub last_downloaded_at: Option<String>,
}

/// A candidate as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateBrief {
    pub iid: u64,
    pub run_id: String,
    pub name: String,
    /// RUNNING, SCHEDULED, FINISHED, FAILED or KILLED.
    pub status: String,
    /// active or deleted.
    pub lifecycle: String,
    pub experiment_iid: u64,
    /// The version this candidate became, if it was promoted.
    pub model_version_id: Option<u64>,
    pub user: Option<UserView>,
    pub ci_job: Option<CiJobView>,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub created_at: String,
}

/// Params, metrics, metadata and files of a candidate (a version has the same through its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunData {
    pub params: Vec<ParamView>,
    /// The latest value of each metric.
    pub metrics: Vec<MetricView>,
    /// The first values of each metric (at most 100 per metric), by key then step. A longer
    /// history continues at `GET /ml/candidates/{iid}/metrics/{key}/history`.
    pub metric_history: Vec<MetricView>,
    /// The metrics whose history has more values than `metric_history` holds.
    pub metric_history_truncated: Vec<String>,
    pub metadata: Vec<MetadataView>,
    pub files: Vec<FileView>,
}

/// A candidate with everything logged to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateView {
    #[serde(flatten)]
    pub candidate: CandidateBrief,
    /// The package that holds the candidate's artifacts: `<model or ml_experiment_<iid>>/candidate_<iid>`.
    pub package_name: String,
    pub package_version: String,
    #[serde(flatten)]
    pub data: RunData,
}

/// A model version with its files, params, metrics, metadata and CI job.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    #[serde(flatten)]
    pub version: VersionBrief,
    pub model_id: u64,
    pub model_name: String,
    /// The highest version of the model by SemVer precedence.
    pub latest: bool,
    /// The version's own candidate, which holds its params and metrics.
    pub candidate_iid: u64,
    pub run_id: String,
    pub ci_job: Option<CiJobView>,
    /// Set when the model's `signature_policy` is `warn` and the version's `MLmodel` signature
    /// changed more than its SemVer bump says.
    pub signature_warning: Option<SignatureWarningView>,
    #[serde(flatten)]
    pub data: RunData,
}

/// A signature check's finding: the release compared with, the bump needed and made, and
/// each changed field with the bump it needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureWarningView {
    pub message: String,
    pub previous: String,
    /// `major`, `minor` or `patch`.
    pub required_bump: String,
    pub actual_bump: String,
    pub changes: Vec<SignatureChangeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureChangeView {
    /// `inputs.<name>` or `outputs.<name>`.
    pub field: String,
    pub change: String,
    pub needs: String,
}

/// A model with its latest version and counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelView {
    pub id: u64,
    pub name: String,
    /// Markdown.
    pub description: String,
    pub author: Option<UserView>,
    pub latest_version: Option<VersionBrief>,
    pub version_count: usize,
    /// Candidates of the model's experiment not promoted to a version.
    pub candidate_count: usize,
    pub experiment_iid: u64,
    pub metadata: Vec<MetadataView>,
    /// Aliases only Maintainers move.
    pub protected_aliases: Vec<String>,
    /// When releases are sealed automatically: `off`, `on_promote` (a release promoted from a
    /// candidate) or `on_create_with_files` (a release created with its files in one step).
    pub auto_seal: String,
    /// How versions' SemVer bumps are checked against their `MLmodel` signature: `off`, `warn`
    /// or `enforce`.
    pub signature_policy: String,
    /// The promotion policy: rules a version passes before a protected alias moves to it or
    /// it is sealed (`metrics.auc >= 0.92`, `ci_link`, `no_prerelease`), canonically spelled.
    pub promotion_rules: Vec<String>,
    /// Which versions a retention run deletes; `null` when the model has no rules.
    pub retention: Option<super::retention::RetentionRulesView>,
    pub created_at: String,
    pub updated_at: String,
}

/// An experiment (a model's own is named `[model]<name>`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExperimentView {
    pub iid: u64,
    pub name: String,
    pub model_id: Option<u64>,
    pub lifecycle: String,
    pub candidate_count: usize,
    pub creator: Option<UserView>,
    pub created_at: String,
    pub updated_at: String,
}

/// Who moved an alias (the user may have been deleted since; the name is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasActorView {
    pub id: u64,
    pub username: Option<String>,
}

/// One move of an alias: from which version to which (`to_version` null: the alias was deleted).
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasMoveView {
    /// The move's number in the alias's history, from 1.
    pub id: u64,
    pub alias: String,
    pub from_version: Option<String>,
    pub from_version_id: Option<u64>,
    pub to_version: Option<String>,
    pub to_version_id: Option<u64>,
    pub reason: Option<String>,
    pub user: Option<AliasActorView>,
    /// The mover's username, also when the user is gone.
    pub actor: Option<String>,
    pub created_at: String,
}

impl AliasMoveView {
    pub fn of(m: &AliasMove) -> AliasMoveView {
        AliasMoveView {
            id: m.seq,
            alias: m.alias.clone(),
            from_version: m.from_version.clone(),
            from_version_id: m.from_version_id,
            to_version: m.to_version.clone(),
            to_version_id: m.to_version_id,
            reason: m.reason.clone(),
            user: m.user_id.map(|id| AliasActorView {
                id,
                username: m.username.clone(),
            }),
            actor: m.username.clone(),
            created_at: time(&m.created_at),
        }
    }
}

/// An alias and the version it points at.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasView {
    pub alias: String,
    /// Null when the version can no longer be read.
    pub version: Option<String>,
    pub version_id: u64,
    /// Whether only Maintainers may move it (and the model's promotion rules apply).
    pub protected: bool,
}

/// A model's aliases; after a move, also the moves it made.
#[derive(Debug, Serialize, ToSchema)]
pub struct AliasesView {
    pub aliases: Vec<AliasView>,
    pub protected_aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moves: Option<Vec<AliasMoveView>>,
}

/// An error, as every GitLab-compatible route answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    pub message: String,
}

/// A promotion policy's refusal (409): the message names each failed rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyRefusalView {
    pub message: String,
    pub failed_rules: Vec<FailedRuleView>,
}

/// One rule a version failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedRuleView {
    /// The rule as the model keeps it (`metrics.auc >= 0.92`).
    pub rule: String,
    /// Why it failed (`metric 'auc' is 0.81, not >= 0.92`).
    pub reason: String,
    /// The protected alias whose move it refused (absent for a seal).
    pub alias: Option<String>,
    /// The version checked.
    pub version: String,
}

pub fn author(registry: &Registry, id: Option<u64>) -> Option<UserView> {
    id.and_then(|id| registry.user(id).ok()).as_ref().map(user)
}

pub fn user(u: &User) -> UserView {
    UserView {
        id: u.id,
        username: u.username.clone(),
        name: u.name.clone(),
    }
}

pub fn metadata(tags: Vec<KeyValue>) -> Vec<MetadataView> {
    tags.into_iter()
        .map(|t| MetadataView {
            key: t.key,
            value: t.value,
        })
        .collect()
}

pub fn metric(point: &MetricPoint) -> MetricView {
    MetricView {
        key: point.key.clone(),
        value: point.value.is_finite().then_some(point.value),
        timestamp: point.timestamp,
        step: point.step,
    }
}

/// One URL path segment, percent-encoded.
pub fn encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A `/`-separated path with each segment percent-encoded.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub fn file(
    project_id: u64,
    package: (&str, &str),
    file: &PackageFile,
    usage: UsageView,
) -> FileView {
    let encode = encode_segment;
    let path = encode_path(&file.file_name);
    FileView {
        download_count: usage.download_count,
        last_downloaded_at: usage.last_downloaded_at.as_ref().map(time),
        id: file.id,
        file_name: file.file_name.clone(),
        size: file.size,
        sha256: file.sha256.clone(),
        md5: file.md5.clone(),
        created_at: time(&file.created_at),
        download_path: format!(
            "/api/v4/projects/{project_id}/packages/generic/{}/{}/{path}",
            encode(package.0),
            encode(package.1)
        ),
        format: file.format.as_ref().map(|f| f.format.clone()),
        tensor_count: file.format.as_ref().and_then(|f| f.tensor_count),
        dtypes: file
            .format
            .as_ref()
            .filter(|f| f.tensor_count.is_some())
            .map(|f| f.dtypes.clone()),
        parameter_count: file.format.as_ref().and_then(|f| f.parameter_count),
        format_error: file.format.as_ref().and_then(|f| f.error.clone()),
        format_warning: file
            .format
            .as_ref()
            .and_then(|f| f.warning())
            .map(str::to_string),
    }
}

/// Characters kept as they are in a path segment of a download URL.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'-')
    .remove(b'+');

pub fn version_brief(registry: &Registry, version: &ModelVersion) -> VersionBrief {
    let usage = registry
        .package_usage(version.package_id)
        .unwrap_or_default();
    let author = version.author_id.and_then(|id| registry.user(id).ok());
    version_brief_of(version, usage, author.as_ref())
}

/// A version's brief with its downloads and author already read.
pub fn version_brief_of(
    version: &ModelVersion,
    usage: UsageView,
    author: Option<&User>,
) -> VersionBrief {
    VersionBrief {
        download_count: usage.download_count,
        last_downloaded_at: usage.last_downloaded_at.as_ref().map(time),
        id: version.id,
        version: version.version.clone(),
        prerelease: semver::Version::parse(&version.version).is_ok_and(|v| !v.pre.is_empty()),
        description: version.description.clone(),
        author: author.map(user),
        package_id: version.package_id,
        sealed: version.seal.is_some(),
        manifest_digest: version.seal.as_ref().map(|s| s.manifest_digest.clone()),
        sealed_at: version.seal.as_ref().map(|s| time(&s.sealed_at)),
        sealed_by: version.seal.as_ref().map(|s| s.sealed_by.clone()),
        created_at: time(&version.created_at),
        updated_at: time(&version.updated_at),
    }
}

pub fn candidate_brief(
    registry: &Registry,
    candidate: &Candidate,
    experiment: &Experiment,
) -> CandidateBrief {
    CandidateBrief {
        iid: candidate.iid,
        run_id: candidate.run_id.clone(),
        name: candidate.name.clone(),
        status: candidate.status.as_str().to_string(),
        lifecycle: candidate.lifecycle.as_str().to_string(),
        experiment_iid: experiment.iid,
        model_version_id: candidate.model_version_id,
        user: author(registry, candidate.user_id),
        ci_job: candidate.ci.as_ref().map(CiJobView::from),
        start_time: candidate.start_time,
        end_time: candidate.end_time,
        created_at: time(&candidate.created_at),
    }
}

/// How many values of each metric a candidate's or version's JSON holds.
pub const HISTORY_PREVIEW: usize = 100;

/// Params, metrics, metadata and package files of a candidate, from what was read for it.
pub fn run_data(
    project_id: u64,
    package: (&str, &str),
    run: RunDetails,
    history: HistoryPreview,
    files: &[(PackageFile, UsageView)],
) -> RunData {
    RunData {
        params: run
            .params
            .into_iter()
            .map(|p| ParamView {
                key: p.key,
                value: p.value,
            })
            .collect(),
        metrics: run.latest_metrics.iter().map(metric).collect(),
        metric_history: history.points.iter().map(metric).collect(),
        metric_history_truncated: history.truncated,
        metadata: metadata(run.tags),
        files: files
            .iter()
            .map(|(f, usage)| file(project_id, package, f, *usage))
            .collect(),
    }
}

pub fn version(registry: &Registry, model: &Model, version: &ModelVersion) -> Result<VersionView> {
    let latest_id = registry.latest_version(model)?.map(|v| v.id);
    version_given_latest(registry, model, version, latest_id)
}

/// A version's view when the model's latest version is already known.
pub fn version_given_latest(
    registry: &Registry,
    model: &Model,
    version: &ModelVersion,
    latest_id: Option<u64>,
) -> Result<VersionView> {
    let mut views =
        versions_given_latest(registry, model, std::slice::from_ref(version), latest_id)?;
    views.pop().ok_or(Error::NotFound("Model version"))
}

/// The views of a page of versions, their details read for the whole page at once
/// ([`Registry::version_details`]).
pub fn versions_given_latest(
    registry: &Registry,
    model: &Model,
    versions: &[ModelVersion],
    latest_id: Option<u64>,
) -> Result<Vec<VersionView>> {
    let details = registry.version_details(versions, HISTORY_PREVIEW)?;
    let authors = registry.users_by_id(versions.iter().filter_map(|v| v.author_id))?;
    Ok(versions
        .iter()
        .zip(details)
        .map(|(version, details)| {
            let author = version.author_id.and_then(|id| authors.get(&id));
            version_view(model, version, details, author, latest_id)
        })
        .collect())
}

fn version_view(
    model: &Model,
    version: &ModelVersion,
    details: VersionDetails,
    author: Option<&User>,
    latest_id: Option<u64>,
) -> VersionView {
    let VersionDetails {
        candidate,
        run,
        history,
        files,
        usage,
    } = details;
    let data = run_data(
        candidate.project_id,
        (&model.name, &version.version),
        run,
        history,
        &files,
    );
    VersionView {
        version: version_brief_of(version, usage, author),
        model_id: model.id,
        model_name: model.name.clone(),
        latest: latest_id == Some(version.id),
        candidate_iid: candidate.iid,
        run_id: candidate.run_id.clone(),
        ci_job: candidate.ci.as_ref().map(CiJobView::from),
        signature_warning: version
            .signature_check
            .as_ref()
            .map(|check| SignatureWarningView {
                message: check.message(&version.version),
                previous: check.previous.clone(),
                required_bump: check.required.as_str().to_string(),
                actual_bump: check.actual.as_str().to_string(),
                changes: check
                    .changes
                    .iter()
                    .map(|c| SignatureChangeView {
                        field: c.field.clone(),
                        change: c.change.clone(),
                        needs: c.needs.as_str().to_string(),
                    })
                    .collect(),
            }),
        data,
    }
}

pub fn candidate(registry: &Registry, candidate: &Candidate) -> Result<CandidateView> {
    let experiment = registry.experiment(candidate.experiment_id)?;
    let (package_name, package_version) = registry.candidate_package_name(candidate)?;
    let files = match registry.candidate_package(candidate) {
        Ok(package) => registry.current_files(package.id)?,
        Err(Error::NotFound(_)) => Vec::new(),
        Err(other) => return Err(other),
    };
    let counted: Vec<Counted> = files.iter().map(|f| Counted::File(f.id)).collect();
    let files: Vec<(PackageFile, UsageView)> = files
        .into_iter()
        .zip(registry.usages_of(&counted)?)
        .collect();
    let mut runs = registry.run_details(&[candidate.id], &[TagOwner::Candidate(candidate.id)])?;
    let run = runs.pop().ok_or(Error::NotFound("Candidate"))?;
    let mut previews =
        registry.history_previews(&[(candidate.id, &run.latest_metrics)], HISTORY_PREVIEW)?;
    let history = previews.pop().unwrap_or_default();
    let data = run_data(
        candidate.project_id,
        (&package_name, &package_version),
        run,
        history,
        &files,
    );
    Ok(CandidateView {
        candidate: candidate_brief(registry, candidate, &experiment),
        package_name,
        package_version,
        data,
    })
}

pub fn model(registry: &Registry, model: &Model) -> Result<ModelView> {
    let summary = registry.model_summary(model.clone())?;
    let mut views = models(registry, std::slice::from_ref(&summary))?;
    views.pop().ok_or(Error::NotFound("Model"))
}

/// The views of a page of models, from what is read for the whole page at once.
pub fn models(registry: &Registry, summaries: &[ModelSummary]) -> Result<Vec<ModelView>> {
    let details = registry.model_details(summaries)?;
    Ok(summaries
        .iter()
        .zip(details)
        .map(|(summary, details)| model_of(summary, details))
        .collect())
}

fn model_of(summary: &ModelSummary, details: ModelDetails) -> ModelView {
    let model = &summary.model;
    // Every version has its candidate in the model's experiment; the others are candidates.
    // Deleted runs are not live ones (MLflow's default view); versions' runs are never deleted.
    let candidate_count = details
        .active_candidates
        .saturating_sub(summary.version_count);
    ModelView {
        id: model.id,
        name: model.name.clone(),
        description: model.description.clone(),
        author: details.author.as_ref().map(user),
        latest_version: summary
            .latest
            .as_ref()
            .map(|v| version_brief_of(v, details.latest_usage, details.latest_author.as_ref())),
        version_count: summary.version_count,
        candidate_count,
        experiment_iid: details.experiment.iid,
        metadata: metadata(details.tags),
        protected_aliases: model.protected_aliases.clone(),
        auto_seal: model.auto_seal.as_str().to_string(),
        signature_policy: model.signature_policy.as_str().to_string(),
        promotion_rules: model.promotion_rules.clone(),
        retention: model
            .retention
            .as_ref()
            .map(super::retention::RetentionRulesView::of),
        created_at: time(&model.created_at),
        updated_at: time(&model.updated_at),
    }
}

pub fn experiment(registry: &Registry, experiment: &Experiment) -> Result<ExperimentView> {
    Ok(ExperimentView {
        iid: experiment.iid,
        name: experiment.name.clone(),
        model_id: experiment.model_id,
        lifecycle: experiment.lifecycle.as_str().to_string(),
        candidate_count: registry.candidate_count(experiment.id, Lifecycle::Active)?,
        creator: author(registry, experiment.creator_id),
        created_at: time(&experiment.created_at),
        updated_at: time(&experiment.updated_at),
    })
}
