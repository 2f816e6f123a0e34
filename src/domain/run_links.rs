//! What runs read and wrote, as MLflow records it: dataset inputs (`mlflow.log_input`, autolog),
//! and logged models taken as inputs or produced as outputs (MLflow 3's `log_outputs`).

use serde::{Deserialize, Serialize};

use super::access::{Action, Caller};
use super::error::{Error, Result};
use super::experiments::check_len;
use super::ml_records::{KeyValue, Lifecycle};
use super::projects::ProjectAccess;
use super::schema::{
    self,
    run_links::{DatasetInputs, ModelLinks},
};
use super::Registry;
use crate::store::meta::abort;

/// A dataset as MLflow describes it; `schema` and `profile` are JSON texts the client made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Dataset {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
}

/// A dataset a run used, with the input's tags (`mlflow.data.context`: training, eval…).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetInput {
    pub candidate_id: u64,
    pub dataset: Dataset,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    pub created_ms: i64,
}

/// Whether a run took a logged model as an input or produced it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    pub fn byte(self) -> u8 {
        match self {
            Direction::Input => 1,
            Direction::Output => 2,
        }
    }
}

/// A logged model a run took as an input or produced (with the step it was logged at).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelLink {
    pub candidate_id: u64,
    pub direction: Direction,
    /// MLflow's `model_id` (`m-…`).
    pub model_id: String,
    #[serde(default)]
    pub step: i64,
}

/// MLflow's limits (`mlflow/utils/validation.py`).
const MAX_DATASET_NAME: usize = 500;
const MAX_DATASET_DIGEST: usize = 36;
const MAX_DATASET_SOURCE: usize = 65_535;
const MAX_DATASET_SCHEMA: usize = 1_048_575;
const MAX_DATASET_PROFILE: usize = 16_777_215;
const MAX_INPUT_TAG_KEY: usize = 255;
const MAX_INPUT_TAG_VALUE: usize = 500;
/// MLflow's `MAX_DATASETS_PER_BATCH`.
pub const MAX_DATASETS_PER_CALL: usize = 1000;

fn exceeds(what: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::bad(format!(
            "'{what}' exceeds the maximum length of {max} characters"
        )));
    }
    Ok(())
}

/// MLflow's checks of a dataset input.
pub fn validate_dataset_input(dataset: &Dataset, tags: &[KeyValue]) -> Result<()> {
    exceeds("name", &dataset.name, MAX_DATASET_NAME)?;
    exceeds("digest", &dataset.digest, MAX_DATASET_DIGEST)?;
    exceeds("source", &dataset.source, MAX_DATASET_SOURCE)?;
    check_len("source_type", &dataset.source_type, 255)?;
    if let Some(schema) = &dataset.schema {
        exceeds("schema", schema, MAX_DATASET_SCHEMA)?;
    }
    if let Some(profile) = &dataset.profile {
        exceeds("profile", profile, MAX_DATASET_PROFILE)?;
    }
    for tag in tags {
        exceeds("key", &tag.key, MAX_INPUT_TAG_KEY)?;
        exceeds("value", &tag.value, MAX_INPUT_TAG_VALUE)?;
    }
    Ok(())
}

impl Registry {
    /// `runs/log-inputs`: datasets (kept once per name and digest; a repeated input keeps its
    /// first tags, as MLflow does) and logged models the run took as inputs.
    pub async fn log_inputs(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        datasets: Vec<(Dataset, Vec<KeyValue>)>,
        models: Vec<String>,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.project_candidate(access, candidate_id)?;
        if candidate.lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(format!(
                "The run {} must be in the 'active' state. Current state is deleted.",
                candidate.run_id
            )));
        }
        if datasets.len() > MAX_DATASETS_PER_CALL {
            return Err(Error::bad(format!(
                "A batch logging request can contain at most {MAX_DATASETS_PER_CALL} datasets. Got {} datasets. Please split up datasets across multiple requests and try again.",
                datasets.len()
            )));
        }
        for (dataset, tags) in &datasets {
            validate_dataset_input(dataset, tags)?;
        }
        for model_id in &models {
            self.logged_model_by_key(access.project.id, model_id)
                .map_err(|_| {
                    Error::NotFoundMessage(format!("Logged model with ID '{model_id}' not found."))
                })?;
        }
        let now = super::experiments::now_ms();
        self.write(|tx| {
            if schema::candidates::load(tx, candidate_id)?.is_none() {
                return abort(Error::NotFound("Run"));
            }
            for (dataset, tags) in &datasets {
                if schema::run_links::has_dataset(tx, candidate_id, &dataset.name, &dataset.digest)?
                {
                    continue;
                }
                let input = DatasetInput {
                    candidate_id,
                    dataset: dataset.clone(),
                    tags: tags.clone(),
                    created_ms: now,
                };
                schema::put::<DatasetInputs>(tx, &input)?;
            }
            for model_id in &models {
                let link = ModelLink {
                    candidate_id,
                    direction: Direction::Input,
                    model_id: model_id.clone(),
                    step: 0,
                };
                schema::put::<ModelLinks>(tx, &link)?;
            }
            Ok(())
        })
        .await
    }

    /// `runs/outputs`: the logged models a run produced, at a step each (MLflow 3).
    pub async fn log_outputs(
        &self,
        caller: &Caller,
        access: &ProjectAccess,
        candidate_id: u64,
        outputs: Vec<(String, i64)>,
    ) -> Result<()> {
        access.check(caller, Action::WriteRegistry)?;
        let candidate = self.project_candidate(access, candidate_id)?;
        if candidate.lifecycle == Lifecycle::Deleted {
            return Err(Error::bad(format!(
                "The run {} must be in the 'active' state. Current state is deleted.",
                candidate.run_id
            )));
        }
        for (model_id, _) in &outputs {
            self.logged_model_by_key(access.project.id, model_id)
                .map_err(|_| {
                    Error::NotFoundMessage(format!("Logged model with ID '{model_id}' not found."))
                })?;
        }
        self.write(|tx| {
            if schema::candidates::load(tx, candidate_id)?.is_none() {
                return abort(Error::NotFound("Run"));
            }
            for (model_id, step) in &outputs {
                let link = ModelLink {
                    candidate_id,
                    direction: Direction::Output,
                    model_id: model_id.clone(),
                    step: *step,
                };
                schema::put::<ModelLinks>(tx, &link)?;
            }
            Ok(())
        })
        .await
    }

    /// A run's dataset inputs, by name and digest.
    pub fn run_datasets(&self, candidate_id: u64) -> Result<Vec<DatasetInput>> {
        Ok(schema::run_links::datasets_of(
            self.meta.as_ref(),
            candidate_id,
        )?)
    }

    /// The logged models a run took as inputs and produced as outputs.
    pub fn run_model_links(&self, candidate_id: u64) -> Result<Vec<ModelLink>> {
        Ok(schema::run_links::models_of(
            self.meta.as_ref(),
            candidate_id,
        )?)
    }
}
