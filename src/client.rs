//! `modelyard push` and `modelyard pull`: the client mode of the binary.
//!
//! Push uploads every file of a directory (with its sub-path) as a model version's file over the
//! tus endpoint, several files at once, each in chunks; the file's sha256 is declared at creation
//! so the server refuses anything else. The upload URLs are kept in `.modelyard-push.json` in
//! the directory until the push is complete, so running the same command again after an
//! interruption resumes every file from the offset the server acknowledged (`HEAD`).
//!
//! Pull reads the version's manifest (the version slot may be a requirement such as `^1.2`),
//! downloads every file (several at once) to `<file>.part`, resumes a `.part` left by an
//! interrupted run with `Range` + `If-Range` (so a re-uploaded file restarts rather than
//! splices), checks size and sha256 against the manifest, and only then renames it in place.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ClientArgs, PullArgs, PushArgs};

/// What a push keeps between runs, in the pushed directory.
const STATE_FILE: &str = ".modelyard-push.json";
/// Characters left as they are in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const READ_BUFFER: usize = 1 << 20;

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A file path's segments, each percent-encoded, joined by `/`.
fn path_segments(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    project: String,
    progress: Progress,
    pause: Duration,
}

impl Client {
    fn new(args: &ClientArgs) -> Result<Client> {
        let token = args
            .token
            .as_ref()
            .map(|t| t.0.clone())
            .ok_or_else(|| anyhow!("set MODELYARD_TOKEN (or --token) to an API token"))?;
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .build()?,
            base: args.url.trim_end_matches('/').to_string(),
            token,
            project: segment(&args.project),
            progress: Progress::new(),
            pause: Duration::from_millis(args.pause_ms),
        })
    }

    fn api(&self, rest: &str) -> String {
        format!("{}/api/v4/projects/{}{rest}", self.base, self.project)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("PRIVATE-TOKEN", &self.token)
    }

    fn tus(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.request(method, url).header("Tus-Resumable", "1.0.0")
    }

    /// An absolute URL for a `Location` the server answered.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }
}

/// An error answer, with the server's message.
async fn failure(what: &str, response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow!("{what}: {status} {}", body.trim())
}

/// Progress bars on a terminal, plain lines otherwise.
struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    fn new() -> Progress {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Progress {
            bars: terminal.then(MultiProgress::new),
        }
    }

    fn bar(&self, name: &str, total: u64, done: u64) -> ProgressBar {
        match &self.bars {
            Some(bars) => {
                let bar = bars.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:30!} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(name.to_string());
                bar.set_position(done);
                bar
            }
            None => ProgressBar::hidden(),
        }
    }

    /// A line for the record: above the bars on a terminal, on stdout otherwise.
    fn line(&self, text: String) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => println!("{text}"),
        }
    }
}

/// The sha256 of a file (hex) and the digest state after it, read on a blocking thread.
async fn hash_file(path: PathBuf, limit: Option<u64>) -> Result<(String, Sha256)> {
    tokio::task::spawn_blocking(move || -> Result<(String, Sha256)> {
        let file = std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
        let mut reader: Box<dyn Read> = match limit {
            Some(n) => Box::new(file.take(n)),
            None => Box::new(file),
        };
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; READ_BUFFER];
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok((hex::encode(hasher.clone().finalize()), hasher))
    })
    .await?
}

// ---- push ---------------------------------------------------------------------------------

#[derive(Debug, Default, Serialize, Deserialize)]
struct PushState {
    /// Where the uploads go: server, project, model, version.
    target: String,
    files: BTreeMap<String, PendingUpload>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingUpload {
    url: String,
    size: u64,
    sha256: String,
}

struct StateFile {
    path: PathBuf,
    state: Mutex<PushState>,
}

impl StateFile {
    fn save(&self) -> Result<()> {
        let text = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec_pretty(&*state)?
        };
        let staged = self.path.with_extension("json.tmp");
        std::fs::write(&staged, text)?;
        std::fs::rename(&staged, &self.path)?;
        Ok(())
    }
}

/// Every regular file under `dir`, as (`a/b.bin`, size), by path; the push's own state is left out.
fn files_of(dir: &Path) -> Result<Vec<(String, u64)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let relative = path.strip_prefix(root)?;
                let name = relative
                    .components()
                    .map(|c| c.as_os_str().to_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("{}: not a UTF-8 path", path.display()))?
                    .join("/");
                if name == STATE_FILE || name.starts_with(&format!("{STATE_FILE}.")) {
                    continue;
                }
                out.push((name, entry.metadata()?.len()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

pub async fn push(args: PushArgs) -> Result<()> {
    let client = Arc::new(Client::new(&args.client)?);
    let dir = args.dir.clone();
    let files = files_of(&dir)?;
    if files.is_empty() {
        bail!("{} has no files to push", dir.display());
    }
    let (model, version) = (args.client.model.clone(), args.client.version.clone());
    ensure_model(&client, &model).await?;
    let target = format!("{} {} {model} {version}", client.base, client.project);
    let path = dir.join(STATE_FILE);
    let mut state: PushState = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if state.target != target {
        state = PushState {
            target,
            files: BTreeMap::new(),
        };
    }
    let state = Arc::new(StateFile {
        path,
        state: Mutex::new(state),
    });
    let chunk = args.chunk_mib.max(1) << 20;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let count = files.len();
    let results: Vec<Result<()>> = futures_util::stream::iter(files)
        .map(|(name, size)| {
            let (client, state, dir) = (client.clone(), state.clone(), dir.clone());
            let (model, version) = (model.clone(), version.clone());
            async move {
                push_file(&client, &state, &dir, &name, size, &model, &version, chunk)
                    .await
                    .with_context(|| format!("pushing {name}"))
            }
        })
        .buffer_unordered(args.client.parallel.max(1))
        .collect()
        .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {count} files were not pushed (run again to resume):\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
    let _ = std::fs::remove_file(&state.path);
    client.progress.line(format!(
        "pushed {model} {version}: {count} files, {total} bytes"
    ));
    if args.seal {
        let digest = seal(&client, &model, &version).await?;
        client
            .progress
            .line(format!("sealed {model} {version}: {digest}"));
    }
    Ok(())
}

/// Seals the pushed version and returns its manifest digest.
async fn seal(client: &Client, model: &str, version: &str) -> Result<String> {
    let url = client.api(&format!(
        "/ml/models/{}/versions/{}/seal",
        segment(model),
        segment(version)
    ));
    let sealed = client.request(reqwest::Method::POST, &url).send().await?;
    if !sealed.status().is_success() {
        return Err(failure("sealing the version", sealed).await);
    }
    let body: serde_json::Value = sealed.json().await?;
    Ok(body["manifest_digest"]
        .as_str()
        .unwrap_or("(no digest in the answer)")
        .to_string())
}

/// Creates the model unless it exists, so that the uploads make versions of it.
async fn ensure_model(client: &Client, model: &str) -> Result<()> {
    let url = client.api(&format!("/ml/models/{}", segment(model)));
    let found = client.request(reqwest::Method::GET, &url).send().await?;
    if found.status().is_success() {
        return Ok(());
    }
    if found.status() != reqwest::StatusCode::NOT_FOUND {
        return Err(failure("looking up the model", found).await);
    }
    let created = client
        .request(reqwest::Method::POST, &client.api("/ml/models"))
        .json(&serde_json::json!({ "name": model }))
        .send()
        .await?;
    if !created.status().is_success() {
        return Err(failure("creating the model", created).await);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn push_file(
    client: &Client,
    state: &StateFile,
    dir: &Path,
    name: &str,
    size: u64,
    model: &str,
    version: &str,
    chunk: u64,
) -> Result<()> {
    let local = dir.join(name);
    let (sha256, _) = hash_file(local.clone(), None).await?;
    let pending = {
        let state = state.state.lock().unwrap_or_else(|p| p.into_inner());
        state.files.get(name).cloned()
    };
    let mut resumed = None;
    if let Some(p) = pending.filter(|p| p.size == size && p.sha256 == sha256) {
        let head = client.tus(reqwest::Method::HEAD, &p.url).send().await?;
        if head.status().is_success() {
            let offset = header_number(&head, "upload-offset")?;
            resumed = Some((p.url, offset));
        }
    }
    let (url, mut offset) = match resumed {
        Some((url, offset)) => {
            client
                .progress
                .line(format!("resuming {name} at {offset} of {size} bytes"));
            (url, offset)
        }
        None => {
            let url = create_upload(client, name, size, &sha256, model, version).await?;
            {
                let mut s = state.state.lock().unwrap_or_else(|p| p.into_inner());
                s.files.insert(
                    name.to_string(),
                    PendingUpload {
                        url: url.clone(),
                        size,
                        sha256: sha256.clone(),
                    },
                );
            }
            state.save()?;
            (url, 0)
        }
    };
    let bar = client.progress.bar(name, size, offset);
    let mut recorded = None;
    if size == 0 {
        recorded = Some(sha256.clone());
    }
    while offset < size {
        let len = chunk.min(size - offset);
        let mut file = tokio::fs::File::open(&local).await?;
        tokio::io::AsyncSeekExt::seek(&mut file, SeekFrom::Start(offset)).await?;
        let bar_in = bar.clone();
        let body = tokio_util::io::ReaderStream::with_capacity(
            tokio::io::AsyncReadExt::take(file, len),
            READ_BUFFER,
        )
        .inspect_ok(move |piece| bar_in.inc(piece.len() as u64));
        let answer = client
            .tus(reqwest::Method::PATCH, &url)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset.to_string())
            .header(reqwest::header::CONTENT_LENGTH, len.to_string())
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await?;
        match answer.status().as_u16() {
            204 => {
                offset = header_number(&answer, "upload-offset")?;
                if let Some(sha) = answer.headers().get("x-checksum-sha256") {
                    recorded = sha.to_str().ok().map(str::to_string);
                }
            }
            409 => {
                // Another offset than ours: ask where the upload is.
                let head = client.tus(reqwest::Method::HEAD, &url).send().await?;
                offset = header_number(&head, "upload-offset")?;
            }
            _ => {
                let error = failure("the server refused a chunk", answer).await;
                if pending_is_dead(&error) {
                    forget(state, name)?;
                }
                return Err(error);
            }
        }
        bar.set_position(offset);
        if !client.pause.is_zero() {
            tokio::time::sleep(client.pause).await;
        }
    }
    bar.finish_and_clear();
    match recorded {
        Some(sha) if sha == sha256 => {}
        Some(sha) => bail!("the server recorded sha256 {sha}, the file has {sha256}"),
        None => bail!("the server did not confirm the file"),
    }
    forget(state, name)?;
    client
        .progress
        .line(format!("pushed {name} ({size} bytes) sha256={sha256}"));
    Ok(())
}

/// A refusal after which the upload cannot go on (the server removed it).
fn pending_is_dead(error: &anyhow::Error) -> bool {
    let text = error.to_string();
    ["404", "410", "403", "400"]
        .iter()
        .any(|status| text.contains(&format!(": {status} ")))
}

fn forget(state: &StateFile, name: &str) -> Result<()> {
    {
        let mut s = state.state.lock().unwrap_or_else(|p| p.into_inner());
        s.files.remove(name);
    }
    state.save()
}

fn header_number(response: &reqwest::Response, name: &str) -> Result<u64> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("the answer ({}) has no {name}", response.status()))
}

async fn create_upload(
    client: &Client,
    name: &str,
    size: u64,
    sha256: &str,
    model: &str,
    version: &str,
) -> Result<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let metadata = format!(
        "package_name {},package_version {},filename {},sha256 {}",
        b64(model),
        b64(version),
        b64(name),
        b64(sha256)
    );
    let created = client
        .tus(reqwest::Method::POST, &client.api("/uploads"))
        .header("Upload-Length", size.to_string())
        .header("Upload-Metadata", metadata)
        .header(reqwest::header::CONTENT_LENGTH, "0")
        .send()
        .await?;
    if created.status() != reqwest::StatusCode::CREATED {
        return Err(failure("creating the upload", created).await);
    }
    let location = created
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("the server's answer has no Location"))?;
    Ok(client.absolute(location))
}

// ---- pull ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Manifest {
    files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestFile {
    path: String,
    size: u64,
    sha256: String,
}

/// Where a manifest path goes under `dir`: plain segments only.
fn destination(dir: &Path, path: &str) -> Result<PathBuf> {
    let relative = Path::new(path);
    if path.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        bail!("the manifest names a path outside the directory: {path:?}");
    }
    Ok(dir.join(relative))
}

pub async fn pull(args: PullArgs) -> Result<()> {
    let client = Arc::new(Client::new(&args.client)?);
    let model = args.client.model.clone();
    let url = client.api(&format!(
        "/ml/models/{}/versions/{}/manifest",
        segment(&model),
        segment(&args.client.version)
    ));
    let answer = client.request(reqwest::Method::GET, &url).send().await?;
    if !answer.status().is_success() {
        return Err(failure("reading the version's manifest", answer).await);
    }
    let version = answer
        .headers()
        .get("x-model-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| args.client.version.clone());
    let manifest: Manifest = answer.json().await?;
    std::fs::create_dir_all(&args.dir)?;
    let count = manifest.files.len();
    let total: u64 = manifest.files.iter().map(|f| f.size).sum();
    let results: Vec<Result<()>> = futures_util::stream::iter(manifest.files)
        .map(|file| {
            let (client, dir) = (client.clone(), args.dir.clone());
            let (model, version) = (model.clone(), version.clone());
            async move {
                let path = file.path.clone();
                pull_file(&client, &dir, &model, &version, file)
                    .await
                    .with_context(|| format!("pulling {path}"))
            }
        })
        .buffer_unordered(args.client.parallel.max(1))
        .collect()
        .await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {count} files were not pulled (run again to resume):\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
    client.progress.line(format!(
        "pulled {model} {version}: {count} files, {total} bytes, verified"
    ));
    Ok(())
}

async fn pull_file(
    client: &Client,
    dir: &Path,
    model: &str,
    version: &str,
    file: ManifestFile,
) -> Result<()> {
    let dest = destination(dir, &file.path)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::metadata(&dest).is_ok_and(|m| m.len() == file.size)
        && hash_file(dest.clone(), None).await?.0 == file.sha256
    {
        client
            .progress
            .line(format!("up to date {} ({} bytes)", file.path, file.size));
        return Ok(());
    }
    let mut part_name = dest.as_os_str().to_owned();
    part_name.push(".part");
    let part = PathBuf::from(part_name);
    let mut have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if have > file.size {
        have = 0;
    }
    let url = format!(
        "{}/api/v4/projects/{}/packages/generic/{}/{}/{}",
        client.base,
        client.project,
        segment(model),
        segment(version),
        path_segments(&file.path)
    );
    let mut request = client.request(reqwest::Method::GET, &url);
    if have > 0 {
        // The bytes we have are the manifest's file only while the server serves that file.
        request = request
            .header(reqwest::header::RANGE, format!("bytes={have}-"))
            .header(reqwest::header::IF_RANGE, format!("\"{}\"", file.sha256));
    }
    let answer = request.send().await?;
    let (start, hasher) = match answer.status().as_u16() {
        206 => {
            client.progress.line(format!(
                "resuming {} at {have} of {} bytes",
                file.path, file.size
            ));
            let (_, hasher) = hash_file(part.clone(), Some(have)).await?;
            (have, hasher)
        }
        200 => (0, Sha256::new()),
        416 if have == file.size => (have, hash_file(part.clone(), Some(have)).await?.1),
        _ => return Err(failure("downloading", answer).await),
    };
    let bar = client.progress.bar(&file.path, file.size, start);
    let mut output = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)?;
    output.set_len(start)?;
    output.seek(SeekFrom::Start(start))?;
    // Written and hashed on a blocking thread while the next pieces arrive.
    let (pieces, mut received) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> Result<(Sha256, u64)> {
        let (mut hasher, mut written) = (hasher, 0u64);
        let mut output = std::io::BufWriter::with_capacity(READ_BUFFER, output);
        while let Some(piece) = received.blocking_recv() {
            hasher.update(&piece);
            output.write_all(&piece)?;
            written += piece.len() as u64;
        }
        output.flush()?;
        Ok((hasher, written))
    });
    let mut body = answer.bytes_stream();
    // The network's small frames are gathered into pieces of about 1 MiB for the writer.
    let mut gathered = bytes::BytesMut::new();
    let streamed: Result<()> = async {
        loop {
            let next = body.next().await.transpose()?;
            if let Some(frame) = &next {
                bar.inc(frame.len() as u64);
                if gathered.capacity() == 0 {
                    gathered.reserve(READ_BUFFER);
                }
                gathered.extend_from_slice(frame);
            }
            if gathered.len() >= READ_BUFFER || (next.is_none() && !gathered.is_empty()) {
                pieces
                    .send(gathered.split().freeze())
                    .await
                    .map_err(|_| anyhow!("the file writer stopped"))?;
                if !client.pause.is_zero() {
                    tokio::time::sleep(client.pause).await;
                }
            }
            if next.is_none() {
                return Ok(());
            }
        }
    }
    .await;
    drop(pieces);
    let (hasher, written) = writer.await??;
    streamed?;
    bar.finish_and_clear();
    let size = start + written;
    let sha256 = hex::encode(hasher.finalize());
    if size != file.size || sha256 != file.sha256 {
        let _ = std::fs::remove_file(&part);
        bail!(
            "the download is {size} bytes with sha256 {sha256}, the manifest says {} bytes with {}: removed",
            file.size,
            file.sha256
        );
    }
    std::fs::rename(&part, &dest)?;
    client.progress.line(format!(
        "pulled {} ({} bytes) sha256={sha256}",
        file.path, file.size
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_directory() {
        let dir = Path::new("/tmp/out");
        assert_eq!(
            destination(dir, "weights/a.bin").unwrap(),
            dir.join("weights/a.bin")
        );
        for bad in ["../x", "/etc/passwd", "a/../../x", "", "./a"] {
            assert!(destination(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_segments_are_encoded_one_by_one() {
        assert_eq!(path_segments("a b/c%d.bin"), "a%20b/c%25d.bin");
        assert_eq!(segment("^1.2"), "%5E1.2");
        assert_eq!(segment("root/fraud"), "root%2Ffraud");
    }
}
