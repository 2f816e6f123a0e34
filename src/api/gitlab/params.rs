//! Request parameters as GitLab takes them: from the query string and from a JSON,
//! form-encoded or multipart body, with lenient types (`"30"` and `30` are the same access
//! level).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use chrono::NaiveDate;
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::api::body_limit;
use crate::api::loose::Loose;
use crate::domain::Error;

/// Bodies of parameter requests are small; anything larger is refused (413).
const MAX_PARAMS_BODY: usize = body_limit::DEFAULT_LIMIT;

/// One parameter: text from a query string or form, a `key[]` list, or the JSON text of one
/// field of a JSON body (decoded only when read).
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    List(Vec<String>),
    Json(Box<RawValue>),
}

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, Param>);

fn merge_pairs(map: &mut HashMap<String, Param>, pairs: url::form_urlencoded::Parse<'_>) {
    for (key, value) in pairs {
        let value = value.into_owned();
        if let Some(list_key) = key.strip_suffix("[]") {
            match map
                .entry(list_key.to_string())
                .or_insert_with(|| Param::List(vec![]))
            {
                Param::List(items) => items.push(value),
                slot => *slot = Param::List(vec![value]),
            }
        } else {
            map.insert(key.into_owned(), Param::Text(value));
        }
    }
}

fn unreadable_form(error: multer::Error) -> Error {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Error::RequestTooLarge {
                limit: MAX_PARAMS_BODY as u64,
            }
        }
        other => Error::bad(format!("the multipart body is unreadable: {other}")),
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let mut map = HashMap::new();
        if let Some(query) = request.uri().query() {
            merge_pairs(&mut map, url::form_urlencoded::parse(query.as_bytes()));
        }
        let raw_content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let content_type = raw_content_type.to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            // python-gitlab sends `POST /users` and `POST /projects` as multipart forms (the
            // boundary keeps its case).
            let boundary = multer::parse_boundary(&raw_content_type)
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
            while let Some(field) = form.next_field().await.map_err(unreadable_form)? {
                let Some(name) = field.name().map(str::to_string) else {
                    continue;
                };
                if field.file_name().is_some() {
                    // Files (avatars) are not kept; their bytes are read and dropped.
                    field.bytes().await.map_err(unreadable_form)?;
                    continue;
                }
                let text = field.text().await.map_err(unreadable_form)?;
                let pair = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(&name, &text)
                    .finish();
                merge_pairs(&mut map, url::form_urlencoded::parse(pair.as_bytes()));
            }
            return Ok(Params(map));
        }
        let (parts, body) = request.into_parts();
        let bytes = body_limit::read(&parts.headers, body, MAX_PARAMS_BODY).await?;
        if bytes.is_empty() {
            return Ok(Params(map));
        }
        let map = body_limit::decode_with(bytes, move |bytes| {
            if content_type.starts_with("application/x-www-form-urlencoded") {
                merge_pairs(&mut map, url::form_urlencoded::parse(bytes));
            } else if content_type.starts_with("application/json") || bytes.starts_with(b"{") {
                let body = serde_json::from_slice::<HashMap<String, Box<RawValue>>>(bytes)
                    .map_err(|_| Error::bad("the body is not a JSON object"))?;
                map.extend(body.into_iter().map(|(k, v)| (k, Param::Json(v))));
            }
            Ok::<_, ApiError>(map)
        })
        .await?;
        Ok(Params(map))
    }
}

impl Params {
    pub fn from_query(query: Option<&str>) -> Params {
        let mut map = HashMap::new();
        if let Some(query) = query {
            merge_pairs(&mut map, url::form_urlencoded::parse(query.as_bytes()));
        }
        Params(map)
    }

    /// The parameter `key` as a loosely typed value; `Null` when absent.
    fn value(&self, key: &str) -> Result<Loose, Error> {
        match self.0.get(key) {
            None => Ok(Loose::Null),
            Some(Param::Text(s)) => Ok(Loose::Str(s.clone())),
            Some(Param::List(items)) => {
                Ok(Loose::List(items.iter().cloned().map(Loose::Str).collect()))
            }
            Some(Param::Json(raw)) => {
                serde_json::from_str(raw.get()).map_err(|_| Error::invalid(key))
            }
        }
    }

    /// A JSON object parameter whose values are strings, booleans or numbers, each as text
    /// (trusted publishers' `claims`); `None` when absent.
    pub fn text_map(
        &self,
        key: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, Error> {
        let Some(Param::Json(raw)) = self.0.get(key) else {
            return match self.0.get(key) {
                None => Ok(None),
                Some(_) => Err(Error::invalid(key)),
            };
        };
        let map: HashMap<String, Loose> =
            serde_json::from_str(raw.get()).map_err(|_| Error::invalid(key))?;
        map.into_iter()
            .map(|(k, v)| match v {
                Loose::Str(s) => Ok((k, s)),
                Loose::Bool(b) => Ok((k, b.to_string())),
                Loose::Num(n) => Ok((k, n.to_string())),
                _ => Err(Error::invalid(key)),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub fn has(&self, key: &str) -> bool {
        self.value(key).is_ok_and(|v| v != Loose::Null)
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, Error> {
        match self.value(key)? {
            Loose::Null => Ok(None),
            Loose::Str(s) => Ok(Some(s)),
            Loose::Num(n) => Ok(Some(n.to_string())),
            Loose::Bool(b) => Ok(Some(b.to_string())),
            _ => Err(Error::invalid(key)),
        }
    }

    pub fn required_str(&self, key: &str) -> Result<String, Error> {
        self.str(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::missing(key))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.value(key)? {
            Loose::Null => Ok(None),
            Loose::Num(n) => n.as_u64().map(Some).ok_or_else(|| Error::invalid(key)),
            Loose::Str(s) => s.trim().parse().map(Some).map_err(|_| Error::invalid(key)),
            _ => Err(Error::invalid(key)),
        }
    }

    pub fn usize(&self, key: &str) -> Result<Option<usize>, Error> {
        Ok(self.u64(key)?.map(|n| n.min(usize::MAX as u64) as usize))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.value(key)? {
            Loose::Null => Ok(None),
            Loose::Bool(b) => Ok(Some(b)),
            // Grape's Boolean: python-gitlab sends `True`, shells send `t` or `on`.
            Loose::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" | "on" => Ok(Some(true)),
                "false" | "f" | "0" | "no" | "n" | "off" => Ok(Some(false)),
                _ => Err(Error::invalid(key)),
            },
            Loose::Num(n) => Ok(Some(n.as_i64() != Some(0))),
            _ => Err(Error::invalid(key)),
        }
    }

    /// A list given as a JSON array, `key[]=a&key[]=b`, or `a,b`.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, Error> {
        match self.value(key)? {
            Loose::Null => Ok(None),
            Loose::List(items) => items
                .into_iter()
                .map(|v| match v {
                    Loose::Str(s) => Ok(s),
                    _ => Err(Error::invalid(key)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Loose::Str(s) => Ok(Some(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            _ => Err(Error::invalid(key)),
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
