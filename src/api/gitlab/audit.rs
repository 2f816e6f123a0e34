//! The audit log in GitLab's Audit Events API shape: `GET /projects/:id/audit_events`
//! (Maintainers), `GET /audit_events` (admins), each with `/:id`; filters `created_after`,
//! `created_before`, `entity_type`, `entity_id`, `author_id`; offset and keyset pagination.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{page_request, paginated, ApiResult, GitlabCaller, Params};
use crate::domain::audit::{AuditPage, AuditQuery};
use crate::domain::records::Timestamp;
use crate::domain::Error;
use crate::state::AppState;

/// An ISO 8601 time (`2026-01-31T10:00:00Z`, with offset or fraction) or a date (its start; for
/// `created_before`, its end).
fn time_param(params: &Params, key: &str, end_of_day: bool) -> Result<Option<Timestamp>, Error> {
    let Some(raw) = params.str(key)? else {
        return Ok(None);
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&raw) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        let time = if end_of_day {
            date.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            date.and_hms_opt(0, 0, 0)
        };
        if let Some(time) = time {
            return Ok(Some(time.and_utc()));
        }
    }
    Err(Error::InvalidParam {
        param: key.into(),
        problem: "is invalid: use ISO 8601, e.g. 2026-01-31T00:00:00Z".into(),
    })
}

fn query_of(params: &Params) -> Result<AuditQuery, Error> {
    let entity_id = params.u64("entity_id")?;
    let entity_type = params.str("entity_type")?;
    if entity_id.is_some() && entity_type.is_none() {
        return Err(Error::InvalidParam {
            param: "entity_id".into(),
            problem: "requires entity_type".into(),
        });
    }
    Ok(AuditQuery {
        created_after: time_param(params, "created_after", false)?,
        created_before: time_param(params, "created_before", true)?,
        entity_type,
        entity_id,
        author_id: params.u64("author_id")?,
    })
}

fn page_of(params: &Params) -> Result<crate::domain::paging::PageRequest, Error> {
    page_request(
        params.str("pagination")?.as_deref(),
        params.str("cursor")?.as_deref(),
        params.usize("page")?,
        params.usize("per_page")?,
    )
}

fn event_id(raw: &str) -> Result<u64, Error> {
    raw.parse().map_err(|_| Error::NotFound("Audit event"))
}

/// A page of events: GitLab's headers, without `X-Total`/`X-Total-Pages`/`last` when a filter
/// makes the total unknown (as GitLab does for large listings).
fn answer(found: AuditPage, base: &str, path: &str, query: Option<&str>) -> Response {
    let AuditPage {
        page,
        total_known,
        more,
    } = found;
    let request = page.request.clone();
    let page = page.map(|e| e.to_json());
    if total_known || request.is_keyset() {
        return paginated(page, base, path, query);
    }
    let mut response = paginated(page, base, path, query);
    let headers = response.headers_mut();
    headers.remove("x-total");
    headers.remove("x-total-pages");
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != "page" && k != "per_page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let link_to = |n: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("page", &n.to_string());
        q.append_pair("per_page", &request.per_page.to_string());
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        format!("{base}{path}?{}", q.finish())
    };
    let mut links = Vec::new();
    if request.page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(request.page - 1)));
    }
    if more {
        links.push(format!("<{}>; rel=\"next\"", link_to(request.page + 1)));
    }
    links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    let next = if more {
        (request.page + 1).to_string()
    } else {
        String::new()
    };
    if let Ok(v) = HeaderValue::from_str(&next) {
        headers.insert("x-next-page", v);
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        headers.insert("link", v);
    }
    response
}

pub async fn project_list(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let params = Params::from_query(uri.query());
    let access = state.registry.project_for(&caller, &id)?;
    let found = state.registry.project_audit_events(
        &caller,
        &access,
        &query_of(&params)?,
        page_of(&params)?,
    )?;
    Ok(answer(
        found,
        &state.base_url(&headers),
        uri.path(),
        uri.query(),
    ))
}

pub async fn project_show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path((id, event)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = state.registry.project_for(&caller, &id)?;
    let event = state
        .registry
        .project_audit_event(&caller, &access, event_id(&event)?)?;
    Ok(Json(event.to_json()))
}

pub async fn instance_list(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let params = Params::from_query(uri.query());
    let found =
        state
            .registry
            .instance_audit_events(&caller, &query_of(&params)?, page_of(&params)?)?;
    Ok(answer(
        found,
        &state.base_url(&headers),
        uri.path(),
        uri.query(),
    ))
}

pub async fn instance_show(
    State(state): State<AppState>,
    GitlabCaller(caller): GitlabCaller,
    Path(event): Path<String>,
) -> ApiResult<Response> {
    let event = state
        .registry
        .instance_audit_event(&caller, event_id(&event)?)?;
    Ok(Json(event.to_json()).into_response())
}
