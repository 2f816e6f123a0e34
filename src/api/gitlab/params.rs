//! Request parameters as GitLab takes them: from the query string and from a JSON,
//! form-encoded or multipart body, with lenient types (`"30"` and `30` are the same access
//! level).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::domain::Error;

/// Bodies of parameter requests are small; anything larger is refused.
const MAX_PARAMS_BODY: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

fn merge_pairs(map: &mut Map<String, Value>, pairs: url::form_urlencoded::Parse<'_>) {
    for (key, value) in pairs {
        let value = Value::String(value.into_owned());
        if let Some(list_key) = key.strip_suffix("[]") {
            match map
                .entry(list_key.to_string())
                .or_insert_with(|| Value::Array(vec![]))
            {
                Value::Array(items) => items.push(value),
                slot => *slot = Value::Array(vec![value]),
            }
        } else {
            map.insert(key.into_owned(), value);
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let mut map = Map::new();
        if let Some(query) = request.uri().query() {
            merge_pairs(&mut map, url::form_urlencoded::parse(query.as_bytes()));
        }
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(&content_type)
                .map_err(|_| Error::bad("the multipart body has no boundary"))?;
            let constraints = multer::Constraints::new().size_limit(
                multer::SizeLimit::new()
                    .whole_stream(MAX_PARAMS_BODY as u64)
                    .per_field(MAX_PARAMS_BODY as u64),
            );
            let mut form = multer::Multipart::with_constraints(
                request.into_body().into_data_stream(),
                boundary,
                constraints,
            );
            while let Some(field) = form
                .next_field()
                .await
                .map_err(|e| Error::bad(format!("the multipart body is unreadable: {e}")))?
            {
                let Some(name) = field.name().map(str::to_string) else {
                    continue;
                };
                if field.file_name().is_some() {
                    // Files (avatars) are not kept; their bytes are read and dropped.
                    field.bytes().await.map_err(|e| {
                        Error::bad(format!("the multipart body is unreadable: {e}"))
                    })?;
                    continue;
                }
                let text = field
                    .text()
                    .await
                    .map_err(|e| Error::bad(format!("the multipart body is unreadable: {e}")))?;
                let pair = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(&name, &text)
                    .finish();
                merge_pairs(&mut map, url::form_urlencoded::parse(pair.as_bytes()));
            }
            return Ok(Params(map));
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_PARAMS_BODY)
            .await
            .map_err(|_| Error::bad("request body is too large or unreadable"))?;
        if !bytes.is_empty() {
            if content_type.starts_with("application/x-www-form-urlencoded") {
                merge_pairs(&mut map, url::form_urlencoded::parse(&bytes));
            } else if content_type.starts_with("application/json") || bytes.starts_with(b"{") {
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(Value::Object(body)) => map.extend(body),
                    _ => return Err(Error::bad("the body is not a JSON object").into()),
                }
            }
        }
        Ok(Params(map))
    }
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        let mut map = Map::new();
        if let Some(query) = query {
            merge_pairs(&mut map, url::form_urlencoded::parse(query.as_bytes()));
        }
        Params(map)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some_and(|v| !v.is_null())
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(Error::invalid(key)),
        }
    }

    pub fn required_str(&self, key: &str) -> Result<String, Error> {
        self.str(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::missing(key))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| Error::invalid(key)),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Error::invalid(key)),
            Some(_) => Err(Error::invalid(key)),
        }
    }

    pub fn usize(&self, key: &str) -> Result<Option<usize>, Error> {
        Ok(self.u64(key)?.map(|n| n.min(usize::MAX as u64) as usize))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            // Grape's Boolean: python-gitlab sends `True`, shells send `t` or `on`.
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" | "on" => Ok(Some(true)),
                "false" | "f" | "0" | "no" | "n" | "off" => Ok(Some(false)),
                _ => Err(Error::invalid(key)),
            },
            Some(Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
            Some(_) => Err(Error::invalid(key)),
        }
    }

    /// A list given as a JSON array, `key[]=a&key[]=b`, or `a,b`.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, Error> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(Error::invalid(key)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            Some(_) => Err(Error::invalid(key)),
        }
    }

    pub fn date(&self, key: &str) -> Result<Option<NaiveDate>, Error> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| Error::invalid(key)),
        }
    }

    /// A string parsed by `parse`; anything it refuses is "does not have a valid value".
    pub fn choice<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| Error::InvalidParam {
                param: key.to_string(),
                problem: "does not have a valid value".into(),
            }),
        }
    }
}
