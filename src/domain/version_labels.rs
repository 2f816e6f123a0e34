//! Names that point at versions: MLflow aliases (`@champion`; a version's SemVer string is an
//! implicit alias) and MLflow's deprecated stages.

use semver::Version;

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::ml_records::{ModelVersion, TagOwner};
use super::projects::ProjectAccess;
use super::records::now;
use super::schema::{self, versions::Versions};
use super::Registry;
use crate::store::meta::{abort, TxError};

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
    pub async fn set_alias(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        version: &ModelVersion,
        alias: &str,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        validate_alias(alias)?;
        if version.project_id != access.project.id {
            return Err(Error::NotFound("Model version"));
        }
        let tag = super::ml_records::KeyValue {
            key: alias.to_string(),
            value: version.id.to_string(),
        };
        self.write(|tx| -> Result<(), TxError<Error>> {
            schema::tags::set(
                tx,
                TagOwner::ModelAlias(version.model_id),
                std::slice::from_ref(&tag),
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_alias(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        model_id: u64,
        alias: &str,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        self.write(|tx| {
            if !schema::tags::delete(tx, TagOwner::ModelAlias(model_id), alias)? {
                return abort(Error::NotFoundMessage(format!(
                    "Registered model alias {alias} not found."
                )));
            }
            Ok(())
        })
        .await
    }

    /// Every explicit alias of a model with the version id it names.
    pub fn aliases(&self, model_id: u64) -> Result<Vec<(String, u64)>> {
        Ok(self
            .tags(TagOwner::ModelAlias(model_id))?
            .into_iter()
            .filter_map(|kv| kv.value.parse().ok().map(|id| (kv.key, id)))
            .collect())
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
                let archived = ModelVersion {
                    stage: Some("Archived".into()),
                    updated_at: at,
                    ..other.clone()
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
