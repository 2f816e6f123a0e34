//! MLflow 3's logged models: a model logged by a run, with its own artifacts, params and tags,
//! that versions can be registered from.

use serde::{Deserialize, Serialize};

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::experiments::{now_ms, validate_tag};
use super::ml_records::{KeyValue, TagOwner};
use super::packages::FileTarget;
use super::projects::ProjectAccess;
use super::records::{Package, PackageType};
use super::schema::revisions::ReadSet;
use super::schema::{self, logged_models::LoggedModels};
use super::Registry;
use crate::store::meta::TxError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedModel {
    pub id: u64,
    /// `m-` and 32 hex digits: MLflow's `model_id`.
    pub key: String,
    pub project_id: u64,
    pub experiment_id: u64,
    pub name: String,
    pub source_run_id: Option<String>,
    /// LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.
    pub status: String,
    #[serde(default)]
    pub model_type: String,
    #[serde(default)]
    pub params: Vec<KeyValue>,
    pub creator_id: Option<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One value of a metric logged for a logged model (MLflow 3: a metric with a `model_id`), by
/// the run that logged it, on a dataset or none.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedModelMetric {
    pub logged_model_id: u64,
    pub key: String,
    /// JSON has no NaN or infinities: those are kept as MLflow spells them ("NaN", ...).
    #[serde(with = "any_f64")]
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    /// The MLflow `run_id` that logged it.
    pub run_id: String,
    #[serde(default)]
    pub dataset_name: Option<String>,
    #[serde(default)]
    pub dataset_digest: Option<String>,
}

/// An f64 in JSON: a number, or "NaN", "Infinity", "-Infinity".
mod any_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if *value == f64::INFINITY {
            serializer.serialize_str("Infinity")
        } else if *value == f64::NEG_INFINITY {
            serializer.serialize_str("-Infinity")
        } else {
            serializer.serialize_f64(*value)
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Num(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Num(n) => n,
            Stored::Text(t) if t == "Infinity" => f64::INFINITY,
            Stored::Text(t) if t == "-Infinity" => f64::NEG_INFINITY,
            Stored::Text(_) => f64::NAN,
        })
    }
}

/// A metric point of a batch that is also a logged model's (sent with a `model_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetric {
    /// MLflow's `model_id` (`m-…`).
    pub model_id: String,
    pub point: super::ml_records::MetricPoint,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: u64,
    pub name: String,
    pub source_run_id: Option<String>,
    pub model_type: Option<String>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

/// Words of MLflow's generated names (`mlflow/utils/name_utils.py` draws from lists like these):
/// `<predicate>-<noun>-<number>`.
const NAME_PREDICATES: [&str; 24] = [
    "abundant",
    "agreeable",
    "amazing",
    "bold",
    "brave",
    "calm",
    "capable",
    "clean",
    "crawling",
    "dapper",
    "defiant",
    "enchanting",
    "fearless",
    "gentle",
    "gifted",
    "glamorous",
    "honorable",
    "languid",
    "loud",
    "merciful",
    "nimble",
    "polite",
    "smiling",
    "trusting",
];
const NAME_NOUNS: [&str; 24] = [
    "ant", "bass", "bat", "bear", "bird", "carp", "cat", "cod", "crane", "deer", "doe", "dove",
    "eel", "finch", "fox", "gull", "hare", "hen", "koi", "lark", "mole", "owl", "ram", "wolf",
];

/// A name as MLflow generates one for a logged model (or run) created without a name.
pub fn generated_name() -> String {
    let [a, b] = rand::random::<[u8; 2]>();
    format!(
        "{}-{}-{}",
        NAME_PREDICATES[a as usize % NAME_PREDICATES.len()],
        NAME_NOUNS[b as usize % NAME_NOUNS.len()],
        rand::random::<u16>() % 1000
    )
}

const STATUSES: [&str; 3] = [
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
];

impl Registry {
    pub async fn create_logged_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        new: NewLoggedModel,
    ) -> Result<LoggedModel> {
        access.check(caller, Action::WriteRegistry)?;
        let experiment = self.experiment(new.experiment_id)?;
        if experiment.project_id != access.project.id {
            return Err(Error::NotFound("Experiment"));
        }
        if new.name.is_empty() || new.name.chars().count() > 255 {
            return Err(Error::bad(
                "logged model name must have 1 to 255 characters",
            ));
        }
        new.tags.iter().try_for_each(validate_tag)?;
        // MLflow keeps `source_run_id` as given: the run may live elsewhere. Lookups that follow
        // it (`candidate_by_run_id`) only ever find a run of this project.
        if let Some(run_id) = &new.source_run_id {
            super::experiments::check_len("source_run_id", run_id, 256)?;
        }
        let now = now_ms();
        let model = LoggedModel {
            id: self.new_id()?,
            key: format!("m-{}", hex::encode(rand::random::<[u8; 16]>())),
            project_id: access.project.id,
            experiment_id: experiment.id,
            name: new.name.clone(),
            source_run_id: new.source_run_id.clone(),
            status: STATUSES[0].to_string(),
            model_type: new.model_type.clone().unwrap_or_default(),
            params: new.params.clone(),
            creator_id: caller.user_id(),
            created_ms: now,
            updated_ms: now,
        };
        self.write(|tx| -> Result<(), TxError<Error>> {
            schema::put::<LoggedModels>(tx, &model)?;
            schema::tags::set(tx, TagOwner::LoggedModel(model.id), &new.tags)?;
            Ok(())
        })
        .await?;
        Ok(model)
    }

    pub fn logged_model(&self, id: u64) -> Result<LoggedModel> {
        schema::logged_models::get(self.meta.as_ref(), id)?.ok_or(Error::NotFound("Logged model"))
    }

    pub fn logged_model_by_key(&self, project_id: u64, key: &str) -> Result<LoggedModel> {
        schema::logged_models::by_key(self.meta.as_ref(), project_id, key)?
            .ok_or(Error::NotFound("Logged model"))
    }

    /// The logged models of an experiment, oldest first.
    pub fn logged_models_of(&self, experiment_id: u64) -> Result<Vec<LoggedModel>> {
        schema::logged_models::ids_of(self.meta.as_ref(), experiment_id)?
            .into_iter()
            .map(|id| self.logged_model(id))
            .collect()
    }

    /// Sets the status (`finalize`) of a logged model.
    pub async fn set_logged_model_status(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
        status: &str,
    ) -> Result<LoggedModel> {
        access.check(caller, Action::WriteRegistry)?;
        if !STATUSES.contains(&status) {
            return Err(Error::bad(format!(
                "status must be one of {}",
                STATUSES.join(", ")
            )));
        }
        let model = self.logged_model(id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Logged model"));
        }
        self.update_record::<LoggedModels>(id, "Logged model", |model: &mut LoggedModel| {
            model.status = status.to_string();
            model.updated_ms = now_ms();
        })
        .await
    }

    /// `logged-models/:id/params`: adds params to a logged model (a key logged again takes the
    /// new value).
    pub async fn log_logged_model_params(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
        params: Vec<KeyValue>,
    ) -> Result<LoggedModel> {
        access.check(caller, Action::WriteRegistry)?;
        super::candidates::validate_batch(&super::candidates::LogBatch {
            params: params.clone(),
            ..Default::default()
        })?;
        let model = self.logged_model(id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Logged model"));
        }
        self.update_record::<LoggedModels>(id, "Logged model", |model: &mut LoggedModel| {
            for param in &params {
                match model.params.iter_mut().find(|p| p.key == param.key) {
                    Some(existing) => existing.value = param.value.clone(),
                    None => model.params.push(param.clone()),
                }
            }
            model.updated_ms = now_ms();
        })
        .await
    }

    /// The package holding a logged model's artifacts:
    /// `<model name or ml_experiment_<iid>>/<model key>`.
    pub fn logged_model_target(&self, model: &LoggedModel, file_name: &str) -> Result<FileTarget> {
        let experiment = self.experiment(model.experiment_id)?;
        let base = match experiment.model_id {
            Some(id) => self.model(id)?.name,
            None => format!("ml_experiment_{}", experiment.iid),
        };
        Ok(FileTarget {
            package_name: base,
            version: model.key.clone(),
            package_type: PackageType::MlModel,
            file_name: file_name.to_string(),
        })
    }

    /// Every metric value logged for a logged model, by key, dataset, step and timestamp.
    pub fn logged_model_metrics(&self, id: u64) -> Result<Vec<LoggedModelMetric>> {
        Ok(schema::logged_model_metrics::of(self.meta.as_ref(), id)?)
    }

    /// The latest value (highest step, then latest timestamp) of a logged model's metric on one
    /// of `datasets` (`(name, digest)`; empty: any dataset or none).
    pub fn logged_model_metric(
        &self,
        id: u64,
        key: &str,
        datasets: &[(String, Option<String>)],
    ) -> Result<Option<f64>> {
        let on_dataset = |m: &LoggedModelMetric| {
            datasets.is_empty()
                || datasets.iter().any(|(name, digest)| {
                    m.dataset_name.as_deref() == Some(name.as_str())
                        && digest
                            .as_deref()
                            .is_none_or(|d| m.dataset_digest.as_deref() == Some(d))
                })
        };
        Ok(self
            .logged_model_metrics(id)?
            .into_iter()
            .filter(|m| m.key == key && on_dataset(m))
            .max_by_key(|m| (m.step, m.timestamp))
            .map(|m| m.value))
    }

    pub fn logged_model_package(&self, model: &LoggedModel) -> Result<Package> {
        let target = self.logged_model_target(model, "")?;
        self.find_package(model.project_id, &target)
    }

    pub async fn delete_logged_model(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        id: u64,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let model = self.logged_model(id)?;
        if model.project_id != access.project.id {
            return Err(Error::NotFound("Logged model"));
        }
        self.delete_listed(
            |seen: &mut ReadSet| match schema::logged_models::get(self.meta.as_ref(), model.id)? {
                Some(m) => Ok(Some(self.logged_model_contents(seen, m)?)),
                None => Ok(None),
            },
            |tx, contents| {
                if let Some(contents) = contents {
                    super::candidates::remove_logged_model_in(tx, contents)?;
                }
                Ok(())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_keep_non_finite_numbers() {
        for value in [1.5, f64::INFINITY, f64::NEG_INFINITY] {
            let metric = LoggedModelMetric {
                logged_model_id: 1,
                key: "acc".into(),
                value,
                timestamp: 2,
                step: 3,
                run_id: "r".into(),
                dataset_name: None,
                dataset_digest: None,
            };
            let text = serde_json::to_string(&metric).unwrap();
            let back: LoggedModelMetric = serde_json::from_str(&text).unwrap();
            assert_eq!(back, metric);
        }
        let nan = LoggedModelMetric {
            logged_model_id: 1,
            key: "k".into(),
            value: f64::NAN,
            timestamp: 0,
            step: 0,
            run_id: "r".into(),
            dataset_name: None,
            dataset_digest: None,
        };
        let text = serde_json::to_string(&nan).unwrap();
        assert!(text.contains("\"NaN\""));
        let back: LoggedModelMetric = serde_json::from_str(&text).unwrap();
        assert!(back.value.is_nan());
    }

    #[test]
    fn generated_names_look_like_mlflows() {
        let name = generated_name();
        let parts: Vec<&str> = name.split('-').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[2].parse::<u16>().unwrap() < 1000);
    }
}
