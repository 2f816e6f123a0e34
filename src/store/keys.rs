//! Key encoding for the metadata tables: big-endian integers and NUL-terminated strings, so that
//! byte order equals listing order and a shared prefix selects one parent's children.

/// Builds a composite key from parts.
#[derive(Default, Clone)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Key(Vec::with_capacity(32))
    }

    pub fn id(mut self, id: u64) -> Self {
        self.0.extend_from_slice(&id.to_be_bytes());
        self
    }

    /// A string part; callers only pass validated strings, which never contain NUL.
    pub fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }

    /// Arbitrary trailing bytes (the last part of a key only).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

pub fn id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Reads a big-endian id at `offset` of a key.
pub fn id_at(key: &[u8], offset: usize) -> Option<u64> {
    let bytes: [u8; 8] = key.get(offset..offset + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The id that ends a key.
pub fn last_id(key: &[u8]) -> Option<u64> {
    key.len().checked_sub(8).and_then(|at| id_at(key, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_numerically_and_strings_do_not_bleed_into_each_other() {
        assert!(id(2) < id(10));
        let ab = Key::new().str("a").str("b").build();
        let a_b = Key::new().str("ab").build();
        assert!(!a_b.starts_with(&Key::new().str("a").build()));
        assert!(ab.starts_with(&Key::new().str("a").build()));
        assert_eq!(last_id(&Key::new().id(7).id(42).build()), Some(42));
        assert_eq!(id_at(&Key::new().id(7).id(42).build(), 0), Some(7));
        assert_eq!(last_id(b"abc"), None);
    }
}
