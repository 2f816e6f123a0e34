//! MLflow's search pages: `order_by`, `max_results`, `page_token`, and the listing shape. The
//! filter and order-by syntax is the domain's (`domain::search_syntax`).

use std::cmp::Ordering;

use axum::Json;
use serde_json::{Map, Value};

use super::error::MlflowError;
use super::request::MlflowParams;
pub use crate::domain::search_syntax::*;

/// An opaque page token: the offset of the next page (`o<offset>`, or the bare offset).
pub fn page_start(token: Option<&str>) -> Result<usize, MlflowError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .strip_prefix('o')
            .unwrap_or(t)
            .parse()
            .map_err(|_| MlflowError::invalid(format!("Invalid page token '{t}'"))),
    }
}

/// The order and page a search asks for: `order_by`, `max_results`, `page_token`.
pub struct PageQuery {
    order: Vec<OrderBy>,
    start: usize,
    max_results: usize,
}

impl PageQuery {
    pub fn from_params(
        params: &MlflowParams,
        default_max: i64,
        cap: i64,
    ) -> Result<PageQuery, MlflowError> {
        Ok(PageQuery {
            order: parse_order_by(&params.strings("order_by")?)?,
            start: page_start(params.str("page_token")?.as_deref())?,
            max_results: params
                .i64("max_results")?
                .unwrap_or(default_max)
                .clamp(1, cap) as usize,
        })
    }

    /// Whether the search names an order (otherwise the listing's own index order applies).
    pub fn is_ordered(&self) -> bool {
        !self.order.is_empty()
    }

    /// Takes the page from `matches`, already in the listing's order: skips the earlier pages'
    /// matches and stops one after the page, so the cost is the pages read, not every match.
    pub fn cut<T, E>(
        &self,
        matches: impl Iterator<Item = Result<T, E>>,
    ) -> Result<(Vec<T>, Option<String>), E> {
        let mut page = Vec::new();
        for found in matches.skip(self.start) {
            let found = found?;
            if page.len() == self.max_results {
                return Ok((
                    page,
                    Some(self.start.saturating_add(self.max_results).to_string()),
                ));
            }
            page.push(found);
        }
        Ok((page, None))
    }

    /// Sorts by the order clauses (ties and no clauses: `fallback`), then cuts the page; the
    /// token of the next page when there is one.
    pub fn apply<T>(
        &self,
        mut items: Vec<T>,
        field: impl Fn(&T, &Field) -> Option<FieldValue>,
        fallback: impl Fn(&T, &T) -> Ordering,
    ) -> (Vec<T>, Option<String>) {
        items.sort_by(|a, b| {
            self.order
                .iter()
                .map(|o| {
                    let ord = compare(field(a, &o.field).as_ref(), field(b, &o.field).as_ref());
                    if o.descending {
                        ord.reverse()
                    } else {
                        ord
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or_else(|| fallback(a, b))
        });
        let end = self.start.saturating_add(self.max_results);
        let next = (end < items.len()).then(|| end.to_string());
        (
            items
                .into_iter()
                .skip(self.start)
                .take(self.max_results)
                .collect(),
            next,
        )
    }
}

/// `{"<key>": [...], "next_page_token": "..."}`, the token only when there is a next page.
pub fn listing(key: &str, items: Vec<Value>, next: Option<String>) -> Json<Value> {
    let mut body = Map::new();
    body.insert(key.to_string(), Value::Array(items));
    if let Some(token) = next {
        body.insert("next_page_token".into(), Value::String(token));
    }
    Json(Value::Object(body))
}
