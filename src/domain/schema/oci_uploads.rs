//! OCI blob upload sessions, by id.

use super::{key, Schema};
use crate::domain::oci_records::UploadSession;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct UploadSessions;

fn session_key(id: &str) -> Vec<u8> {
    key().str(id).build()
}

impl Schema for UploadSessions {
    type Record = UploadSession;
    const TABLE: Table = Table::OciUploads;

    fn key(s: &UploadSession) -> Vec<u8> {
        session_key(&s.id)
    }
}

pub fn get(meta: &dyn MetaStore, id: &str) -> Result<Option<UploadSession>, StoreError> {
    super::get::<UploadSessions>(meta, &session_key(id))
}

pub fn remove(tx: &dyn Txn, id: &str) -> Result<Option<UploadSession>, TxFail> {
    super::remove::<UploadSessions>(tx, &session_key(id))
}

/// Every session, for gc.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<UploadSession, StoreError>> + '_ {
    meta.scan_json(Table::OciUploads, &[])
}
