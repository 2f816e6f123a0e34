//! Model versions: the create form (with a streamed file upload), the version page, deleting,
//! and downloading a version's files with the browser's session.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use futures_util::TryStreamExt;
use maud::{html, Markup};

use super::models::{alias_badges, is_input_error, tags_editor, version_badges};
use super::run_details::{ci_section, files_table, metrics_section, FileLinks, CHART_POINTS};
use super::{see_other, user_name, Ctx};
use crate::api::registry::views::encode_segment;
use crate::domain::access::Action;
use crate::domain::ml_records::{Model, ModelVersion, TagOwner};
use crate::domain::models::{ModelFileOwner, NewVersion, MAX_DESCRIPTION};
use crate::domain::packages::{join_file_path, IncomingFile};
use crate::domain::{names, semver_rules, Error};
use crate::web::error::{WebError, WebResult};
use crate::web::layout::{self, Crumb};
use crate::web::markdown;
use crate::web::session::CSRF_FIELD;

/// The fields the version form has; any other part is refused unread.
const FORM_FIELDS: [&str; 5] = [CSRF_FIELD, "version", "description", "subfolder", "file"];
/// Text fields are a few KiB (the token, a version, a folder) …
const MAX_TEXT_FIELD: u64 = 4 * 1024;
/// … but a description (at most 10,000 characters, up to 4 bytes each).
const MAX_DESCRIPTION_FIELD: u64 = 4 * MAX_DESCRIPTION as u64 + 1024;
/// A browser sends each field once; a form with more parts than this is refused.
const MAX_PARTS: usize = 16;
/// The query parameter or header that may carry the CSRF token instead of the first part.
const CSRF_HEADER: &str = "x-csrf-token";

/// What the version form holds, to show it again when something is wrong.
#[derive(Default)]
struct VersionForm {
    csrf: Option<String>,
    version: String,
    description: String,
    subfolder: String,
}

fn version_url(ctx: &Ctx, model: &Model, version: &ModelVersion) -> String {
    ctx.ml(&format!("models/{}/versions/{}", model.id, version.id))
}

fn new_version_page(
    ctx: &Ctx,
    model: &Model,
    form: &VersionForm,
    problem: Option<&str>,
) -> WebResult<Markup> {
    let model_url = ctx.ml(&format!("models/{}", model.id));
    let highest = model
        .latest_version
        .as_deref()
        .and_then(|v| semver::Version::parse(v).ok());
    // No suggestion when the latest has no next patch (the largest patch number).
    let suggested = semver_rules::next_patch(highest.as_ref())
        .map(|v| v.to_string())
        .unwrap_or_default();
    let body = html! {
        div.page-head { div { h1 { "New version of " (model.name) } } }
        form.form method="post" action=(format!("{model_url}/versions")) enctype="multipart/form-data" {
            (layout::csrf_input(&ctx.visitor))
            @if let Some(problem) = problem {
                div.alert.error role="alert" { (problem) }
            }
            label for="version" { "Version" }
            input #version type="text" name="version" value=(form.version) placeholder=(suggested) required maxlength="255";
            p.hint {
                "Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH, optionally -prerelease and +build (1.2.3, 2.0.0-rc.1). "
                @match &model.latest_version {
                    Some(latest) => { "Latest version is " strong { (latest) } "." }
                    None => "This is the model's first version.",
                }
            }
            label for="description" { "Description" }
            textarea #description name="description" maxlength=(MAX_DESCRIPTION) placeholder="Markdown: what changed in this version." { (form.description) }
            label for="subfolder" { "Subfolder for the file (optional)" }
            input #subfolder type="text" name="subfolder" value=(form.subfolder) placeholder="e.g. weights";
            label for="file" { "File (optional)" }
            div.dropzone {
                input #file type="file" name="file";
                p.hint data-file-for="file" {}
                p.hint { "The file is streamed to the registry; more files can be added with the API or MLflow." }
            }
            div.buttons {
                button.primary type="submit" { "Create version" }
                a.button href=(model_url) { "Cancel" }
            }
        }
    };
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(model.name.clone(), model_url.clone()));
    crumbs.push(Crumb::new(
        "New version",
        format!("{model_url}/versions/new"),
    ));
    Ok(layout::page(
        &format!("New version of {}", model.name),
        &ctx.visitor,
        &crumbs,
        body,
    ))
}

pub fn new_form(ctx: &Ctx, model_id: u64) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    ctx.require_write()?;
    Ok(layout::ok(new_version_page(
        ctx,
        &model,
        &VersionForm::default(),
        None,
    )?))
}

fn bad_multipart(error: multer::Error) -> WebError {
    match error {
        multer::Error::FieldSizeExceeded { limit, .. }
        | multer::Error::StreamSizeExceeded { limit } => {
            WebError::Domain(Error::RequestTooLarge { limit })
        }
        other => WebError::BadForm(format!("The form could not be read: {other}")),
    }
}

/// Creates the version named by the form, once, before any file is stored.
async fn create_from_form(
    ctx: &Ctx<'_>,
    model: &Model,
    form: &VersionForm,
) -> WebResult<ModelVersion> {
    ctx.visitor.check_csrf(form.csrf.as_deref())?;
    ctx.require_write()?;
    let version = form.version.trim();
    if version.is_empty() {
        return Err(Error::missing("version").into());
    }
    Ok(ctx
        .registry()
        .create_version(
            &ctx.visitor.caller,
            &ctx.access,
            model.id,
            NewVersion {
                version: Some(version.to_string()),
                description: Some(form.description.clone()),
                ..NewVersion::default()
            },
        )
        .await?)
}

/// The CSRF token a request carries outside its body: the `X-CSRF-Token` header or the
/// `authenticity_token` query parameter.
fn token_outside_body(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        return value.to_str().ok().map(str::to_string);
    }
    url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
}

/// Reads the multipart form part by part, after the visitor's right to write was checked and
/// before any file part is read: the CSRF token must come first (in the header, the query or
/// the first parts; a file part before it is refused unread), text parts are capped at a few
/// KiB, parts the form does not have are refused, and the file is streamed into the blob store
/// as it arrives.
async fn create_with_upload(
    ctx: &Ctx<'_>,
    model: &Model,
    request: Request,
    form: &mut VersionForm,
) -> WebResult<ModelVersion> {
    // Nothing of the body is read for a visitor who may not write here.
    ctx.require_write()?;
    let mut token_checked = false;
    if let Some(token) = token_outside_body(&request) {
        ctx.visitor.check_csrf(Some(&token))?;
        form.csrf = Some(token);
        token_checked = true;
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(bad_multipart)?;
    let limits = multer::SizeLimit::new()
        .per_field(MAX_TEXT_FIELD)
        .for_field("description", MAX_DESCRIPTION_FIELD)
        .for_field(
            "file",
            ctx.registry().limits.model_file_bytes.saturating_add(1),
        )
        .whole_stream(
            ctx.registry()
                .limits
                .model_file_bytes
                .saturating_add(MAX_DESCRIPTION_FIELD + 64 * 1024),
        );
    let mut multipart = multer::Multipart::with_constraints(
        request.into_body().into_data_stream(),
        boundary,
        multer::Constraints::new()
            .allowed_fields(FORM_FIELDS.to_vec())
            .size_limit(limits),
    );
    let mut created: Option<ModelVersion> = None;
    let mut parts = 0;
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(WebError::BadForm(format!(
                "The form has more than {MAX_PARTS} parts."
            )));
        }
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let value = field.text().await.map_err(bad_multipart)?;
            match name.as_str() {
                CSRF_FIELD => {
                    ctx.visitor.check_csrf(Some(&value))?;
                    token_checked = true;
                    form.csrf = Some(value);
                }
                "version" => form.version = value,
                "description" => form.description = value,
                "subfolder" => form.subfolder = value.trim().trim_matches('/').to_string(),
                _ => {}
            }
            continue;
        }
        if !token_checked {
            // A file before the token: refused before a byte of it is read.
            return Err(WebError::Csrf);
        }
        let file_name = field.file_name().unwrap_or("").to_string();
        if file_name.is_empty() {
            continue; // no file chosen
        }
        let version = match created.take() {
            Some(version) => version,
            None => create_from_form(ctx, model, form).await?,
        };
        let stored = store_file(ctx, &version, &form.subfolder, &file_name, field).await;
        if let Err(error) = stored {
            // Nothing half-made stays: the version goes again with whatever was stored.
            let _ = ctx
                .registry()
                .delete_version(&ctx.visitor.caller, &ctx.access, version.id)
                .await;
            return Err(error);
        }
        created = Some(version);
    }
    match created {
        Some(version) => Ok(version),
        None => create_from_form(ctx, model, form).await,
    }
}

async fn store_file(
    ctx: &Ctx<'_>,
    version: &ModelVersion,
    subfolder: &str,
    file_name: &str,
    field: multer::Field<'static>,
) -> WebResult<()> {
    // Browsers send the base name; some old ones send a whole client path.
    let base = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(file_name)
        .to_string();
    names::model_file_name(&base)?;
    let subfolder = (!subfolder.is_empty()).then_some(subfolder);
    if let Some(subfolder) = subfolder {
        names::file_path(subfolder)?;
    }
    let _in_progress = ctx.state.telemetry.upload_started();
    let incoming = IncomingFile {
        body: crate::domain::packages::Content::Stream(Box::pin(
            field.map_err(std::io::Error::other),
        )),
        declared_len: None,
        status: None,
        expected: Default::default(),
        deploy: false,
    };
    ctx.registry()
        .upload_model_file(
            &ctx.visitor.caller,
            &ctx.access,
            ModelFileOwner::Version(version.id),
            &join_file_path(subfolder, &base),
            incoming,
        )
        .await?;
    Ok(())
}

pub async fn create(ctx: &Ctx<'_>, model_id: u64, request: Request) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let mut form = VersionForm::default();
    match create_with_upload(ctx, &model, request, &mut form).await {
        Ok(version) => Ok(see_other(&version_url(ctx, &model, &version))),
        Err(WebError::Domain(error)) if is_input_error(&error) => Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            new_version_page(ctx, &model, &form, Some(&error.to_string()))?,
        )),
        Err(error) => Err(error),
    }
}

/// The version of `model` with id `version_id`; 404 for any other.
fn model_version(ctx: &Ctx, model: &Model, version_id: u64) -> WebResult<ModelVersion> {
    let version = ctx.registry().project_version(&ctx.access, version_id)?;
    if version.model_id != model.id {
        return Err(Error::NotFound("Model version").into());
    }
    Ok(version)
}

pub fn show(ctx: &Ctx, model_id: u64, version_id: u64, query: Option<&str>) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    Ok(layout::ok(render(ctx, &model, &version, query, None)?))
}

/// The version page, with `problem` shown above its forms when one of them failed.
fn render(
    ctx: &Ctx,
    model: &Model,
    version: &ModelVersion,
    query: Option<&str>,
    problem: Option<&str>,
) -> WebResult<Markup> {
    let registry = ctx.registry();
    let latest = registry
        .latest_version(model)?
        .is_some_and(|v| v.id == version.id);
    let candidate = registry.candidate(version.candidate_id)?;
    let files = registry.version_files(version)?;
    let params = registry.params(candidate.id)?;
    let metadata = registry.tags(TagOwner::Version(version.id))?;
    let all_aliases = registry.aliases(model.id)?;
    let aliases: Vec<String> = all_aliases
        .iter()
        .filter(|(_, id)| *id == version.id)
        .map(|(alias, _)| alias.clone())
        .collect();
    // Charts draw a thinned series, read by seeking: bounded work however much was logged.
    let history = registry.metric_series(candidate.id, CHART_POINTS)?;
    let latest_metrics = registry.latest_metrics(candidate.id)?;
    let url = version_url(ctx, model, version);
    let model_url = ctx.ml(&format!("models/{}", model.id));
    let author = user_name(registry, version.author_id);
    let sealed = version.seal.is_some();
    let can_write = ctx.can_write();
    let may_delete_files =
        !sealed && ctx.may(Action::DeletePackages) && ctx.may(Action::DeleteModelPackages);
    let links = FileLinks {
        page: url.clone(),
        api: format!(
            "{}/packages/generic/{}/{}",
            ctx.api_root(),
            encode_segment(&model.name),
            encode_segment(&version.version)
        ),
        delete_action: may_delete_files.then(|| format!("{url}/files/delete")),
    };
    let version_uri = format!("models:/{}/{}", model.name, version.seq);
    let usage = registry.package_usage(version.package_id)?;
    let body = html! {
        div.page-head {
            div {
                h1 { a href=(model_url) { (model.name) } " / " (version.version) (version_badges(version, latest)) (alias_badges(&aliases)) }
                p.subtitle { "Version created " (layout::time(&version.created_at)) @if let Some(author) = &author { " by " (author) } }
            }
            div.actions {
                @if can_write && !sealed {
                    (layout::post_button(&ctx.visitor, &format!("{url}/delete"), "Delete version", "danger",
                        Some(&format!("Delete version {} of {} and its files? This cannot be undone.", version.version, model.name))))
                }
            }
        }
        @if let Some(problem) = problem {
            div.alert.error role="alert" { (problem) }
        }
        @if let Some(check) = &version.signature_check {
            div.alert.warning #signature-warning role="status" { "Signature check: " (check.message(&version.version)) }
        }
        @if let Some(seal) = &version.seal {
            div.card.sealed #seal {
                p { span.badge.sealed { "sealed" } " Sealed " (layout::time(&seal.sealed_at)) " by " (seal.sealed_by) ": its files never change." }
                p { "Manifest digest " code #manifest-digest { (seal.manifest_digest) } }
                (layout::snippet(&format!("{}/packages/generic/{}/{}/<file>", ctx.api_root(), encode_segment(&model.name), seal.manifest_digest)))
            }
        }
        div.layout {
            div {
                @if !version.description.trim().is_empty() {
                    div.card.markdown #description { (layout::trusted(markdown::render(&version.description))) }
                }
                @if can_write {
                    details.edit #edit-description {
                        summary { @if version.description.trim().is_empty() { "Add a description" } @else { "Edit description" } }
                        form.form method="post" action=(format!("{url}/edit")) {
                            (layout::csrf_input(&ctx.visitor))
                            textarea #version-description name="description" maxlength=(MAX_DESCRIPTION) { (version.description) }
                            div.buttons { button.primary type="submit" { "Save description" } }
                        }
                    }
                }
                h2 { "Files " span.count { (files.len()) } }
                (files_table(ctx, &files, &links))
                @if can_write && !sealed {
                    details.edit #add-files open[files.is_empty()] {
                        summary { "Add files" }
                        form.form method="post" action=(format!("{url}/files")) enctype="multipart/form-data" data-progress="upload-progress" {
                            (layout::csrf_input(&ctx.visitor))
                            label for="subfolder" { "Subfolder (optional)" }
                            input #subfolder type="text" name="subfolder" placeholder="e.g. weights";
                            label for="files-input" { "Files" }
                            div.dropzone {
                                input #files-input type="file" name="file" multiple required;
                                p.hint data-file-for="files-input" {}
                                p.hint { "Several at once; each is streamed to the registry. A file with a name the version has replaces it for downloads." }
                            }
                            progress #upload-progress max="100" value="0" hidden {}
                            p.hint #upload-status aria-live="polite" {}
                            div.buttons { button.primary type="submit" { "Upload" } }
                        }
                    }
                }
                h2 { "Metrics" }
                (metrics_section(&url, query, &latest_metrics, &history))
                h2 { "Parameters" }
                (super::run_details::key_value_table("params", &params, "No parameters logged."))
                h2 { "Metadata" }
                (tags_editor(ctx, "metadata", &metadata, can_write.then(|| format!("{url}/tags")).as_deref()))
            }
            aside.sidebar {
                h3 { "Aliases" }
                div #aliases {
                    @if aliases.is_empty() { p.empty-text { "No alias names this version." } }
                    @for alias in &aliases {
                        div.alias data-alias=(alias) {
                            span.badge.alias { "@" (alias) }
                            @if can_write {
                                " "
                                form.inline method="post" action=(format!("{url}/aliases/delete")) {
                                    (layout::csrf_input(&ctx.visitor))
                                    input type="hidden" name="alias" value=(alias);
                                    button.link.small type="submit" title=(format!("Remove @{alias}")) { "Remove" }
                                }
                            }
                            (layout::snippet(&format!("models:/{}@{alias}", model.name)))
                        }
                    }
                    @if can_write {
                        form.form.alias-form #set-alias method="post" action=(format!("{url}/aliases")) {
                            (layout::csrf_input(&ctx.visitor))
                            label for="alias" { "Set an alias" }
                            input #alias type="text" name="alias" list="known-aliases" placeholder="champion" required maxlength="255";
                            datalist #known-aliases { @for (alias, _) in &all_aliases { option value=(alias) {} } }
                            p.hint { "An alias another version has moves here." }
                            @if !model.protected_aliases.is_empty() && !model.promotion_rules.is_empty() {
                                p.hint #promotion-rules {
                                    "Protected aliases (" (model.protected_aliases.join(", ")) ") move only to a version that passes: "
                                    @for (i, rule) in model.promotion_rules.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        code { (rule) }
                                    }
                                }
                            }
                            div.buttons { button type="submit" { "Set alias" } }
                        }
                    }
                }
                h3 { "MLflow URI" }
                (layout::snippet(&version_uri))
                h3 { "CI/CD" }
                (ci_section(candidate.ci.as_ref()))
                dl {
                    dt { "Run" } dd #lineage { a href=(ctx.ml(&format!("candidates/{}", candidate.iid))) { (super::experiments::run_title(&candidate)) } div.mono.muted.wrap { (candidate.run_id) } }
                    dt { "Package" } dd.mono.wrap { (model.name) "/" (version.version) }
                    dt { "Version id" } dd { (version.id) }
                    dt { "Downloads" } dd #downloads {
                        (usage.download_count)
                        @if let Some(at) = &usage.last_downloaded_at { span.muted { ", last " (layout::time(at)) } }
                        @else { span.muted { ", never downloaded" } }
                    }
                    @if let Some(source) = &version.source { dt { "Source" } dd.mono.wrap { (source) } }
                    (super::run_lineage::source_run(ctx, version))
                }
            }
        }
    };
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(model.name.clone(), model_url));
    crumbs.push(Crumb::new(version.version.clone(), url.clone()));
    Ok(layout::page(
        &format!("{} {}", model.name, version.version),
        &ctx.visitor,
        &crumbs,
        body,
    ))
}

/// Answers a failed form of the version page: the page again with the problem, or the error.
fn again(ctx: &Ctx, model: &Model, version: &ModelVersion, error: Error) -> WebResult<Response> {
    if is_input_error(&error) || matches!(error, Error::NotFoundMessage(_)) {
        return Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            render(ctx, model, version, None, Some(&error.to_string()))?,
        ));
    }
    // A promotion policy's refusal is shown where the alias was moved, naming each rule.
    if let Error::PolicyRefused(refusal) = &error {
        return Ok(layout::respond(
            StatusCode::CONFLICT,
            render(ctx, model, version, None, Some(&refusal.message))?,
        ));
    }
    Err(error.into())
}

pub async fn update(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let form = crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let description = form.get("description").unwrap_or_default().to_string();
    match ctx
        .registry()
        .update_version_description(&ctx.visitor.caller, &ctx.access, version.id, &description)
        .await
    {
        Ok(version) => Ok(see_other(&version_url(ctx, &model, &version))),
        Err(error) => again(ctx, &model, &version, error),
    }
}

pub async fn set_alias(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let form = crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let alias = form.text("alias").unwrap_or_default();
    match ctx
        .registry()
        .set_alias(&ctx.visitor.caller, &ctx.access, &version, &alias)
        .await
    {
        Ok(()) => Ok(see_other(&version_url(ctx, &model, &version))),
        Err(error) => again(ctx, &model, &version, error),
    }
}

pub async fn delete_alias(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let form = crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let alias = form.text("alias").unwrap_or_default();
    match ctx
        .registry()
        .delete_alias(&ctx.visitor.caller, &ctx.access, model.id, &alias)
        .await
    {
        Ok(()) => Ok(see_other(&version_url(ctx, &model, &version))),
        Err(error) => again(ctx, &model, &version, error),
    }
}

/// Sets (`key`, `value`) or deletes (`delete` = key) one of the version's tags.
pub async fn tags(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let form = crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    match super::models::apply_tag_form(ctx, TagOwner::Version(version.id), &form).await {
        Ok(()) => Ok(see_other(&format!(
            "{}#metadata",
            version_url(ctx, &model, &version)
        ))),
        Err(error) => again(ctx, &model, &version, error),
    }
}

pub async fn delete_file(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let form = crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let file_id = form
        .get("file_id")
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or_else(|| Error::missing("file_id"))?;
    ctx.registry()
        .delete_package_file(
            &ctx.visitor.caller,
            &ctx.access,
            version.package_id,
            file_id,
        )
        .await?;
    Ok(see_other(&version_url(ctx, &model, &version)))
}

/// At most this many parts in a form that adds files (the token, a subfolder, the files).
const MAX_FILE_PARTS: usize = 66;

/// Adds the posted files to an existing version, streamed one after the other; the CSRF token
/// comes before any file (in the header, the query or the first parts).
pub async fn add_files(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    ctx.require_write()?;
    let mut token_checked = false;
    if let Some(token) = token_outside_body(&request) {
        ctx.visitor.check_csrf(Some(&token))?;
        token_checked = true;
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(bad_multipart)?;
    let limits = multer::SizeLimit::new()
        .per_field(MAX_TEXT_FIELD)
        .for_field(
            "file",
            ctx.registry().limits.model_file_bytes.saturating_add(1),
        );
    let mut multipart = multer::Multipart::with_constraints(
        request.into_body().into_data_stream(),
        boundary,
        multer::Constraints::new()
            .allowed_fields(vec![CSRF_FIELD, "subfolder", "file"])
            .size_limit(limits),
    );
    let mut subfolder = String::new();
    let mut parts = 0;
    let mut stored = 0;
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        parts += 1;
        if parts > MAX_FILE_PARTS {
            return Err(WebError::BadForm(format!(
                "The form has more than {MAX_FILE_PARTS} parts."
            )));
        }
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let value = field.text().await.map_err(bad_multipart)?;
            match name.as_str() {
                CSRF_FIELD => {
                    ctx.visitor.check_csrf(Some(&value))?;
                    token_checked = true;
                }
                "subfolder" => subfolder = value.trim().trim_matches('/').to_string(),
                _ => {}
            }
            continue;
        }
        if !token_checked {
            return Err(WebError::Csrf);
        }
        let file_name = field.file_name().unwrap_or("").to_string();
        if file_name.is_empty() {
            continue;
        }
        if let Err(WebError::Domain(error)) =
            store_file(ctx, &version, &subfolder, &file_name, field).await
        {
            return again(ctx, &model, &version, error);
        }
        stored += 1;
    }
    if !token_checked {
        return Err(WebError::Csrf);
    }
    if stored == 0 {
        return again(ctx, &model, &version, Error::missing("file"));
    }
    Ok(see_other(&version_url(ctx, &model, &version)))
}

/// A page previewing one of the version's files.
pub async fn preview(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    path: &str,
) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let file = ctx.registry().version_file(&version, path)?;
    let url = version_url(ctx, &model, &version);
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(
        model.name.clone(),
        ctx.ml(&format!("models/{}", model.id)),
    ));
    crumbs.push(Crumb::new(version.version.clone(), url.clone()));
    super::artifacts::preview(ctx, &file, &url, crumbs).await
}

/// One of the version's images, inline.
pub async fn raw(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    path: &str,
    request: Request,
) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let file = ctx.registry().version_file(&version, path)?;
    super::artifacts::raw_image(ctx, &file, request).await
}

pub async fn delete(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    request: Request,
) -> WebResult<Response> {
    crate::web::form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    ctx.registry()
        .delete_version(&ctx.visitor.caller, &ctx.access, version.id)
        .await?;
    Ok(see_other(&format!(
        "{}?tab=versions",
        ctx.ml(&format!("models/{}", model.id))
    )))
}

pub async fn download(
    ctx: &Ctx<'_>,
    model_id: u64,
    version_id: u64,
    path: &str,
    request: Request,
) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let version = model_version(ctx, &model, version_id)?;
    let file = ctx.registry().version_file(&version, path)?;
    Ok(crate::api::download::serve(ctx.registry(), &file, request).await?)
}
