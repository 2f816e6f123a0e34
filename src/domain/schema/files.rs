//! Package files: listed per package in upload order; per `(package, path)` the ids of every
//! file recorded under that path (GitLab's duplicates), oldest first, so that the newest (what a
//! download serves) and the one before it (what a delete falls back to) are one read away.

use super::revisions::Parent;
use super::{count, id_key, key, Index, IndexEntry, Schema, Seek};
use crate::domain::records::PackageFile;
use crate::store::meta::{MetaStore, StoreError, Table, TxFail, Txn};

pub struct Files;

fn head_key(package_id: u64, file_name: &str) -> Vec<u8> {
    key().id(package_id).str(file_name).build()
}

fn entry_by_package(f: &PackageFile) -> Option<IndexEntry> {
    Some((key().id(f.package_id).id(f.id).build(), Vec::new()))
}

/// Where a content lives in a project: `(project, sha256, file)` → package id, so that a
/// registry surface that names blobs by digest (OCI) finds the files, and so the packages and
/// repositories, a blob belongs to.
pub(crate) fn entry_by_sha256(f: &PackageFile) -> Option<IndexEntry> {
    Some((
        key().id(f.project_id).str(&f.sha256).id(f.id).build(),
        id_key(f.package_id),
    ))
}

/// Where a content lives across projects: `(sha256, project, file)` → package id, so that deploy
/// by checksum finds a readable copy in another project without scanning projects.
pub(crate) fn entry_by_content(f: &PackageFile) -> Option<IndexEntry> {
    Some((
        key().str(&f.sha256).id(f.project_id).id(f.id).build(),
        id_key(f.package_id),
    ))
}

const INDEXES: &[Index<PackageFile>] = &[
    Index {
        table: Table::FilesByPackage,
        entry: entry_by_package,
    },
    Index {
        table: Table::FilesBySha256,
        entry: entry_by_sha256,
    },
    Index {
        table: Table::FilesByContent,
        entry: entry_by_content,
    },
];

fn count_key(package_id: u64) -> Vec<u8> {
    key().str("files").id(package_id).build()
}

fn decode_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .filter_map(|c| c.try_into().ok().map(u64::from_be_bytes))
        .collect()
}

fn encode_ids(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_be_bytes()).collect()
}

impl Schema for Files {
    type Record = PackageFile;
    const TABLE: Table = Table::PackageFiles;

    fn audited(r: &PackageFile) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "PackageFile",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: r.file_name.clone(),
        })
    }

    fn announce(f: &PackageFile) -> Option<super::outbox::Announce> {
        Some(super::outbox::Announce {
            flag: "file_events",
            kind: "file",
            project_id: f.project_id,
            path: format!(
                "/api/v4/projects/{}/packages/{}/package_files",
                f.project_id, f.package_id
            ),
        })
    }

    fn key(f: &PackageFile) -> Vec<u8> {
        id_key(f.id)
    }

    fn indexes() -> &'static [Index<PackageFile>] {
        INDEXES
    }

    fn counted(f: &PackageFile) -> Vec<Vec<u8>> {
        vec![count_key(f.package_id)]
    }

    fn parent(f: &PackageFile) -> Option<Parent> {
        Some(Parent::Package(f.package_id))
    }

    fn updated(
        tx: &dyn Txn,
        old: Option<&PackageFile>,
        new: Option<&PackageFile>,
    ) -> Result<(), TxFail> {
        super::keep_indexes(tx, INDEXES, old, new)?;
        super::keep_counts_of::<Files>(tx, old, new)?;
        let same_path = match (old, new) {
            (Some(a), Some(b)) => a.package_id == b.package_id && a.file_name == b.file_name,
            _ => false,
        };
        super::bump_parent::<Files>(tx, old, new)?;
        if let (Some(gone), None) = (old, new) {
            super::usage::forget(tx, super::usage::Counted::File(gone.id))?;
        }
        if same_path {
            return Ok(());
        }
        if let Some(old) = old {
            let head = head_key(old.package_id, &old.file_name);
            let mut ids = tx
                .get(Table::FileHeads, &head)?
                .map(|v| decode_ids(&v))
                .unwrap_or_default();
            ids.retain(|id| *id != old.id);
            if ids.is_empty() {
                tx.delete(Table::FileHeads, &head)?;
            } else {
                tx.put(Table::FileHeads, &head, &encode_ids(&ids))?;
            }
        }
        if let Some(new) = new {
            let head = head_key(new.package_id, &new.file_name);
            let mut ids = tx
                .get(Table::FileHeads, &head)?
                .map(|v| decode_ids(&v))
                .unwrap_or_default();
            if let Err(at) = ids.binary_search(&new.id) {
                ids.insert(at, new.id);
            }
            tx.put(Table::FileHeads, &head, &encode_ids(&ids))?;
        }
        Ok(())
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<PackageFile>, StoreError> {
    super::get::<Files>(meta, &id_key(id))
}

/// The records with these ids, in that order, in one batched read (those gone left out).
pub fn get_ids(meta: &dyn MetaStore, ids: &[u64]) -> Result<Vec<PackageFile>, StoreError> {
    super::get_ids::<Files>(meta, ids)
}

/// The newest file recorded under a path of a package.
pub fn newest(
    meta: &dyn MetaStore,
    package_id: u64,
    file_name: &str,
) -> Result<Option<PackageFile>, StoreError> {
    match meta.get(Table::FileHeads, &head_key(package_id, file_name))? {
        Some(ids) => match decode_ids(&ids).last() {
            Some(id) => get(meta, *id),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Whether a package has a file under this path (inside a transaction).
pub fn path_taken(tx: &dyn Txn, package_id: u64, file_name: &str) -> Result<bool, TxFail> {
    Ok(tx
        .get(Table::FileHeads, &head_key(package_id, file_name))?
        .is_some())
}

/// The newest file of every path of a package, by path.
pub fn current(meta: &dyn MetaStore, package_id: u64) -> Result<Vec<PackageFile>, StoreError> {
    Ok(current_of(meta, &[package_id])?.pop().unwrap_or_default())
}

/// The newest file of every path of each of several packages, by path, in the order of
/// `package_ids`: two batched reads (the heads, then the records) for a page of versions.
pub fn current_of(
    meta: &dyn MetaStore,
    package_ids: &[u64],
) -> Result<Vec<Vec<PackageFile>>, StoreError> {
    let prefixes: Vec<Vec<u8>> = package_ids.iter().map(|id| id_key(*id)).collect();
    let heads: Vec<Vec<u64>> = meta
        .scan_many(Table::FileHeads, &prefixes, usize::MAX)?
        .into_iter()
        .map(|entries| {
            entries
                .into_iter()
                .filter_map(|(_, ids)| decode_ids(&ids).last().copied())
                .collect()
        })
        .collect();
    let mut files = get_ids(meta, &heads.concat())?.into_iter().peekable();
    // `get_ids` keeps the order asked and leaves out only records gone since.
    Ok(heads
        .iter()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| files.next_if(|file| file.id == *id))
                .collect()
        })
        .collect())
}

/// The newest file of every path below a directory (`dir/…`) of a package, by path; the whole
/// package for an empty `dir`.
pub fn current_under(
    meta: &dyn MetaStore,
    package_id: u64,
    dir: &str,
) -> Result<Vec<PackageFile>, StoreError> {
    let mut prefix = id_key(package_id);
    if !dir.is_empty() {
        prefix.extend_from_slice(dir.as_bytes());
        prefix.push(b'/');
    }
    let mut out = Vec::new();
    for entry in meta.scan(Table::FileHeads, &prefix) {
        let (_, ids) = entry?;
        if let Some(id) = decode_ids(&ids).last() {
            if let Some(file) = get(meta, *id)? {
                out.push(file);
            }
        }
    }
    Ok(out)
}

pub fn count_of(meta: &dyn MetaStore, package_id: u64) -> Result<usize, StoreError> {
    count(meta, &count_key(package_id))
}

/// A page of a package's file ids in upload order.
pub fn page(
    meta: &dyn MetaStore,
    package_id: u64,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    super::page_ids(
        meta,
        Table::FilesByPackage,
        &id_key(package_id),
        false,
        seek,
        take,
        super::IdIn::Key,
    )
}

/// Every file id of a package, oldest first.
pub fn ids_of(meta: &dyn MetaStore, package_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::FilesByPackage,
        &id_key(package_id),
        super::IdIn::Key,
    )
}

/// Every file record of the store, for gc and verify.
pub fn all(meta: &dyn MetaStore) -> impl Iterator<Item = Result<PackageFile, StoreError>> + '_ {
    meta.scan_json(Table::PackageFiles, &[])
}

/// The files of a project with this content, as `(file id, package id)`, oldest first: at most
/// `take` of them (identical content is rarely recorded many times in one project).
pub fn with_sha256(
    meta: &dyn MetaStore,
    project_id: u64,
    sha256: &str,
    take: usize,
) -> Result<Vec<(u64, u64)>, StoreError> {
    let prefix = key().id(project_id).str(sha256).build();
    meta.scan(Table::FilesBySha256, &prefix)
        .take(take)
        .map(|entry| {
            let (k, package) = entry?;
            Ok((
                super::trailing_id(&k).unwrap_or(0),
                super::trailing_id(&package).unwrap_or(0),
            ))
        })
        .collect()
}

/// Files anywhere with this content, as `(project id, file id, package id)`, by project: at
/// most `take` of them.
pub fn anywhere_with_sha256(
    meta: &dyn MetaStore,
    sha256: &str,
    take: usize,
) -> Result<Vec<(u64, u64, u64)>, StoreError> {
    let prefix = key().str(sha256).build();
    meta.scan(Table::FilesByContent, &prefix)
        .take(take)
        .map(|entry| {
            let (k, package) = entry?;
            let rest = k.get(prefix.len()..).unwrap_or_default();
            let project = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Ok((
                project,
                super::trailing_id(&k).unwrap_or(0),
                super::trailing_id(&package).unwrap_or(0),
            ))
        })
        .collect()
}

/// Writes a file's entry of one of its content indexes (the upgrades that add them).
pub(crate) fn put_index_entry(tx: &dyn Txn, table: Table, f: &PackageFile) -> Result<(), TxFail> {
    let entry = match table {
        Table::FilesBySha256 => entry_by_sha256(f),
        Table::FilesByContent => entry_by_content(f),
        _ => None,
    };
    if let Some((k, v)) = entry {
        tx.put(table, &k, &v)?;
    }
    Ok(())
}
