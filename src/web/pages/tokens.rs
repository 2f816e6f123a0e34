//! The signed-in user's personal access tokens (GitLab's
//! `/-/user_settings/personal_access_tokens`): the list, creating one (its secret is shown once,
//! on the answer to the form) and revoking one.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::see_other;
use crate::domain::records::{PersonalAccessToken, Scope};
use crate::domain::Error;
use crate::state::AppState;
use crate::web::error::{WebError, WebResult};
use crate::web::form;
use crate::web::layout::{self, Crumb};
use crate::web::session::Visitor;

pub const PATH: &str = "/-/user_settings/personal_access_tokens";

/// The signed-in visitor; anonymous visitors are sent to sign in and back.
fn signed_in(state: &AppState, headers: &HeaderMap) -> WebResult<Visitor> {
    let visitor = Visitor::from_headers(state, headers)?;
    if visitor.user().is_none() {
        return Err(WebError::SignInRequired {
            return_to: PATH.to_string(),
        });
    }
    Ok(visitor)
}

fn status(token: &PersonalAccessToken) -> &'static str {
    if token.revoked {
        "revoked"
    } else if token.is_active(chrono::Utc::now().date_naive()) {
        "active"
    } else {
        "expired"
    }
}

fn page(
    state: &AppState,
    visitor: &Visitor,
    headers: &HeaderMap,
    created: Option<&str>,
    problem: Option<&str>,
) -> WebResult<Markup> {
    let Some(user) = visitor.user() else {
        return Err(Error::Unauthorized.into());
    };
    let mut tokens = state.registry.tokens_of(user.id)?;
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let origin = state.base_url(headers);
    let body = html! {
        div.page-head {
            div {
                h1 { "Personal access tokens" }
                p.subtitle { "Tokens authenticate API clients (curl, python-gitlab, MLflow) as " (user.username) "." }
            }
        }
        @if let Some(secret) = created {
            div.card.created-token #new-token {
                h2 { "Your new token" }
                p { "Copy it now: it is shown only once." }
                (layout::snippet(secret))
                p.muted { "Use it with " code { "PRIVATE-TOKEN: <token>" } ", or as " code { "MLFLOW_TRACKING_TOKEN" } " with the tracking URI " code { (origin) "/api/v4/projects/<id>/ml/mlflow" } "." }
            }
        }
        @if let Some(problem) = problem {
            div.alert.error role="alert" { (problem) }
        }
        h2 { "Add a token" }
        form.form #create-token method="post" action=(PATH) {
            (layout::csrf_input(visitor))
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" required maxlength="255" placeholder="ci-uploads";
            label for="token-expires" { "Expires (optional)" }
            input #token-expires type="date" name="expires_at";
            fieldset.scopes {
                legend { "Scopes" }
                label.check { input type="checkbox" name="scopes" value="api" checked; " api " span.muted { "(read and write)" } }
                label.check { input type="checkbox" name="scopes" value="read_api"; " read_api " span.muted { "(read only)" } }
            }
            div.buttons { button.primary type="submit" { "Create token" } }
        }
        h2 { "Tokens " span.count { (tokens.len()) } }
        @if tokens.is_empty() {
            p.empty-text { "No tokens yet." }
        } @else {
            div.scroll {
                table.list #tokens {
                    thead { tr { th { "Name" } th { "Scopes" } th { "Created" } th { "Expires" } th { "Status" } th { "" } } }
                    tbody {
                        @for token in &tokens {
                            tr data-token=(token.id) {
                                td { strong { (token.name) } }
                                td.mono { (token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                                td { (layout::time(&token.created_at)) }
                                td { (token.expires_at.map(|d| d.to_string()).unwrap_or_else(|| "never".into())) }
                                td { span class=(format!("badge token-{}", status(token))) { (status(token)) } }
                                td {
                                    @if !token.revoked {
                                        (layout::post_button(visitor, &format!("{PATH}/{}/revoke", token.id), "Revoke", "danger small",
                                            Some(&format!("Revoke the token {}? Clients using it stop working.", token.name))))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        "Personal access tokens",
        visitor,
        &[Crumb::new("Access tokens", PATH)],
        body,
    ))
}

fn answer(result: WebResult<Response>) -> Response {
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    answer((|| {
        let visitor = signed_in(&state, &headers)?;
        Ok(layout::ok(page(&state, &visitor, &headers, None, None)?))
    })())
}

pub async fn create(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    answer(
        async {
            let visitor = signed_in(&state, &headers)?;
            let form = form::read(&visitor, request).await?;
            let Some(user) = visitor.user() else {
                return Err(Error::Unauthorized.into());
            };
            let name = form.text("name").unwrap_or_default();
            let scopes: Vec<Scope> = form.all("scopes").filter_map(Scope::parse).collect();
            let expires_at = match form.text("expires_at") {
                Some(date) => match chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d") {
                    Ok(date) => Some(date),
                    Err(_) => {
                        let problem = format!("expires_at '{date}' is not a date (YYYY-MM-DD)");
                        return Ok(layout::respond(
                            StatusCode::BAD_REQUEST,
                            page(&state, &visitor, &headers, None, Some(&problem))?,
                        ));
                    }
                },
                None => None,
            };
            match state
                .registry
                .create_token(user.id, &name, &scopes, expires_at)
                .await
            {
                Ok(issued) => Ok(layout::respond(
                    StatusCode::CREATED,
                    page(&state, &visitor, &headers, Some(&issued.secret), None)?,
                )),
                Err(error @ (Error::BadRequest(_) | Error::InvalidParam { .. })) => {
                    Ok(layout::respond(
                        StatusCode::BAD_REQUEST,
                        page(&state, &visitor, &headers, None, Some(&error.to_string()))?,
                    ))
                }
                Err(other) => Err(other.into()),
            }
        }
        .await,
    )
}

pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    answer(
        async {
            let visitor = signed_in(&state, &headers)?;
            form::read(&visitor, request).await?;
            let Some(user) = visitor.user() else {
                return Err(Error::Unauthorized.into());
            };
            let id: u64 = id.parse().map_err(|_| Error::NotFound("Token"))?;
            // Another user's token is not there for this visitor.
            match state.registry.token(id) {
                Ok(token) if token.user_id == user.id => {}
                Ok(_) | Err(Error::NotFound(_)) => return Err(Error::NotFound("Token").into()),
                Err(other) => return Err(other.into()),
            }
            state.registry.revoke_token(id).await?;
            Ok(see_other(PATH))
        }
        .await,
    )
}
