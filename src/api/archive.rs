//! Whole-version archives, streamed: a ustar/pax tar or a stored (uncompressed) zip with
//! data descriptors (zip64 where sizes or offsets need it), written entry by entry while the
//! blobs are read chunk by chunk. Nothing is buffered beyond a few chunks in flight: an archive
//! of any size costs the same memory.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::store::blobs::{BlobError, BlobStore};

/// Chunks queued ahead of the socket.
const QUEUE: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "tar" => Some(Format::Tar),
            "zip" => Some(Format::Zip),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::Zip => "application/zip",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Zip => "zip",
        }
    }
}

/// Where an entry's bytes come from.
pub enum Source {
    /// A stored blob (its sha256), opened when the archive reaches it.
    Blob(Arc<dyn BlobStore>, String),
    Bytes(Bytes),
}

pub struct Entry {
    pub name: String,
    pub size: u64,
    pub source: Source,
}

/// The archive as a stream of chunks; an error ends it (the connection is then cut, so a
/// client never takes a truncated archive for a whole one).
pub fn stream(
    format: Format,
    entries: Vec<Entry>,
    mtime: u64,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    let (sender, mut received) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    tokio::spawn(async move {
        let result = write(format, entries, mtime, &sender, false).await;
        if let Err(error) = result {
            let _ = sender.send(Err(error)).await;
        }
    });
    futures_util::stream::poll_fn(move |cx| received.poll_recv(cx))
}

/// Sends a chunk; a closed channel (the client went away) ends the writer.
async fn send(sender: &mpsc::Sender<io::Result<Bytes>>, bytes: Bytes) -> io::Result<()> {
    sender
        .send(Ok(bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
}

/// Streams one entry's bytes, checking its size; returns its CRC-32.
async fn send_body(entry: &Entry, sender: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<u32> {
    let mut crc = crc32fast::Hasher::new();
    let mut sent = 0u64;
    match &entry.source {
        Source::Bytes(bytes) => {
            crc.update(bytes);
            sent = bytes.len() as u64;
            send(sender, bytes.clone()).await?;
        }
        Source::Blob(store, sha256) => {
            let mut blob = store.open(sha256, None).await.map_err(|e| match e {
                BlobError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })?;
            while let Some(chunk) = blob.next().await {
                let chunk = chunk?;
                crc.update(&chunk);
                sent += chunk.len() as u64;
                send(sender, chunk).await?;
            }
        }
    }
    if sent != entry.size {
        return Err(io::Error::other(format!(
            "{} has {sent} bytes where {} were recorded",
            entry.name, entry.size
        )));
    }
    Ok(crc.finalize())
}

async fn write(
    format: Format,
    entries: Vec<Entry>,
    mtime: u64,
    sender: &mpsc::Sender<io::Result<Bytes>>,
    force_zip64: bool,
) -> io::Result<()> {
    match format {
        Format::Tar => {
            for entry in &entries {
                send(
                    sender,
                    Bytes::from(tar_headers(&entry.name, entry.size, mtime)),
                )
                .await?;
                send_body(entry, sender).await?;
                let pad = (512 - (entry.size % 512) as usize) % 512;
                if pad > 0 {
                    send(sender, Bytes::from(vec![0u8; pad])).await?;
                }
            }
            send(sender, Bytes::from(vec![0u8; 1024])).await
        }
        Format::Zip => {
            let mut offset = 0u64;
            let mut central = Vec::new();
            let mut count = 0u64;
            let (time, date) = dos_time(mtime);
            for entry in &entries {
                let zip64 = force_zip64 || entry.size >= 0xFFFF_FFFF || offset >= 0xFFFF_FFFF;
                let local = zip_local_header(&entry.name, time, date, zip64);
                let start = offset;
                offset += local.len() as u64;
                send(sender, Bytes::from(local)).await?;
                let crc = send_body(entry, sender).await?;
                offset += entry.size;
                let descriptor = zip_descriptor(crc, entry.size, zip64);
                offset += descriptor.len() as u64;
                send(sender, Bytes::from(descriptor)).await?;
                central.extend(zip_central_header(
                    &entry.name,
                    time,
                    date,
                    crc,
                    entry.size,
                    start,
                    zip64 || start >= 0xFFFF_FFFF,
                ));
                count += 1;
            }
            let end = zip_end(count, central.len() as u64, offset, force_zip64);
            central.extend(end);
            send(sender, Bytes::from(central)).await
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let bytes = text.as_bytes();
    // Values too wide for the field are carried by a pax record; the field then holds zeros.
    if bytes.len() <= digits {
        field[..digits].copy_from_slice(bytes);
    } else {
        field[..digits].fill(b'0');
    }
    field[digits] = 0;
}

fn ustar_header(name: &[u8], size: u64, mtime: u64, typeflag: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[148..156].fill(b' ');
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// One pax record, `"<len> key=value\n"`, its length counting itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// The header block(s) of a tar entry: a pax extended header first when the path is longer
/// than ustar's 100 bytes or the size does not fit its 11 octal digits.
fn tar_headers(name: &str, size: u64, mtime: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut records = String::new();
    if name.len() > 100 {
        records.push_str(&pax_record("path", name));
    }
    if size > 0o777_7777_7777 {
        records.push_str(&pax_record("size", &size.to_string()));
    }
    if !records.is_empty() {
        out.extend_from_slice(&ustar_header(
            b"././@PaxHeader",
            records.len() as u64,
            mtime,
            b'x',
        ));
        out.extend_from_slice(records.as_bytes());
        let pad = (512 - records.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend_from_slice(&ustar_header(name.as_bytes(), size, mtime, b'0'));
    out
}

/// MS-DOS time and date of a Unix time (UTC), clamped to 1980.
fn dos_time(mtime: u64) -> (u16, u16) {
    let at = chrono::DateTime::from_timestamp(mtime as i64, 0).unwrap_or_default();
    use chrono::{Datelike, Timelike};
    let year = at.year().clamp(1980, 2107) as u16;
    let time = ((at.hour() as u16) << 11) | ((at.minute() as u16) << 5) | (at.second() as u16 / 2);
    let date = ((year - 1980) << 9) | ((at.month() as u16) << 5) | at.day() as u16;
    (time, date)
}

/// Bit 3 (sizes and CRC in a data descriptor) and bit 11 (UTF-8 names).
const ZIP_FLAGS: u16 = 0x0808;

fn zip_local_header(name: &str, time: u16, date: u16, zip64: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + name.len() + 20);
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
    h.extend_from_slice(&ZIP_FLAGS.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // crc: in the descriptor
    let sizes = if zip64 { 0xFFFF_FFFFu32 } else { 0 };
    h.extend_from_slice(&sizes.to_le_bytes());
    h.extend_from_slice(&sizes.to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    if zip64 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
    }
    h
}

fn zip_descriptor(crc: u32, size: u64, zip64: bool) -> Vec<u8> {
    let mut d = Vec::with_capacity(24);
    d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
    d.extend_from_slice(&crc.to_le_bytes());
    if zip64 {
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
    } else {
        d.extend_from_slice(&(size as u32).to_le_bytes());
        d.extend_from_slice(&(size as u32).to_le_bytes());
    }
    d
}

fn zip_central_header(
    name: &str,
    time: u16,
    date: u16,
    crc: u32,
    size: u64,
    offset: u64,
    zip64: bool,
) -> Vec<u8> {
    let mut extra = Vec::new();
    if zip64 {
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&24u16.to_le_bytes());
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&offset.to_le_bytes());
    }
    let small = |v: u64| if zip64 { 0xFFFF_FFFF } else { v as u32 };
    let mut h = Vec::with_capacity(46 + name.len() + extra.len());
    h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    h.extend_from_slice(&(0x0300u16 | 45).to_le_bytes()); // made by: Unix, 4.5
    h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
    h.extend_from_slice(&ZIP_FLAGS.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&time.to_le_bytes());
    h.extend_from_slice(&date.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&small(size).to_le_bytes());
    h.extend_from_slice(&small(size).to_le_bytes());
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // comment
    h.extend_from_slice(&0u16.to_le_bytes()); // disk
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
    h.extend_from_slice(&small(offset).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&extra);
    h
}

/// The end records after the central directory (at `cd_offset`, `cd_size` bytes long): zip64's
/// record and locator first when a count, size or offset does not fit the classic one.
fn zip_end(count: u64, cd_size: u64, cd_offset: u64, force_zip64: bool) -> Vec<u8> {
    let mut e = Vec::new();
    let zip64 =
        force_zip64 || count >= 0xFFFF || cd_size >= 0xFFFF_FFFF || cd_offset >= 0xFFFF_FFFF;
    if zip64 {
        let record_at = cd_offset + cd_size;
        e.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        e.extend_from_slice(&44u64.to_le_bytes());
        e.extend_from_slice(&(0x0300u16 | 45).to_le_bytes());
        e.extend_from_slice(&45u16.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&cd_offset.to_le_bytes());
        e.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&record_at.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
    }
    let count16 = if zip64 { 0xFFFF } else { count as u16 };
    let small = |v: u64| if zip64 { 0xFFFF_FFFF } else { v as u32 };
    e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&count16.to_le_bytes());
    e.extend_from_slice(&count16.to_le_bytes());
    e.extend_from_slice(&small(cd_size).to_le_bytes());
    e.extend_from_slice(&small(cd_offset).to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(format: Format, entries: Vec<Entry>, force_zip64: bool) -> Vec<u8> {
        let (sender, mut received) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(async move {
            write(format, entries, 1_700_000_000, &sender, force_zip64).await
        });
        let mut out = Vec::new();
        while let Some(chunk) = received.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        writer.await.unwrap().unwrap();
        out
    }

    async fn entries(dir: &std::path::Path) -> Vec<Entry> {
        use crate::store::blobs::BlobStore;
        let big: Vec<u8> = (0..1_300_000u32).map(|i| (i % 253) as u8).collect();
        let store = Arc::new(crate::store::local_blobs::LocalBlobs::open(dir).unwrap());
        let body: crate::store::blobs::ByteStream =
            Box::pin(futures_util::stream::iter([Ok(Bytes::from(big.clone()))]));
        let sha256 = store.put(body, u64::MAX).await.unwrap().digests.sha256;
        let long = format!("{}/weights.bin", "deep".repeat(40));
        vec![
            Entry {
                name: "manifest.json".into(),
                size: 2,
                source: Source::Bytes(Bytes::from_static(b"{}")),
            },
            Entry {
                name: long,
                size: big.len() as u64,
                source: Source::Blob(store, sha256),
            },
            Entry {
                name: "empty".into(),
                size: 0,
                source: Source::Bytes(Bytes::new()),
            },
        ]
    }

    /// Python's tarfile and zipfile read what the writers write (skipped without python3).
    #[tokio::test]
    async fn python_reads_tar_pax_zip_and_zip64() {
        if std::process::Command::new("python3")
            .arg("-V")
            .output()
            .is_err()
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (format, zip64, file) in [
            (Format::Tar, false, "a.tar"),
            (Format::Zip, false, "a.zip"),
            (Format::Zip, true, "b.zip"),
        ] {
            let bytes = collect(format, entries(dir.path()).await, zip64).await;
            std::fs::write(dir.path().join(file), bytes).unwrap();
        }
        let script = r#"
import sys, tarfile, zipfile, hashlib
d = sys.argv[1]
want = bytes(i % 253 for i in range(1300000))
long = "deep" * 40 + "/weights.bin"
t = tarfile.open(d + "/a.tar")
assert t.getnames() == ["manifest.json", long, "empty"], t.getnames()
assert t.extractfile(long).read() == want
for z in ["a.zip", "b.zip"]:
    f = zipfile.ZipFile(d + "/" + z)
    assert f.testzip() is None
    assert f.namelist() == ["manifest.json", long, "empty"], f.namelist()
    assert f.read(long) == want and f.read("manifest.json") == b"{}"
print("ok")
"#;
        let out = std::process::Command::new("python3")
            .args(["-c", script, dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn pax_records_count_their_own_length() {
        let record = pax_record("path", "x");
        assert_eq!(record, "9 path=x\n");
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
        let long = pax_record("path", &"a".repeat(95));
        assert_eq!(long.len().to_string(), long.split(' ').next().unwrap());
    }
}
