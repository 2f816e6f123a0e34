//! Black-box helpers: start the real binary on 127.0.0.1 with an ephemeral port and a temp data
//! dir, talk HTTP to it, kill and restart it.
#![allow(dead_code)]

pub mod fixture;
pub mod hook_receiver;
pub mod postgres;
pub mod readme;
pub mod s3;
pub mod stubs;

#[allow(unused_imports)]
pub use hook_receiver::hook_receiver;
#[allow(unused_imports)]
pub use readme::{readme_block, run_readme_block};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ROOT_TOKEN: &str = "root-test-token-0123456789";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_modelyard")
}

/// A temp dir only its owner can read, as the server wants its data dir (it warns otherwise).
pub fn private_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod temp dir");
    dir
}

/// The stores every TestServer runs on, chosen by the environment so that the whole suite can be
/// run on the scale-out back-ends too (scripts/test.sh does, in its second pass):
/// - `MODELYARD_TEST_METADATA=postgres`: a fresh PostgreSQL database of
///   `MODELYARD_TEST_POSTGRES_URL` per server;
/// - `MODELYARD_TEST_BLOBS=s3`: an s3s-fs of the server's own (its bucket under a temp dir),
///   killed with the server.
///
/// Unset, both are the embedded default (sled, local blobs). A `--metadata`/`--blobs` a test
/// gives itself still wins: flags beat these environment variables.
pub struct TestStores {
    /// `MODELYARD_METADATA` for the server and the admin commands, when not the default.
    pub metadata: Option<String>,
    /// The S3 server holding the blobs, when not on the local disk.
    pub s3: Option<s3::S3Server>,
}

impl Drop for TestStores {
    fn drop(&mut self) {
        if let Some(url) = &self.metadata {
            postgres::drop_database(url);
        }
    }
}

impl TestStores {
    pub fn from_env() -> TestStores {
        let metadata = match std::env::var("MODELYARD_TEST_METADATA").as_deref() {
            Ok("postgres") => Some(
                postgres::fresh_database("TestServer")
                    .expect("MODELYARD_TEST_METADATA=postgres needs MODELYARD_TEST_POSTGRES_URL"),
            ),
            _ => None,
        };
        let s3 = match std::env::var("MODELYARD_TEST_BLOBS").as_deref() {
            Ok("s3") => Some(
                s3::S3Server::start("TestServer")
                    .expect("MODELYARD_TEST_BLOBS=s3 needs s3s-fs (scripts/s3.sh installs it)"),
            ),
            _ => None,
        };
        TestStores { metadata, s3 }
    }

    /// Whether this is the embedded default (sled and local blobs).
    pub fn embedded(&self) -> bool {
        self.metadata.is_none() && self.s3.is_none()
    }

    /// The environment that puts a `modelyard` process (server or admin command) on these stores.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .metadata
            .iter()
            .map(|url| ("MODELYARD_METADATA".to_string(), url.clone()))
            .collect();
        if let Some(s3) = &self.s3 {
            env.extend([
                (
                    "MODELYARD_BLOBS".into(),
                    format!("s3://{}/{S3_PREFIX}", s3::BUCKET),
                ),
                ("MODELYARD_S3_ENDPOINT".into(), s3.endpoint.clone()),
                ("MODELYARD_S3_REGION".into(), s3::REGION.into()),
                ("MODELYARD_S3_PATH_STYLE".into(), "true".into()),
                ("MODELYARD_S3_ALLOW_HTTP".into(), "true".into()),
            ]);
            env.extend(s3::S3Server::env());
        }
        env
    }

    /// The directory holding the content blobs as files: `blobs/` of the data dir, or the
    /// s3s-fs directory of their keys (s3s-fs keeps each object as a file named by its key).
    pub fn blob_dir(&self, data_dir: &Path) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.dir.path().join(s3::BUCKET).join(S3_PREFIX).join("blobs"),
            None => data_dir.join("blobs"),
        }
    }
}

/// The key prefix of a TestServer's blobs in its s3s-fs bucket.
const S3_PREFIX: &str = "modelyard";

/// The bytes of a file, or of every file under a directory (0 when there is none).
pub fn bytes_under(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| bytes_under(&entry.path()))
            .sum(),
        _ => 0,
    }
}

/// Whether the suite runs on the embedded default. Tests of what only the embedded store has (its
/// files on disk: sled's fsyncs, blobs corrupted or counted in `blobs/`, a tmpfs filling up) call
/// [`embedded_only`] first; they run in the default pass of scripts/test.sh.
pub fn suite_on_embedded_store() -> bool {
    std::env::var_os("MODELYARD_TEST_METADATA").is_none()
        && std::env::var_os("MODELYARD_TEST_BLOBS").is_none()
}

/// `true` (after saying so on stderr) when this test must be skipped because the suite runs on
/// the scale-out stores and the test is about the embedded store's own files.
pub fn embedded_only(test: &str, why: &str) -> bool {
    if suite_on_embedded_store() {
        return false;
    }
    eprintln!("SKIPPED {test} on the scale-out stores: {why}");
    true
}

pub struct TestServer {
    pub data: tempfile::TempDir,
    /// The data dir served: `data` itself, or a directory given to `start_from`.
    pub dir: PathBuf,
    pub child: Option<Child>,
    pub base: String,
    pub extra_args: Vec<String>,
    /// Environment variables of the server process beyond the inherited ones.
    pub extra_env: Vec<(String, String)>,
    /// The metadata and blob stores (the embedded default unless the environment says otherwise).
    pub stores: TestStores,
    /// How long the last start took until the server printed its address.
    pub started_in: Duration,
    /// The server's log (stderr), last lines first kept: printed only when a test fails, so that
    /// the ERROR lines fault tests provoke on purpose stay out of a passing test's output.
    pub log: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// How many lines of a server's log a test keeps to show when it fails.
const LOG_LINES_KEPT: usize = 400;

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> TestServer {
        let data = private_tempdir();
        let dir = data.path().to_path_buf();
        TestServer::launched(data, dir, args)
    }

    /// Serves an existing data dir (a backup, say); it is not removed afterwards.
    pub fn start_from(dir: &Path) -> TestServer {
        TestServer::launched_existing(dir, &[])
    }

    fn launched(data: tempfile::TempDir, dir: PathBuf, args: &[&str]) -> TestServer {
        TestServer::launched_on(data, dir, args, TestStores::from_env())
    }

    /// [`TestServer::start_with`] on the embedded store (sled, local blobs) whatever the suite's
    /// stores: for tests whose subject is an embedded data dir (the source of a migrate).
    pub fn start_embedded_with(args: &[&str]) -> TestServer {
        let data = private_tempdir();
        let dir = data.path().to_path_buf();
        let stores = TestStores {
            metadata: None,
            s3: None,
        };
        TestServer::launched_on(data, dir, args, stores)
    }

    /// An existing data dir holds its own store (sled and local blobs): it is served as it is,
    /// whatever the suite's stores.
    fn launched_existing(dir: &Path, args: &[&str]) -> TestServer {
        let stores = TestStores {
            metadata: None,
            s3: None,
        };
        let data = tempfile::tempdir().expect("temp dir");
        TestServer::launched_on(data, dir.to_path_buf(), args, stores)
    }

    fn launched_on(
        data: tempfile::TempDir,
        dir: PathBuf,
        args: &[&str],
        stores: TestStores,
    ) -> TestServer {
        let mut server = TestServer {
            data,
            dir,
            child: None,
            base: String::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: Vec::new(),
            stores,
            started_in: Duration::ZERO,
            log: Default::default(),
        };
        server.launch();
        server
    }

    /// [`TestServer::start_with`], the server also given the environment variables `env`.
    pub fn start_with_env(args: &[String], env: &[(String, String)]) -> TestServer {
        let mut server = TestServer {
            data: private_tempdir(),
            dir: PathBuf::new(),
            child: None,
            base: String::new(),
            extra_args: args.to_vec(),
            extra_env: env.to_vec(),
            stores: TestStores::from_env(),
            started_in: Duration::ZERO,
            log: Default::default(),
        };
        server.dir = server.data.path().to_path_buf();
        server.launch();
        server
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    fn launch(&mut self) {
        let started = Instant::now();
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .envs(self.stores.env())
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env("MODELYARD_ROOT_TOKEN", ROOT_TOKEN)
            .env("MODELYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn modelyard");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut log) = log.lock() {
                    if log.len() == LOG_LINES_KEPT {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("modelyard listening on ") {
                break rest.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.started_in = started.elapsed();
        self.base = base;
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe_sigterm(child.id());
        child.wait().expect("wait")
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// Resident set size of the server process, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Runs an admin subcommand on this server's data dir (the server must be stopped).
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .envs(self.stores.env())
            .output()
            .expect("run admin command")
    }

    /// Uploads being staged: files in the data dir's `tmp/`, or, on S3, the open multipart
    /// uploads and the staging objects of the bucket.
    pub fn tmp_entries(&self) -> usize {
        let entries = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        match &self.stores.s3 {
            Some(s3) => {
                s3.open_multipart_uploads().len()
                    + entries(
                        &s3.dir
                            .path()
                            .join(s3::BUCKET)
                            .join(S3_PREFIX)
                            .join("staging"),
                    )
            }
            None => entries(&self.dir.join("tmp")),
        }
    }

    /// Where resumable (tus, chunked push) uploads keep their bytes: `uploads/` of the data dir
    /// (a file per upload), or the S3 keys `uploads/<id>/<offset>` (a directory per upload in
    /// s3s-fs, a file per chunk).
    pub fn uploads_dir(&self) -> PathBuf {
        match &self.stores.s3 {
            Some(s3) => s3
                .dir
                .path()
                .join(s3::BUCKET)
                .join(S3_PREFIX)
                .join("uploads"),
            None => self.dir.join("uploads"),
        }
    }

    /// The bytes an upload has staged (0: none, or no such upload).
    pub fn staged_upload_bytes(&self, upload_id: &str) -> u64 {
        bytes_under(&self.uploads_dir().join(upload_id))
    }

    /// How many uploads have staged bytes (or, on the local disk, a file).
    pub fn staged_uploads(&self) -> usize {
        std::fs::read_dir(self.uploads_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.path().is_file() || bytes_under(&entry.path()) > 0)
            .count()
    }

    /// The file holding the content blob `sha256` (see [`TestStores::blob_dir`]).
    pub fn blob_file(&self, sha256: &str) -> PathBuf {
        let dir = self.stores.blob_dir(&self.dir);
        match &self.stores.s3 {
            Some(_) => dir.join(sha256),
            None => dir.join(&sha256[0..2]).join(&sha256[2..4]).join(sha256),
        }
    }

    pub fn blob_count(&self) -> usize {
        fn walk(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            if e.path().is_dir() {
                                walk(&e.path())
                            } else {
                                1
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.stores.blob_dir(&self.dir))
    }

    pub fn blob_paths(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        walk(&e.path(), out)
                    } else {
                        out.push(e.path())
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.stores.blob_dir(&self.dir), &mut out);
        out
    }
}

impl TestServer {
    /// The server's log lines so far (the last few hundred).
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("--- log of the modelyard server at {} ---", self.base);
            for line in self.log_lines() {
                eprintln!("server| {line}");
            }
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A response read off the wire.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The cookies the reply sets, as a `Cookie` request header would carry them.
    pub fn cookies(&self) -> String {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next())
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request with the path exactly as given (no normalisation of `..`).
/// Bodies over 1 MiB go with `Expect: 100-continue`, as curl sends them, so that an early
/// refusal is read rather than lost to a connection reset.
pub fn raw(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_raw(base, method, path, headers, body).expect("HTTP exchange")
}

/// One HTTP/1.1 exchange; an error when the connection fails or the server closes it early.
pub fn try_raw(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    let chunked = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !chunked && (!body.is_empty() || method == "PUT" || method == "POST") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    let expect_continue = body.len() > 1 << 20;
    if expect_continue {
        request.push_str("Expect: 100-continue\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    if expect_continue {
        let head = read_head(&mut stream);
        if !head.starts_with(b"HTTP/1.1 100") {
            response = head;
            let _ = stream.read_to_end(&mut response);
            return complete(response);
        }
    }
    stream.write_all(body)?;
    stream.read_to_end(&mut response)?;
    complete(response)
}

fn complete(response: Vec<u8>) -> std::io::Result<Reply> {
    if !response.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::other("connection closed before a response"));
    }
    Ok(parse_response(&response))
}

/// Reads up to and including the blank line that ends a response head.
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

fn parse_response(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A small convenience client over [`raw`].
pub struct Api<'a> {
    pub server: &'a TestServer,
    pub token: Option<String>,
}

impl<'a> Api<'a> {
    pub fn root(server: &'a TestServer) -> Api<'a> {
        Api {
            server,
            token: Some(ROOT_TOKEN.to_string()),
        }
    }

    pub fn anonymous(server: &'a TestServer) -> Api<'a> {
        Api {
            server,
            token: None,
        }
    }

    pub fn with_token(server: &'a TestServer, token: &str) -> Api<'a> {
        Api {
            server,
            token: Some(token.to_string()),
        }
    }

    pub fn send(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(token) = &self.token {
            headers.push(("PRIVATE-TOKEN", token));
        }
        raw(&self.server.base, method, path, &headers, body)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], b"")
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, &[], b"")
    }

    pub fn put_bytes(&self, path: &str, body: &[u8]) -> Reply {
        self.send("PUT", path, &[], body)
    }

    pub fn post_json(&self, path: &str, json: serde_json::Value) -> Reply {
        let body = serde_json::to_vec(&json).expect("json");
        self.send("POST", path, &[("Content-Type", "application/json")], &body)
    }

    pub fn put_json(&self, path: &str, json: serde_json::Value) -> Reply {
        let body = serde_json::to_vec(&json).expect("json");
        self.send("PUT", path, &[("Content-Type", "application/json")], &body)
    }
}

/// Signs in through the web form as a browser would (the form's CSRF field and cookie first);
/// returns the form post's reply: 303 with the session cookie on success.
pub fn web_sign_in(server: &TestServer, username: &str, password: &str) -> Reply {
    let form = raw(&server.base, "GET", "/users/sign_in", &[], b"");
    assert_eq!(form.status, 200, "{}", form.text());
    let cookie = form.cookies();
    let html = form.text();
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &html[start..start + html[start..].find('"').expect("end of the value")];
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("authenticity_token", csrf),
            ("username", username),
            ("password", password),
            ("return_to", "/"),
        ])
        .finish();
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if !cookie.is_empty() {
        headers.push(("Cookie", &cookie));
    }
    raw(
        &server.base,
        "POST",
        "/users/sign_in",
        &headers,
        body.as_bytes(),
    )
}

/// Creates a user with a token of the given scope; returns (user id, token).
pub fn user_with_token(server: &TestServer, username: &str, scope: &str) -> (u64, String) {
    let root = Api::root(server);
    let user = root.post_json(
        "/api/v4/users",
        serde_json::json!({ "username": username, "name": username, "email": format!("{username}@example.com"), "password": "correct horse battery" }),
    );
    assert_eq!(user.status, 201, "{}", user.text());
    let id = user.json()["id"].as_u64().expect("user id");
    let token = root.post_json(
        &format!("/api/v4/users/{id}/personal_access_tokens"),
        serde_json::json!({ "name": "t", "scopes": [scope] }),
    );
    assert_eq!(token.status, 201, "{}", token.text());
    (
        id,
        token.json()["token"].as_str().expect("token").to_string(),
    )
}

/// A path of the project's native model registry API (`rest`: `models`, `models/m/versions`...).
pub fn ml(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/{rest}")
}

/// Creates a project as root; returns its id.
pub fn project(server: &TestServer, name: &str, visibility: &str) -> u64 {
    let reply = Api::root(server).post_json(
        "/api/v4/projects",
        serde_json::json!({ "name": name, "visibility": visibility }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["id"].as_u64().expect("project id")
}

pub fn add_member(server: &TestServer, project_id: u64, user_id: u64, level: u8) {
    let reply = Api::root(server).post_json(
        &format!("/api/v4/projects/{project_id}/members"),
        serde_json::json!({ "user_id": user_id, "access_level": level }),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn curl() -> Command {
    let mut c = Command::new("curl");
    c.args(["--silent", "--show-error"]);
    c
}

impl TestServer {
    /// Serves an existing data dir with extra flags; the directory is not removed afterwards.
    pub fn start_from_with(dir: &Path, args: &[&str]) -> TestServer {
        TestServer::launched_existing(dir, args)
    }
}

/// Copies a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
