//! Packages: unique by `(project, name, version, type)`; listed per project and status in the
//! orders GitLab offers (created, name, version, type), each order an index whose keys start
//! with `(project, status, type)`, so that a type filter is a prefix and no filter is a merge of
//! the two types' streams. Kept counts give totals per `(project, status, type)` and per name,
//! which also lists a project's distinct package names for name filters.

use super::revisions::Parent;
use super::{count, id_key, key, merge_streams, Index, IndexEntry, Schema, Seek};
use crate::domain::records::{Package, PackageStatus, PackageType};
use crate::store::meta::{KvIter, MetaStore, StoreError, Table, TxFail, Txn};

pub struct Packages;

/// The orders of [`page`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Created,
    Name,
    Version,
    Type,
}

pub const TYPES: [PackageType; 2] = [PackageType::Generic, PackageType::MlModel];

fn status_byte(status: PackageStatus) -> u8 {
    match status {
        PackageStatus::Default => 0,
        PackageStatus::Hidden => 1,
    }
}

fn type_byte(package_type: PackageType) -> u8 {
    match package_type {
        PackageType::Generic => 0,
        PackageType::MlModel => 1,
    }
}

fn identity_key(project_id: u64, name: &str, version: &str, package_type: PackageType) -> Vec<u8> {
    key()
        .id(project_id)
        .str(name)
        .str(version)
        .str(package_type.as_str())
        .build()
}

/// `(project, status, type)`: the prefix of every listing index.
fn listing_prefix(project_id: u64, status: PackageStatus, package_type: PackageType) -> Vec<u8> {
    key()
        .id(project_id)
        .raw(&[status_byte(status), type_byte(package_type)])
        .build()
}

fn created(p: &Package) -> [u8; 8] {
    super::sortable_i64(p.created_at.timestamp_micros())
}

fn entry_by_identity(p: &Package) -> Option<IndexEntry> {
    Some((
        identity_key(p.project_id, &p.name, &p.version, p.package_type),
        id_key(p.id),
    ))
}

fn entry_by_project(p: &Package) -> Option<IndexEntry> {
    Some((key().id(p.project_id).id(p.id).build(), Vec::new()))
}

fn entry_by_created(p: &Package) -> Option<IndexEntry> {
    let k = key()
        .raw(&listing_prefix(p.project_id, p.status, p.package_type))
        .raw(&created(p))
        .id(p.id)
        .build();
    Some((k, Vec::new()))
}

fn entry_by_name(p: &Package) -> Option<IndexEntry> {
    let k = key()
        .raw(&listing_prefix(p.project_id, p.status, p.package_type))
        .str(&p.name)
        .raw(&created(p))
        .id(p.id)
        .build();
    Some((k, Vec::new()))
}

fn entry_by_version(p: &Package) -> Option<IndexEntry> {
    let k = key()
        .raw(&listing_prefix(p.project_id, p.status, p.package_type))
        .str(&p.version)
        .id(p.id)
        .build();
    // The name rides along, so that a name filter on this order needs no record.
    Some((k, p.name.as_bytes().to_vec()))
}

const INDEXES: &[Index<Package>] = &[
    Index {
        table: Table::PackagesByName,
        entry: entry_by_identity,
    },
    Index {
        table: Table::PackagesByProject,
        entry: entry_by_project,
    },
    Index {
        table: Table::PackagesByCreated,
        entry: entry_by_created,
    },
    Index {
        table: Table::PackagesByNameOrder,
        entry: entry_by_name,
    },
    Index {
        table: Table::PackagesByVersionOrder,
        entry: entry_by_version,
    },
];

fn total_key(project_id: u64, status: PackageStatus, package_type: PackageType) -> Vec<u8> {
    key()
        .str("packages")
        .raw(&listing_prefix(project_id, status, package_type))
        .build()
}

fn names_prefix(project_id: u64, status: PackageStatus, package_type: PackageType) -> Vec<u8> {
    key()
        .str("package_names")
        .raw(&listing_prefix(project_id, status, package_type))
        .build()
}

fn name_count_key(p: &Package) -> Vec<u8> {
    key()
        .raw(&names_prefix(p.project_id, p.status, p.package_type))
        .str(&p.name)
        .build()
}

/// Any package of this name in the project, whatever its status (the name-ownership check).
fn any_name_prefix(project_id: u64, package_type: PackageType) -> Vec<u8> {
    key()
        .str("package_name_any")
        .id(project_id)
        .raw(&[type_byte(package_type)])
        .build()
}

fn any_name_key(p: &Package) -> Vec<u8> {
    key()
        .raw(&any_name_prefix(p.project_id, p.package_type))
        .str(&p.name)
        .build()
}

impl Schema for Packages {
    type Record = Package;
    const TABLE: Table = Table::Packages;

    fn audited(r: &Package) -> Option<super::audit_events::Target> {
        Some(super::audit_events::Target {
            entity_type: "Package",
            entity_id: r.id,
            project_id: Some(r.project_id),
            path: format!("{}/{}", r.name, r.version),
        })
    }

    fn announce(p: &Package) -> Option<super::outbox::Announce> {
        Some(super::outbox::Announce {
            flag: "package_events",
            kind: "package",
            project_id: p.project_id,
            path: format!("/api/v4/projects/{}/packages/{}", p.project_id, p.id),
        })
    }

    fn key(p: &Package) -> Vec<u8> {
        id_key(p.id)
    }

    fn indexes() -> &'static [Index<Package>] {
        INDEXES
    }

    fn counted(p: &Package) -> Vec<Vec<u8>> {
        vec![
            total_key(p.project_id, p.status, p.package_type),
            name_count_key(p),
            any_name_key(p),
        ]
    }

    fn parent(p: &Package) -> Option<Parent> {
        Some(Parent::Project(p.project_id))
    }

    fn updated(tx: &dyn Txn, old: Option<&Package>, new: Option<&Package>) -> Result<(), TxFail> {
        super::keep_indexes(tx, INDEXES, old, new)?;
        super::keep_counts_of::<Packages>(tx, old, new)?;
        super::bump_parent::<Packages>(tx, old, new)?;
        if let (Some(gone), None) = (old, new) {
            super::usage::forget(tx, super::usage::Counted::Package(gone.id))?;
        }
        Ok(())
    }
}

pub fn get(meta: &dyn MetaStore, id: u64) -> Result<Option<Package>, StoreError> {
    super::get::<Packages>(meta, &id_key(id))
}

/// The records with these ids, in that order, in one batched read (those gone left out).
pub fn get_ids(meta: &dyn MetaStore, ids: &[u64]) -> Result<Vec<Package>, StoreError> {
    super::get_ids::<Packages>(meta, ids)
}

pub fn load(tx: &dyn Txn, id: u64) -> Result<Option<Package>, TxFail> {
    super::load::<Packages>(tx, &id_key(id))
}

pub fn find(
    meta: &dyn MetaStore,
    project_id: u64,
    name: &str,
    version: &str,
    package_type: PackageType,
) -> Result<Option<Package>, StoreError> {
    super::get_by_index::<Packages>(
        meta,
        Table::PackagesByName,
        &identity_key(project_id, name, version, package_type),
    )
}

pub fn load_by_identity(
    tx: &dyn Txn,
    project_id: u64,
    name: &str,
    version: &str,
    package_type: PackageType,
) -> Result<Option<Package>, TxFail> {
    super::load_by_index::<Packages>(
        tx,
        Table::PackagesByName,
        &identity_key(project_id, name, version, package_type),
    )
}

/// How many packages of `package_type` the project has under `name`, any status (inside a
/// transaction, so that a check and the write that relies on it are atomic).
pub fn count_named(
    tx: &dyn Txn,
    project_id: u64,
    package_type: PackageType,
    name: &str,
) -> Result<u64, TxFail> {
    let k = key()
        .raw(&any_name_prefix(project_id, package_type))
        .str(name)
        .build();
    Ok(tx
        .get(Table::Counts, &k)?
        .and_then(|v| super::trailing_id(&v))
        .unwrap_or(0))
}

/// The ids of a project's packages of one type named `name`, any status, oldest first.
pub fn named(
    meta: &dyn MetaStore,
    project_id: u64,
    package_type: PackageType,
    name: &str,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for status in [PackageStatus::Default, PackageStatus::Hidden] {
        let prefix = key()
            .raw(&listing_prefix(project_id, status, package_type))
            .str(name)
            .build();
        for entry in meta.scan(Table::PackagesByNameOrder, &prefix) {
            if let Some(id) = super::trailing_id(&entry?.0) {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Every package id of a project (for deleting the project).
pub fn ids_of(meta: &dyn MetaStore, project_id: u64) -> Result<Vec<u64>, StoreError> {
    super::all_ids(
        meta,
        Table::PackagesByProject,
        &id_key(project_id),
        super::IdIn::Key,
    )
}

/// Total packages of a status, of one type or of all.
pub fn total(
    meta: &dyn MetaStore,
    project_id: u64,
    status: PackageStatus,
    package_type: Option<PackageType>,
) -> Result<usize, StoreError> {
    let mut sum = 0;
    for t in types(package_type) {
        sum += count(meta, &total_key(project_id, status, t))?;
    }
    Ok(sum)
}

fn types(package_type: Option<PackageType>) -> Vec<PackageType> {
    match package_type {
        Some(t) => vec![t],
        None => TYPES.to_vec(),
    }
}

/// The distinct names of a status and type with how many packages each has, by name.
pub fn names(
    meta: &dyn MetaStore,
    project_id: u64,
    status: PackageStatus,
    package_type: PackageType,
) -> Result<Vec<(String, usize)>, StoreError> {
    super::counts_under(meta, &names_prefix(project_id, status, package_type))
        .map(|entry| {
            let (rest, n) = entry?;
            let name = rest.get(..rest.len().saturating_sub(1)).unwrap_or_default();
            Ok((String::from_utf8_lossy(name).into_owned(), n))
        })
        .collect()
}

/// What a listing selects.
pub struct Listing<'a> {
    pub project_id: u64,
    pub status: PackageStatus,
    pub package_type: Option<PackageType>,
    /// Only these names (already matched against the client's filter), in name order.
    pub names: Option<&'a [String]>,
    pub order: Order,
    pub descending: bool,
}

fn order_table(order: Order) -> Table {
    match order {
        Order::Created | Order::Type => Table::PackagesByCreated,
        Order::Name => Table::PackagesByNameOrder,
        Order::Version => Table::PackagesByVersionOrder,
    }
}

/// Whether [`page`] can continue after a cursor for this listing: created, name and version
/// orders without a name filter (the others are served by offset only).
pub fn keyset_supported(listing: &Listing<'_>) -> bool {
    listing.names.is_none() && listing.order != Order::Type
}

const LISTING_PREFIX_LEN: usize = 10;

/// The ordered stream of package index keys a listing walks. `after` is a cursor: a key of one
/// of the merged streams, whose part after the `(project, status, type)` prefix orders it.
fn stream<'a>(
    meta: &'a dyn MetaStore,
    listing: &Listing<'_>,
    after: Option<&[u8]>,
) -> Box<dyn Iterator<Item = Result<IndexEntry, StoreError>> + 'a> {
    let reverse = listing.descending;
    let suffix = after.map(|cursor| cursor.get(LISTING_PREFIX_LEN..).unwrap_or_default());
    let open = |prefix: Vec<u8>, table: Table| -> KvIter<'a> {
        match suffix {
            Some(suffix) => {
                let mut from = prefix.clone();
                from.extend_from_slice(suffix);
                meta.scan_after(table, &prefix, &from, reverse)
            }
            None if reverse => meta.scan_rev(table, &prefix),
            None => meta.scan(table, &prefix),
        }
    };
    let mut types = types(listing.package_type);
    if reverse {
        types.reverse();
    }
    match (listing.names, listing.order) {
        // Type order: one type's packages after the other's, each by creation.
        (None, Order::Type) => Box::new(
            types
                .into_iter()
                .map(|t| {
                    open(
                        listing_prefix(listing.project_id, listing.status, t),
                        Table::PackagesByCreated,
                    )
                })
                .collect::<Vec<_>>()
                .into_iter()
                .flatten(),
        ),
        (None, order) => {
            let streams = types
                .into_iter()
                .map(|t| {
                    (
                        LISTING_PREFIX_LEN,
                        open(
                            listing_prefix(listing.project_id, listing.status, t),
                            order_table(order),
                        ),
                    )
                })
                .collect();
            Box::new(merge_streams(streams, reverse))
        }
        // Version order of some names: the version index, keeping entries of those names.
        (Some(names), Order::Version) => {
            let names: std::collections::HashSet<Vec<u8>> =
                names.iter().map(|n| n.as_bytes().to_vec()).collect();
            let streams = types
                .into_iter()
                .map(|t| {
                    (
                        LISTING_PREFIX_LEN,
                        open(
                            listing_prefix(listing.project_id, listing.status, t),
                            Table::PackagesByVersionOrder,
                        ),
                    )
                })
                .collect();
            Box::new(
                merge_streams(streams, reverse).filter(move |entry| match entry {
                    Ok((_, name)) => names.contains(name),
                    Err(_) => true,
                }),
            )
        }
        // Named: each name's packages by creation, from the name-ordered index.
        (Some(names), order) => {
            let mut names: Vec<String> = names.to_vec();
            if reverse {
                names.reverse();
            }
            let per_name = |t: PackageType, name: &str| -> (usize, KvIter<'a>) {
                let prefix = key()
                    .raw(&listing_prefix(listing.project_id, listing.status, t))
                    .str(name)
                    .build();
                let iter = if reverse {
                    meta.scan_rev(Table::PackagesByNameOrder, &prefix)
                } else {
                    meta.scan(Table::PackagesByNameOrder, &prefix)
                };
                (prefix.len(), iter)
            };
            match order {
                Order::Name => {
                    let per_name_streams: Vec<_> = names
                        .iter()
                        .map(|name| {
                            let per_type = types
                                .iter()
                                .map(|t| (LISTING_PREFIX_LEN, per_name(*t, name).1))
                                .collect();
                            merge_streams(per_type, reverse)
                        })
                        .collect();
                    Box::new(per_name_streams.into_iter().flatten())
                }
                Order::Type => {
                    let streams: Vec<_> = types
                        .iter()
                        .flat_map(|t| names.iter().map(|name| per_name(*t, name)))
                        .collect();
                    let merged_per_type: Vec<_> =
                        streams.into_iter().map(|(_, iter)| iter).collect();
                    Box::new(merged_per_type.into_iter().flatten())
                }
                _ => {
                    let streams = names
                        .iter()
                        .flat_map(|name| types.iter().map(|t| per_name(*t, name)))
                        .collect::<Vec<_>>();
                    Box::new(merge_streams(streams, reverse))
                }
            }
        }
    }
}

/// One page of package ids for a listing, and the cursor after it when more follow.
pub fn page(
    meta: &dyn MetaStore,
    listing: &Listing<'_>,
    seek: &Seek,
    take: usize,
) -> Result<(Vec<u64>, Option<Vec<u8>>), StoreError> {
    let (after, skip) = match seek {
        Seek::After(after) => (Some(after.as_slice()), 0),
        Seek::Offset(n) => (None, *n),
    };
    let page = super::collect_page(stream(meta, listing, after).skip(skip), take)?;
    let ids = page
        .entries
        .iter()
        .filter_map(|(k, _)| super::trailing_id(k))
        .collect();
    Ok((ids, page.next))
}

/// Whether a cursor is a key of one of the project's listing indexes.
pub fn cursor_fits(project_id: u64, cursor: &[u8]) -> bool {
    cursor.len() > LISTING_PREFIX_LEN && cursor.starts_with(&id_key(project_id))
}
