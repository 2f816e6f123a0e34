//! One module per kind of page. Each handler takes the page context and answers with HTML, a
//! redirect or a file.

mod artifacts;
pub mod audit;
pub mod auth;
pub mod candidates;
pub mod compare;
pub mod experiments;
pub mod models;
pub mod projects;
mod run_details;
mod run_lineage;
pub mod settings;
pub mod tokens;
pub mod versions;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::WebResult;
use super::layout::Crumb;
use super::session::Visitor;
use crate::domain::access::Action;
use crate::domain::ml_records::Model;
use crate::domain::projects::ProjectAccess;
use crate::domain::{Error, Registry};
use crate::state::AppState;

/// What every project page knows: who is looking, at which project, with what access.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub visitor: Visitor,
    pub access: ProjectAccess,
    /// `/<namespace>/<project>`.
    pub base: String,
    /// How clients reach this server (`http://host:port`), for copyable commands.
    pub origin: String,
}

impl<'a> Ctx<'a> {
    /// The project as `visitor` may see it; 404 when they may not.
    pub fn new(
        state: &'a AppState,
        visitor: Visitor,
        project: &str,
        headers: &HeaderMap,
    ) -> WebResult<Ctx<'a>> {
        let access = state.registry.project_for(&visitor.caller, project)?;
        let base = format!("/{}", access.project.path_with_namespace());
        Ok(Ctx {
            state,
            visitor,
            access,
            base,
            origin: state.base_url(headers),
        })
    }

    /// The project's API root, absolute: `http://host/api/v4/projects/<id>`.
    pub fn api_root(&self) -> String {
        format!("{}/api/v4/projects/{}", self.origin, self.access.project.id)
    }

    pub fn registry(&self) -> &Registry {
        &self.state.registry
    }

    pub fn can_read_registry(&self) -> WebResult<()> {
        Ok(self
            .access
            .check(&self.visitor.caller, Action::ReadRegistry)?)
    }

    pub fn can_write(&self) -> bool {
        self.access
            .check(&self.visitor.caller, Action::WriteRegistry)
            .is_ok()
    }

    /// Whether the access rules let the visitor do `action` here.
    pub fn may(&self, action: Action) -> bool {
        self.access.check(&self.visitor.caller, action).is_ok()
    }

    /// 401 (sign in) for anonymous visitors, 403 for members who may only read.
    pub fn require_write(&self) -> WebResult<()> {
        Ok(self
            .access
            .check(&self.visitor.caller, Action::WriteRegistry)?)
    }

    /// The URL of a registry page, `rest` after `/-/ml/`.
    pub fn ml(&self, rest: &str) -> String {
        format!("{}/-/ml/{rest}", self.base)
    }

    /// A model of this project by id; 404 for another project's.
    pub fn model(&self, id: u64) -> WebResult<Model> {
        let model = self.registry().model(id)?;
        if model.project_id != self.access.project.id {
            return Err(Error::NotFound("Model").into());
        }
        Ok(model)
    }

    pub fn project_crumbs(&self) -> Vec<Crumb> {
        let project = &self.access.project;
        vec![
            Crumb::new(project.namespace.clone(), "/"),
            Crumb::new(project.name.clone(), self.base.clone()),
        ]
    }

    pub fn registry_crumbs(&self) -> Vec<Crumb> {
        let mut crumbs = self.project_crumbs();
        crumbs.push(Crumb::new("Model registry", self.ml("models")));
        crumbs
    }

    pub fn experiment_crumbs(&self) -> Vec<Crumb> {
        let mut crumbs = self.project_crumbs();
        crumbs.push(Crumb::new("Model experiments", self.ml("experiments")));
        crumbs
    }
}

/// After a successful POST: go to the page that shows the result.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A user's display name by id.
pub fn user_name(registry: &Registry, id: Option<u64>) -> Option<String> {
    id.and_then(|id| registry.user(id).ok()).map(|u| u.username)
}
