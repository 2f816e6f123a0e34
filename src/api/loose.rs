//! Request parameters as clients send them, loosely typed (`"1"` and `1`), decoded from the
//! JSON text of one parameter at a time: no tree of `serde_json::Value`s for a whole body,
//! objects nobody asked for are skipped without being kept, and lists are bounded.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The most items a list parameter may hold (MLflow's batches hold at most 1000).
pub const MAX_LIST_ITEMS: usize = 10_000;

/// A JSON value as clients send it, loosely typed (`"1"` and `1`); objects are
/// skipped without being kept, lists hold at most [`MAX_LIST_ITEMS`].
#[derive(Debug, Clone, PartialEq)]
pub enum Loose {
    Null,
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    List(Vec<Loose>),
    Object,
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Num(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose::Num(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Loose::Num)
            .unwrap_or(Loose::Null))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Loose, A::Error> {
        CappedVisitor(PhantomData).visit_seq(seq).map(Loose::List)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

/// A list of at most [`MAX_LIST_ITEMS`] items; decoding stops at the first one too many.
#[derive(Debug)]
pub struct Capped<T>(pub Vec<T>);

struct CappedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for CappedVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {MAX_LIST_ITEMS} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.len() == MAX_LIST_ITEMS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_LIST_ITEMS} items"
                )));
            }
            items.push(item);
        }
        Ok(items)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Capped<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_seq(CappedVisitor(PhantomData))
            .map(Capped)
    }
}
