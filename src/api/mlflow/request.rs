//! MLflow requests: GET parameters in the query string, everything else as a JSON body (DELETE
//! included). Accessors are lenient about types the client varies (`"1"` and `1`).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::MlflowError;
use crate::api::body_limit;
use crate::api::loose::{Capped, Loose, MAX_LIST_ITEMS};
use crate::domain::logged_models::ModelMetric;
use crate::domain::ml_records::{KeyValue, MetricPoint};

/// `runs/log-batch`: MLflow's own limit (`MAX_BATCH_LOG_REQUEST_SIZE` in
/// `mlflow/utils/validation.py`).
pub const LOG_BATCH_LIMIT: usize = 1_000_000;
/// `runs/log-inputs`: datasets carry schemas of up to 1 MiB each (they are not kept).
pub const LOG_INPUTS_LIMIT: usize = 4 << 20;
/// The body limit of the MLflow route at `path`.
pub fn body_limit(path: &str) -> usize {
    if path.ends_with("/runs/log-batch") {
        LOG_BATCH_LIMIT
    } else if path.ends_with("/runs/log-inputs") {
        LOG_INPUTS_LIMIT
    } else {
        body_limit::DEFAULT_LIMIT
    }
}

/// The parameters of a request, each kept as the JSON text it arrived as and decoded into
/// the type asked for only when a handler reads it: a body is never turned into a tree of
/// `serde_json::Value`s, and fields nobody reads cost nothing but their bytes.
#[derive(Debug, Default)]
pub struct MlflowParams(HashMap<String, Box<RawValue>>);

impl<S: Send + Sync> FromRequest<S> for MlflowParams {
    type Rejection = MlflowError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().map(str::to_owned);
        let limit = body_limit(request.uri().path());
        let (parts, body) = request.into_parts();
        let bytes = body_limit::read(&parts.headers, body, limit).await?;
        body_limit::decode_with(bytes, move |bytes| {
            MlflowParams::decode(query.as_deref(), bytes)
        })
        .await
    }
}

impl MlflowParams {
    /// The parameters of a request: its query string (a repeated key becomes a list), then its
    /// JSON object body on top.
    pub fn decode(query: Option<&str>, body: &[u8]) -> Result<MlflowParams, MlflowError> {
        let mut map = HashMap::new();
        if let Some(query) = query {
            let mut pairs: Vec<(String, Vec<String>)> = Vec::new();
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                match pairs.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, values)) => values.push(value.into_owned()),
                    None => pairs.push((key.into_owned(), vec![value.into_owned()])),
                }
            }
            for (key, values) in pairs {
                let raw = match values.as_slice() {
                    [one] => serde_json::value::to_raw_value(one),
                    many => serde_json::value::to_raw_value(many),
                }
                .map_err(|e| MlflowError::malformed(format!("The query is unreadable: {e}")))?;
                map.insert(key, raw);
            }
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<HashMap<String, Box<RawValue>>>(body) {
                Ok(fields) => map.extend(fields),
                Err(e) if e.is_data() => {
                    return Err(MlflowError::malformed(
                        "The request body must be a JSON object",
                    ))
                }
                Err(e) => {
                    return Err(MlflowError::malformed(format!(
                        "The request body is not valid JSON: {e}"
                    )))
                }
            }
        }
        Ok(MlflowParams(map))
    }

    /// The JSON text of every parameter together.
    pub fn len(&self) -> usize {
        self.0.values().map(|raw| raw.get().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parameter `key` decoded as a `T`; `None` when absent.
    fn typed<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, MlflowError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|_| invalid(key, what)),
        }
    }

    fn loose(&self, key: &str) -> Result<Loose, MlflowError> {
        Ok(self
            .typed::<Loose>(key, "has too many items")?
            .unwrap_or(Loose::Null))
    }
}

fn invalid(key: &str, what: &str) -> MlflowError {
    MlflowError::invalid(format!("Invalid value for parameter '{key}': {what}"))
}

/// MLflow's message for a parameter its handler's schema requires and did not get.
fn missing(key: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Missing value for required parameter '{key}'. See the API docs for more information about request parameters."
    ))
}

/// MLflow's message for a parameter of the wrong JSON type: the value as Python's `json.dumps`
/// prints it and its Python type.
fn wrong_type(key: &str, raw: &RawValue) -> MlflowError {
    let value: serde_json::Value =
        serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null);
    let type_name = match &value {
        serde_json::Value::Null => "NoneType",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "float",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::String(_) => "str",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    };
    MlflowError::invalid(format!(
        "Invalid value {value} for parameter '{key}' supplied:  Hint: Value was of type '{type_name}'. See the API docs for more information about request parameters."
    ))
}

/// One `{key, value}` of a list of tags or params (other fields are skipped).
#[derive(Debug, Deserialize)]
struct KeyValueItem {
    #[serde(default)]
    key: Option<Loose>,
    #[serde(default)]
    value: Option<Loose>,
}

/// One metric of `log-batch`, as its fields arrived (decoded by [`MetricSeed`]).
#[derive(Debug, Default)]
struct MetricItem {
    key: Option<Loose>,
    value: Option<Loose>,
    timestamp: Option<Loose>,
    step: Option<Loose>,
    model_id: Option<Loose>,
    dataset_name: Option<Loose>,
    dataset_digest: Option<Loose>,
}

/// The field names of a [`MetricItem`]; any other is skipped.
enum MetricField {
    Key,
    Value,
    Timestamp,
    Step,
    ModelId,
    DatasetName,
    DatasetDigest,
    Other,
}

impl MetricField {
    fn slot(self, item: &mut MetricItem) -> Option<(&'static str, &mut Option<Loose>)> {
        Some(match self {
            MetricField::Key => ("key", &mut item.key),
            MetricField::Value => ("value", &mut item.value),
            MetricField::Timestamp => ("timestamp", &mut item.timestamp),
            MetricField::Step => ("step", &mut item.step),
            MetricField::ModelId => ("model_id", &mut item.model_id),
            MetricField::DatasetName => ("dataset_name", &mut item.dataset_name),
            MetricField::DatasetDigest => ("dataset_digest", &mut item.dataset_digest),
            MetricField::Other => return None,
        })
    }
}

impl<'de> Deserialize<'de> for MetricField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = MetricField;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<MetricField, E> {
                Ok(match name {
                    "key" => MetricField::Key,
                    "value" => MetricField::Value,
                    "timestamp" => MetricField::Timestamp,
                    "step" => MetricField::Step,
                    "model_id" => MetricField::ModelId,
                    "dataset_name" => MetricField::DatasetName,
                    "dataset_digest" => MetricField::DatasetDigest,
                    _ => MetricField::Other,
                })
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// Decodes one metric object of a list straight into the [`MetricList`] being built: the item
/// lives on the stack of its own decoding, never moved through the decoder's results (copies
/// of a derived decoder's 200-byte items were about a quarter of the decoding's time). A field
/// given twice is refused, as a derived decoder does.
struct MetricSeed<'a>(&'a mut MetricList);

impl<'de> serde::de::DeserializeSeed<'de> for MetricSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MetricSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a metric object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut item = MetricItem::default();
        while let Some(name) = map.next_key::<MetricField>()? {
            let Some((name, slot)) = name.slot(&mut item) else {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            };
            if slot.is_some() {
                return Err(serde::de::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value::<Loose>()?);
        }
        if self.0.refused.is_none() {
            if let Err(refused) = self.0.take(item) {
                self.0.refused = Some(refused);
            }
        }
        Ok(())
    }
}

/// One `{model_id, step}` of `runs/outputs` or `runs/log-inputs`.
#[derive(Debug, Deserialize)]
struct ModelRef {
    #[serde(default)]
    model_id: Option<Loose>,
    #[serde(default)]
    step: Option<Loose>,
}

/// One `{dataset_name, dataset_digest}` of `logged-models/search`.
#[derive(Debug, Deserialize)]
struct DatasetRef {
    #[serde(default)]
    dataset_name: Option<Loose>,
    #[serde(default)]
    dataset_digest: Option<Loose>,
}

/// One order clause of `logged-models/search`: MLflow 3 sends objects; a string is read as a
/// run search's clause.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OrderItem {
    Text(String),
    Object {
        #[serde(default)]
        field_name: Option<Loose>,
        #[serde(default)]
        ascending: Option<Loose>,
        #[serde(default)]
        dataset_name: Option<Loose>,
        #[serde(default)]
        dataset_digest: Option<Loose>,
    },
}

/// A logged-model order clause with the datasets its metric is read on.
pub struct LoggedModelOrder {
    pub order: crate::domain::search_syntax::OrderBy,
    pub datasets: Vec<(String, Option<String>)>,
}

/// One dataset of `runs/log-inputs`.
#[derive(Debug, Deserialize)]
struct DatasetItem {
    #[serde(default)]
    name: Option<Loose>,
    #[serde(default)]
    digest: Option<Loose>,
    #[serde(default)]
    source_type: Option<Loose>,
    #[serde(default)]
    source: Option<Loose>,
    #[serde(default)]
    schema: Option<Loose>,
    #[serde(default)]
    profile: Option<Loose>,
}

/// One `{tags, dataset}` of `runs/log-inputs`.
#[derive(Debug, Deserialize)]
struct DatasetInputItem {
    #[serde(default)]
    tags: Option<Capped<KeyValueItem>>,
    #[serde(default)]
    dataset: Option<DatasetItem>,
}

/// How one loosely typed value reads as each type; `key` names it in errors.
struct Field<'a> {
    key: &'a str,
    value: &'a Loose,
}

impl Field<'_> {
    fn str(&self) -> Result<Option<String>, MlflowError> {
        match self.value {
            Loose::Null => Ok(None),
            Loose::Str(s) => Ok(Some(s.clone())),
            Loose::Num(n) => Ok(Some(n.to_string())),
            Loose::Bool(b) => Ok(Some(b.to_string())),
            Loose::List(items) if items.len() == 1 => match &items[0] {
                Loose::Str(s) => Ok(Some(s.clone())),
                _ => Err(invalid(self.key, "expected a string")),
            },
            _ => Err(invalid(self.key, "expected a string")),
        }
    }

    fn required(&self) -> Result<String, MlflowError> {
        self.str()?.filter(|s| !s.is_empty()).ok_or_else(|| {
            MlflowError::invalid(format!(
                "Missing value for required parameter '{}'.",
                self.key
            ))
        })
    }

    fn i64(&self) -> Result<Option<i64>, MlflowError> {
        let key = self.key;
        match self.value {
            Loose::Null => Ok(None),
            Loose::Num(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| invalid(key, "expected an integer")),
            Loose::Str(s) if s.is_empty() => Ok(None),
            Loose::Str(s) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(key, "expected an integer")),
            _ => Err(invalid(key, "expected an integer")),
        }
    }

    fn bool(&self) -> Result<Option<bool>, MlflowError> {
        match self.value {
            Loose::Null => Ok(None),
            Loose::Bool(b) => Ok(Some(*b)),
            Loose::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(invalid(self.key, "expected true or false")),
            },
            _ => Err(invalid(self.key, "expected true or false")),
        }
    }

    /// A metric value: a JSON number, or the strings MLflow uses for non-finite values.
    fn metric_value(&self) -> Result<f64, MlflowError> {
        let key = self.key;
        match self.value {
            Loose::Num(n) => n.as_f64().ok_or_else(|| invalid(key, "expected a number")),
            Loose::Str(s) => parse_float(s).ok_or_else(|| invalid(key, "expected a number")),
            Loose::Null => Err(MlflowError::invalid(format!(
                "Missing value for required parameter '{key}'."
            ))),
            _ => Err(invalid(key, "expected a number")),
        }
    }
}

fn field<'a>(key: &'a str, value: &'a Option<Loose>) -> Field<'a> {
    const NULL: &Loose = &Loose::Null;
    Field {
        key,
        value: value.as_ref().unwrap_or(NULL),
    }
}

fn key_value_of(item: &KeyValueItem) -> Result<KeyValue, MlflowError> {
    Ok(KeyValue {
        key: field("key", &item.key).required()?,
        value: field("value", &item.value).str()?.unwrap_or_default(),
    })
}

/// `required`, keeping the string that arrived instead of copying it.
fn required_owned(key: &str, value: Option<Loose>) -> Result<String, MlflowError> {
    match value {
        Some(Loose::Str(s)) if !s.is_empty() => Ok(s),
        other => field(key, &other).required(),
    }
}

/// The metrics of a log-batch, turned into points while the list is decoded: no list of loosely
/// typed items in between, no copy of a key. An item's first field error is kept and reported
/// once the whole list decoded, as if the list were read first and its items after (a list
/// that does not decode is refused as such).
#[derive(Default)]
struct MetricList {
    points: Vec<MetricPoint>,
    for_models: Vec<ModelMetric>,
    refused: Option<MlflowError>,
}

impl MetricList {
    fn take(&mut self, item: MetricItem) -> Result<(), MlflowError> {
        let MetricItem {
            key,
            value,
            timestamp,
            step,
            model_id,
            dataset_name,
            dataset_digest,
        } = item;
        let point = MetricPoint {
            key: required_owned("key", key)?,
            value: field("value", &value).metric_value()?,
            timestamp: field("timestamp", &timestamp)
                .i64()?
                .unwrap_or_else(crate::domain::experiments::now_ms),
            step: field("step", &step).i64()?.unwrap_or(0),
        };
        if let Some(model_id) = field("model_id", &model_id)
            .str()?
            .filter(|m| !m.is_empty())
        {
            self.for_models.push(ModelMetric {
                model_id,
                point: point.clone(),
                dataset_name: field("dataset_name", &dataset_name)
                    .str()?
                    .filter(|d| !d.is_empty()),
                dataset_digest: field("dataset_digest", &dataset_digest)
                    .str()?
                    .filter(|d| !d.is_empty()),
            });
        }
        self.points.push(point);
        Ok(())
    }
}

impl<'de> Deserialize<'de> for MetricList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = MetricList;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a list of at most {MAX_LIST_ITEMS} metrics")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<MetricList, A::Error> {
                let mut list = MetricList::default();
                let mut items = 0;
                while seq.next_element_seed(MetricSeed(&mut list))?.is_some() {
                    items += 1;
                    if items > MAX_LIST_ITEMS {
                        return Err(serde::de::Error::custom(format!(
                            "more than {MAX_LIST_ITEMS} items"
                        )));
                    }
                }
                Ok(list)
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

impl MlflowParams {
    fn field<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Field<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        let value = self.loose(key)?;
        read(&Field { key, value: &value })
    }

    /// The `key` and `value` of a tag or param (a missing value is empty).
    pub fn key_value(&self) -> Result<KeyValue, MlflowError> {
        Ok(KeyValue {
            key: self.required("key")?,
            value: self.str("value")?.unwrap_or_default(),
        })
    }

    /// A string parameter. A JSON value of another type (`"name": 123`) is refused with
    /// MLflow's message, as its handlers' schemas do; query parameters are always strings.
    pub fn str(&self, key: &str) -> Result<Option<String>, MlflowError> {
        if let Some(raw) = self.0.get(key) {
            let text = raw.get().trim_start();
            let is_text = text.starts_with('"') || text.starts_with("null");
            // A one-item list is what a repeated query parameter decodes to.
            let is_one_string_list = text.starts_with('[')
                && matches!(serde_json::from_str::<Vec<String>>(text), Ok(v) if v.len() == 1);
            if !is_text && !is_one_string_list {
                return Err(wrong_type(key, raw));
            }
        }
        self.field(key, |f| f.str())
    }

    /// An enum parameter (`view_type`, `run_view_type`): its name, or its number as text, as
    /// protobuf's JSON reader takes either.
    pub fn enum_name(&self, key: &str) -> Result<Option<String>, MlflowError> {
        self.field(key, |f| f.str())
    }

    /// A required string; missing or empty is MLflow's "Missing value for required parameter".
    pub fn required(&self, key: &str) -> Result<String, MlflowError> {
        self.str(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing(key))
    }

    /// `run_id`, falling back to the older `run_uuid`; MLflow names `run_id` when both are
    /// missing.
    pub fn run_id(&self) -> Result<String, MlflowError> {
        match self.str("run_id")?.filter(|s| !s.is_empty()) {
            Some(id) => Ok(id),
            None => self
                .str("run_uuid")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| missing("run_id")),
        }
    }

    /// `max_results` checked against the cap of MLflow's handler for the route (its message);
    /// `default` when absent.
    pub fn max_results(&self, default: i64, cap: i64) -> Result<usize, MlflowError> {
        let value = self.i64("max_results")?.unwrap_or(default);
        if value > cap {
            // MLflow's schema check (`_assert_less_than_or_equal`) words it as a type error.
            return Err(match self.0.get("max_results") {
                Some(raw) => wrong_type("max_results", raw),
                None => MlflowError::invalid(format!(
                    "Invalid value {value} for parameter 'max_results' supplied."
                )),
            });
        }
        if value < 1 {
            return Err(MlflowError::invalid(format!(
                "Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer"
            )));
        }
        Ok(value as usize)
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, MlflowError> {
        self.field(key, |f| f.i64())
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, MlflowError> {
        self.field(key, |f| f.bool())
    }

    /// A list of strings given as a JSON array or repeated query parameters.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, MlflowError> {
        match self.loose(key)? {
            Loose::Null => Ok(Vec::new()),
            Loose::Str(s) => Ok(vec![s]),
            Loose::List(items) => items
                .into_iter()
                .map(|v| match v {
                    Loose::Str(s) => Ok(s),
                    Loose::Num(n) => Ok(n.to_string()),
                    _ => Err(invalid(key, "expected a list of strings")),
                })
                .collect(),
            _ => Err(invalid(key, "expected a list of strings")),
        }
    }

    /// `[{"key": ..., "value": ...}]`.
    pub fn key_values(&self, key: &str) -> Result<Vec<KeyValue>, MlflowError> {
        let items = self.typed::<Option<Capped<KeyValueItem>>>(
            key,
            "expected a list of {key, value} objects",
        )?;
        items
            .flatten()
            .map(|Capped(items)| items.iter().map(key_value_of).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// The metrics of a batch, and those of them sent with a logged model's `model_id`.
    pub fn metrics(&self, key: &str) -> Result<(Vec<MetricPoint>, Vec<ModelMetric>), MlflowError> {
        let list = self.typed::<Option<MetricList>>(key, "expected a list of metric objects")?;
        match list.flatten() {
            None => Ok((Vec::new(), Vec::new())),
            Some(MetricList {
                refused: Some(refused),
                ..
            }) => Err(refused),
            Some(list) => Ok((list.points, list.for_models)),
        }
    }

    /// A metric value: a JSON number, or the strings MLflow uses for non-finite values.
    pub fn metric_value(&self, key: &str) -> Result<f64, MlflowError> {
        self.field(key, |f| f.metric_value())
    }

    /// The `{model_id, step}` items of a list (`runs/outputs`, `runs/log-inputs`); each needs a
    /// `model_id`.
    pub fn model_refs(&self, key: &str) -> Result<Vec<(String, i64)>, MlflowError> {
        let items =
            self.typed::<Option<Capped<ModelRef>>>(key, "expected a list of {model_id} objects")?;
        let Some(Capped(items)) = items.flatten() else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|m| {
                Ok((
                    field("model_id", &m.model_id).required()?,
                    field("step", &m.step).i64()?.unwrap_or(0),
                ))
            })
            .collect()
    }

    /// The `{dataset_name, dataset_digest}` items of `logged-models/search`.
    pub fn dataset_refs(&self, key: &str) -> Result<Vec<(String, Option<String>)>, MlflowError> {
        let items = self.typed::<Option<Capped<DatasetRef>>>(
            key,
            "expected a list of {dataset_name, dataset_digest} objects",
        )?;
        let Some(Capped(items)) = items.flatten() else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|d| {
                Ok((
                    field("dataset_name", &d.dataset_name).required()?,
                    field("dataset_digest", &d.dataset_digest)
                        .str()?
                        .filter(|x| !x.is_empty()),
                ))
            })
            .collect()
    }

    /// `order_by` of `logged-models/search`: `{field_name, ascending, dataset_name,
    /// dataset_digest}` objects, or `"<field> ASC|DESC"` strings.
    pub fn logged_model_order(&self, key: &str) -> Result<Vec<LoggedModelOrder>, MlflowError> {
        let items =
            self.typed::<Option<Capped<OrderItem>>>(key, "expected a list of order clauses")?;
        let Some(Capped(items)) = items.flatten() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                OrderItem::Text(text) => {
                    for order in crate::domain::search_syntax::parse_order_by(&[text])? {
                        out.push(LoggedModelOrder {
                            order,
                            datasets: Vec::new(),
                        });
                    }
                }
                OrderItem::Object {
                    field_name,
                    ascending,
                    dataset_name,
                    dataset_digest,
                } => {
                    let name = field("field_name", &field_name).required()?;
                    let ascending = field("ascending", &ascending).bool()?.unwrap_or(true);
                    let spec = format!("{name} {}", if ascending { "ASC" } else { "DESC" });
                    let datasets = match field("dataset_name", &dataset_name).str()? {
                        Some(d) if !d.is_empty() => vec![(
                            d,
                            field("dataset_digest", &dataset_digest)
                                .str()?
                                .filter(|x| !x.is_empty()),
                        )],
                        _ => Vec::new(),
                    };
                    for order in crate::domain::search_syntax::parse_order_by(&[spec])? {
                        out.push(LoggedModelOrder {
                            order,
                            datasets: datasets.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The `{tags, dataset}` items of `runs/log-inputs`, with MLflow's messages for a dataset
    /// without one of its required fields.
    pub fn dataset_inputs(
        &self,
        key: &str,
    ) -> Result<Vec<(crate::domain::run_links::Dataset, Vec<KeyValue>)>, MlflowError> {
        let items = self.typed::<Option<Capped<DatasetInputItem>>>(
            key,
            "expected a list of {tags, dataset} objects",
        )?;
        let Some(Capped(items)) = items.flatten() else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|item| {
                let Some(d) = &item.dataset else {
                    return Err(MlflowError::invalid("Dataset cannot be None"));
                };
                let needed = |name: &str, value: &Option<Loose>| -> Result<String, MlflowError> {
                    field(name, value).str()?.ok_or_else(|| {
                        MlflowError::invalid(format!("Dataset {name} cannot be None"))
                    })
                };
                let dataset = crate::domain::run_links::Dataset {
                    name: needed("name", &d.name)?,
                    digest: needed("digest", &d.digest)?,
                    source_type: needed("source_type", &d.source_type)?,
                    source: needed("source", &d.source)?,
                    schema: field("schema", &d.schema).str()?,
                    profile: field("profile", &d.profile).str()?,
                };
                let tags = match &item.tags {
                    Some(Capped(tags)) => {
                        tags.iter().map(key_value_of).collect::<Result<_, _>>()?
                    }
                    None => Vec::new(),
                };
                Ok((dataset, tags))
            })
            .collect()
    }
}

pub fn parse_float(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// One metric of `log-metric`; a missing timestamp is now, a missing step 0.
pub fn metric(params: &MlflowParams) -> Result<MetricPoint, MlflowError> {
    Ok(MetricPoint {
        key: params.required("key")?,
        value: params.metric_value("value")?,
        timestamp: params
            .i64("timestamp")?
            .unwrap_or_else(crate::domain::experiments::now_ms),
        step: params.i64("step")?.unwrap_or(0),
    })
}

/// The logged model a `log-metric` names with `model_id` (and its dataset), if any.
pub fn model_metric(
    params: &MlflowParams,
    point: &MetricPoint,
) -> Result<Option<ModelMetric>, MlflowError> {
    let Some(model_id) = params.str("model_id")?.filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(ModelMetric {
        model_id,
        point: point.clone(),
        dataset_name: params.str("dataset_name")?.filter(|d| !d.is_empty()),
        dataset_digest: params.str("dataset_digest")?.filter(|d| !d.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn params(v: Value) -> MlflowParams {
        MlflowParams::decode(None, v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn metrics_accept_numbers_and_non_finite_strings() {
        let p = params(json!({"key": "loss", "value": "NaN", "timestamp": 5, "step": "2"}));
        let m = metric(&p).unwrap();
        assert!(m.value.is_nan());
        assert_eq!((m.timestamp, m.step), (5, 2));
        let p = params(json!({"key": "loss", "value": "-Infinity"}));
        assert_eq!(metric(&p).unwrap().value, f64::NEG_INFINITY);
        assert!(metric(&params(json!({"key": "loss", "value": "abc"}))).is_err());
        assert!(metric(&params(json!({"value": 1}))).is_err());
    }

    #[test]
    fn a_batch_of_metrics_decodes_each_item_in_place() {
        let p = params(json!({"metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 7, "step": 1, "extra": {"nested": [1, 2]}},
            {"step": "3", "value": "Infinity", "key": "acc", "timestamp": "8"},
            {"key": "f1", "value": 2, "model_id": "m-1", "dataset_name": "train"},
        ]}));
        let (points, for_models) = p.metrics("metrics").unwrap();
        let seen: Vec<_> = points
            .iter()
            .map(|m| (m.key.as_str(), m.value, m.timestamp, m.step))
            .collect();
        assert_eq!(
            seen,
            [
                ("loss", 0.5, 7, 1),
                ("acc", f64::INFINITY, 8, 3),
                ("f1", 2.0, seen[2].2, 0)
            ]
        );
        assert_eq!(for_models.len(), 1);
        assert_eq!(for_models[0].model_id, "m-1");
        assert_eq!(for_models[0].dataset_name.as_deref(), Some("train"));
        // An item's error is the first one of the list, reported once the list decoded.
        let p = params(json!({"metrics": [
            {"key": "loss", "value": 1},
            {"key": "loss", "value": "abc"},
            {"value": 1},
        ]}));
        let refused = format!("{:?}", p.metrics("metrics").unwrap_err());
        assert!(refused.contains("'value'"), "{refused}");
        // A field given twice, an item that is not an object, or a list that is not one, is
        // refused as a list that does not decode.
        for body in [
            r#"{"metrics": [{"key": "a", "key": "b", "value": 1}]}"#,
            r#"{"metrics": ["loss"]}"#,
            r#"{"metrics": {"key": "a"}}"#,
        ] {
            let p = MlflowParams::decode(None, body.as_bytes()).unwrap();
            let refused = format!("{:?}", p.metrics("metrics").unwrap_err());
            assert!(
                refused.contains("expected a list of metric objects"),
                "{body}: {refused}"
            );
        }
    }

    #[test]
    fn run_id_falls_back_to_run_uuid() {
        assert_eq!(params(json!({"run_uuid": "abc"})).run_id().unwrap(), "abc");
        assert_eq!(
            params(json!({"run_id": "x", "run_uuid": "y"}))
                .run_id()
                .unwrap(),
            "x"
        );
        assert!(params(json!({})).run_id().is_err());
    }
}
