//! The model registry's domain, called as plain Rust on a temporary data dir (no server).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use modelyard::domain::access::{Action, Caller};
use modelyard::domain::candidates::{LogBatch, NewCandidate};
use modelyard::domain::maintenance::GcOptions;
use modelyard::domain::ml_records::{KeyValue, MetricPoint, TagOwner};
use modelyard::domain::models::{ModelFileOwner, NewModel, NewVersion};
use modelyard::domain::packages::IncomingFile;
use modelyard::domain::packages::PackageFilter;
use modelyard::domain::paging::PageRequest;
use modelyard::domain::projects::{NewProject, ProjectAccess};
use modelyard::domain::records::{Scope, Visibility};
use modelyard::domain::{Error, Limits, Registry};
use modelyard::server::open_registry;

struct Fixture {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    root: Caller,
    access: ProjectAccess,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(open_registry(dir.path(), Limits::default(), 8).unwrap());
    registry
        .bootstrap_root(Some("root-token-for-domain-tests"))
        .await
        .unwrap();
    let root = Caller::from_user(registry.user_by_name("root").unwrap(), &[Scope::Api]);
    let project = registry
        .create_project(
            &root,
            NewProject {
                name: Some("p".into()),
                visibility: Some(Visibility::Private),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let access = registry
        .project_for_action(&root, &project.id.to_string(), Action::WriteRegistry)
        .unwrap();
    Fixture {
        _dir: dir,
        registry,
        root,
        access,
    }
}

fn body(data: &'static [u8]) -> IncomingFile {
    IncomingFile {
        body: modelyard::domain::packages::Content::Stream(Box::pin(futures_util::stream::iter(
            vec![Ok(Bytes::from_static(data))],
        ))),
        declared_len: Some(data.len() as u64),
        status: None,
        expected: Default::default(),
        deploy: false,
    }
}

async fn model(f: &Fixture, name: &str) -> u64 {
    f.registry
        .create_model(
            &f.root,
            &f.access,
            NewModel {
                name: name.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id
}

async fn version(f: &Fixture, model_id: u64, v: Option<&str>) -> Result<String, Error> {
    f.registry
        .create_version(
            &f.root,
            &f.access,
            model_id,
            NewVersion {
                version: v.map(str::to_string),
                ..Default::default()
            },
        )
        .await
        .map(|v| v.version)
}

#[tokio::test]
async fn versions_are_semver_unique_ordered_and_bumped() {
    let f = fixture().await;
    let m = model(&f, "fraud").await;
    assert_eq!(version(&f, m, None).await.unwrap(), "1.0.0");
    assert_eq!(version(&f, m, None).await.unwrap(), "1.0.1");
    assert_eq!(version(&f, m, Some("1.9.0")).await.unwrap(), "1.9.0");
    assert_eq!(version(&f, m, Some("1.10.0")).await.unwrap(), "1.10.0");
    assert_eq!(version(&f, m, None).await.unwrap(), "1.10.1");
    assert_eq!(
        version(&f, m, Some("2.0.0-rc.1")).await.unwrap(),
        "2.0.0-rc.1"
    );
    assert_eq!(
        version(&f, m, None).await.unwrap(),
        "2.0.0",
        "a prerelease is followed by its release"
    );
    assert!(matches!(
        version(&f, m, Some("1.9.0")).await,
        Err(Error::AlreadyExists(_))
    ));
    for bad in ["1", "1.2", "v1.2.3", "1.2.3.beta", "01.2.3"] {
        assert!(
            matches!(version(&f, m, Some(bad)).await, Err(Error::BadRequest(_))),
            "{bad}"
        );
    }
    let model = f.registry.model(m).unwrap();
    let all_versions = || {
        f.registry
            .versions_page(&model, false, PageRequest::new(None, Some(100)))
            .unwrap()
            .items
    };
    let order: Vec<String> = all_versions().into_iter().map(|v| v.version).collect();
    assert_eq!(
        order,
        [
            "2.0.0",
            "2.0.0-rc.1",
            "1.10.1",
            "1.10.0",
            "1.9.0",
            "1.0.1",
            "1.0.0"
        ]
    );
    let seqs: Vec<u64> = all_versions().into_iter().map(|v| v.seq).collect();
    assert_eq!(seqs, [7, 6, 5, 4, 3, 2, 1]);
}

#[tokio::test]
async fn candidates_log_params_metrics_tags_and_promote() {
    let f = fixture().await;
    let m = model(&f, "churn").await;
    let experiment = f
        .registry
        .experiment(f.registry.model(m).unwrap().experiment_id)
        .unwrap();
    assert_eq!(experiment.name, "[model]churn");
    let run = f
        .registry
        .create_candidate(
            &f.root,
            &f.access,
            experiment.id,
            NewCandidate {
                name: Some("try-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(run.run_id.len(), 32);
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: v.into(),
    };
    let metrics = (0..5)
        .map(|step| MetricPoint {
            key: "loss".into(),
            value: 1.0 / (step + 1) as f64,
            timestamp: 1000 + step,
            step,
        })
        .collect();
    f.registry
        .log_batch(
            &f.root,
            &f.access,
            run.id,
            LogBatch {
                metrics,
                params: vec![kv("lr", "0.1")],
                tags: vec![
                    kv("gitlab.CI_JOB_ID", "77"),
                    kv("gitlab.CI_PIPELINE_ID", "9"),
                ],
                model_metrics: Vec::new(),
            },
        )
        .await
        .unwrap();
    let changed = f
        .registry
        .log_batch(
            &f.root,
            &f.access,
            run.id,
            LogBatch {
                params: vec![kv("lr", "0.2")],
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(changed, Err(Error::BadRequest(m)) if m.contains("Changing param values is not allowed"))
    );
    assert_eq!(
        f.registry
            .metric_history(run.id, Some("loss"))
            .unwrap()
            .len(),
        5
    );
    assert_eq!(f.registry.latest_metrics(run.id).unwrap()[0].step, 4);
    assert_eq!(
        f.registry
            .candidate(run.id)
            .unwrap()
            .ci
            .unwrap()
            .job_id
            .as_deref(),
        Some("77")
    );

    f.registry
        .upload_model_file(
            &f.root,
            &f.access,
            ModelFileOwner::Candidate(run.iid),
            "model/weights.bin",
            body(b"w"),
        )
        .await
        .unwrap();
    let promoted = f
        .registry
        .promote_candidate(&f.root, &f.access, run.id, Some("3.1.4".into()), None)
        .await
        .unwrap();
    assert_eq!(promoted.candidate_id, run.id);
    let files = f.registry.version_files(&promoted).unwrap();
    assert_eq!(
        files.len(),
        1,
        "the candidate's files moved to the version's package"
    );
    assert_eq!(files[0].file_name, "model/weights.bin");
    let again = f
        .registry
        .promote_candidate(&f.root, &f.access, run.id, None, None)
        .await;
    assert!(matches!(again, Err(Error::BadRequest(_))));
    let deleted = f
        .registry
        .delete_candidate(&f.root, &f.access, run.id)
        .await;
    assert!(matches!(deleted, Err(Error::BadRequest(m)) if m.contains("model version")));
    let experiment_delete = f
        .registry
        .delete_experiment(&f.root, &f.access, experiment.id)
        .await;
    assert!(
        matches!(experiment_delete, Err(Error::BadRequest(m)) if m.contains("associated to a model"))
    );
}

#[tokio::test]
async fn deleting_a_model_takes_everything_it_owns_and_gc_frees_only_its_blobs() {
    let f = fixture().await;
    let doomed = model(&f, "doomed").await;
    let kept = model(&f, "kept").await;
    let (dv, _) = f
        .registry
        .upload_version_file(
            &f.root,
            &f.access,
            &f.registry.model(doomed).unwrap(),
            "1.0.0",
            "only-doomed.bin",
            body(b"doomed bytes"),
        )
        .await
        .unwrap();
    f.registry
        .upload_version_file(
            &f.root,
            &f.access,
            &f.registry.model(doomed).unwrap(),
            "1.0.0",
            "shared.bin",
            body(b"shared bytes"),
        )
        .await
        .unwrap();
    let (kv_version, _) = f
        .registry
        .upload_version_file(
            &f.root,
            &f.access,
            &f.registry.model(kept).unwrap(),
            "1.0.0",
            "shared.bin",
            body(b"shared bytes"),
        )
        .await
        .unwrap();
    f.registry
        .set_tags(
            &f.root,
            &f.access,
            TagOwner::Model(doomed),
            &[KeyValue {
                key: "team".into(),
                value: "x".into(),
            }],
        )
        .await
        .unwrap();
    let experiment_id = f.registry.model(doomed).unwrap().experiment_id;
    f.registry
        .delete_model(&f.root, &f.access, doomed)
        .await
        .unwrap();
    assert!(matches!(f.registry.model(doomed), Err(Error::NotFound(_))));
    assert!(matches!(f.registry.version(dv.id), Err(Error::NotFound(_))));
    assert!(matches!(
        f.registry.candidate(dv.candidate_id),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        f.registry.experiment(experiment_id),
        Err(Error::NotFound(_))
    ));
    assert!(f.registry.tags(TagOwner::Model(doomed)).unwrap().is_empty());
    let doomed_packages = f
        .registry
        .list_packages(
            &f.root,
            &f.access,
            &PackageFilter {
                package_name: Some("doomed".into()),
                ..PackageFilter::default()
            },
            PageRequest::new(None, Some(100)),
        )
        .unwrap();
    assert_eq!(doomed_packages.total, 0);
    assert!(doomed_packages.items.is_empty());
    assert_eq!(f.registry.version_files(&kv_version).unwrap().len(), 1);
    // A blob stored after the cut-off may be an upload in flight elsewhere: it is left.
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let report = f
        .registry
        .gc(&GcOptions {
            stored_before: an_hour_ago,
            force: false,
        })
        .await
        .unwrap();
    assert_eq!((report.removed, report.kept, report.recent), (0, 1, 1));
    let report = f.registry.gc(&GcOptions::default()).await.unwrap();
    assert_eq!(
        (
            report.removed,
            report.kept,
            report.freed_bytes,
            report.recent
        ),
        (1, 1, 12, 0)
    );
    // Metadata that references none of the stored blobs is not the bucket's registry (or has
    // lost its files): gc refuses and deletes nothing, unless forced.
    f.registry
        .delete_model(&f.root, &f.access, kept)
        .await
        .unwrap();
    let refused = f.registry.gc(&GcOptions::default()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("references none of the 1 stored blobs"),
        "{refused}"
    );
    assert_eq!(f.registry.blobs().list().await.unwrap().len(), 1);
    let forced = GcOptions {
        force: true,
        ..GcOptions::default()
    };
    let report = f.registry.gc(&forced).await.unwrap();
    assert_eq!((report.removed, report.kept), (1, 0));
    assert!(f.registry.blobs().list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_counts_go_with_the_deleted_files_and_versions() {
    let f = fixture().await;
    let m = f.registry.model(model(&f, "counted").await).unwrap();
    let (version, file) = f
        .registry
        .upload_version_file(&f.root, &f.access, &m, "1.0.0", "w.bin", body(b"counted"))
        .await
        .unwrap();
    let (_, kept_file) = f
        .registry
        .upload_version_file(&f.root, &f.access, &m, "2.0.0", "w.bin", body(b"kept"))
        .await
        .unwrap();
    f.registry.count_download(&file);
    f.registry.count_download(&kept_file);
    assert_eq!(
        f.registry.flush_usage().await.unwrap(),
        4,
        "2 files, 2 versions"
    );
    assert_eq!(f.registry.file_usage(file.id).unwrap().download_count, 1);
    // A download counted but not yet flushed when the version goes is not written after it.
    f.registry.count_download(&file);
    f.registry
        .delete_version(&f.root, &f.access, version.id)
        .await
        .unwrap();
    f.registry.flush_usage().await.unwrap();

    // The stored counts are read without checking that the file still exists: none are left.
    for gone in [
        f.registry.file_usage(file.id).unwrap(),
        f.registry.package_usage(file.package_id).unwrap(),
    ] {
        assert_eq!(
            gone.download_count, 0,
            "the deleted version's counts went with it"
        );
        assert!(gone.last_downloaded_at.is_none());
    }
    assert_eq!(
        f.registry.file_usage(kept_file.id).unwrap().download_count,
        1
    );
    assert_eq!(
        f.registry
            .package_usage(kept_file.package_id)
            .unwrap()
            .download_count,
        1
    );
}
