//! MLflow requests: GET parameters in the query string, everything else as a JSON body (DELETE
//! included). Accessors are lenient about types the client varies (`"1"` and `1`).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use super::error::MlflowError;
use crate::domain::ml_records::{KeyValue, MetricPoint};

const MAX_BODY: usize = 16 << 20;

#[derive(Debug, Default, Clone)]
pub struct MlflowParams(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for MlflowParams {
    type Rejection = MlflowError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().map(str::to_owned);
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                MlflowError::malformed("The request body is unreadable or larger than 16 MiB")
            })?;
        MlflowParams::decode(query.as_deref(), &bytes)
    }
}

impl MlflowParams {
    /// The parameters of a request: its query string (a repeated key becomes a list), then its
    /// JSON object body on top.
    pub fn decode(query: Option<&str>, body: &[u8]) -> Result<MlflowParams, MlflowError> {
        let mut map = Map::new();
        if let Some(query) = query {
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                let value = Value::String(value.into_owned());
                match map.get_mut(key.as_ref()) {
                    Some(Value::Array(items)) => items.push(value),
                    Some(existing) => *existing = Value::Array(vec![existing.clone(), value]),
                    None => {
                        map.insert(key.into_owned(), value);
                    }
                }
            }
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(body)) => map.extend(body),
                Ok(_) => {
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
}

fn invalid(key: &str, what: &str) -> MlflowError {
    MlflowError::invalid(format!("Invalid value for parameter '{key}': {what}"))
}

impl MlflowParams {
    /// The `key` and `value` of a tag or param (a missing value is empty).
    pub fn key_value(&self) -> Result<KeyValue, MlflowError> {
        Ok(KeyValue {
            key: self.required("key")?,
            value: self.str("value")?.unwrap_or_default(),
        })
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
                Value::String(s) => Ok(Some(s.clone())),
                _ => Err(invalid(key, "expected a string")),
            },
            Some(_) => Err(invalid(key, "expected a string")),
        }
    }

    /// A required string; missing or empty is MLflow's "Missing value for required parameter".
    pub fn required(&self, key: &str) -> Result<String, MlflowError> {
        self.str(key)?.filter(|s| !s.is_empty()).ok_or_else(|| {
            MlflowError::invalid(format!("Missing value for required parameter '{key}'."))
        })
    }

    /// `run_id`, falling back to the older `run_uuid`.
    pub fn run_id(&self) -> Result<String, MlflowError> {
        match self.str("run_id")?.filter(|s| !s.is_empty()) {
            Some(id) => Ok(id),
            None => self.required("run_uuid"),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| invalid(key, "expected an integer")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(key, "expected an integer")),
            Some(_) => Err(invalid(key, "expected an integer")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(invalid(key, "expected true or false")),
            },
            Some(_) => Err(invalid(key, "expected true or false")),
        }
    }

    /// A list of strings given as a JSON array or repeated query parameters.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(invalid(key, "expected a list of strings")),
                })
                .collect(),
            Some(_) => Err(invalid(key, "expected a list of strings")),
        }
    }

    /// `[{"key": ..., "value": ...}]`.
    pub fn key_values(&self, key: &str) -> Result<Vec<KeyValue>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|item| key_value(item, key)).collect(),
            Some(_) => Err(invalid(key, "expected a list of {key, value} objects")),
        }
    }

    pub fn metrics(&self, key: &str) -> Result<Vec<MetricPoint>, MlflowError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(fields) => metric(&MlflowParams(fields.clone())),
                    _ => Err(invalid(key, "expected a list of metric objects")),
                })
                .collect(),
            Some(_) => Err(invalid(key, "expected a list of metric objects")),
        }
    }

    /// A metric value: a JSON number, or the strings MLflow uses for non-finite values.
    pub fn metric_value(&self, key: &str) -> Result<f64, MlflowError> {
        match self.0.get(key) {
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| invalid(key, "expected a number")),
            Some(Value::String(s)) => {
                parse_float(s).ok_or_else(|| invalid(key, "expected a number"))
            }
            None | Some(Value::Null) => Err(MlflowError::invalid(format!(
                "Missing value for required parameter '{key}'."
            ))),
            Some(_) => Err(invalid(key, "expected a number")),
        }
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

fn key_value(item: &Value, list: &str) -> Result<KeyValue, MlflowError> {
    let Value::Object(fields) = item else {
        return Err(invalid(list, "expected a list of {key, value} objects"));
    };
    MlflowParams(fields.clone()).key_value()
}

/// One metric of `log-metric` or `log-batch`; a missing timestamp is now, a missing step 0.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> MlflowParams {
        MlflowParams(v.as_object().unwrap().clone())
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
