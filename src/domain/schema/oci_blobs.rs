//! Blobs pushed to an OCI repository: `(project, repository, sha256)`.

use super::{key, Schema};
use crate::domain::oci_records::OciBlob;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct OciBlobs;

fn blob_key(project_id: u64, repository: &str, sha256: &str) -> Vec<u8> {
    key().id(project_id).str(repository).str(sha256).build()
}

impl Schema for OciBlobs {
    type Record = OciBlob;
    const TABLE: Table = Table::OciBlobs;

    fn key(b: &OciBlob) -> Vec<u8> {
        blob_key(b.project_id, &b.repository, &b.sha256)
    }
}

pub fn get(
    meta: &dyn MetaStore,
    project_id: u64,
    repository: &str,
    sha256: &str,
) -> Result<Option<OciBlob>, StoreError> {
    super::get::<OciBlobs>(meta, &blob_key(project_id, repository, sha256))
}

pub fn load(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    sha256: &str,
) -> Result<Option<OciBlob>, TxFail> {
    super::load::<OciBlobs>(tx, &blob_key(project_id, repository, sha256))
}

pub fn remove(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    sha256: &str,
) -> Result<Option<OciBlob>, TxFail> {
    super::remove::<OciBlobs>(tx, &blob_key(project_id, repository, sha256))
}

/// Every pushed blob of the store, for gc.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<OciBlob, StoreError>> + '_ {
    meta.scan_json(Table::OciBlobs, &[])
}
