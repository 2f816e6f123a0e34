//! Conformance suites for the two store traits, written once against `dyn MetaStore` and
//! `dyn BlobStore` and run against every back-end in `metadata_backends()` /
//! `blob_backends()` (as garage runs one suite over its `garage_db` engines). Today the
//! embedded ones (sled, the local disk) and PostgreSQL (a fresh database per opened directory on
//! `MODELYARD_TEST_POSTGRES_URL`; see tests/common/postgres.rs for when it is skipped); a new
//! back-end joins by adding itself to the list.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use modelyard::store::blobs::{BlobError, BlobStore, ByteStream};
use modelyard::store::checksum::{Digests, Expected};
use modelyard::store::local_blobs::LocalBlobs;
use modelyard::store::meta::{abort, MetaStore, StoreError, Table, TxError};
use modelyard::store::pg_meta::PgMeta;
use modelyard::store::sled_meta::SledMeta;

mod common;

use common::postgres;

/// A metadata back-end: its name and how to open it on a directory (reopening the same
/// directory must find everything flushed before).
type OpenMeta = fn(&Path) -> Arc<dyn MetaStore>;

fn metadata_backends() -> Vec<(&'static str, OpenMeta)> {
    let mut backends: Vec<(&'static str, OpenMeta)> = vec![("sled", |dir| {
        Arc::new(SledMeta::open(dir, 1 << 20).expect("open sled"))
    })];
    if postgres::server_url("the metadata conformance suite").is_some() {
        backends.push(("postgres", |dir| {
            Arc::new(PgMeta::open(&pg_database_for(dir)).expect("open PostgreSQL"))
        }));
    }
    backends
}

/// The PostgreSQL database standing for a directory: created on its first open, the same one on
/// a reopen.
fn pg_database_for(dir: &Path) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DATABASES: OnceLock<Mutex<HashMap<std::path::PathBuf, String>>> = OnceLock::new();
    let mut databases = DATABASES.get_or_init(Default::default).lock().unwrap();
    databases
        .entry(dir.to_path_buf())
        .or_insert_with(|| {
            postgres::fresh_database("the metadata conformance suite").expect("a test database")
        })
        .clone()
}

/// A blob back-end: its name and how to open it on a directory (reopening the same directory
/// must find the same blobs and uploads).
type OpenBlobs = Box<dyn Fn(&Path) -> Arc<dyn BlobStore>>;

/// The blob back-ends, and the S3 server the S3 one talks to (killed when dropped).
struct BlobBackends {
    _s3: Option<Arc<common::s3::S3Server>>,
    list: Vec<(&'static str, OpenBlobs)>,
}

fn blob_backends(test: &str) -> BlobBackends {
    let mut list: Vec<(&'static str, OpenBlobs)> = vec![(
        "local",
        Box::new(|dir: &Path| {
            Arc::new(LocalBlobs::open(dir).expect("open the local blob store"))
                as Arc<dyn BlobStore>
        }),
    )];
    // S3 (s3s-fs): each directory is its own prefix of the bucket.
    let s3 = common::s3::S3Server::start(test).map(Arc::new);
    if let Some(server) = &s3 {
        let server = server.clone();
        list.push((
            "s3",
            Box::new(move |dir: &Path| {
                let prefix = dir
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("conformance")
                    .trim_start_matches('.')
                    .to_string();
                Arc::new(server.blob_store(&prefix)) as Arc<dyn BlobStore>
            }),
        ));
    }
    BlobBackends { _s3: s3, list }
}

fn each_meta(check: impl Fn(&str, &Path, &dyn MetaStore)) {
    for (name, open) in metadata_backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        check(name, dir.path(), store.as_ref());
    }
}

#[derive(Debug)]
struct Refused;

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        panic!("the store failed: {error}")
    }
}

fn put(store: &dyn MetaStore, table: Table, key: &[u8], value: &[u8]) {
    store
        .transaction(|tx| {
            tx.put(table, key, value)?;
            Ok::<_, TxError<Refused>>(())
        })
        .unwrap();
}

fn keys(rows: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>>) -> Vec<Vec<u8>> {
    rows.map(|row| row.unwrap().0).collect()
}

#[test]
fn a_transaction_commits_every_table_or_none() {
    each_meta(|name, _, store| {
        store
            .transaction(|tx| {
                tx.put(Table::Users, b"u1", b"alice")?;
                tx.put(Table::UsersByName, b"alice", b"u1")?;
                Ok::<_, TxError<Refused>>(())
            })
            .unwrap();
        assert_eq!(
            store.get(Table::Users, b"u1").unwrap().as_deref(),
            Some(&b"alice"[..]),
            "{name}"
        );
        assert_eq!(
            store.get(Table::UsersByName, b"alice").unwrap().as_deref(),
            Some(&b"u1"[..]),
            "{name}"
        );

        let refused = store.transaction(|tx| {
            tx.put(Table::Users, b"u2", b"bob")?;
            tx.delete(Table::Users, b"u1")?;
            tx.put(Table::UsersByName, b"bob", b"u2")?;
            abort::<(), _>(Refused)
        });
        assert!(matches!(refused, Err(Refused)), "{name}");
        assert_eq!(
            store.get(Table::Users, b"u2").unwrap(),
            None,
            "{name}: an aborted put is visible"
        );
        assert_eq!(
            store.get(Table::UsersByName, b"bob").unwrap(),
            None,
            "{name}"
        );
        assert!(
            store.get(Table::Users, b"u1").unwrap().is_some(),
            "{name}: an aborted delete took effect"
        );

        let seen = store
            .transaction(|tx| {
                tx.put(Table::Users, b"u3", b"carol")?;
                let inside = tx.get(Table::Users, b"u3")?;
                tx.delete(Table::Users, b"u3")?;
                let after_delete = tx.get(Table::Users, b"u3")?;
                Ok::<_, TxError<Refused>>((inside, after_delete))
            })
            .unwrap();
        assert_eq!(
            seen,
            (Some(b"carol".to_vec()), None),
            "{name}: a transaction reads its own writes"
        );
        assert_eq!(store.get(Table::Users, b"u3").unwrap(), None, "{name}");
    });
}

#[test]
fn scans_keep_key_order_prefixes_and_cursors() {
    each_meta(|name, _, store| {
        for key in [&b"a/3"[..], b"a/1", b"b/1", b"a/2", b"a/10", b"a", b"a/2/x"] {
            put(store, Table::Models, key, b"v");
        }
        put(store, Table::Projects, b"a/0", b"other table");
        let forward = keys(store.scan(Table::Models, b"a/"));
        let expected: Vec<Vec<u8>> = [&b"a/1"[..], b"a/10", b"a/2", b"a/2/x", b"a/3"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        assert_eq!(forward, expected, "{name}: scan");
        let mut reverse = expected.clone();
        reverse.reverse();
        assert_eq!(
            keys(store.scan_rev(Table::Models, b"a/")),
            reverse,
            "{name}: scan_rev"
        );
        assert_eq!(
            keys(store.scan_after(Table::Models, b"a/", b"a/2", false)),
            expected[3..].to_vec(),
            "{name}: scan_after forward is strictly after"
        );
        assert_eq!(
            keys(store.scan_after(Table::Models, b"a/", b"a/2", true)),
            vec![b"a/10".to_vec(), b"a/1".to_vec()],
            "{name}: scan_after reverse is strictly before"
        );
        assert_eq!(
            keys(store.scan_from(Table::Models, b"a/", b"a/2")),
            expected[2..].to_vec(),
            "{name}: scan_from includes its start"
        );
        assert_eq!(
            keys(store.scan(Table::Models, b"")).len(),
            7,
            "{name}: the empty prefix is the table"
        );
        assert!(keys(store.scan(Table::Models, b"c")).is_empty(), "{name}");
        store.clear(Table::Models).unwrap();
        assert!(
            keys(store.scan(Table::Models, b"")).is_empty(),
            "{name}: clear"
        );
        assert_eq!(
            keys(store.scan(Table::Projects, b"")).len(),
            1,
            "{name}: clear touched another table"
        );
    });
}

/// `get_many`: one answer per key asked, in the order asked, `None` for a key without an entry,
/// a key asked twice answered twice, nothing for nothing; only the table asked is read; and on
/// a database server the whole batch is one round trip, whatever its size.
#[test]
fn get_many_answers_every_key_in_the_order_asked() {
    each_meta(|name, _, store| {
        for i in 0..300u32 {
            let key = format!("k/{i:04}");
            put(
                store,
                Table::Versions,
                key.as_bytes(),
                format!("v{i}").as_bytes(),
            );
        }
        put(store, Table::Models, b"k/9999", b"other table");
        // Empty bytes and binary keys are keys like any other.
        put(store, Table::Versions, b"", b"empty key");
        put(store, Table::Versions, &[0xff, 0x00, 0x01], b"binary");
        assert!(
            store.get_many(Table::Versions, &[]).unwrap().is_empty(),
            "{name}: no keys, no answers"
        );
        let asked: Vec<Vec<u8>> = [
            &b"k/0042"[..],
            b"k/0007",
            b"missing",
            b"k/0042",
            b"k/9999",
            b"",
            &[0xff, 0x00, 0x01],
            b"k/0299",
        ]
        .iter()
        .map(|k| k.to_vec())
        .collect();
        let answers = store.get_many(Table::Versions, &asked).unwrap();
        let expected: Vec<Option<Vec<u8>>> = [
            Some(&b"v42"[..]),
            Some(b"v7"),
            None,
            Some(b"v42"),
            None,
            Some(b"empty key"),
            Some(b"binary"),
            Some(b"v299"),
        ]
        .iter()
        .map(|v| v.map(|v| v.to_vec()))
        .collect();
        assert_eq!(answers, expected, "{name}: get_many");
        for (key, answer) in asked.iter().zip(&answers) {
            assert_eq!(
                &store.get(Table::Versions, key).unwrap(),
                answer,
                "{name}: get_many agrees with get on {key:?}"
            );
        }
        // A page's worth and a listing's worth of keys, in reverse order.
        let many: Vec<Vec<u8>> = (0..300u32)
            .rev()
            .map(|i| format!("k/{i:04}").into_bytes())
            .collect();
        let before = store.round_trips();
        let values = store.get_many(Table::Versions, &many).unwrap();
        let values: Vec<Vec<u8>> = values.into_iter().map(|v| v.expect("present")).collect();
        let wanted: Vec<Vec<u8>> = (0..300u32)
            .rev()
            .map(|i| format!("v{i}").into_bytes())
            .collect();
        assert_eq!(values, wanted, "{name}: 300 keys in the order asked");
        if let (Some(before), Some(after)) = (before, store.round_trips()) {
            assert_eq!(after - before, 1, "{name}: one statement for 300 keys");
        }
        // Inside the same store, a deleted key answers None.
        store
            .transaction(|tx| {
                tx.delete(Table::Versions, b"k/0007")?;
                Ok::<_, TxError<Refused>>(())
            })
            .unwrap();
        assert_eq!(
            store
                .get_many(Table::Versions, &[b"k/0007".to_vec(), b"k/0008".to_vec()])
                .unwrap(),
            vec![None, Some(b"v8".to_vec())],
            "{name}: a deleted key"
        );
    });
}

/// `scan_many`: each prefix's first `limit` entries in key order, answered in the order asked,
/// a prefix asked twice answered twice, an empty answer for a prefix with nothing under it,
/// nothing past a prefix's end (its next sibling, a longer key) and nothing of another table; a
/// prefix without an upper bound (all 0xFF) still answers; on a database server the whole
/// batch is one round trip.
#[test]
fn scan_many_answers_each_prefix_in_key_order_up_to_its_limit() {
    each_meta(|name, _, store| {
        for run in 0..30u32 {
            for param in 0..(run % 7) {
                put(
                    store,
                    Table::Params,
                    format!("r{run:03}/p{param}").as_bytes(),
                    format!("{run}.{param}").as_bytes(),
                );
            }
        }
        put(store, Table::Params, b"r004", b"the prefix itself");
        put(store, Table::Params, b"r0040/x", b"a longer sibling");
        put(store, Table::Tags, b"r005/p0", b"another table");
        put(store, Table::Params, &[0xff, 0xff, 1], b"top");
        let prefixes: Vec<Vec<u8>> = [
            &b"r006/"[..],
            b"r005/",
            b"r007/",
            b"r006/",
            b"r004/",
            b"nothing/",
            &[0xff, 0xff],
        ]
        .iter()
        .map(|p| p.to_vec())
        .collect();
        let before = store.round_trips();
        let answers = store.scan_many(Table::Params, &prefixes, 4).unwrap();
        let after = store.round_trips();
        let texts: Vec<Vec<(String, String)>> = answers
            .iter()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect()
            })
            .collect();
        let of = |run: u32, n: u32| -> Vec<(String, String)> {
            (0..n)
                .map(|p| (format!("r{run:03}/p{p}"), format!("{run}.{p}")))
                .collect()
        };
        let top = vec![(
            String::from_utf8_lossy(&[0xff, 0xff, 1]).into_owned(),
            "top".to_string(),
        )];
        assert_eq!(
            texts,
            vec![
                of(6, 4),
                of(5, 4),
                of(7, 0),
                of(6, 4),
                of(4, 4),
                vec![],
                top
            ],
            "{name}: each prefix's first 4 entries"
        );
        if let (Some(before), Some(after)) = (before, after) {
            assert!(
                after - before <= 2,
                "{name}: {} statements for 7 prefixes (one, and one more for the prefix \
                 without an upper bound)",
                after - before
            );
            let bounded = &prefixes[..6];
            let before = store.round_trips().unwrap();
            store.scan_many(Table::Params, bounded, 100).unwrap();
            assert_eq!(
                store.round_trips().unwrap() - before,
                1,
                "{name}: one statement for 6 prefixes"
            );
        }
        // A large limit reads each prefix whole; no prefixes, no answers.
        let whole = store
            .scan_many(
                Table::Params,
                &[b"r006/".to_vec(), b"r013/".to_vec()],
                usize::MAX,
            )
            .unwrap();
        assert_eq!(
            whole.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![6, 6],
            "{name}: whole prefixes"
        );
        assert!(store.scan_many(Table::Params, &[], 10).unwrap().is_empty());
    });
}

/// `scan_many_rev`: each prefix's last `limit` entries, highest key first, in the order asked;
/// nothing past a prefix's end nor of another table; one round trip on a database server.
#[test]
fn scan_many_rev_answers_each_prefix_from_its_end() {
    each_meta(|name, _, store| {
        for run in 0..12u32 {
            for param in 0..(run % 5) {
                put(
                    store,
                    Table::Params,
                    format!("r{run:03}/p{param}").as_bytes(),
                    format!("{run}.{param}").as_bytes(),
                );
            }
        }
        put(store, Table::Params, b"r0040/x", b"a longer sibling");
        put(store, Table::Params, b"r004/q", b"the last of r004/");
        put(store, Table::Tags, b"r003/z", b"another table");
        put(store, Table::Params, &[0xff, 0xff, 1], b"top");
        let prefixes: Vec<Vec<u8>> = [&b"r003/"[..], b"r004/", b"r005/", b"r009/", &[0xff, 0xff]]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let before = store.round_trips();
        let answers = store.scan_many_rev(Table::Params, &prefixes, 2).unwrap();
        let after = store.round_trips();
        let keys: Vec<Vec<String>> = answers
            .iter()
            .map(|entries| {
                entries
                    .iter()
                    .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                    .collect()
            })
            .collect();
        let top = String::from_utf8_lossy(&[0xff, 0xff, 1]).into_owned();
        assert_eq!(
            keys,
            vec![
                vec!["r003/p2".to_string(), "r003/p1".to_string()],
                vec!["r004/q".to_string(), "r004/p3".to_string()],
                vec![],
                vec!["r009/p3".to_string(), "r009/p2".to_string()],
                vec![top],
            ],
            "{name}: each prefix's last 2 entries, highest first"
        );
        if let (Some(before), Some(after)) = (before, after) {
            assert!(
                after - before <= 2,
                "{name}: {} statements for 5 prefixes (one, and one more for the prefix \
                 without an upper bound)",
                after - before
            );
        }
        let whole = store
            .scan_many_rev(Table::Params, &[b"r008/".to_vec()], usize::MAX)
            .unwrap();
        assert_eq!(whole[0].len(), 3, "{name}: a whole prefix");
        assert_eq!(whole[0][0].0, b"r008/p2".to_vec(), "{name}: highest first");
    });
}

#[test]
fn concurrent_read_modify_write_transactions_lose_no_update() {
    each_meta(|name, _, store| {
        const THREADS: u64 = 8;
        const EACH: u64 = 40;
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for _ in 0..EACH {
                        store
                            .transaction(|tx| {
                                let now = tx
                                    .get(Table::Counters, b"n")?
                                    .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                                    .unwrap_or(0);
                                tx.put(Table::Counters, b"n", &(now + 1).to_be_bytes())?;
                                Ok::<_, TxError<Refused>>(())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let total = store.get(Table::Counters, b"n").unwrap().unwrap();
        assert_eq!(
            u64::from_be_bytes(total.try_into().unwrap()),
            THREADS * EACH,
            "{name}"
        );
    });
}

#[test]
fn ids_are_unique_across_threads() {
    each_meta(|name, _, store| {
        let ids: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..500)
                            .map(|_| store.next_id().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{name}: an id was handed out twice"
        );
        assert!(!unique.contains(&0), "{name}: 0 is not an id");
    });
}

#[test]
fn what_was_flushed_is_there_after_reopening() {
    for (name, open) in metadata_backends() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = open(dir.path());
            put(store.as_ref(), Table::Projects, b"p1", b"one");
            let id = store.next_id().unwrap();
            store.flush().unwrap();
            id
        };
        let store = open(dir.path());
        assert_eq!(
            store.get(Table::Projects, b"p1").unwrap().as_deref(),
            Some(&b"one"[..]),
            "{name}"
        );
        assert!(
            store.next_id().unwrap() > before,
            "{name}: ids went back after a reopen"
        );
    }
}

#[test]
fn concurrent_claims_of_one_key_have_one_winner() {
    // The unique indexes' pattern: "is this name free? then it is mine".
    each_meta(|name, _, store| {
        #[derive(Debug)]
        struct Taken;
        impl From<StoreError> for Taken {
            fn from(error: StoreError) -> Self {
                panic!("the store failed: {error}")
            }
        }
        let outcomes: Vec<Result<(), Taken>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0u8..8)
                .map(|claimant| {
                    scope.spawn(move || {
                        store.transaction(|tx| {
                            if tx.get(Table::ModelsByName, b"p/model")?.is_some() {
                                return abort(Taken);
                            }
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            tx.put(Table::ModelsByName, b"p/model", &[claimant])?;
                            tx.put(Table::Models, &[claimant], b"record")?;
                            Ok::<_, TxError<Taken>>(())
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(winners, 1, "{name}: {outcomes:?}");
        let owner = store.get(Table::ModelsByName, b"p/model").unwrap().unwrap();
        assert_eq!(
            keys(store.scan(Table::Models, b"")),
            vec![owner],
            "{name}: a loser's record was written"
        );
    });
}

#[test]
fn long_scans_page_through_every_entry_in_order() {
    each_meta(|name, _, store| {
        let all: Vec<Vec<u8>> = (0u32..1500)
            .map(|i| {
                let mut key = b"v/".to_vec();
                key.extend_from_slice(&i.to_be_bytes());
                key
            })
            .collect();
        for chunk in all.chunks(250) {
            store
                .transaction(|tx| {
                    for key in chunk {
                        tx.put(Table::Versions, key, b"{}")?;
                    }
                    Ok::<_, TxError<Refused>>(())
                })
                .unwrap();
        }
        put(store, Table::Versions, b"w", b"{}");
        assert_eq!(
            keys(store.scan(Table::Versions, b"v/")),
            all,
            "{name}: scan"
        );
        let mut reverse = all.clone();
        reverse.reverse();
        assert_eq!(
            keys(store.scan_rev(Table::Versions, b"v/")),
            reverse,
            "{name}: scan_rev"
        );
        assert_eq!(
            keys(store.scan_after(Table::Versions, b"v/", &all[99], false)),
            all[100..].to_vec(),
            "{name}: scan_after across pages"
        );
        assert_eq!(
            keys(store.scan_after(Table::Versions, b"v/", &all[1400], true)),
            reverse[100..].to_vec(),
            "{name}: scan_after reverse across pages"
        );
        assert_eq!(
            keys(store.scan_from(Table::Versions, b"v/", &all[700])),
            all[700..].to_vec(),
            "{name}: scan_from across pages"
        );
        assert_eq!(
            keys(store.scan(Table::Versions, b"v/").take(3)),
            all[..3].to_vec(),
            "{name}: a short read"
        );
    });
}

#[test]
fn postgres_two_stores_on_one_database_serialize_their_writers() {
    // Two replicas: two pools on one database, incrementing one counter and claiming names.
    let Some(url) = postgres::fresh_database("postgres_two_stores_on_one_database") else {
        return;
    };
    let first = PgMeta::open(&url).expect("open PostgreSQL");
    let second = PgMeta::open(&url).expect("open PostgreSQL a second time");
    let stores: [&dyn MetaStore; 2] = [&first, &second];
    const EACH: u64 = 30;
    std::thread::scope(|scope| {
        for store in stores {
            for _ in 0..3 {
                scope.spawn(move || {
                    for _ in 0..EACH {
                        store
                            .transaction(|tx| {
                                let now = tx
                                    .get(Table::Counters, b"n")?
                                    .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                                    .unwrap_or(0);
                                tx.put(Table::Counters, b"n", &(now + 1).to_be_bytes())?;
                                Ok::<_, TxError<Refused>>(())
                            })
                            .unwrap();
                    }
                });
            }
        }
    });
    for store in stores {
        let total = store.get(Table::Counters, b"n").unwrap().unwrap();
        assert_eq!(u64::from_be_bytes(total.try_into().unwrap()), 6 * EACH);
    }
    put(&first, Table::Projects, b"p", b"seen by the other at once");
    assert!(second.get(Table::Projects, b"p").unwrap().is_some());
    let a = first.next_id().unwrap();
    let b = second.next_id().unwrap();
    assert_ne!(a, b, "two stores handed out one id");
}

fn body(chunks: Vec<Result<Bytes, std::io::Error>>) -> ByteStream {
    Box::pin(stream::iter(chunks))
}

fn pieces(data: &[u8]) -> ByteStream {
    body(
        data.chunks(100_000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

async fn read(store: &dyn BlobStore, sha256: &str) -> Vec<u8> {
    read_range(store, sha256, None).await
}

async fn read_range(
    store: &dyn BlobStore,
    sha256: &str,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut stream = store.open(sha256, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn each_blobs(test: &str, check: impl AsyncFn(&str, &dyn BlobStore)) {
    let backends = blob_backends(test);
    for (name, open) in &backends.list {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        check(name, store.as_ref()).await;
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn blobs_put_read_list_rehash_and_remove() {
    each_blobs(
        "blobs_put_read_list_rehash_and_remove",
        async |name, store| {
            let content = data(1_234_567, 7);
            let stored = store.put(pieces(&content), u64::MAX).await.unwrap();
            assert_eq!(stored.size, content.len() as u64, "{name}");
            assert_eq!(stored.digests, Digests::of(&content), "{name}");
            let sha = stored.digests.sha256.clone();
            assert!(store.exists(&sha).await.unwrap(), "{name}");
            assert_eq!(read(store, &sha).await, content, "{name}");
            assert_eq!(store.rehash(&sha).await.unwrap(), sha, "{name}");
            let again = store.put(pieces(&content), u64::MAX).await.unwrap();
            assert_eq!(again, stored, "{name}: the same content is one blob");
            let other = store.put(pieces(b"small"), u64::MAX).await.unwrap();
            let listed: BTreeSet<String> = store.list().await.unwrap().into_iter().collect();
            assert_eq!(
                listed,
                BTreeSet::from([sha.clone(), other.digests.sha256.clone()]),
                "{name}"
            );
            assert_eq!(
                store.remove(&sha).await.unwrap(),
                content.len() as u64,
                "{name}: bytes freed"
            );
            assert!(!store.exists(&sha).await.unwrap(), "{name}");
            assert_eq!(
                store.list().await.unwrap(),
                vec![other.digests.sha256],
                "{name}"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_refused_or_broken_body_leaves_nothing() {
    each_blobs(
        "a_refused_or_broken_body_leaves_nothing",
        async |name, store| {
            let content = data(300_000, 3);
            let too_large = store.put(pieces(&content), 299_999).await;
            assert!(
                matches!(too_large, Err(BlobError::TooLarge { .. })),
                "{name}: {too_large:?}"
            );
            let declared = Expected {
                sha256: Some("0".repeat(64)),
                ..Expected::default()
            };
            let mismatch = store
                .put_checked(pieces(&content), u64::MAX, &declared)
                .await;
            assert!(
                matches!(mismatch, Err(BlobError::DigestMismatch(_))),
                "{name}: {mismatch:?}"
            );
            let broken = store
                .put(
                    body(vec![
                        Ok(Bytes::from(content.clone())),
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "gone",
                        )),
                    ]),
                    u64::MAX,
                )
                .await;
            assert!(broken.is_err(), "{name}: a broken body was stored");
            assert!(
                store.list().await.unwrap().is_empty(),
                "{name}: a refused body left a blob"
            );
            assert!(
                !store.exists(&Digests::of(&content).sha256).await.unwrap(),
                "{name}"
            );
            store.clean_staging().await.unwrap();
            let right = Expected {
                sha256: Some(Digests::of(&content).sha256),
                ..Expected::default()
            };
            let kept = store
                .put_checked(pieces(&content), u64::MAX, &right)
                .await
                .unwrap();
            assert_eq!(read(store, &kept.digests.sha256).await, content, "{name}");
        },
    )
    .await;
}

#[tokio::test]
async fn uploads_in_parts_survive_a_reopen_and_finish_as_one_blob() {
    let backends = blob_backends("uploads_in_parts_survive_a_reopen_and_finish_as_one_blob");
    for (name, open) in &backends.list {
        let dir = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let first = data(200_000, 1);
        let second = data(150_000, 2);
        {
            let store = open(dir.path());
            store.start_upload(id).await.unwrap();
            assert_eq!(
                store
                    .append_upload(id, pieces(&first), u64::MAX)
                    .await
                    .unwrap(),
                200_000,
                "{name}"
            );
            assert_eq!(
                store.list_uploads().await.unwrap(),
                vec![id.to_string()],
                "{name}"
            );
        }
        let store = open(dir.path());
        assert_eq!(
            store.upload_size(id).await.unwrap(),
            Some(200_000),
            "{name}: the staged part after a reopen"
        );
        store
            .append_upload(id, pieces(&second), u64::MAX)
            .await
            .unwrap();
        let done = store.finish_upload(id).await.unwrap();
        let whole = [first, second].concat();
        assert_eq!(done.digests, Digests::of(&whole), "{name}");
        assert_eq!(
            read(store.as_ref(), &done.digests.sha256).await,
            whole,
            "{name}"
        );
        assert_eq!(
            store.upload_size(id).await.unwrap(),
            None,
            "{name}: a finished upload lingers"
        );

        let gone = "fedcba9876543210fedcba9876543210";
        store.start_upload(gone).await.unwrap();
        store
            .append_upload(gone, pieces(b"abc"), u64::MAX)
            .await
            .unwrap();
        store.discard_upload(gone).await.unwrap();
        store.discard_upload(gone).await.unwrap();
        assert_eq!(store.upload_size(gone).await.unwrap(), None, "{name}");
        assert!(store.list_uploads().await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn blobs_open_ranges_and_stat_sizes() {
    each_blobs("blobs_open_ranges_and_stat_sizes", async |name, store| {
        // Larger than a multipart part on S3 (5 MiB) and than a read chunk on disk.
        let content = data(6 * 1024 * 1024 + 123, 9);
        let stored = store.put(pieces(&content), u64::MAX).await.unwrap();
        let sha = stored.digests.sha256;
        let info = store.stat(&sha).await.unwrap();
        assert_eq!(info.size, content.len() as u64, "{name}");
        assert!(info.modified.is_some(), "{name}");
        for range in [0..1, 10..20, 524_287..524_289, 5_242_870..5_242_900] {
            let got = read_range(store, &sha, Some(range.clone())).await;
            assert_eq!(
                got,
                content[range.start as usize..range.end as usize],
                "{name}: {range:?}"
            );
        }
        let end = content.len() as u64;
        let tail = read_range(store, &sha, Some(end - 7..end)).await;
        assert_eq!(tail, content[content.len() - 7..], "{name}: the last bytes");
        assert!(
            read_range(store, &sha, Some(3..3)).await.is_empty(),
            "{name}: an empty range"
        );
        let missing = "a".repeat(64);
        assert!(
            matches!(store.stat(&missing).await, Err(BlobError::Missing(_))),
            "{name}"
        );
        assert!(
            matches!(store.open(&missing, None).await, Err(BlobError::Missing(_))),
            "{name}"
        );
        assert!(!store.exists(&missing).await.unwrap(), "{name}");
        assert!(
            matches!(store.remove(&missing).await, Err(BlobError::Missing(_))),
            "{name}"
        );
    })
    .await;
}

#[tokio::test]
async fn uploads_truncate_read_back_and_install_at_a_known_address() {
    let backends = blob_backends("uploads_truncate_read_back_and_install_at_a_known_address");
    for (name, open) in &backends.list {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = "00112233445566778899aabbccddeeff";
        store.start_upload(id).await.unwrap();
        assert_eq!(store.upload_size(id).await.unwrap(), Some(0), "{name}");
        let first = data(300_000, 4);
        let second = data(200_000, 5);
        store
            .append_upload(id, pieces(&first), u64::MAX)
            .await
            .unwrap();
        store
            .append_upload(id, pieces(&second), u64::MAX)
            .await
            .unwrap();
        // Cut back into the first part: the second is gone, the first keeps its head.
        store.truncate_upload(id, 250_000).await.unwrap();
        assert_eq!(
            store.upload_size(id).await.unwrap(),
            Some(250_000),
            "{name}"
        );
        let mut held = Vec::new();
        let mut stream = store.read_upload(id).await.unwrap();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            held.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(held, first[..250_000], "{name}");
        // A body that breaks off keeps what arrived.
        let broken = store
            .append_upload(
                id,
                body(vec![
                    Ok(Bytes::from(second.clone())),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "gone",
                    )),
                ]),
                u64::MAX,
            )
            .await;
        assert!(
            matches!(broken, Err(BlobError::BodyInterrupted(_))),
            "{name}: {broken:?}"
        );
        assert_eq!(
            store.upload_size(id).await.unwrap(),
            Some(450_000),
            "{name}: the bytes before the break are kept"
        );
        let whole = [&first[..250_000], &second[..]].concat();
        let sha = Digests::of(&whole).sha256;
        store.install_upload(id, &sha).await.unwrap();
        assert_eq!(read(store.as_ref(), &sha).await, whole, "{name}");
        assert_eq!(store.upload_size(id).await.unwrap(), None, "{name}");
        assert!(store.list_uploads().await.unwrap().is_empty(), "{name}");
        assert_eq!(store.list().await.unwrap(), vec![sha], "{name}");
        assert!(
            matches!(
                store.append_upload(id, pieces(b"late"), u64::MAX).await,
                Err(BlobError::Missing(_))
            ),
            "{name}: appending to a finished upload"
        );
    }
}

/// On S3 a refused or broken body leaves no object at all in the bucket (its multipart upload
/// is aborted), and a stored one leaves exactly its blob.
#[tokio::test]
async fn s3_keeps_no_object_of_a_refused_upload() {
    let Some(server) = common::s3::S3Server::start("s3_keeps_no_object_of_a_refused_upload") else {
        return;
    };
    let store = server.blob_store("refused");
    // 12 MiB: a multipart upload of several parts.
    let content = data(12 * 1024 * 1024, 1);
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = content
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "gone",
    )));
    assert!(store.put(body(chunks), u64::MAX).await.is_err());
    let declared = Expected {
        sha256: Some("0".repeat(64)),
        ..Expected::default()
    };
    assert!(matches!(
        store
            .put_checked(pieces(&content), u64::MAX, &declared)
            .await,
        Err(BlobError::DigestMismatch(_))
    ));
    assert!(matches!(
        store.put(pieces(&content), 10 << 20).await,
        Err(BlobError::TooLarge { .. })
    ));
    assert_eq!(server.keys("refused").await, Vec::<String>::new());
    let kept = store.put(pieces(&content), u64::MAX).await.unwrap();
    assert_eq!(
        server.keys("refused").await,
        vec![format!("refused/blobs/{}", kept.digests.sha256)]
    );
    // No multipart upload was left open either.
    assert_eq!(server.open_multipart_uploads(), Vec::<String>::new());
}
