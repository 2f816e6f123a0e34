//! Previews of a run's or a version's files: text, JSON, YAML, CSV (the first rows as a table),
//! images, and MLflow's `MLmodel` file with its signature as tables. A preview reads at most
//! [`PREVIEW_BYTES`] of the file; images are shown from the file itself.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use maud::{html, Markup};

use super::Ctx;
use crate::api::registry::views::encode_path;
use crate::domain::records::PackageFile;
use crate::web::error::WebResult;
use crate::web::layout::{self, Crumb};

/// How much of a file a preview reads.
pub const PREVIEW_BYTES: usize = 256 * 1024;
/// Rows of a CSV file the preview shows.
const CSV_ROWS: usize = 50;

/// The kinds of preview, by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image(&'static str),
    MlModel,
    Json,
    Csv(u8),
    Text,
}

fn kind_of(file_name: &str) -> Kind {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    if base == "MLmodel" {
        return Kind::MlModel;
    }
    let ext = base
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => Kind::Image("image/png"),
        "jpg" | "jpeg" => Kind::Image("image/jpeg"),
        "gif" => Kind::Image("image/gif"),
        "webp" => Kind::Image("image/webp"),
        "json" => Kind::Json,
        "csv" => Kind::Csv(b','),
        "tsv" => Kind::Csv(b'\t'),
        _ => Kind::Text,
    }
}

/// The content type a raster image is served inline with; `None` for anything else (never
/// SVG or HTML, which could carry scripts).
pub fn image_type(file_name: &str) -> Option<&'static str> {
    match kind_of(file_name) {
        Kind::Image(content_type) => Some(content_type),
        _ => None,
    }
}

/// A page previewing `file`, under the page `page_url` its files hang on.
pub async fn preview(
    ctx: &Ctx<'_>,
    file: &PackageFile,
    page_url: &str,
    mut crumbs: Vec<Crumb>,
) -> WebResult<Response> {
    let path = encode_path(&file.file_name);
    let download = format!("{page_url}/files/{path}");
    let kind = kind_of(&file.file_name);
    let content = match kind {
        Kind::Image(_) => html! {
            div.preview.image #preview {
                img.preview-image src=(format!("{page_url}/raw/{path}")) alt=(file.file_name);
            }
        },
        _ => {
            let head = ctx.registry().file_head(file, PREVIEW_BYTES).await?;
            let truncated = (head.len() as u64) < file.size;
            text_preview(kind, &head, truncated)
        }
    };
    let body = html! {
        div.page-head {
            div {
                h1.mono { (file.file_name) }
                p.subtitle { (layout::human_size(file.size)) " · sha256 " span.mono { (file.sha256) } }
            }
            div.actions {
                a.button href=(page_url) { "Back" }
                a.button.primary.file-link href=(download) download { "Download" }
            }
        }
        (content)
    };
    crumbs.push(Crumb::new(
        file.base_name().to_string(),
        format!("{page_url}/preview/{path}"),
    ));
    Ok(layout::ok(layout::page(
        &file.file_name,
        &ctx.visitor,
        &crumbs,
        body,
    )))
}

fn text_preview(kind: Kind, head: &[u8], truncated: bool) -> Markup {
    if head.contains(&0) {
        return html! { div.preview #preview { p.empty-text { "A binary file: download it to look inside." } } };
    }
    // A cut in the middle of a character shows as a replacement character at the end.
    let text = String::from_utf8_lossy(head);
    let note = html! {
        @if truncated { p.muted.small { "The first " (layout::human_size(head.len() as u64)) " of the file." } }
    };
    match kind {
        Kind::Json => {
            let pretty = (!truncated)
                .then(|| serde_json::from_slice::<serde_json::Value>(head).ok())
                .flatten()
                .and_then(|v| serde_json::to_string_pretty(&v).ok());
            html! { div.preview.json #preview { (note) pre.code { (pretty.as_deref().unwrap_or(&text)) } } }
        }
        Kind::Csv(separator) => {
            let mut rows = csv_rows(&text, separator as char, CSV_ROWS + 1, truncated);
            let header = if rows.is_empty() {
                Vec::new()
            } else {
                rows.remove(0)
            };
            let more = rows.len() > CSV_ROWS || truncated;
            rows.truncate(CSV_ROWS);
            html! {
                div.preview.csv #preview {
                    div.scroll {
                        table.list.csv-table #csv-preview {
                            thead { tr { @for cell in &header { th { (cell) } } } }
                            tbody { @for row in &rows { tr { @for cell in row { td { (cell) } } } } }
                        }
                    }
                    @if more { p.muted.small { "The first " (rows.len()) " rows." } }
                }
            }
        }
        Kind::MlModel => {
            let signature = mlmodel_signature(&text);
            html! {
                div.preview.mlmodel #preview {
                    @if signature.is_empty() {
                        p.muted { "No signature in this MLmodel file." }
                    }
                    @for (part, columns) in &signature {
                        h3 { "Signature " (part) }
                        div.scroll {
                            table.list.signature data-part=(part) {
                                thead { tr { th { "Name" } th { "Type" } th { "Details" } } }
                                tbody {
                                    @for column in columns {
                                        tr { td.mono { (column.name) } td.mono { (column.kind) } td.muted { (column.details) } }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "MLmodel" }
                    (note)
                    pre.code { (text) }
                }
            }
        }
        Kind::Text | Kind::Image(_) => {
            html! { div.preview.text #preview { (note) pre.code { (text) } } }
        }
    }
}

/// Rows of CSV text (quotes and doubled quotes understood), at most `max`; the last line is
/// left out when the text was cut.
fn csv_rows(text: &str, separator: char, max: usize, truncated: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if rows.len() >= max {
            return rows;
        }
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if cell.is_empty() => quoted = true,
            c if c == separator && !quoted => row.push(std::mem::take(&mut cell)),
            '\r' if !quoted => {}
            '\n' if !quoted => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            c => cell.push(c),
        }
    }
    if !truncated && (!cell.is_empty() || !row.is_empty()) && rows.len() < max {
        row.push(cell);
        rows.push(row);
    }
    rows
}

/// A column of a model signature.
#[derive(Debug, PartialEq)]
struct SignatureColumn {
    name: String,
    kind: String,
    details: String,
}

/// The `signature:` of an `MLmodel` file: its `inputs`, `outputs` and `params`, each a JSON list
/// in a (possibly folded) single-quoted YAML string.
fn mlmodel_signature(text: &str) -> Vec<(String, Vec<SignatureColumn>)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_end() != "signature:" {
            continue;
        }
        while let Some(line) = lines.peek() {
            if !line.starts_with(' ') {
                break;
            }
            let line = lines.next().unwrap_or_default();
            let Some((part, value)) = line.trim().split_once(':') else {
                continue;
            };
            let mut value = value.trim().to_string();
            if value.starts_with('\'') {
                // A folded single-quoted scalar: continuation lines join with a space.
                while !closes_single_quote(&value) {
                    match lines.peek() {
                        Some(next) if next.starts_with(' ') => {
                            value.push(' ');
                            value.push_str(lines.next().unwrap_or_default().trim());
                        }
                        _ => break,
                    }
                }
                value = value
                    .trim_start_matches('\'')
                    .trim_end_matches('\'')
                    .replace("''", "'");
            }
            let Ok(serde_json::Value::Array(columns)) = serde_json::from_str(&value) else {
                continue;
            };
            let columns = columns.iter().map(signature_column).collect();
            out.push((part.to_string(), columns));
        }
    }
    out
}

fn closes_single_quote(value: &str) -> bool {
    let body = &value[1..];
    let unescaped = body.replace("''", "");
    unescaped.ends_with('\'')
}

fn signature_column(column: &serde_json::Value) -> SignatureColumn {
    let text = |key: &str| column.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let mut details = Vec::new();
    if let Some(spec) = column.get("tensor-spec") {
        let dtype = spec.get("dtype").and_then(|v| v.as_str()).unwrap_or("");
        let shape = spec.get("shape").map(|s| s.to_string()).unwrap_or_default();
        details.push(format!("{dtype} {shape}").trim().to_string());
    }
    if column.get("required") == Some(&serde_json::Value::Bool(false)) {
        details.push("optional".into());
    }
    if let Some(default) = column.get("default") {
        details.push(format!("default {default}"));
    }
    SignatureColumn {
        name: text("name").to_string(),
        kind: text("type").to_string(),
        details: details.join(", "),
    }
}

/// A raster image of a run or version, inline with its own content type (for `<img>`).
pub async fn raw_image(ctx: &Ctx<'_>, file: &PackageFile, request: Request) -> WebResult<Response> {
    let Some(content_type) = image_type(&file.file_name) else {
        return Err(crate::domain::Error::NotFound("Image").into());
    };
    let mut response = crate::api::download::serve(ctx.registry(), file, request).await?;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(kind_of("model/MLmodel"), Kind::MlModel);
        assert_eq!(kind_of("plots/roc.PNG"), Kind::Image("image/png"));
        assert_eq!(kind_of("data.tsv"), Kind::Csv(b'\t'));
        assert_eq!(kind_of("notes"), Kind::Text);
        assert_eq!(image_type("x.svg"), None);
    }

    #[test]
    fn csv_with_quotes() {
        let rows = csv_rows("a,b\n1,\"x, \"\"y\"\"\"\n2,z", ',', 10, false);
        assert_eq!(
            rows,
            vec![vec!["a", "b"], vec!["1", "x, \"y\""], vec!["2", "z"]]
        );
        let cut = csv_rows("a,b\n1,2\n3,", ',', 10, true);
        assert_eq!(cut.len(), 2, "a cut last line is left out");
        assert_eq!(csv_rows("a\n1\n2\n3\n", ',', 2, false).len(), 2);
    }

    #[test]
    fn signature_of_an_mlmodel_file() {
        let text = "artifact_path: model\nflavors:\n  python_function: {}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\", \"required\": true}, {\"type\":\n    \"string\", \"name\": \"it''s\", \"required\": false}]'\n  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1]}}]'\n  params: null\nutc_time_created: '2026-01-01'\n";
        let signature = mlmodel_signature(text);
        assert_eq!(signature.len(), 2);
        assert_eq!(signature[0].0, "inputs");
        assert_eq!(signature[0].1[1].name, "it's");
        assert_eq!(signature[0].1[1].details, "optional");
        assert_eq!(signature[1].1[0].details, "float32 [-1]");
    }
}
