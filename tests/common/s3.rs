//! A real S3-compatible server for tests: s3s-fs (installed by scripts/s3.sh), started on a free
//! port of 127.0.0.1 over a temp dir, killed when dropped.
//!
//! Without s3s-fs the S3 cases are skipped loudly, or fail when `MODELYARD_TEST_REQUIRE_S3=1`
//! (scripts/test.sh sets it).

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "modelyard-test-key";
pub const SECRET_KEY: &str = "modelyard-test-secret-0123456789";
pub const BUCKET: &str = "mlreg";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
}

fn s3s_fs() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("s3s-fs"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates.into_iter().find(|c| c.is_file())
}

impl S3Server {
    /// Starts s3s-fs with the bucket [`BUCKET`]; `None` (after saying so on stderr) when s3s-fs
    /// is not installed and S3 is not required.
    pub fn start(test: &str) -> Option<S3Server> {
        let Some(binary) = s3s_fs() else {
            if std::env::var("MODELYARD_TEST_REQUIRE_S3").as_deref() == Ok("1") {
                panic!("{test}: s3s-fs is not installed (run scripts/s3.sh)");
            }
            eprintln!(
                "SKIPPED the S3 part of {test}: s3s-fs is not installed (scripts/s3.sh installs it)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir for s3s-fs");
        std::fs::create_dir_all(dir.path().join(BUCKET)).expect("bucket dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        let server = S3Server {
            child: Some(child),
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "s3s-fs did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// The flags that put a server's (or admin command's) blobs under `prefix` of the bucket.
    pub fn flags(&self, prefix: &str) -> Vec<String> {
        vec![
            "--blobs".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-region".into(),
            REGION.into(),
            "--s3-path-style".into(),
            "--s3-allow-http".into(),
        ]
    }

    /// The credentials, as the server reads them.
    pub fn env() -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
        ]
    }

    /// An S3 client of the bucket, to look at it directly.
    pub fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_region(REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("S3 client")
    }

    /// The blob store of `prefix`, as the server opens it.
    pub fn blob_store(&self, prefix: &str) -> modelyard::store::s3_blobs::S3Blobs {
        let config = modelyard::store::s3_blobs::S3Config {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint.clone()),
            region: Some(REGION.into()),
            path_style: true,
            allow_http: true,
            redirect: None,
        };
        modelyard::store::s3_blobs::S3Blobs::open_with_credentials(&config, ACCESS_KEY, SECRET_KEY)
            .expect("open the S3 blob store")
    }

    /// The multipart uploads s3s-fs holds open: it keeps each as `.upload-<id>.json` (and its
    /// parts as `.upload_id-<id>.part-<n>`) in its root directory.
    pub fn open_multipart_uploads(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .filter(|name| name.starts_with(".upload"))
            .collect();
        out.sort();
        out
    }

    /// Every key under `prefix`, listed through the S3 API (sorted).
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        use futures_util::TryStreamExt;
        use object_store::ObjectStore;
        let client = self.client();
        let prefix = object_store::path::Path::from(prefix);
        let mut keys: Vec<String> = client
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("list the bucket");
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
