//! Safe-format hints: what kind of model file an upload is (safetensors, ONNX, GGUF, or a
//! pickle-based format that runs code when loaded), and for safetensors and GGUF the facts of
//! its header (tensor count, dtypes, parameter count).
//!
//! A [`Sniffer`] is fed the upload's chunks as they stream past (the same chunks the hasher
//! sees) and keeps at most the bytes its header needs, never more than [`MAX_HEADER`]: a
//! larger header is recorded as its format without facts. A malformed header never fails an
//! upload; it is recorded as the file's `format_error`.

use serde::{Deserialize, Serialize};

/// The largest header parsed for facts (safetensors JSON, GGUF metadata and tensor infos).
pub const MAX_HEADER: usize = 16 * 1024 * 1024;

/// How much of an unknown or zip file is looked at.
const HEAD: usize = 64 * 1024;

/// What a file's first bytes (and its name) say it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FormatFacts {
    /// `safetensors`, `gguf`, `onnx`, `pickle` or `pytorch` (a zip holding `data.pkl`).
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dtypes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_count: Option<u64>,
    /// Why the header's facts are missing (malformed, truncated, too large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The warning pickle-based formats carry.
pub const PICKLE_WARNING: &str = "pickle-based format: loading it (pickle.load, torch.load without weights_only=True, joblib.load) runs code it contains; load only files you trust, or prefer safetensors";

impl FormatFacts {
    fn named(format: &str) -> FormatFacts {
        FormatFacts {
            format: format.into(),
            ..FormatFacts::default()
        }
    }

    /// Whether loading the file may run code (pickle-based formats).
    pub fn is_pickle_based(&self) -> bool {
        matches!(self.format.as_str(), "pickle" | "pytorch")
    }

    /// The warning the API and UI show with the file, if any.
    pub fn warning(&self) -> Option<&'static str> {
        self.is_pickle_based().then_some(PICKLE_WARNING)
    }
}

fn extension(file_name: &str) -> String {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    match base.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => String::new(),
    }
}

/// Collects the head of a file as it streams past, as much as its format's header needs.
#[derive(Debug)]
pub struct Sniffer {
    head: Vec<u8>,
    /// How many bytes are wanted in all; grows as the header tells its size.
    want: usize,
    /// The header is larger than [`MAX_HEADER`]: no facts.
    oversized: Option<String>,
    /// The file's size so far.
    seen: u64,
}

impl Default for Sniffer {
    fn default() -> Self {
        Sniffer::new()
    }
}

impl Sniffer {
    pub fn new() -> Sniffer {
        Sniffer {
            head: Vec::new(),
            want: 9,
            oversized: None,
            seen: 0,
        }
    }

    /// Whether more bytes would be kept.
    pub fn wants_more(&self) -> bool {
        self.head.len() < self.want
    }

    /// Takes the next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        let mut chunk = chunk;
        while !chunk.is_empty() && self.wants_more() {
            let take = (self.want - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            self.grow();
        }
    }

    /// Raises `want` once the bytes kept say how large the header is.
    fn grow(&mut self) {
        if self.head.len() < self.want {
            return;
        }
        if self.head.starts_with(b"GGUF") {
            // The metadata's size is only known by walking it: keep more, up to the bound,
            // and stop as soon as it parses.
            if self.want < HEAD {
                self.want = HEAD;
                return;
            }
            match gguf::parse(&self.head) {
                // Parsed, or malformed whatever follows: nothing more is needed.
                Ok(_) => {}
                Err(reason) if reason != gguf::TRUNCATED => {}
                Err(_) if self.want < MAX_HEADER => self.want = (self.want * 4).min(MAX_HEADER),
                Err(_) => {
                    self.oversized = Some(format!(
                        "the GGUF header is larger than the {} MiB parsed",
                        MAX_HEADER >> 20
                    ))
                }
            }
            return;
        }
        if self.want == 9 {
            let len = u64::from_le_bytes(self.head[..8].try_into().unwrap_or([0; 8]));
            if self.safetensors_candidate() {
                match usize::try_from(len).ok().filter(|l| *l <= MAX_HEADER) {
                    Some(len) => self.want = 8 + len,
                    None => {
                        self.oversized = Some(format!(
                        "the safetensors header of {len} bytes is larger than the {} MiB parsed",
                        MAX_HEADER >> 20
                    ))
                    }
                }
            } else {
                self.want = HEAD;
            }
        }
    }

    /// Whether the head can be a safetensors header: a length, then the JSON's `{`.
    fn safetensors_candidate(&self) -> bool {
        if self.head.len() < 9 {
            return false;
        }
        let len = u64::from_le_bytes(self.head[..8].try_into().unwrap_or([0; 8]));
        len >= 2 && self.head[8] == b'{'
    }

    /// What the file named `file_name` is, once all of it went past; `None` for formats not
    /// recognized.
    pub fn finish(self, file_name: &str) -> Option<FormatFacts> {
        let ext = extension(file_name);
        let head = &self.head;
        if head.starts_with(b"GGUF") {
            if let Some(reason) = self.oversized {
                let mut facts = FormatFacts::named("gguf");
                facts.tensor_count = gguf::tensor_count(head);
                facts.error = Some(reason);
                return Some(facts);
            }
            return Some(match gguf::parse(head) {
                Ok(facts) => facts,
                Err(reason) => FormatFacts {
                    error: Some(reason),
                    ..FormatFacts::named("gguf")
                },
            });
        }
        if self.safetensors_candidate() {
            let len = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8]));
            if len > MAX_HEADER as u64 {
                return Some(FormatFacts {
                    error: Some(format!(
                        "the safetensors header of {len} bytes is larger than the {} MiB parsed",
                        MAX_HEADER >> 20
                    )),
                    ..FormatFacts::named("safetensors")
                });
            }
            return Some(safetensors::parse(head, self.seen));
        }
        if ext == "safetensors" {
            return Some(FormatFacts {
                error: Some("not a safetensors header: the file is too short or its header length is impossible".into()),
                ..FormatFacts::named("safetensors")
            });
        }
        if head.starts_with(b"PK\x03\x04") && is_pytorch_zip(head) {
            return Some(FormatFacts::named("pytorch"));
        }
        match ext.as_str() {
            "pkl" | "pickle" | "joblib" => return Some(FormatFacts::named("pickle")),
            "onnx" => return Some(FormatFacts::named("onnx")),
            "gguf" => {
                return Some(FormatFacts {
                    error: Some("no GGUF magic at the start of the file".into()),
                    ..FormatFacts::named("gguf")
                })
            }
            _ => {}
        }
        // A bare pickle stream: protocol 2 to 5 opcodes.
        if matches!(ext.as_str(), "pt" | "pth" | "bin" | "ckpt")
            && head.first() == Some(&0x80)
            && head.get(1).is_some_and(|p| (2..=5).contains(p))
        {
            return Some(FormatFacts::named("pickle"));
        }
        None
    }
}

/// A zip whose entries include `.../data.pkl` (PyTorch's `torch.save` format), by the local
/// file headers in its head.
fn is_pytorch_zip(head: &[u8]) -> bool {
    let mut at = 0usize;
    while at + 30 <= head.len() && head[at..].starts_with(b"PK\x03\x04") {
        let u16_at = |o: usize| u16::from_le_bytes([head[at + o], head[at + o + 1]]) as usize;
        let u32_at = |o: usize| {
            u32::from_le_bytes([
                head[at + o],
                head[at + o + 1],
                head[at + o + 2],
                head[at + o + 3],
            ]) as usize
        };
        let name_len = u16_at(26);
        let extra_len = u16_at(28);
        let compressed = u32_at(18);
        let Some(name) = head.get(at + 30..at + 30 + name_len) else {
            break;
        };
        if name == b"data.pkl" || name.ends_with(b"/data.pkl") {
            return true;
        }
        // Sizes may sit in a data descriptor (flag bit 3): then the walk stops here.
        if u16_at(6) & 0x08 != 0 {
            break;
        }
        at += 30 + name_len + extra_len + compressed;
    }
    false
}

mod safetensors {
    use super::FormatFacts;

    /// Parses `8-byte length + JSON` (the whole header is in `head`, unless the file is shorter).
    pub fn parse(head: &[u8], file_size: u64) -> FormatFacts {
        let mut facts = FormatFacts::named("safetensors");
        let len = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8])) as usize;
        let Some(json) = head.get(8..8 + len) else {
            facts.error = Some(format!(
                "truncated: the header says {len} bytes, the file has {}",
                file_size.saturating_sub(8)
            ));
            return facts;
        };
        let parsed: serde_json::Value = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => {
                facts.error = Some(format!("the header is not JSON: {e}"));
                return facts;
            }
        };
        let Some(tensors) = parsed.as_object() else {
            facts.error = Some("the header is not a JSON object".into());
            return facts;
        };
        let mut count = 0u64;
        let mut params = 0u64;
        let mut dtypes: Vec<String> = Vec::new();
        for (name, tensor) in tensors {
            if name == "__metadata__" {
                continue;
            }
            let dtype = tensor.get("dtype").and_then(|d| d.as_str());
            let shape = tensor.get("shape").and_then(|s| s.as_array());
            let (Some(dtype), Some(shape)) = (dtype, shape) else {
                facts.error = Some(format!("tensor '{name}' has no dtype or shape"));
                return facts;
            };
            let mut elements = 1u64;
            for dim in shape {
                let Some(dim) = dim.as_u64() else {
                    facts.error = Some(format!("tensor '{name}' has a shape that is not sizes"));
                    return facts;
                };
                elements = elements.saturating_mul(dim);
            }
            count += 1;
            params = params.saturating_add(elements);
            if !dtypes.iter().any(|d| d == dtype) {
                dtypes.push(dtype.to_string());
            }
        }
        dtypes.sort();
        facts.tensor_count = Some(count);
        facts.parameter_count = Some(params);
        facts.dtypes = dtypes;
        facts
    }
}

mod gguf {
    use super::FormatFacts;

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    pub const TRUNCATED: &str = "truncated";

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            let end = self.at.checked_add(n).ok_or(TRUNCATED)?;
            let slice = self.bytes.get(self.at..end).ok_or(TRUNCATED)?;
            self.at = end;
            Ok(slice)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| TRUNCATED)?,
            ))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| TRUNCATED)?,
            ))
        }
        fn len(&mut self) -> Result<usize, String> {
            usize::try_from(self.u64()?).map_err(|_| TRUNCATED.to_string())
        }
        fn string(&mut self) -> Result<&'a [u8], String> {
            let n = self.len()?;
            self.take(n)
        }
        /// Skips one metadata value of type `kind`.
        fn skip_value(&mut self, kind: u32, depth: u8) -> Result<(), String> {
            match kind {
                0 | 1 | 7 => self.take(1).map(drop),
                2 | 3 => self.take(2).map(drop),
                4..=6 => self.take(4).map(drop),
                10..=12 => self.take(8).map(drop),
                8 => self.string().map(drop),
                9 => {
                    if depth > 4 {
                        return Err("arrays nested too deeply".into());
                    }
                    let inner = self.u32()?;
                    let count = self.u64()?;
                    let fixed = match inner {
                        0 | 1 | 7 => Some(1u64),
                        2 | 3 => Some(2),
                        4..=6 => Some(4),
                        10..=12 => Some(8),
                        _ => None,
                    };
                    match fixed {
                        Some(size) => {
                            let bytes = count.checked_mul(size).ok_or(TRUNCATED)?;
                            self.take(usize::try_from(bytes).map_err(|_| TRUNCATED)?)
                                .map(drop)
                        }
                        None => {
                            for _ in 0..count {
                                self.skip_value(inner, depth + 1)?;
                            }
                            Ok(())
                        }
                    }
                }
                other => Err(format!("unknown metadata value type {other}")),
            }
        }
    }

    fn ggml_type(t: u32) -> String {
        const NAMES: [&str; 31] = [
            "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
            "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
            "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
        ];
        match NAMES.get(t as usize) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => format!("type_{t}"),
        }
    }

    /// The tensor count of the fixed header (v2 and v3), if it is there.
    pub fn tensor_count(head: &[u8]) -> Option<u64> {
        let mut r = Reader { bytes: head, at: 4 };
        match r.u32().ok()? {
            2 | 3 => r.u64().ok(),
            _ => None,
        }
    }

    /// Parses magic, version, counts, the metadata (skipped) and the tensor infos.
    pub fn parse(head: &[u8]) -> Result<FormatFacts, String> {
        let mut r = Reader { bytes: head, at: 0 };
        if r.take(4)? != b"GGUF" {
            return Err("no GGUF magic".into());
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!("GGUF version {version} is not read (2 and 3 are)"));
        }
        let tensors = r.u64()?;
        let kvs = r.u64()?;
        for _ in 0..kvs {
            r.string()?;
            let kind = r.u32()?;
            r.skip_value(kind, 0)?;
        }
        let mut params = 0u64;
        let mut dtypes: Vec<String> = Vec::new();
        for _ in 0..tensors {
            r.string()?;
            let dims = r.u32()?;
            if dims > 8 {
                return Err(format!("a tensor with {dims} dimensions"));
            }
            let mut elements = 1u64;
            for _ in 0..dims {
                elements = elements.saturating_mul(r.u64()?);
            }
            let dtype = ggml_type(r.u32()?);
            r.u64()?;
            params = params.saturating_add(elements);
            if !dtypes.contains(&dtype) {
                dtypes.push(dtype);
            }
        }
        dtypes.sort();
        Ok(FormatFacts {
            format: "gguf".into(),
            tensor_count: Some(tensors),
            dtypes,
            parameter_count: Some(params),
            error: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(name: &str, bytes: &[u8], chunk: usize) -> Option<FormatFacts> {
        let mut s = Sniffer::new();
        for part in bytes.chunks(chunk.max(1)) {
            s.feed(part);
        }
        s.finish(name)
    }

    fn safetensors_file(header: &str, data: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data));
        out
    }

    #[test]
    fn safetensors_headers_give_their_facts_whatever_the_chunking() {
        let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[12,20]},"c":{"dtype":"F16","shape":[],"data_offsets":[20,22]}}"#;
        let file = safetensors_file(header, 22);
        for chunk in [1, 3, 7, 64, 100_000] {
            let facts = sniff("w/model.safetensors", &file, chunk).unwrap();
            assert_eq!(facts.format, "safetensors");
            assert_eq!(facts.tensor_count, Some(3));
            assert_eq!(facts.parameter_count, Some(11));
            assert_eq!(facts.dtypes, ["BF16", "F16"]);
            assert_eq!(facts.error, None);
        }
    }

    #[test]
    fn malformed_and_oversized_headers_are_recorded_not_fatal() {
        let bad = safetensors_file("{not json", 0);
        let facts = sniff("x.safetensors", &bad, 4).unwrap();
        assert!(facts.error.unwrap().contains("not JSON"));
        let mut huge = ((MAX_HEADER as u64) + 1).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{\"a\":");
        let facts = sniff("x.safetensors", &huge, 8).unwrap();
        assert_eq!(facts.format, "safetensors");
        assert!(facts.error.unwrap().contains("larger than"));
        assert_eq!(facts.tensor_count, None);
        let short = sniff("x.safetensors", b"abc", 1).unwrap();
        assert!(short.error.is_some());
        let truncated = safetensors_file(r#"{"a":{"dtype":"F32","shape":[1]}}"#, 0);
        let facts = sniff("x.safetensors", &truncated[..20], 5).unwrap();
        assert!(facts.error.unwrap().contains("truncated"));
    }

    #[test]
    fn pickle_formats_are_flagged() {
        assert!(sniff("m.pkl", b"\x80\x04data", 2)
            .unwrap()
            .is_pickle_based());
        assert_eq!(sniff("m.joblib", b"x", 1).unwrap().format, "pickle");
        assert_eq!(sniff("m.onnx", b"\x08\x07", 1).unwrap().format, "onnx");
        assert_eq!(sniff("readme.md", b"# hello world, a readme", 3), None);
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0u8; 22]);
        zip.extend_from_slice(&(14u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes());
        zip.extend_from_slice(b"model/data.pkl");
        let facts = sniff("model.pt", &zip, 5).unwrap();
        assert_eq!(facts.format, "pytorch");
        assert!(facts.warning().is_some());
        assert_eq!(
            sniff("model.bin", b"\x80\x02}q\x00.", 2).unwrap().format,
            "pickle"
        );
    }

    fn gguf_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn gguf_headers_give_their_facts_and_large_metadata_is_walked() {
        let mut file = b"GGUF".to_vec();
        file.extend_from_slice(&3u32.to_le_bytes());
        file.extend_from_slice(&2u64.to_le_bytes());
        file.extend_from_slice(&2u64.to_le_bytes());
        gguf_string(&mut file, "general.name");
        file.extend_from_slice(&8u32.to_le_bytes());
        gguf_string(&mut file, "tiny");
        // An array of 20,000 strings: metadata larger than the first look.
        gguf_string(&mut file, "tokenizer.ggml.tokens");
        file.extend_from_slice(&9u32.to_le_bytes());
        file.extend_from_slice(&8u32.to_le_bytes());
        file.extend_from_slice(&20_000u64.to_le_bytes());
        for i in 0..20_000 {
            gguf_string(&mut file, &format!("token-{i}"));
        }
        for (name, dims, kind) in [("a", vec![4u64, 8], 1u32), ("b", vec![10], 0)] {
            gguf_string(&mut file, name);
            file.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                file.extend_from_slice(&d.to_le_bytes());
            }
            file.extend_from_slice(&kind.to_le_bytes());
            file.extend_from_slice(&0u64.to_le_bytes());
        }
        file.extend(std::iter::repeat_n(0u8, 1000));
        assert!(file.len() > HEAD);
        let facts = sniff("m.gguf", &file, 4096).unwrap();
        assert_eq!(facts.format, "gguf");
        assert_eq!(facts.tensor_count, Some(2));
        assert_eq!(facts.parameter_count, Some(42));
        assert_eq!(facts.dtypes, ["F16", "F32"]);
        assert_eq!(facts.error, None);
        // A bad value type is an error, recorded.
        let mut bad = file[..24].to_vec();
        gguf_string(&mut bad, "k");
        bad.extend_from_slice(&99u32.to_le_bytes());
        let facts = sniff("m.gguf", &bad, 7).unwrap();
        assert!(facts.error.unwrap().contains("unknown metadata value type"));
    }
}
