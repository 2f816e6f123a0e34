//! `/<project>/-/audit_events`: the project's audit log, newest first, a page at a time
//! (Maintainers and above), filtered by entity type like the API.

use axum::response::Response;
use maud::html;

use super::Ctx;
use crate::domain::audit::AuditQuery;
use crate::domain::paging::PageRequest;
use crate::web::error::WebResult;
use crate::web::layout::{self, Crumb};

const PER_PAGE: usize = 50;

fn url(ctx: &Ctx) -> String {
    format!("{}/-/audit_events", ctx.base)
}

pub fn show(ctx: &Ctx, query: Option<&str>) -> WebResult<Response> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let page = param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let entity_type = param("entity_type").filter(|t| t.len() <= 64);
    let found = ctx.registry().project_audit_events(
        &ctx.visitor.caller,
        &ctx.access,
        &AuditQuery {
            entity_type: entity_type.clone(),
            ..AuditQuery::default()
        },
        PageRequest::new(Some(page), Some(PER_PAGE)),
    )?;
    let link = |n: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("page", &n.to_string());
        if let Some(t) = &entity_type {
            q.append_pair("entity_type", t);
        }
        format!("{}?{}", url(ctx), q.finish())
    };
    let events = &found.page.items;
    let body = html! {
        div.page-head { div { h1 { "Audit events" } p.subtitle.mono { (ctx.access.project.path_with_namespace()) } } }
        form.inline method="get" action=(url(ctx)) {
            label for="entity_type" { "Entity type " }
            input #entity_type type="text" name="entity_type" placeholder="Model" value=(entity_type.clone().unwrap_or_default());
            " "
            button type="submit" { "Filter" }
        }
        @if events.is_empty() {
            p.empty-text { "No audit events." }
        } @else {
            table.list #audit-events {
                thead { tr { th { "Time" } th { "Author" } th { "Action" } th { "Target" } th { "Changes" } th { "Address" } } }
                tbody {
                    @for event in events {
                        tr data-event-id=(event.id) {
                            td { (layout::time(&event.created_at)) }
                            td { (event.author_name.clone().unwrap_or_else(|| "(anonymous)".into())) }
                            td.mono { (event.event_type()) }
                            td { (event.entity_type) " " span.mono { (event.entity_path) } }
                            td.mono.wrap {
                                @if event.changes.is_empty() { (event.message) } @else { (event.changes.join(", ")) }
                            }
                            td.mono { (event.ip_address.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        nav.pagination {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "Newer" } " " }
            @if found.more { a href=(link(page + 1)) rel="next" { "Older" } }
        }
    };
    let mut crumbs = ctx.project_crumbs();
    crumbs.push(Crumb::new("Audit events", url(ctx)));
    Ok(layout::ok(layout::page(
        "Audit events",
        &ctx.visitor,
        &crumbs,
        body,
    )))
}
