//! Model experiments: the list, and an experiment's runs with their params and metrics.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::models::{ci_job_link, status_badge};
use super::{user_name, Ctx};
use crate::domain::ml_records::{Candidate, Lifecycle, TagOwner};
use crate::domain::paging::PageRequest;
use crate::domain::run_search::RunQuery;
use crate::domain::{search_syntax, Error, Registry};
use crate::web::error::WebResult;
use crate::web::form::Form;
use crate::web::layout::{self, Crumb};

pub fn index(ctx: &Ctx) -> WebResult<Response> {
    let registry = ctx.registry();
    let experiments = registry.experiments_page(
        ctx.access.project.id,
        true,
        PageRequest::new(None, Some(PageRequest::MAX_PER_PAGE)),
    )?;
    let experiment_total = experiments.total;
    let mut rows = Vec::with_capacity(experiments.items.len());
    for experiment in experiments.items {
        let runs = registry.candidate_count(experiment.id, Lifecycle::Active)?
            + registry.candidate_count(experiment.id, Lifecycle::Deleted)?;
        rows.push((experiment, runs));
    }
    let body = html! {
        div.page-head {
            div {
                h1 { "Model experiments " span.count { (experiment_total) } }
                p.subtitle { "Experiments group runs (candidates) with their params, metrics and artifacts. Every model has one." }
            }
        }
        @if rows.is_empty() {
            div.empty-state {
                h2 { "No experiments yet" }
                p { "Log runs with the MLflow client pointed at this project:" }
                (layout::snippet(&format!("export MLFLOW_TRACKING_URI=\"{}/ml/mlflow\"\nexport MLFLOW_TRACKING_TOKEN=\"<your personal access token>\"", ctx.api_root())))
            }
        } @else {
            table.list #experiments {
                thead { tr { th { "Experiment" } th.num { "Candidates" } th { "Model" } th { "Creator" } th { "Created" } } }
                tbody {
                    @for (experiment, runs) in &rows {
                        tr {
                            td { a href=(ctx.ml(&format!("experiments/{}", experiment.iid))) { strong { (experiment.name) } } }
                            td.num { (runs) }
                            td {
                                @match experiment.model_id {
                                    Some(id) => a href=(ctx.ml(&format!("models/{id}"))) { "model" },
                                    None => span.muted { "–" },
                                }
                            }
                            td { (user_name(registry, experiment.creator_id).unwrap_or_default()) }
                            td { (layout::time(&experiment.created_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::ok(layout::page(
        "Model experiments",
        &ctx.visitor,
        &ctx.experiment_crumbs(),
        body,
    )))
}

/// Runs per page of the runs table, unless `?per_page=` asks for another size (at most 100).
const RUNS_PER_PAGE: usize = 50;
/// Param and metric columns shown each when the visitor has not picked any; the picker lists
/// every key of the page.
const DEFAULT_COLUMNS: usize = 6;
/// The MLflow tag naming a nested run's parent.
const PARENT_TAG: &str = "mlflow.parentRunId";

/// A column of the runs table: a param, the latest value of a metric, or a tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    pub kind: ColumnKind,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColumnKind {
    Metric,
    Param,
    Tag,
}

impl Column {
    /// `params.lr`, `metrics.auc`, `tags.team`.
    pub fn parse(spec: &str) -> Option<Column> {
        let (prefix, key) = spec.trim().split_once('.')?;
        let kind = match prefix {
            "params" | "param" => ColumnKind::Param,
            "metrics" | "metric" => ColumnKind::Metric,
            "tags" | "tag" => ColumnKind::Tag,
            _ => return None,
        };
        (!key.is_empty()).then(|| Column {
            kind,
            key: key.to_string(),
        })
    }

    pub fn spec(&self) -> String {
        format!("{}.{}", self.prefix(), self.key)
    }

    fn prefix(&self) -> &'static str {
        match self.kind {
            ColumnKind::Param => "params",
            ColumnKind::Metric => "metrics",
            ColumnKind::Tag => "tags",
        }
    }

    /// The column as an `order_by` field, quoted when the key needs it; `None` when it cannot
    /// be written in the search syntax.
    fn order_field(&self) -> Option<String> {
        order_field(self.prefix(), &self.key)
    }
}

/// `prefix.key`, with the key in backquotes when it has characters the syntax splits at.
pub fn order_field(prefix: &str, key: &str) -> Option<String> {
    if key.contains('`') {
        return None;
    }
    let plain = !key
        .chars()
        .any(|c| c.is_whitespace() || "=!<>'\"".contains(c));
    Some(if plain {
        format!("{prefix}.{key}")
    } else {
        format!("{prefix}.`{key}`")
    })
}

/// What the runs table shows: the query string of its page.
#[derive(Debug, Clone, Default)]
struct RunsView {
    filter: String,
    order_by: String,
    /// `None`: the default columns.
    columns: Option<Vec<Column>>,
    deleted: bool,
    per_page: usize,
    page_token: Option<String>,
}

impl RunsView {
    fn parse(query: Option<&str>) -> RunsView {
        let form = Form::parse(query.unwrap_or("").as_bytes());
        let mut picked: Vec<Column> = form
            .all("columns")
            .flat_map(|list| list.split(','))
            .chain(form.all("col"))
            .filter_map(Column::parse)
            .collect();
        picked.dedup();
        let explicit = form.get("columns").is_some() || form.get("pick").is_some();
        RunsView {
            filter: form.get("filter").unwrap_or("").trim().to_string(),
            order_by: form.get("order_by").unwrap_or("").trim().to_string(),
            columns: explicit.then_some(picked),
            deleted: form.get("deleted").is_some_and(|v| v == "1" || v == "on"),
            per_page: form
                .get("per_page")
                .and_then(|n| n.parse().ok())
                .unwrap_or(RUNS_PER_PAGE)
                .clamp(1, PageRequest::MAX_PER_PAGE),
            page_token: form.text("page_token"),
        }
    }

    /// This view's URL with another order, page or columns.
    fn url(
        &self,
        base: &str,
        order_by: Option<&str>,
        page_token: Option<&str>,
        columns: &[Column],
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if !self.filter.is_empty() {
            query.append_pair("filter", &self.filter);
        }
        let order = order_by.unwrap_or(&self.order_by);
        if !order.is_empty() {
            query.append_pair("order_by", order);
        }
        if self.columns.is_some() {
            let list: Vec<String> = columns.iter().map(Column::spec).collect();
            query.append_pair("columns", &list.join(","));
        }
        if self.deleted {
            query.append_pair("deleted", "1");
        }
        if self.per_page != RUNS_PER_PAGE {
            query.append_pair("per_page", &self.per_page.to_string());
        }
        if let Some(token) = page_token {
            query.append_pair("page_token", token);
        }
        let query = query.finish();
        if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        }
    }
}

/// One row of the runs table with what its cells show.
struct RunRow {
    candidate: Candidate,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    tags: BTreeMap<String, String>,
    /// 0 for a top-level run, 1 for a child shown under its parent on this page.
    depth: usize,
    /// A child whose parent is not on this page: the parent's iid and name.
    parent_elsewhere: Option<(u64, String)>,
}

impl RunRow {
    fn cell(&self, column: &Column) -> Option<String> {
        match column.kind {
            ColumnKind::Param => self.params.get(&column.key).cloned(),
            ColumnKind::Metric => self.metrics.get(&column.key).map(|v| format_metric(*v)),
            ColumnKind::Tag => self.tags.get(&column.key).cloned(),
        }
    }
}

/// Tags the table offers as columns: not the clients' bookkeeping (`mlflow.*`, `gitlab.*`).
fn user_tag(key: &str) -> bool {
    !key.starts_with("mlflow.") && !key.starts_with("gitlab.")
}

pub fn run_title(candidate: &Candidate) -> String {
    if candidate.name.is_empty() {
        format!("Candidate {}", candidate.iid)
    } else {
        candidate.name.clone()
    }
}

/// Children follow their parent when both are on the page; the others keep the search order.
fn nest(registry: &Registry, rows: Vec<RunRow>) -> Vec<RunRow> {
    let on_page: BTreeMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.candidate.run_id.clone(), i))
        .collect();
    let parent_of: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.tags
                .get(PARENT_TAG)
                .filter(|p| **p != r.candidate.run_id)
                .cloned()
        })
        .collect();
    let mut children: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut top = Vec::new();
    for (i, parent) in parent_of.iter().enumerate() {
        match parent.as_ref().and_then(|p| on_page.get(p)) {
            Some(&p) if parent_of[p].is_none() => children.entry(p).or_default().push(i),
            _ => top.push(i),
        }
    }
    let mut slots: Vec<Option<RunRow>> = rows.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    for i in top {
        let Some(mut row) = slots[i].take() else {
            continue;
        };
        if let Some(parent) = &parent_of[i] {
            if let Ok(p) = registry.candidate_by_run_id(row.candidate.project_id, parent) {
                row.parent_elsewhere = Some((p.iid, run_title(&p)));
            }
        }
        out.push(row);
        for &child in children.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(mut row) = slots[child].take() {
                row.depth = 1;
                out.push(row);
            }
        }
    }
    out
}

/// A duration in milliseconds as people read it: `850ms`, `42s`, `3m 07s`, `2h 05m`.
pub fn human_duration(ms: i64) -> String {
    if ms < 0 {
        return "–".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn duration_of(candidate: &Candidate) -> Option<String> {
    candidate
        .end_time
        .map(|end| human_duration(end - candidate.start_time))
}

pub fn show(ctx: &Ctx, iid: u64, query: Option<&str>) -> WebResult<Response> {
    let registry = ctx.registry();
    let experiment = registry.experiment_by_iid(ctx.access.project.id, iid)?;
    if experiment.project_id != ctx.access.project.id {
        return Err(Error::NotFound("Experiment").into());
    }
    let view = RunsView::parse(query);
    let experiment_url = ctx.ml(&format!("experiments/{}", experiment.iid));
    // The filter and the order in MLflow's syntax, planned as `runs/search` plans them.
    let plan = search_syntax::parse_filter(&view.filter).and_then(|clauses| {
        let order = if view.order_by.is_empty() {
            Vec::new()
        } else {
            search_syntax::parse_order_by(std::slice::from_ref(&view.order_by))?
        };
        Ok((clauses, order))
    });
    let searched = plan.and_then(|(clauses, order)| {
        let mut lifecycles = vec![Lifecycle::Active];
        if view.deleted {
            lifecycles.push(Lifecycle::Deleted);
        }
        registry.search_runs(&RunQuery {
            experiments: vec![experiment.id],
            clauses,
            order,
            lifecycles,
            max_results: view.per_page,
            page_token: view.page_token.clone(),
        })
    });
    let (page, problem) = match searched {
        Ok(page) => (Some(page), None),
        Err(error @ (Error::BadRequest(_) | Error::InvalidParam { .. })) => {
            (None, Some(error.to_string()))
        }
        Err(other) => return Err(other.into()),
    };
    let runs = page.as_ref().map(|p| p.runs.clone()).unwrap_or_default();
    let next_token = page.and_then(|p| p.next_token);
    let mut rows = Vec::with_capacity(runs.len());
    let mut param_keys = BTreeSet::new();
    let mut metric_keys = BTreeSet::new();
    let mut tag_keys = BTreeSet::new();
    for candidate in runs {
        let params: BTreeMap<String, String> = registry
            .params(candidate.id)?
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        let metrics: BTreeMap<String, f64> = registry
            .latest_metrics(candidate.id)?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        let tags: BTreeMap<String, String> = registry
            .tags(TagOwner::Candidate(candidate.id))?
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect();
        param_keys.extend(params.keys().cloned());
        metric_keys.extend(metrics.keys().cloned());
        tag_keys.extend(tags.keys().filter(|k| user_tag(k)).cloned());
        rows.push(RunRow {
            candidate,
            params,
            metrics,
            tags,
            depth: 0,
            parent_elsewhere: None,
        });
    }
    let rows = nest(registry, rows);
    // Every key of the page, for the picker; picked columns stay even when no run has them.
    let mut available: Vec<Column> = metric_keys
        .iter()
        .map(|k| Column {
            kind: ColumnKind::Metric,
            key: k.clone(),
        })
        .chain(param_keys.iter().map(|k| Column {
            kind: ColumnKind::Param,
            key: k.clone(),
        }))
        .chain(tag_keys.iter().map(|k| Column {
            kind: ColumnKind::Tag,
            key: k.clone(),
        }))
        .collect();
    let columns: Vec<Column> = match &view.columns {
        Some(picked) => picked.clone(),
        None => available
            .iter()
            .filter(|c| c.kind == ColumnKind::Metric)
            .take(DEFAULT_COLUMNS)
            .chain(
                available
                    .iter()
                    .filter(|c| c.kind == ColumnKind::Param)
                    .take(DEFAULT_COLUMNS),
            )
            .cloned()
            .collect(),
    };
    for column in &columns {
        if !available.contains(column) {
            available.push(column.clone());
        }
    }
    let hidden = available.len() - columns.len();
    let model = experiment
        .model_id
        .map(|id| registry.model(id))
        .transpose()?;
    let total = registry.candidate_count(experiment.id, Lifecycle::Active)?;
    let deleted_total = registry.candidate_count(experiment.id, Lifecycle::Deleted)?;
    let current_order = view.order_by.clone();
    // A header that sorts by `field`: descending first, then ascending.
    let sort_link = |label: Markup, field: Option<String>, numeric: bool| -> Markup {
        let Some(field) = field else {
            return html! { th { (label) } };
        };
        let desc = format!("{field} DESC");
        let asc = format!("{field} ASC");
        let (state, next) = if current_order.eq_ignore_ascii_case(&desc) {
            (Some("descending"), asc)
        } else if current_order.eq_ignore_ascii_case(&asc) || current_order == field {
            (Some("ascending"), desc)
        } else {
            (None, desc)
        };
        let href = view.url(&experiment_url, Some(&next), None, &columns);
        html! {
            th class=(if numeric { "num sortable" } else { "sortable" }) aria-sort=[state] {
                a href=(href) data-order=(field) {
                    (label)
                    @match state {
                        Some("descending") => span.arrow { " ▼" },
                        Some(_) => span.arrow { " ▲" },
                        None => {},
                    }
                }
            }
        }
    };
    let compare_url = format!("{experiment_url}/compare");
    let body = html! {
        div.page-head {
            div {
                h1 { (experiment.name) }
                p.subtitle {
                    "Experiment created " (layout::time(&experiment.created_at))
                    @if let Some(creator) = user_name(registry, experiment.creator_id) { " by " (creator) }
                    @if let Some(model) = &model { " · runs of model " a href=(ctx.ml(&format!("models/{}", model.id))) { (model.name) } }
                }
            }
        }
        h2 { "Runs " span.count { (total) } @if deleted_total > 0 { " " span.muted.small { "(" (deleted_total) " deleted)" } } }
        form.toolbar.run-search method="get" action=(experiment_url) role="search" {
            input #filter type="search" name="filter" value=(view.filter)
                placeholder="metrics.auc > 0.9 and params.lr = '0.01'" aria-label="Filter runs (MLflow search syntax)";
            input #order_by type="text" name="order_by" value=(view.order_by)
                placeholder="metrics.auc DESC" aria-label="Order by";
            @if let Some(columns) = &view.columns {
                input type="hidden" name="columns" value=(columns.iter().map(Column::spec).collect::<Vec<_>>().join(","));
            }
            label.check { input type="checkbox" name="deleted" value="1" checked[view.deleted]; " Deleted runs" }
            button type="submit" { "Search" }
            @if !view.filter.is_empty() || !view.order_by.is_empty() || view.deleted {
                a.button href=(experiment_url) { "Clear" }
            }
        }
        p.hint.muted { "MLflow's search syntax: " code { "metrics.<key>" } ", " code { "params.<key>" } ", " code { "tags.<key>" } ", " code { "attributes.status" } " … with " code { "= != < <= > >= LIKE ILIKE" } ", clauses joined with " code { "and" } "." }
        @if let Some(problem) = &problem {
            div.alert.error #search-error role="alert" { (problem) }
        }
        details.column-picker #column-picker {
            summary { "Columns " span.count { (columns.len()) } @if hidden > 0 { " " span.muted { (hidden) " more available" } } }
            form method="get" action=(experiment_url) {
                input type="hidden" name="pick" value="1";
                @if !view.filter.is_empty() { input type="hidden" name="filter" value=(view.filter); }
                @if !view.order_by.is_empty() { input type="hidden" name="order_by" value=(view.order_by); }
                @if view.deleted { input type="hidden" name="deleted" value="1"; }
                div.picker-keys {
                    @for column in &available {
                        label.check {
                            input type="checkbox" name="col" value=(column.spec()) checked[columns.contains(column)];
                            " " span.kind { (column.prefix()) } " " span.mono { (column.key) }
                        }
                    }
                    @if available.is_empty() { p.empty-text { "No params, metrics or tags on this page." } }
                }
                button type="submit" { "Show columns" }
            }
        }
        @if rows.is_empty() {
            @if problem.is_none() {
                p.empty-text { @if view.filter.is_empty() { "No runs logged in this experiment." } @else { "No run matches the filter." } }
            }
        } @else {
            form #compare-form method="get" action=(compare_url) {
                div.scroll {
                    table.list.runs #runs {
                        thead {
                            tr {
                                th.select { span.visually-hidden { "Select" } }
                                (sort_link(html! { "Run" }, Some("attributes.run_name".into()), false))
                                (sort_link(html! { "Status" }, Some("attributes.status".into()), false))
                                (sort_link(html! { "Started" }, Some("attributes.start_time".into()), false))
                                (sort_link(html! { "Duration" }, Some("attributes.duration".into()), true))
                                @for column in &columns {
                                    (sort_link(html! { span.kind { (column.prefix()) } " " span.mono { (column.key) } }, column.order_field(), column.kind == ColumnKind::Metric))
                                }
                                th { "CI job" }
                            }
                        }
                        tbody {
                            @for row in &rows {
                                @let c = &row.candidate;
                                tr class=(if row.depth > 0 { "child" } else { "" }) data-run=(c.iid) {
                                    td.select { input type="checkbox" name="runs" value=(c.iid) aria-label=(format!("Select {}", run_title(c))); }
                                    td.run {
                                        @if row.depth > 0 || row.parent_elsewhere.is_some() { span.nest aria-hidden="true" { "↳ " } }
                                        a href=(ctx.ml(&format!("candidates/{}", c.iid))) { (run_title(c)) }
                                        @if c.model_version_id.is_some() { span.badge.latest { "version" } }
                                        @if c.lifecycle == Lifecycle::Deleted { span.badge.pre { "deleted" } }
                                        @if let Some((iid, name)) = &row.parent_elsewhere {
                                            div.muted.small { "child of " a href=(ctx.ml(&format!("candidates/{iid}"))) { (name) } }
                                        }
                                    }
                                    td { (status_badge(c)) }
                                    td { (layout::time_ms(c.start_time)) }
                                    td.num { (duration_of(c).unwrap_or_default()) }
                                    @for column in &columns {
                                        @let value = row.cell(column);
                                        td class=(if column.kind == ColumnKind::Metric { "num" } else { "" }) {
                                            @if let Some(value) = value { span.cell title=(value) { (value) } }
                                        }
                                    }
                                    td { (ci_job_link(c)) }
                                }
                            }
                        }
                    }
                }
                div.toolbar.below {
                    button #compare-button type="submit" { "Compare selected runs" }
                    span.muted { "Select two or more runs." }
                }
            }
            nav.pagination aria-label="Pages" {
                @if view.page_token.is_some() {
                    a.button.small href=(view.url(&experiment_url, None, None, &columns)) { "← First page" }
                }
                @if let Some(token) = &next_token {
                    a.button.small rel="next" href=(view.url(&experiment_url, None, Some(token), &columns)) { "Next page →" }
                }
            }
        }
    };
    let mut crumbs = ctx.experiment_crumbs();
    crumbs.push(Crumb::new(experiment.name.clone(), experiment_url.clone()));
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(layout::respond(
        status,
        layout::page(&experiment.name, &ctx.visitor, &crumbs, body),
    ))
}

pub fn format_metric(value: f64) -> String {
    if value.is_finite() {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        value.to_string()
    }
}
