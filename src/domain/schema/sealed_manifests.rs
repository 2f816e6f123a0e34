//! The frozen manifests of sealed versions, by version id: the canonical JSON exactly as it was
//! sealed (its sha256 is the version's manifest digest). Written once, removed with the version.

use serde::{Deserialize, Serialize};

use super::{id_key, Schema};
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct SealedManifests;

/// A sealed version's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedManifest {
    pub version_id: u64,
    /// `sha256:<hex>` of `canonical`.
    pub digest: String,
    /// The canonical JSON of the manifest, byte for byte as sealed.
    pub canonical: String,
}

impl Schema for SealedManifests {
    type Record = SealedManifest;
    const TABLE: Table = Table::SealedManifests;

    fn key(m: &SealedManifest) -> Vec<u8> {
        id_key(m.version_id)
    }
}

pub fn get(meta: &dyn MetaStore, version_id: u64) -> Result<Option<SealedManifest>, StoreError> {
    super::get::<SealedManifests>(meta, &id_key(version_id))
}

pub fn load(tx: &dyn Txn, version_id: u64) -> Result<Option<SealedManifest>, TxFail> {
    super::load::<SealedManifests>(tx, &id_key(version_id))
}
