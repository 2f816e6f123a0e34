//! Web UI sessions, keyed by the sha256 of their secret.

use super::key;
use crate::domain::sessions::Session;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn, TxnExt};

fn session_key(secret_sha256: &str) -> Vec<u8> {
    key().str(secret_sha256).build()
}

pub fn put(tx: &dyn Txn, secret_sha256: &str, session: &Session) -> Result<(), TxFail> {
    tx.put_json(Table::Sessions, &session_key(secret_sha256), session)
}

pub fn get(meta: &dyn MetaStore, secret_sha256: &str) -> Result<Option<Session>, StoreError> {
    meta.get_json(Table::Sessions, &session_key(secret_sha256))
}

pub fn delete(tx: &dyn Txn, secret_sha256: &str) -> Result<(), TxFail> {
    tx.delete(Table::Sessions, &session_key(secret_sha256))
}
