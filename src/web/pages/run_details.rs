//! What version and candidate pages both show: files, params, metadata, metric charts and the
//! CI job that produced the run.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::Ctx;
use crate::api::registry::views::{encode_path, encode_segment};
use crate::domain::ml_records::{CiJob, KeyValue, MetricPoint};
use crate::domain::records::PackageFile;
use crate::web::chart::{self, Point};
use crate::web::layout;

/// Characters of the sha256 the files table shows.
const SHORT_SHA: usize = 12;

/// The files of a package: `download_base` is the page URL the files hang under, `package`
/// the generic package (name, version) the API serves them from.
pub fn files_table(
    ctx: &Ctx,
    files: &[PackageFile],
    download_base: &str,
    package: (&str, &str),
) -> Markup {
    let api_package = format!(
        "{}/packages/generic/{}/{}",
        ctx.api_root(),
        encode_segment(package.0),
        encode_segment(package.1)
    );
    html! {
        @if files.is_empty() {
            p.empty-text { "No files." }
        } @else {
            table.list.files #files {
                thead { tr { th { "File" } th.num { "Size" } th { "SHA-256" } th { "Created" } th { "Command" } } }
                tbody {
                    @for file in files {
                        @let path = encode_path(&file.file_name);
                        @let curl = format!("curl --header \"PRIVATE-TOKEN: $TOKEN\" -o \"{}\" \"{api_package}/{path}\"", file.base_name());
                        tr {
                            td { a.file-link href=(format!("{download_base}/files/{path}")) download { (file.file_name) } }
                            td.num { (layout::human_size(file.size)) }
                            td.sha title=(file.sha256) { (file.sha256.get(..SHORT_SHA).unwrap_or(&file.sha256)) }
                            td { (layout::time(&file.created_at)) }
                            td { button.copy.small type="button" data-copy=(curl) title=(curl) { "Copy curl" } }
                        }
                    }
                }
            }
            p.muted { "Package path for API clients:" }
            (layout::snippet(&format!("{api_package}/<file>")))
        }
    }
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

/// One chart per metric key, over its steps.
/// How many values of a metric a chart reads and draws, at most (about: the first and last
/// always, the rest sampled evenly over the steps).
pub const CHART_POINTS: usize = 500;

pub fn metric_charts(history: &[MetricPoint]) -> Markup {
    let mut by_key: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for point in history {
        by_key.entry(&point.key).or_default().push(Point {
            step: point.step,
            value: point.value,
        });
    }
    html! {
        @if by_key.is_empty() {
            p.empty-text { "No metrics logged." }
        } @else {
            div.charts #metrics {
                @for (key, points) in &by_key {
                    (chart::line_chart(key, points))
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
