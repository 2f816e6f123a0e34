//! Digests of the manifests and configs generated for versions: `(project, repository, digest)`
//! → the version to generate them from again.

use super::{key, Schema};
use crate::domain::oci_records::OciGenerated;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct OciGeneratedDigests;

fn digest_key(project_id: u64, repository: &str, digest: &str) -> Vec<u8> {
    key().id(project_id).str(repository).str(digest).build()
}

impl Schema for OciGeneratedDigests {
    type Record = OciGenerated;
    const TABLE: Table = Table::OciDigests;

    fn key(g: &OciGenerated) -> Vec<u8> {
        digest_key(g.project_id, &g.repository, &g.digest)
    }
}

pub fn get(
    meta: &dyn MetaStore,
    project_id: u64,
    repository: &str,
    digest: &str,
) -> Result<Option<OciGenerated>, StoreError> {
    super::get::<OciGeneratedDigests>(meta, &digest_key(project_id, repository, digest))
}

pub fn exists(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    digest: &str,
) -> Result<bool, TxFail> {
    Ok(
        super::load::<OciGeneratedDigests>(tx, &digest_key(project_id, repository, digest))?
            .is_some(),
    )
}
