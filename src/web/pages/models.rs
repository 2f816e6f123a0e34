//! The model registry: the models table, creating, showing, editing and deleting a model.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::{see_other, user_name, Ctx};
use crate::domain::candidates::RunOrder;
use crate::domain::ml_records::{Candidate, KeyValue, Lifecycle, Model, ModelVersion, TagOwner};
use crate::domain::models::{ModelOrder, ModelQuery, NewModel, MAX_DESCRIPTION};
use crate::domain::paging::{Page, PageRequest};
use crate::domain::Error;
use crate::web::error::{WebError, WebResult};
use crate::web::form::{self, Form};
use crate::web::layout::{self, Crumb};
use crate::web::markdown;

/// Models per page, as GitLab shows them.
const PER_PAGE: usize = 30;
/// Versions and candidates shown per page of a model's tabs.
const LIST_PAGE: usize = 50;

/// Previous/next links of a model tab's pages.
fn page_links(model_url: &str, tab: &str, search: Option<&str>, page: usize, more: bool) -> Markup {
    let link = |n: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("tab", tab);
        if let Some(search) = search {
            query.append_pair("search", search);
        }
        query.append_pair("page", &n.to_string());
        format!("{model_url}?{}", query.finish())
    };
    html! {
        @if page > 1 || more {
            nav.pagination {
                @if page > 1 { a href=(link(page - 1)) { "Previous" } }
                @if more { a href=(link(page + 1)) { "Next" } }
            }
        }
    }
}

/// The sort orders the table offers, as `?sort=` values.
const SORTS: [(&str, &str, ModelOrder, bool); 4] = [
    ("created_desc", "Newest first", ModelOrder::CreatedAt, true),
    ("created_asc", "Oldest first", ModelOrder::CreatedAt, false),
    ("name_asc", "Name, A–Z", ModelOrder::Name, false),
    ("name_desc", "Name, Z–A", ModelOrder::Name, true),
];

/// Whether a domain error is about what the visitor typed, so the form is shown again.
pub fn is_input_error(error: &Error) -> bool {
    matches!(
        error,
        Error::InvalidParam { .. }
            | Error::BadRequest(_)
            | Error::AlreadyExists(_)
            | Error::NameTaken(_)
    )
}

/// The status a form shown again with an input error answers with.
pub fn input_error_status(error: &Error) -> StatusCode {
    match error {
        Error::NameTaken(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

pub fn version_badges(version: &ModelVersion, latest: bool) -> Markup {
    let prerelease = semver::Version::parse(&version.version).is_ok_and(|v| !v.pre.is_empty());
    html! {
        @if latest { span.badge.latest { "latest" } }
        @if prerelease { span.badge.pre { "prerelease" } }
        @if let Some(seal) = &version.seal {
            span.badge.sealed title=(format!("Sealed: manifest {}", seal.manifest_digest)) { "sealed" }
        }
    }
}

/// `@champion` badges.
pub fn alias_badges(aliases: &[String]) -> Markup {
    html! {
        @for alias in aliases { span.badge.alias data-alias=(alias) { "@" (alias) } }
    }
}

/// A model's aliases by the version id they name.
fn aliases_by_version(aliases: &[(String, u64)], version_id: u64) -> Vec<String> {
    aliases
        .iter()
        .filter(|(_, id)| *id == version_id)
        .map(|(alias, _)| alias.clone())
        .collect()
}

/// Tags as a table; with `action`, each can be deleted and a form sets one.
pub fn tags_editor(ctx: &Ctx, id: &str, tags: &[KeyValue], action: Option<&str>) -> Markup {
    html! {
        div.tags-editor id=(id) {
            @if tags.is_empty() {
                p.empty-text { "No metadata." }
            } @else {
                table.list.kv {
                    tbody {
                        @for tag in tags {
                            tr data-tag=(tag.key) {
                                td.mono { (tag.key) }
                                td { (tag.value) }
                                @if let Some(action) = action {
                                    td.actions {
                                        form.inline method="post" action=(action) {
                                            (layout::csrf_input(&ctx.visitor))
                                            input type="hidden" name="delete" value=(tag.key);
                                            button.link.small type="submit" title=(format!("Delete {}", tag.key)) { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(action) = action {
                form.toolbar.tag-form method="post" action=(action) {
                    (layout::csrf_input(&ctx.visitor))
                    input type="text" name="key" placeholder="key" aria-label="Tag key" required maxlength="250";
                    input type="text" name="value" placeholder="value" aria-label="Tag value";
                    button type="submit" { "Set tag" }
                }
            }
        }
    }
}

/// Applies a tag form: `delete=<key>`, or `key` and `value` to set.
pub async fn apply_tag_form(ctx: &Ctx<'_>, owner: TagOwner, form: &Form) -> Result<(), Error> {
    let registry = ctx.registry();
    if let Some(key) = form.text("delete") {
        return registry
            .delete_tag(&ctx.visitor.caller, &ctx.access, owner, &key)
            .await;
    }
    let key = form.text("key").ok_or_else(|| Error::missing("key"))?;
    let tag = KeyValue {
        key,
        value: form.get("value").unwrap_or("").to_string(),
    };
    registry
        .set_tags(&ctx.visitor.caller, &ctx.access, owner, &[tag])
        .await
}

/// Sets or deletes one of a model's tags.
pub async fn tags(ctx: &Ctx<'_>, model_id: u64, request: Request) -> WebResult<Response> {
    let form = form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    match apply_tag_form(ctx, TagOwner::Model(model.id), &form).await {
        Ok(()) => Ok(see_other(&format!(
            "{}#model-tags",
            ctx.ml(&format!("models/{}", model.id))
        ))),
        Err(error) if is_input_error(&error) || matches!(error, Error::NotFound("Tag")) => {
            Err(WebError::BadForm(error.to_string()))
        }
        Err(error) => Err(error.into()),
    }
}

/// Whether a version filter is a SemVer requirement (`^2.2`, `~2.2`, `2.*`, `>=1, <2`) rather
/// than a prefix of version strings (`1.2`).
fn is_requirement(filter: &str) -> bool {
    filter.contains(['^', '~', '*', '<', '>', '=', ',', 'x', 'X', ' '])
        || filter.eq_ignore_ascii_case("latest")
}

pub fn status_badge(candidate: &Candidate) -> Markup {
    let status = candidate.status.as_str();
    html! { span class=(format!("badge status-{}", status.to_lowercase())) { (status.to_lowercase()) } }
}

pub fn index(ctx: &Ctx, query: Option<&str>) -> WebResult<Response> {
    let query = Form::parse(query.unwrap_or("").as_bytes());
    let search = query.text("search");
    let sort = query
        .get("sort")
        .and_then(|s| SORTS.iter().find(|(key, ..)| *key == s))
        .unwrap_or(&SORTS[0]);
    let page_number = query.get("page").and_then(|p| p.parse().ok());
    let page = ctx.registry().list_models(
        &ctx.visitor.caller,
        &ctx.access,
        &ModelQuery {
            search: search.clone(),
            order: sort.2,
            descending: sort.3,
        },
        PageRequest::new(page_number, Some(PER_PAGE)),
    )?;
    let link = |page: usize| {
        let mut params = url::form_urlencoded::Serializer::new(String::new());
        if let Some(search) = &search {
            params.append_pair("search", search);
        }
        params.append_pair("sort", sort.0);
        params.append_pair("page", &page.to_string());
        format!("{}?{}", ctx.ml("models"), params.finish())
    };
    let can_write = ctx.can_write();
    // Each model's aliases with the version string they name (a model has a few).
    let mut rows = Vec::with_capacity(page.items.len());
    for summary in &page.items {
        let mut aliases = Vec::new();
        for (alias, id) in ctx.registry().aliases(summary.model.id)? {
            let named = match &summary.latest {
                Some(latest) if latest.id == id => latest.version.clone(),
                _ => ctx
                    .registry()
                    .version(id)
                    .map(|v| v.version)
                    .unwrap_or_default(),
            };
            aliases.push((alias, named));
        }
        rows.push((summary, aliases));
    }
    let body = html! {
        div.page-head {
            div {
                h1 { "Model registry " span.count { (page.total) } }
                p.subtitle { "Models of " (ctx.access.project.path_with_namespace()) ", with their versions and files." }
            }
            div.actions {
                @if can_write { a.button.primary href=(ctx.ml("models/new")) { "Create model" } }
            }
        }
        @if page.total == 0 && search.is_none() {
            (empty_state(ctx))
        } @else {
            form.toolbar method="get" action=(ctx.ml("models")) role="search" {
                input type="search" name="search" value=[search.as_deref()] placeholder="Filter by name" aria-label="Filter by name";
                select name="sort" aria-label="Sort by" {
                    @for (key, label, ..) in &SORTS {
                        option value=(key) selected[*key == sort.0] { (label) }
                    }
                }
                button type="submit" { "Apply" }
            }
            @if page.items.is_empty() {
                p.empty-text { "No model matches “" (search.as_deref().unwrap_or("")) "”." }
            } @else {
                table.list #models {
                    thead { tr { th { "Model" } th { "Latest version" } th { "Aliases" } th { "Author" } th { "Created" } } }
                    tbody {
                        @for (summary, aliases) in &rows {
                            tr {
                                td { a.model-link href=(ctx.ml(&format!("models/{}", summary.model.id))) { strong { (summary.model.name) } } }
                                td {
                                    @match &summary.latest {
                                        Some(latest) => {
                                            a href=(ctx.ml(&format!("models/{}/versions/{}", summary.model.id, latest.id))) { (latest.version) }
                                            span.muted { " · " (summary.version_count) @if summary.version_count == 1 { " version" } @else { " versions" } }
                                        }
                                        None => span.muted { "No versions" },
                                    }
                                }
                                td.aliases {
                                    @for (alias, version) in aliases {
                                        span.badge.alias data-alias=(alias) title=(format!("models:/{}@{alias}", summary.model.name)) { "@" (alias) }
                                        span.muted.small { " " (version) " " }
                                    }
                                }
                                td { (user_name(ctx.registry(), summary.model.author_id).unwrap_or_default()) }
                                td { (layout::time(&summary.model.created_at)) }
                            }
                        }
                    }
                }
            }
            @if page.total_pages() > 1 {
                nav.pagination aria-label="Pages" {
                    @if let Some(prev) = page.prev_page() { a.button.small rel="prev" href=(link(prev)) { "← Previous" } }
                    span.muted { "Page " (page.request.page) " of " (page.total_pages()) }
                    @if let Some(next) = page.next_page() { a.button.small rel="next" href=(link(next)) { "Next →" } }
                }
            }
        }
    };
    let mut crumbs = ctx.project_crumbs();
    crumbs.push(Crumb::new("Model registry", ctx.ml("models")));
    Ok(layout::ok(layout::page(
        "Model registry",
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

fn empty_state(ctx: &Ctx) -> Markup {
    let api = ctx.api_root();
    let curl = format!(
        "curl --header \"PRIVATE-TOKEN: $TOKEN\" -X POST \"{api}/ml/models\" \\\n  -d '{{\"name\": \"my-model\"}}'\n\
         curl --header \"PRIVATE-TOKEN: $TOKEN\" --upload-file model.onnx \\\n  \"{api}/packages/generic/my-model/1.0.0/model.onnx\""
    );
    let env = format!(
        "export MLFLOW_TRACKING_URI=\"{api}/ml/mlflow\"\nexport MLFLOW_TRACKING_TOKEN=\"<your personal access token>\""
    );
    let python = "import mlflow\n\nwith mlflow.start_run():\n    mlflow.log_param(\"alpha\", 0.5)\n    mlflow.log_metric(\"rmse\", 0.27)\n    info = mlflow.sklearn.log_model(model, name=\"model\")\nmlflow.register_model(info.model_uri, \"my-model\")";
    html! {
        div.empty-state {
            h2 { "Push your first model" }
            p { "A model version is a package " code { "<model name>/<semantic version>" } "; its files are the package's files. Use the API with a personal access token, or point the MLflow client at this project." }
            h3 { "With curl" }
            (layout::snippet(&curl))
            h3 { "With MLflow" }
            p.muted { "Set the tracking URI and your token, then log and register as usual:" }
            (layout::snippet(&env))
            (layout::snippet(python))
            @if ctx.can_write() {
                p { "Or " a href=(ctx.ml("models/new")) { "create a model here" } "." }
            }
        }
    }
}

fn model_form(
    ctx: &Ctx,
    action: &str,
    name: Option<&str>,
    description: &str,
    problem: Option<&str>,
) -> Markup {
    html! {
        form.form method="post" action=(action) {
            (layout::csrf_input(&ctx.visitor))
            @if let Some(problem) = problem {
                div.alert.error role="alert" { (problem) }
            }
            @if let Some(name) = name {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(name) required maxlength="255" autofocus;
                p.hint { "Must be unique in the project. May not contain spaces: letters, digits, '.', '_', '-' and '/' between parts." }
            }
            label for="description" { "Description" }
            textarea #description name="description" maxlength=(MAX_DESCRIPTION) placeholder="Markdown: what the model does, its inputs and outputs, how it was trained." { (description) }
            p.hint { "Markdown, at most 10,000 characters." }
            div.buttons {
                button.primary type="submit" { @if name.is_some() { "Create model" } @else { "Save changes" } }
                a.button href=(ctx.ml("models")) { "Cancel" }
            }
        }
    }
}

fn new_model_page(ctx: &Ctx, name: &str, description: &str, problem: Option<&str>) -> Markup {
    let body = html! {
        div.page-head { div { h1 { "New model" } } }
        (model_form(ctx, &ctx.ml("models"), Some(name), description, problem))
    };
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new("New model", ctx.ml("models/new")));
    layout::page("New model", &ctx.visitor, &crumbs, body)
}

pub fn new_form(ctx: &Ctx) -> WebResult<Response> {
    ctx.require_write()?;
    Ok(layout::ok(new_model_page(ctx, "", "", None)))
}

pub async fn create(ctx: &Ctx<'_>, request: Request) -> WebResult<Response> {
    let form = form::read(&ctx.visitor, request).await?;
    ctx.require_write()?;
    let name = form.text("name").unwrap_or_default();
    let description = form.get("description").unwrap_or_default().to_string();
    let created = ctx
        .registry()
        .create_model(
            &ctx.visitor.caller,
            &ctx.access,
            NewModel {
                name: name.clone(),
                description: Some(description.clone()),
                tags: Vec::new(),
                adopt_generic_packages: false,
            },
        )
        .await;
    match created {
        Ok(model) => Ok(see_other(&ctx.ml(&format!("models/{}", model.id)))),
        Err(error) if is_input_error(&error) => Ok(layout::respond(
            input_error_status(&error),
            new_model_page(ctx, &name, &description, Some(&error.to_string())),
        )),
        Err(error) => Err(error.into()),
    }
}

fn tab_link(ctx: &Ctx, model: &Model, tab: &str, current: &str, label: Markup) -> Markup {
    html! {
        a class=@if tab == current { "active" } @else { "" }
            aria-current=[(tab == current).then_some("page")]
            href=(format!("{}?tab={tab}", ctx.ml(&format!("models/{}", model.id)))) { (label) }
    }
}

pub fn show(ctx: &Ctx, model_id: u64, query: Option<&str>) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    let registry = ctx.registry();
    let query = Form::parse(query.unwrap_or("").as_bytes());
    let tab = match query.get("tab") {
        Some("versions") => "versions",
        Some("candidates") => "candidates",
        _ => "card",
    };
    let version_count = registry.version_count(&model)?;
    let latest_version = registry.latest_version(&model)?;
    let latest = latest_version.as_ref();
    let aliases = registry.aliases(model.id)?;
    let model_tags = registry.tags(TagOwner::Model(model.id))?;
    let experiment = registry.experiment(model.experiment_id)?;
    // Every version has its candidate in the model's experiment; the others are candidates.
    let candidate_count = (registry.candidate_count(experiment.id, Lifecycle::Active)?
        + registry.candidate_count(experiment.id, Lifecycle::Deleted)?)
    .saturating_sub(version_count);
    let page_number = query.get("page").and_then(|p| p.parse::<usize>().ok());
    let candidates: Vec<Candidate> = if tab == "candidates" {
        registry
            .candidates_stream(
                &[experiment.id],
                &[Lifecycle::Active, Lifecycle::Deleted],
                RunOrder::Created,
                true,
                None,
            )
            .filter(|entry| !matches!(entry, Ok((_, c)) if c.model_version_id.is_some()))
            .skip(page_number.unwrap_or(1).saturating_sub(1) * LIST_PAGE)
            .take(LIST_PAGE)
            .map(|entry| entry.map(|(_, c)| c))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let can_write = ctx.can_write();
    let model_url = ctx.ml(&format!("models/{}", model.id));
    let author = user_name(registry, model.author_id);
    let content = match tab {
        "versions" => {
            let search = query.text("search").filter(|s| !s.is_empty());
            let request = PageRequest::new(page_number, Some(LIST_PAGE));
            let mut problem = None;
            let page = match &search {
                Some(requirement) if is_requirement(requirement) => {
                    match registry.versions_matching(&model, requirement, request.clone()) {
                        Ok(page) => page,
                        Err(error @ Error::BadRequest(_)) => {
                            problem = Some(error.to_string());
                            Page::keyed(Vec::new(), 0, request, None)
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
                Some(prefix) => registry.versions_with_prefix(&model, prefix, request)?,
                None => registry.versions_page(&model, false, request)?,
            };
            let next_page = page.next_cursor.is_some() || page.next_page().is_some();
            let shown: Vec<&ModelVersion> = page.items.iter().collect();
            html! {
                form.toolbar method="get" action=(model_url) role="search" {
                    input type="hidden" name="tab" value="versions";
                    input #version-filter type="search" name="search" value=[search.as_deref()] placeholder="Prefix (1.2) or SemVer requirement (^2.2, ~2.2, 2.*)" aria-label="Filter versions";
                    button type="submit" { "Filter" }
                }
                @if let Some(problem) = &problem {
                    div.alert.error role="alert" { (problem) }
                }
                @if shown.is_empty() {
                    p.empty-text { @if version_count == 0 { "This model has no versions yet." } @else { "No version matches." } }
                } @else {
                    form #compare-versions method="get" action=(format!("{model_url}/compare")) {
                        div.scroll {
                            table.list #versions {
                                thead { tr { th.select { span.visually-hidden { "Select" } } th { "Version" } th { "Created" } th { "Author" } th { "Description" } } }
                                tbody {
                                    @for v in &shown {
                                        tr data-version=(v.version) {
                                            td.select { input type="checkbox" name="versions" value=(v.version) aria-label=(format!("Select {}", v.version)); }
                                            td {
                                                a.version-link href=(ctx.ml(&format!("models/{}/versions/{}", model.id, v.id))) { strong { (v.version) } }
                                                (version_badges(v, latest.is_some_and(|l| l.id == v.id)))
                                                (alias_badges(&aliases_by_version(&aliases, v.id)))
                                            }
                                            td { (layout::time(&v.created_at)) }
                                            td { (user_name(registry, v.author_id).unwrap_or_default()) }
                                            td.muted { (v.description.lines().next().unwrap_or("")) }
                                        }
                                    }
                                }
                            }
                        }
                        div.toolbar.below { button #compare-button type="submit" { "Compare selected versions" } }
                    }
                    (page_links(&model_url, "versions", search.as_deref(), page_number.unwrap_or(1), next_page))
                }
            }
        }
        "candidates" => html! {
            @if candidates.is_empty() {
                p.empty-text { "No candidates: every run of this model's experiment is a version." }
            } @else {
                table.list #candidates {
                    thead { tr { th { "Candidate" } th { "Status" } th { "CI job" } th { "Created" } th { "Author" } } }
                    tbody {
                        @for c in &candidates {
                            tr {
                                td { a href=(ctx.ml(&format!("candidates/{}", c.iid))) { strong { (if c.name.is_empty() { &c.run_id } else { &c.name }) } } div.muted.mono { (c.run_id) } }
                                td { (status_badge(c)) }
                                td { (ci_job_link(c)) }
                                td { (layout::time(&c.created_at)) }
                                td { (user_name(registry, c.user_id).unwrap_or_default()) }
                            }
                        }
                    }
                }
                (page_links(&model_url, "candidates", None, page_number.unwrap_or(1), candidates.len() == LIST_PAGE))
            }
        },
        _ => html! {
            div.markdown.card #model-card {
                @if model.description.trim().is_empty() {
                    p.empty-text { "No model card yet." @if can_write { " " a href=(format!("{model_url}/edit")) { "Write one" } "." } }
                } @else {
                    (layout::trusted(markdown::render(&model.description)))
                }
            }
        },
    };
    let body = html! {
        div.page-head {
            div {
                h1 { (model.name) }
                p.subtitle { "Model created " (layout::time(&model.created_at)) @if let Some(author) = &author { " by " (author) } }
            }
            div.actions {
                @if can_write {
                    a.button href=(format!("{model_url}/edit")) { "Edit" }
                    a.button.primary href=(format!("{model_url}/versions/new")) { "Create version" }
                    (layout::post_button(&ctx.visitor, &format!("{model_url}/delete"), "Delete model", "danger",
                        Some(&format!("Delete model {} with all its versions, candidates and files? This cannot be undone.", model.name))))
                }
            }
        }
        div.layout {
            div {
                nav.tabs {
                    (tab_link(ctx, &model, "card", tab, html! { "Model card" }))
                    (tab_link(ctx, &model, "versions", tab, html! { "Versions " span.count { (version_count) } }))
                    (tab_link(ctx, &model, "candidates", tab, html! { "Candidates " span.count { (candidate_count) } }))
                }
                (content)
            }
            aside.sidebar {
                dl {
                    dt { "Author" } dd { (author.unwrap_or_else(|| "–".into())) }
                    dt { "Latest version" }
                    dd {
                        @match latest {
                            Some(v) => a href=(ctx.ml(&format!("models/{}/versions/{}", model.id, v.id))) { (v.version) },
                            None => span.muted { "None" },
                        }
                    }
                    dt { "Aliases" }
                    dd #model-aliases {
                        @if aliases.is_empty() { span.muted { "None" } }
                        @for (alias, id) in &aliases {
                            div.alias data-alias=(alias) {
                                span.badge.alias { "@" (alias) }
                                " → "
                                a href=(ctx.ml(&format!("models/{}/versions/{id}", model.id))) {
                                    (registry.version(*id).map(|v| v.version).unwrap_or_default())
                                }
                                (layout::snippet(&format!("models:/{}@{alias}", model.name)))
                            }
                        }
                    }
                    dt { "Versions" } dd { (version_count) }
                    dt { "Candidates" } dd { (candidate_count) }
                    dt { "Experiment" } dd { a href=(ctx.ml(&format!("experiments/{}", experiment.iid))) { (experiment.name) } }
                    dt { "Package" } dd.mono { (model.name) "/<version>" }
                }
                h3 { "Tags" }
                (tags_editor(ctx, "model-tags", &model_tags, can_write.then(|| format!("{model_url}/tags")).as_deref()))
            }
        }
    };
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(model.name.clone(), model_url.clone()));
    Ok(layout::ok(layout::page(
        &model.name,
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

pub fn ci_job_link(candidate: &Candidate) -> Markup {
    let Some(ci) = &candidate.ci else {
        return html! { span.muted { "–" } };
    };
    super::run_details::link_or_text(ci.job_url.as_ref(), super::run_details::job_label(ci))
}

fn edit_page(ctx: &Ctx, model: &Model, description: &str, problem: Option<&str>) -> Markup {
    let model_url = ctx.ml(&format!("models/{}", model.id));
    let body = html! {
        div.page-head { div { h1 { "Edit " (model.name) } } }
        (model_form(ctx, &format!("{model_url}/edit"), None, description, problem))
    };
    let mut crumbs = ctx.registry_crumbs();
    crumbs.push(Crumb::new(model.name.clone(), model_url.clone()));
    crumbs.push(Crumb::new("Edit", format!("{model_url}/edit")));
    layout::page(&format!("Edit {}", model.name), &ctx.visitor, &crumbs, body)
}

pub fn edit_form(ctx: &Ctx, model_id: u64) -> WebResult<Response> {
    let model = ctx.model(model_id)?;
    ctx.require_write()?;
    Ok(layout::ok(edit_page(ctx, &model, &model.description, None)))
}

pub async fn update(ctx: &Ctx<'_>, model_id: u64, request: Request) -> WebResult<Response> {
    let form = form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    ctx.require_write()?;
    let description = form.get("description").unwrap_or_default().to_string();
    match ctx
        .registry()
        .update_model_description(&ctx.visitor.caller, &ctx.access, model.id, &description)
        .await
    {
        Ok(model) => Ok(see_other(&ctx.ml(&format!("models/{}", model.id)))),
        Err(error) if is_input_error(&error) => Ok(layout::respond(
            StatusCode::BAD_REQUEST,
            edit_page(ctx, &model, &description, Some(&error.to_string())),
        )),
        Err(error) => Err(error.into()),
    }
}

pub async fn delete(ctx: &Ctx<'_>, model_id: u64, request: Request) -> WebResult<Response> {
    form::read(&ctx.visitor, request).await?;
    let model = ctx.model(model_id)?;
    ctx.registry()
        .delete_model(&ctx.visitor.caller, &ctx.access, model.id)
        .await?;
    Ok(see_other(&ctx.ml("models")))
}
