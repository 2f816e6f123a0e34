//! Manifests pushed to an OCI repository: `(project, repository, digest)`, found by the tag
//! (version) they were pushed as, and listed per subject for the referrers API.

use super::{key, Index, IndexEntry, Schema};
use crate::domain::oci_records::OciManifest;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct OciManifests;

fn manifest_key(project_id: u64, repository: &str, digest: &str) -> Vec<u8> {
    key().id(project_id).str(repository).str(digest).build()
}

fn tag_key(project_id: u64, repository: &str, tag: &str) -> Vec<u8> {
    key().id(project_id).str(repository).str(tag).build()
}

fn referrers_prefix(project_id: u64, repository: &str, subject: &str) -> Vec<u8> {
    key().id(project_id).str(repository).str(subject).build()
}

fn entry_by_tag(m: &OciManifest) -> Option<IndexEntry> {
    let tag = m.tag.as_deref()?;
    Some((
        tag_key(m.project_id, &m.repository, tag),
        m.digest.as_bytes().to_vec(),
    ))
}

fn entry_by_subject(m: &OciManifest) -> Option<IndexEntry> {
    let subject = m.subject.as_deref()?;
    Some((
        key()
            .raw(&referrers_prefix(m.project_id, &m.repository, subject))
            .str(&m.digest)
            .build(),
        Vec::new(),
    ))
}

const INDEXES: &[Index<OciManifest>] = &[
    Index {
        table: Table::OciManifestsByTag,
        entry: entry_by_tag,
    },
    Index {
        table: Table::OciReferrers,
        entry: entry_by_subject,
    },
];

impl Schema for OciManifests {
    type Record = OciManifest;
    const TABLE: Table = Table::OciManifests;

    fn key(m: &OciManifest) -> Vec<u8> {
        manifest_key(m.project_id, &m.repository, &m.digest)
    }

    fn indexes() -> &'static [Index<OciManifest>] {
        INDEXES
    }
}

pub fn get(
    meta: &dyn MetaStore,
    project_id: u64,
    repository: &str,
    digest: &str,
) -> Result<Option<OciManifest>, StoreError> {
    super::get::<OciManifests>(meta, &manifest_key(project_id, repository, digest))
}

pub fn load(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    digest: &str,
) -> Result<Option<OciManifest>, TxFail> {
    super::load::<OciManifests>(tx, &manifest_key(project_id, repository, digest))
}

pub fn remove(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    digest: &str,
) -> Result<Option<OciManifest>, TxFail> {
    super::remove::<OciManifests>(tx, &manifest_key(project_id, repository, digest))
}

/// The manifest last pushed as `tag`, if it still is that tag's.
pub fn by_tag(
    meta: &dyn MetaStore,
    project_id: u64,
    repository: &str,
    tag: &str,
) -> Result<Option<OciManifest>, StoreError> {
    match meta.get(
        Table::OciManifestsByTag,
        &tag_key(project_id, repository, tag),
    )? {
        Some(digest) => get(
            meta,
            project_id,
            repository,
            &String::from_utf8_lossy(&digest),
        ),
        None => Ok(None),
    }
}

/// The same inside a transaction.
pub fn load_by_tag(
    tx: &dyn Txn,
    project_id: u64,
    repository: &str,
    tag: &str,
) -> Result<Option<OciManifest>, TxFail> {
    match tx.get(
        Table::OciManifestsByTag,
        &tag_key(project_id, repository, tag),
    )? {
        Some(digest) => load(
            tx,
            project_id,
            repository,
            &String::from_utf8_lossy(&digest),
        ),
        None => Ok(None),
    }
}

/// The digests of the manifests whose subject is `subject`, by digest: at most `take`, after
/// `after` when given; and whether more follow.
pub fn referrers(
    meta: &dyn MetaStore,
    project_id: u64,
    repository: &str,
    subject: &str,
    after: Option<&str>,
    take: usize,
) -> Result<(Vec<String>, bool), StoreError> {
    let prefix = referrers_prefix(project_id, repository, subject);
    let seek = match after {
        Some(digest) => super::Seek::After(key().raw(&prefix).str(digest).build()),
        None => super::Seek::Offset(0),
    };
    let page = super::page(meta, Table::OciReferrers, &prefix, false, &seek, take)?;
    let digests = page
        .entries
        .iter()
        .map(|(k, _)| {
            let rest = k
                .get(prefix.len()..k.len().saturating_sub(1))
                .unwrap_or_default();
            String::from_utf8_lossy(rest).into_owned()
        })
        .collect();
    Ok((digests, page.next.is_some()))
}

/// Every pushed manifest of the store, for gc.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<OciManifest, StoreError>> + '_ {
    meta.scan_json(Table::OciManifests, &[])
}
