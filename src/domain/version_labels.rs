//! Names that point at versions: MLflow aliases (`@champion`; a version's SemVer string is an
//! implicit alias) and MLflow's deprecated stages.

use semver::Version;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::event_records::AliasMove;
use super::ml_records::{ModelVersion, TagOwner};
use super::projects::ProjectAccess;
use super::records::now;
use super::schema::{self, versions::Versions};
use super::Registry;
use crate::store::meta::abort;

/// One change of [`Registry::move_aliases`]: point `alias` at `version`, or delete it.
#[derive(Debug, Clone)]
pub struct AliasChange {
    pub alias: String,
    pub version: Option<ModelVersion>,
    pub reason: Option<String>,
}

pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

/// An alias names a version by a word: letters, digits, `_` and `-`; not `latest`, not `v<n>`,
/// and not a SemVer string (those name versions already).
pub fn validate_alias(alias: &str) -> Result<()> {
    let well_formed = !alias.is_empty()
        && alias.len() <= 255
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let reserved = alias.eq_ignore_ascii_case("latest")
        || (alias.len() > 1
            && (alias.starts_with('v') || alias.starts_with('V'))
            && alias[1..].chars().all(|c| c.is_ascii_digit()));
    if !well_formed || reserved || Version::parse(alias).is_ok() {
        return Err(Error::bad(format!(
            "alias '{alias}' is invalid: use letters, digits, '_' and '-', not 'latest', 'v<number>' or a SemVer version"
        )));
    }
    Ok(())
}

/// Canonical stage spelling, or an error naming the allowed ones.
pub fn parse_stage(stage: &str) -> Result<&'static str> {
    STAGES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(stage))
        .copied()
        .ok_or_else(|| {
            Error::bad(format!(
                "stage '{stage}' is invalid: use one of {}",
                STAGES.join(", ")
            ))
        })
}

impl Registry {
    /// Points an alias at a version (see [`Registry::move_aliases`]).
    pub async fn set_alias(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version: &ModelVersion,
        alias: &str,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        if version.project_id != access.project.id {
            return Err(Error::NotFound("Model version"));
        }
        let change = AliasChange {
            alias: alias.to_string(),
            version: Some(version.clone()),
            reason: None,
        };
        self.move_aliases(caller, access, version.model_id, vec![change])
            .await
            .map(|_| ())
    }

    /// Deletes an alias (see [`Registry::move_aliases`]).
    pub async fn delete_alias(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        alias: &str,
    ) -> Result<()> {
        let change = AliasChange {
            alias: alias.to_string(),
            version: None,
            reason: None,
        };
        self.move_aliases(caller, access, model_id, vec![change])
            .await
            .map(|_| ())
    }

    /// The one way aliases move: every change of a model's aliases, from MLflow, the web UI or
    /// the native API. The changes are made together or not at all; each is kept in the alias's
    /// history (who, when, from, to, why). A protected alias is moved by Maintainers only.
    pub async fn move_aliases(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        changes: Vec<AliasChange>,
    ) -> Result<Vec<AliasMove>> {
        access.check(caller, Action::WriteRegistry)?;
        let model = self.model(model_id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Model"));
        }
        if changes.is_empty() {
            return Err(Error::bad("aliases must name at least one alias"));
        }
        let mut seen = std::collections::HashSet::new();
        for change in &changes {
            validate_alias(&change.alias)?;
            if !seen.insert(change.alias.as_str()) {
                return Err(Error::bad(format!(
                    "alias '{}' is named twice",
                    change.alias
                )));
            }
            if let Some(version) = &change.version {
                if version.model_id != model.id {
                    return Err(Error::NotFound("Model version"));
                }
            }
            if change
                .reason
                .as_ref()
                .is_some_and(|r| r.chars().count() > 1000)
            {
                return Err(Error::bad("reason is longer than 1000 characters"));
            }
        }
        let protected: Vec<&str> = changes
            .iter()
            .map(|c| c.alias.as_str())
            .filter(|a| model.protected_aliases.iter().any(|p| p == a))
            .collect();
        if !protected.is_empty() {
            access
                .check(caller, Action::MoveProtectedAlias)
                .map_err(|error| match error {
                    Error::Forbidden | Error::Denied(_) => Error::denied(format!(
                        "alias {} of model {} is protected: only Maintainers move it; nothing was changed",
                        protected.join(", "),
                        model.name
                    )),
                    other => other,
                })?;
        }
        // The model's promotion policy, for every protected alias moved to a version: all the
        // failed rules of all the changes are named, and nothing moves.
        let mut failed = Vec::new();
        for change in &changes {
            if let Some(version) = &change.version {
                if protected.contains(&change.alias.as_str()) {
                    failed.extend(self.failed_rules(&model, version, Some(&change.alias))?);
                }
            }
        }
        if !failed.is_empty() {
            let refusal =
                super::promotion::refusal(&model.name, super::promotion::Step::AliasMove, failed);
            // One audit event per refused version, however many aliases named it.
            let mut refused: Vec<&ModelVersion> = changes
                .iter()
                .filter_map(|c| c.version.as_ref())
                .filter(|v| refusal.failed_rules.iter().any(|f| f.version == v.version))
                .collect();
            refused.sort_by_key(|v| v.id);
            refused.dedup_by_key(|v| v.id);
            for version in refused {
                self.audit_policy_refusal(caller, &model, version, "promotion_refused", &refusal)
                    .await?;
            }
            return Err(Error::PolicyRefused(refusal));
        }
        let (user_id, username) = match caller.user() {
            Some(user) => (Some(user.id), Some(user.username.clone())),
            None => (None, caller.machine().map(|m| m.describe())),
        };
        let at = now();
        let owner = TagOwner::ModelAlias(model.id);
        self.write(|tx| {
            let mut moves = Vec::new();
            for change in &changes {
                let current = schema::tags::value_in(tx, owner, &change.alias)?
                    .and_then(|v| v.parse::<u64>().ok());
                let target = change.version.as_ref().map(|v| v.id);
                if target.is_none() && current.is_none() {
                    return abort(Error::NotFoundMessage(format!(
                        "Registered model alias {} not found.",
                        change.alias
                    )));
                }
                if let Some(version) = &change.version {
                    if schema::versions::load(tx, version.id)?.is_none() {
                        return abort(Error::NotFound("Model version"));
                    }
                }
                if current == target {
                    continue;
                }
                match &change.version {
                    Some(version) => schema::tags::set(
                        tx,
                        owner,
                        &[super::ml_records::KeyValue {
                            key: change.alias.clone(),
                            value: version.id.to_string(),
                        }],
                    )?,
                    None => {
                        schema::tags::delete(tx, owner, &change.alias)?;
                    }
                }
                let from_version = match current {
                    Some(id) => schema::versions::load(tx, id)?.map(|v| v.version),
                    None => None,
                };
                let record = AliasMove {
                    model_id: model.id,
                    alias: change.alias.clone(),
                    seq: schema::alias_moves::next_seq(tx, model.id)?,
                    project_id: model.project_id,
                    user_id,
                    username: username.clone(),
                    from_version_id: current,
                    from_version,
                    to_version_id: target,
                    to_version: change.version.as_ref().map(|v| v.version.clone()),
                    reason: change.reason.clone(),
                    created_at: at,
                };
                schema::alias_moves::record(tx, &record)?;
                moves.push(record);
            }
            Ok(moves)
        })
        .await
    }

    /// Moves an alias back to where its last move took it from.
    pub async fn rollback_alias(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        alias: &str,
        reason: Option<String>,
    ) -> Result<AliasMove> {
        access.check(caller, Action::WriteRegistry)?;
        let last = schema::alias_moves::page_of(
            self.meta.as_ref(),
            model_id,
            alias,
            &schema::Seek::Offset(0),
            1,
        )?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::NotFoundMessage(format!("Alias {alias} has no history to roll back"))
        })?;
        let version = match last.from_version_id {
            Some(id) => Some(self.version(id).map_err(|_| {
                Error::Conflict(format!(
                    "alias {alias} cannot roll back: its previous version {} was deleted",
                    last.from_version.clone().unwrap_or_default()
                ))
            })?),
            None => None,
        };
        let change = AliasChange {
            alias: alias.to_string(),
            version,
            reason: Some(reason.unwrap_or_else(|| format!("rollback of move {}", last.seq))),
        };
        self.move_aliases(caller, access, model_id, vec![change])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::bad(format!("alias {alias} is already there")))
    }

    /// A page of an alias's history, newest first.
    pub fn alias_history(
        &self,
        model_id: u64,
        alias: &str,
        request: super::paging::PageRequest,
    ) -> Result<super::paging::Page<AliasMove>> {
        let meta = self.meta.as_ref();
        let items = schema::alias_moves::page_of(
            meta,
            model_id,
            alias,
            &schema::Seek::Offset(request.offset()),
            request.per_page,
        )?;
        let total = schema::alias_moves::count_of(meta, model_id, alias)?;
        Ok(super::paging::Page::keyed(items, total, request, None))
    }

    /// Sets which aliases of a model are protected (Maintainers).
    pub async fn set_protected_aliases(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        aliases: Vec<String>,
    ) -> Result<super::ml_records::Model> {
        access.check(caller, Action::MoveProtectedAlias)?;
        for alias in &aliases {
            validate_alias(alias)?;
        }
        let mut aliases = aliases;
        aliases.sort();
        aliases.dedup();
        self.project_model(access, model_id)?;
        self.update_record::<schema::models::Models>(model_id, "Model", |model| {
            model.protected_aliases = aliases.clone();
            model.updated_at = now();
        })
        .await
    }

    /// Every explicit alias of a model with the version id it names.
    pub fn aliases(&self, model_id: u64) -> Result<Vec<(String, u64)>> {
        Ok(self.aliases_of(&[model_id])?.pop().unwrap_or_default())
    }

    /// The version an alias names: an explicit alias; else, through SemVer, an exact version
    /// (`1.2.0`) or the newest version matching a requirement (`^1.2`, `~1.4`, `latest`). SemVer
    /// names are never stored or listed as aliases.
    pub fn version_by_alias(&self, model_id: u64, alias: &str) -> Result<ModelVersion> {
        if let Some(id) = self.tag(TagOwner::ModelAlias(model_id), alias)? {
            if let Ok(id) = id.parse::<u64>() {
                if let Ok(version) = self.version(id) {
                    return Ok(version);
                }
            }
        }
        let missing =
            || Error::NotFoundMessage(format!("Registered model alias {alias} not found."));
        match self.version_by_string(model_id, alias) {
            Ok(version) => return Ok(version),
            Err(Error::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
        // An exact version is looked up as it is, never resolved.
        if semver::Version::parse(alias).is_ok() {
            return Err(missing());
        }
        let Ok(requirement) = super::semver_rules::parse_requirement(alias) else {
            return Err(missing());
        };
        schema::versions::resolve(self.meta.as_ref(), model_id, &requirement)?.ok_or_else(missing)
    }

    /// MLflow's stage transition; with `archive_existing`, other versions in that stage are
    /// archived.
    pub async fn transition_stage(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version: &ModelVersion,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        access.check(caller, Action::WriteRegistry)?;
        let stage = parse_stage(stage)?;
        let others: Vec<ModelVersion> =
            if archive_existing && stage != "None" && stage != "Archived" {
                schema::versions::ids_in_stage(self.meta.as_ref(), version.model_id, stage)?
                    .into_iter()
                    .filter(|id| *id != version.id)
                    .map(|id| self.version(id))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
        let at = now();
        self.write(|tx| {
            for other in &others {
                // Read again here: a seal given meanwhile is kept.
                let Some(other) = schema::versions::load(tx, other.id)? else {
                    continue;
                };
                let archived = ModelVersion {
                    stage: Some("Archived".into()),
                    updated_at: at,
                    ..other
                };
                schema::put::<Versions>(tx, &archived)?;
            }
            let Some(current) = schema::versions::load(tx, version.id)? else {
                return abort(Error::NotFound("Model version"));
            };
            let updated = ModelVersion {
                stage: (stage != "None").then(|| stage.to_string()),
                updated_at: at,
                ..current
            };
            schema::put::<Versions>(tx, &updated)?;
            // MLflow's registry store touches the registered model on a stage change too.
            if let Some(mut model) = schema::models::load(tx, version.model_id)? {
                model.updated_at = at;
                schema::put::<schema::models::Models>(tx, &model)?;
            }
            Ok(updated)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_stages() {
        for ok in ["champion", "prod-eu", "a_b", "v1x"] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in ["", "latest", "v2", "1.2.3", "has space", "x/y"] {
            assert!(validate_alias(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_stage("staging").unwrap(), "Staging");
        assert!(parse_stage("qa").is_err());
    }
}
