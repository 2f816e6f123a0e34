//! The OpenAPI 3 document of the native registry API, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{aliases, candidates, experiments, models, retention, versions};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "modelyard model registry API",
        description = "Models, SemVer versions (with requirement resolution), experiments and \
            candidates of a project. Errors are GitLab-shaped: `{\"message\": ...}`. A version's \
            files are the generic package `<model>/<version>`.",
    ),
    paths(
        models::list, models::create, models::show, models::update, models::delete,
        versions::list, versions::create, versions::resolve, versions::show, versions::update,
        versions::delete, versions::archive, versions::manifest, versions::seal,
        aliases::list, aliases::move_many, aliases::history, aliases::rollback,
        retention::dry_run, retention::run_now,
        experiments::list, experiments::show, experiments::delete,
        candidates::list, candidates::create, candidates::show, candidates::delete,
        candidates::promote, candidates::metric_history,
    ),
    components(schemas(models::ModelOrderBy, models::Sort, models::RetentionRulesBody)),
    modifiers(&Credentials),
    security(("private_token" = []), ("bearer" = []), ()),
    tags(
        (name = "models"), (name = "versions"), (name = "aliases"), (name = "retention"),
        (name = "experiments"), (name = "candidates"),
    )
)]
pub struct RegistryApi;

/// The credentials every route takes: `PRIVATE-TOKEN`, a bearer token, or none (public projects).
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "private_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("PRIVATE-TOKEN"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(RegistryApi::openapi())
}
