//! What version and candidate pages both show: files, params, metadata, metric charts and the
//! CI job that produced the run.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::experiments::format_metric;
use super::Ctx;
use crate::api::registry::views::encode_path;
use crate::domain::ml_records::{CiJob, KeyValue, MetricPoint};
use crate::domain::records::PackageFile;
use crate::web::chart::{self, Axis, ChartOptions, Point, Series};
use crate::web::form::Form;
use crate::web::layout;

/// Characters of the sha256 the files table shows.
const SHORT_SHA: usize = 12;

/// Where a page's files can be reached: the page URL they hang under (`<page>/files/<path>`,
/// `<page>/preview/<path>`), the API URL clients download them from, and the form that
/// deletes one when the visitor may.
pub struct FileLinks {
    pub page: String,
    /// `…/packages/generic/<name>/<version>` or `…/packages/ml_models/candidate:<iid>/files`.
    pub api: String,
    pub delete_action: Option<String>,
}

/// How deep the tree indents at most.
const MAX_DEPTH: usize = 6;

/// The files of a package as a tree: a row per directory, then its files, each with size,
/// short sha256, a preview, a download and a copyable curl command.
pub fn files_table(ctx: &Ctx, files: &[PackageFile], links: &FileLinks) -> Markup {
    let rows = tree_rows(files);
    html! {
        @if files.is_empty() {
            p.empty-text { "No files." }
        } @else {
            div.scroll {
                table.list.files #files {
                    thead { tr { th { "File" } th.num { "Size" } th { "SHA-256" } th { "Created" } th { "Actions" } } }
                    tbody {
                        @for row in &rows {
                            @match row {
                                TreeRow::Dir { depth, name } => {
                                    tr.dir {
                                        td colspan="5" class=(format!("depth-{depth}")) { span.folder aria-hidden="true" { "▸ " } span.mono { (name) "/" } }
                                    }
                                }
                                TreeRow::File { depth, file } => {
                                    @let path = encode_path(&file.file_name);
                                    @let curl = format!("curl --header \"PRIVATE-TOKEN: $TOKEN\" -o \"{}\" \"{}/{path}\"", file.base_name(), links.api);
                                    tr.file data-path=(file.file_name) {
                                        td class=(format!("depth-{depth}")) {
                                            a.preview-link href=(format!("{}/preview/{path}", links.page)) title=(format!("Preview {}", file.file_name)) { (file.base_name()) }
                                            @if let Some(facts) = &file.format {
                                                " "
                                                span.badge.format data-format=(facts.format) { (facts.format) }
                                                @if let Some(warning) = facts.warning() {
                                                    " "
                                                    span.badge.warning.format-warning title=(warning) { "⚠ runs code when loaded" }
                                                }
                                                @if let (Some(tensors), Some(params)) = (facts.tensor_count, facts.parameter_count) {
                                                    " "
                                                    span.muted.format-facts { (tensors) " tensors, " (params) " parameters, " (facts.dtypes.join(", ")) }
                                                }
                                                @if let Some(error) = &facts.error {
                                                    " "
                                                    span.muted.format-error title=(error) { "header not read" }
                                                }
                                            }
                                        }
                                        td.num { (layout::human_size(file.size)) }
                                        td.sha title=(file.sha256) { (file.sha256.get(..SHORT_SHA).unwrap_or(&file.sha256)) }
                                        td { (layout::time(&file.created_at)) }
                                        td.actions {
                                            a.file-link.button.small href=(format!("{}/files/{path}", links.page)) download { "Download" }
                                            " "
                                            button.copy.small type="button" data-copy=(curl) title=(curl) { "Copy curl" }
                                            @if let Some(action) = &links.delete_action {
                                                " "
                                                form.inline method="post" action=(action) data-confirm=(format!("Delete {}?", file.file_name)) {
                                                    (layout::csrf_input(&ctx.visitor))
                                                    input type="hidden" name="file_id" value=(file.id);
                                                    button.danger.small type="submit" { "Delete" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.muted { "Package path for API clients:" }
            (layout::snippet(&format!("{}/<file>", links.api)))
        }
    }
}

/// A row of the files tree.
enum TreeRow<'a> {
    Dir { depth: usize, name: String },
    File { depth: usize, file: &'a PackageFile },
}

/// The files in tree order with a row for each directory before its contents.
fn tree_rows(files: &[PackageFile]) -> Vec<TreeRow<'_>> {
    let mut sorted: Vec<&PackageFile> = files.iter().collect();
    sorted.sort_by(|a, b| tree_order(&a.file_name, &b.file_name));
    let mut open: Vec<&str> = Vec::new();
    let mut rows = Vec::with_capacity(sorted.len());
    for file in sorted {
        let parts: Vec<&str> = file.file_name.split('/').collect();
        let dirs = &parts[..parts.len() - 1];
        let common = open.iter().zip(dirs).take_while(|(a, b)| a == b).count();
        for (depth, name) in dirs.iter().enumerate().skip(common) {
            rows.push(TreeRow::Dir {
                depth: depth.min(MAX_DEPTH),
                name: name.to_string(),
            });
        }
        open = dirs.to_vec();
        rows.push(TreeRow::File {
            depth: dirs.len().min(MAX_DEPTH),
            file,
        });
    }
    rows
}

/// Files before directories at each level, then by name: a directory's rows stay together.
fn tree_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (a_parts, b_parts): (Vec<&str>, Vec<&str>) =
        (a.split('/').collect(), b.split('/').collect());
    for (i, (x, y)) in a_parts.iter().zip(&b_parts).enumerate() {
        let x_dir = i + 1 < a_parts.len();
        let y_dir = i + 1 < b_parts.len();
        let ord = x_dir.cmp(&y_dir).then_with(|| x.cmp(y));
        if ord.is_ne() {
            return ord;
        }
    }
    a_parts.len().cmp(&b_parts.len())
}

pub fn key_value_table(id: &str, entries: &[KeyValue], empty: &str) -> Markup {
    html! {
        @if entries.is_empty() {
            p.empty-text { (empty) }
        } @else {
            table.list.kv id=(id) {
                tbody {
                    @for entry in entries {
                        tr { td.mono { (entry.key) } td { (entry.value) } }
                    }
                }
            }
        }
    }
}

/// How many values of a metric a chart reads and draws, at most (about: the first and last
/// always, the rest sampled evenly over the steps).
pub const CHART_POINTS: usize = 500;

/// The chart options a page's query asks for: `?x=time`, `?scale=log`.
pub fn chart_options(query: Option<&str>) -> ChartOptions {
    let form = Form::parse(query.unwrap_or("").as_bytes());
    ChartOptions {
        axis: match form.get("x") {
            Some("time") => Axis::Time,
            _ => Axis::Step,
        },
        log: form.get("scale") == Some("log"),
    }
}

/// Links that switch the charts' x axis and scale, keeping the rest of `query`.
fn chart_controls(page_url: &str, query: Option<&str>, options: ChartOptions) -> Markup {
    let with = |key: &str, value: Option<&str>| {
        let form = Form::parse(query.unwrap_or("").as_bytes());
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form.pairs() {
            if k != key {
                out.append_pair(k, v);
            }
        }
        if let Some(value) = value {
            out.append_pair(key, value);
        }
        let q = out.finish();
        if q.is_empty() {
            format!("{page_url}#metrics")
        } else {
            format!("{page_url}?{q}#metrics")
        }
    };
    let option = |current: bool, href: String, label: &str| {
        html! {
            @if current { span.current aria-current="true" { (label) } } @else { a href=(href) { (label) } }
        }
    };
    html! {
        div.chart-controls {
            span.muted { "x axis: " }
            (option(options.axis == Axis::Step, with("x", None), "step"))
            " · "
            (option(options.axis == Axis::Time, with("x", Some("time")), "time"))
            span.muted { "  scale: " }
            (option(!options.log, with("scale", None), "linear"))
            " · "
            (option(options.log, with("scale", Some("log")), "log"))
        }
    }
}

/// A run's metric histories as chart points by key.
pub fn points_by_key(history: &[MetricPoint]) -> BTreeMap<String, Vec<Point>> {
    let mut by_key: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for point in history {
        by_key.entry(point.key.clone()).or_default().push(Point {
            step: point.step,
            timestamp: point.timestamp,
            value: point.value,
        });
    }
    by_key
}

/// A run's metrics: the table of final values first, then a chart per metric with more than
/// one value (single values are numbers in the table), in a grid.
pub fn metrics_section(
    page_url: &str,
    query: Option<&str>,
    latest: &[MetricPoint],
    history: &[MetricPoint],
) -> Markup {
    let options = chart_options(query);
    let by_key = points_by_key(history);
    let charted: Vec<(&String, &Vec<Point>)> = by_key.iter().filter(|(_, p)| p.len() > 1).collect();
    html! {
        div #metrics {
            @if latest.is_empty() {
                p.empty-text { "No metrics logged." }
            } @else {
                div.scroll {
                    table.list.metric-values #metric-values {
                        thead { tr { th { "Metric" } th.num { "Final value" } th.num { "Step" } th { "Logged" } } }
                        tbody {
                            @for m in latest {
                                tr { td.mono { (m.key) } td.num { (format_metric(m.value)) } td.num { (m.step) } td { (layout::time_ms(m.timestamp)) } }
                            }
                        }
                    }
                }
                @if !charted.is_empty() {
                    (chart_controls(page_url, query, options))
                    div.charts {
                        @for (key, points) in &charted {
                            (chart::chart(key, &[Series { label: (*key).clone(), points: (*points).clone() }], options))
                        }
                    }
                }
            }
        }
    }
}

/// Overlaid charts, one per metric key, a line per run: `runs` are (label, history).
pub fn compare_charts(
    page_url: &str,
    query: Option<&str>,
    runs: &[(String, Vec<MetricPoint>)],
) -> Markup {
    let options = chart_options(query);
    let mut keys: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for (label, history) in runs {
        for (key, points) in points_by_key(history) {
            keys.entry(key).or_default().push(Series {
                label: label.clone(),
                points,
            });
        }
    }
    html! {
        div #metrics {
            @if keys.is_empty() {
                p.empty-text { "No metrics logged." }
            } @else {
                (chart_controls(page_url, query, options))
                div.charts #compare-charts {
                    @for (key, series) in &keys {
                        (chart::chart(key, series, options))
                    }
                }
            }
        }
    }
}

/// A link for http(s) URLs only; anything else is shown as text.
pub fn link_or_text(url: Option<&String>, text: String) -> Markup {
    html! {
        @match url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                a href=(url) rel="noopener noreferrer" { (text) }
            }
            _ => span { (text) },
        }
    }
}

/// A job as people name it: `train #4242`.
pub fn job_label(ci: &CiJob) -> String {
    match (&ci.job_name, &ci.job_id) {
        (Some(name), Some(id)) => format!("{name} #{id}"),
        (None, Some(id)) => format!("#{id}"),
        (Some(name), None) => name.clone(),
        (None, None) => "job".into(),
    }
}

/// The CI job, pipeline, merge request and user that produced the run, as links.
pub fn ci_section(ci: Option<&CiJob>) -> Markup {
    let Some(ci) = ci.filter(|ci| !ci.is_empty()) else {
        return html! { p.empty-text { "Not linked to a CI job." } };
    };
    let job = job_label(ci);
    html! {
        div.ci #ci {
            dl {
                dt { "Job" } dd { (link_or_text(ci.job_url.as_ref(), job)) }
                @if ci.pipeline_id.is_some() || ci.pipeline_url.is_some() {
                    dt { "Pipeline" }
                    dd { (link_or_text(ci.pipeline_url.as_ref(), format!("#{}", ci.pipeline_id.clone().unwrap_or_default()))) }
                }
                @if ci.merge_request_iid.is_some() || ci.merge_request_url.is_some() {
                    dt { "Merge request" }
                    dd {
                        (link_or_text(ci.merge_request_url.as_ref(), format!("!{}", ci.merge_request_iid.clone().unwrap_or_default())))
                        @if let Some(title) = &ci.merge_request_title { " " span.muted { (title) } }
                    }
                }
                @if let Some(user) = &ci.user { dt { "Triggered by" } dd { (user) } }
                @if let Some(reference) = &ci.ref_name { dt { "Ref" } dd.mono { (reference) } }
                @if let Some(sha) = &ci.commit_sha { dt { "Commit" } dd.mono { (sha) } }
                @if let Some(verifier) = &ci.verified_by {
                    dt { "Verified" } dd { span.badge { "verified" } " " span.muted { (verifier) } }
                } @else {
                    dt { "Verified" } dd.muted { "no: taken from tags or the request" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_become_links() {
        let safe = link_or_text(Some(&"https://ci.example/1".to_string()), "job".into());
        assert!(safe.into_string().contains("href=\"https://ci.example/1\""));
        let script = link_or_text(Some(&"javascript:alert(1)".to_string()), "job".into());
        assert!(!script.into_string().contains("href"));
        let ci = CiJob {
            job_id: Some("7".into()),
            job_name: Some("train".into()),
            ..CiJob::default()
        };
        assert_eq!(job_label(&ci), "train #7");
        let typed = ci_section(Some(&ci)).into_string();
        assert!(typed.contains("taken from tags"), "{typed}");
        let verified = CiJob {
            verified_by: Some("gitlab job token: https://gl".into()),
            ..ci
        };
        let shown = ci_section(Some(&verified)).into_string();
        assert!(shown.contains("gitlab job token: https://gl"), "{shown}");
    }
}
