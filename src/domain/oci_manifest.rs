//! OCI manifests of model versions: the image manifest generated from a version's files (one
//! layer per file, CNCF ModelPack media types, a config blob with the version's metadata), and
//! the reading of manifests clients push. Generation is deterministic: the same version state
//! gives the same bytes, so its digest is stable.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::ml_records::{KeyValue, ModelVersion};
use super::records::PackageFile;

pub const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MODEL_ARTIFACT: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const MODEL_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
pub const WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";
pub const WEIGHT_CONFIG: &str = "application/vnd.cncf.model.weight.config.v1.raw";
pub const DOC: &str = "application/vnd.cncf.model.doc.v1.raw";
pub const CODE: &str = "application/vnd.cncf.model.code.v1.raw";
pub const DATASET: &str = "application/vnd.cncf.model.dataset.v1.raw";
/// Files of no known kind.
pub const GENERIC_LAYER: &str = "application/octet-stream";
pub const TITLE: &str = "org.opencontainers.image.title";
/// The largest manifest accepted (the distribution spec's suggested minimum limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The ModelPack layer type of a file, by its name; generic for unknown kinds.
pub fn layer_media_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    const WEIGHTS: &[&str] = &[
        "onnx",
        "safetensors",
        "gguf",
        "ggml",
        "bin",
        "pt",
        "pth",
        "ckpt",
        "h5",
        "keras",
        "pb",
        "tflite",
        "pkl",
        "pickle",
        "joblib",
        "msgpack",
        "mlmodel",
        "npz",
        "npy",
        "params",
        "engine",
        "plan",
        "ot",
    ];
    const WEIGHT_CONFIGS: &[&str] = &[
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "preprocessor_config.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "tokenizer.model",
        "mlmodel",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
    ];
    const DOCS: &[&str] = &["md", "rst", "pdf", "html"];
    const CODES: &[&str] = &[
        "py", "ipynb", "sh", "js", "ts", "go", "rs", "java", "r", "jl",
    ];
    const DATA: &[&str] = &["csv", "tsv", "parquet", "jsonl", "arrow", "avro", "orc"];
    if WEIGHT_CONFIGS.contains(&name.as_str()) {
        WEIGHT_CONFIG
    } else if name.starts_with("readme") || name.starts_with("license") || DOCS.contains(&ext) {
        DOC
    } else if WEIGHTS.contains(&ext) {
        WEIGHT
    } else if CODES.contains(&ext) {
        CODE
    } else if DATA.contains(&ext) {
        DATASET
    } else {
        GENERIC_LAYER
    }
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads a digest as clients send it: `sha256:` and 64 lower-case hex digits. Other
/// algorithms are refused as unsupported; anything else is not a digest.
pub fn parse_digest(raw: &str) -> Result<String> {
    let Some((algorithm, hex)) = raw.split_once(':') else {
        return Err(Error::oci(
            OciCode::DigestInvalid,
            format!("'{raw}' is not a digest"),
        ));
    };
    if algorithm != "sha256" {
        return Err(Error::oci(
            OciCode::Unsupported,
            format!("digest algorithm '{algorithm}' is not supported: use sha256"),
        ));
    }
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(Error::oci(
            OciCode::DigestInvalid,
            format!("'{raw}' is not a sha256 digest"),
        ));
    }
    Ok(hex.to_string())
}

/// The OCI distribution spec's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unsupported,
    /// A chunk that does not start where the upload ends (416).
    RangeInvalid,
}

impl OciCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OciCode::BlobUnknown => "BLOB_UNKNOWN",
            OciCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            OciCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            OciCode::DigestInvalid => "DIGEST_INVALID",
            OciCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            OciCode::ManifestInvalid => "MANIFEST_INVALID",
            OciCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            OciCode::NameInvalid => "NAME_INVALID",
            OciCode::NameUnknown => "NAME_UNKNOWN",
            OciCode::SizeInvalid => "SIZE_INVALID",
            OciCode::TagInvalid => "TAG_INVALID",
            OciCode::Unsupported => "UNSUPPORTED",
            OciCode::RangeInvalid => "BLOB_UPLOAD_INVALID",
        }
    }

    /// Whether the code says that something does not exist.
    pub fn is_unknown(self) -> bool {
        matches!(
            self,
            OciCode::BlobUnknown
                | OciCode::BlobUploadUnknown
                | OciCode::ManifestUnknown
                | OciCode::NameUnknown
        )
    }
}

/// A version's manifest and config as generated, with their digests (hex).
#[derive(Debug, Clone)]
pub struct Generated {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
}

/// A version's tag: its SemVer string, with `+` (build metadata, which tags cannot hold)
/// written `_`, as Helm does.
pub fn tag_of(version: &str) -> String {
    version.replace('+', "_")
}

/// The version a tag names, if it is a version's tag.
pub fn version_of_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

/// Whether a reference is a syntactically valid tag (the distribution spec's rule).
pub fn is_tag(reference: &str) -> bool {
    let bytes = reference.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Generates a version's manifest and config from its files (newest record per path, by path)
/// and metadata.
pub fn generate(
    model_name: &str,
    version: &ModelVersion,
    metadata: &[KeyValue],
    author: Option<&str>,
    files: &[PackageFile],
) -> Generated {
    let mut descriptor = json!({
        "createdAt": version.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "name": model_name,
        "version": version.version,
    });
    if let Some(author) = author {
        descriptor["authors"] = json!([author]);
    }
    if !version.description.is_empty() {
        descriptor["description"] = json!(version.description);
    }
    let mut config = json!({
        "descriptor": descriptor,
        "config": {},
        "modelfs": {
            "type": "layers",
            "diff_ids": files.iter().map(|f| format!("sha256:{}", f.sha256)).collect::<Vec<_>>(),
        },
    });
    if !metadata.is_empty() {
        let tags: BTreeMap<&str, &str> = metadata
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        config["metadata"] = json!(tags);
    }
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = digest_of(&config);
    let layers: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "mediaType": layer_media_type(&f.file_name),
                "digest": format!("sha256:{}", f.sha256),
                "size": f.size,
                "annotations": { TITLE: f.file_name },
            })
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": MODEL_ARTIFACT,
        "config": {
            "mediaType": MODEL_CONFIG,
            "digest": format!("sha256:{config_digest}"),
            "size": config.len(),
        },
        "layers": layers,
        "annotations": {
            "org.opencontainers.image.version": version.version,
            "org.opencontainers.image.created":
                version.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    });
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    Generated {
        manifest_digest: digest_of(&manifest),
        manifest,
        config,
        config_digest,
    }
}

/// A descriptor of a pushed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

/// What the registry needs of a pushed manifest.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// An index's manifests.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::oci(OciCode::ManifestInvalid, message)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn descriptor(value: &Value, what: &str) -> Result<Descriptor> {
    let media_type = value
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no mediaType")))?;
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    let size = value
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(format!("{what} has no size")))?;
    Ok(Descriptor {
        media_type: media_type.to_string(),
        sha256: parse_digest(digest)?,
        size,
        annotations: string_map(value.get("annotations")),
    })
}

/// Reads a pushed manifest: an image manifest or an index, by its `mediaType` field or the
/// request's `Content-Type`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    if value.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let declared = value.get("mediaType").and_then(Value::as_str);
    let content_type = content_type.map(|c| c.split(';').next().unwrap_or(c).trim());
    let media_type = match (declared, content_type) {
        (Some(declared), Some(sent)) if declared != sent && !sent.is_empty() => {
            return Err(invalid(format!(
                "the manifest's mediaType {declared} differs from its Content-Type {sent}"
            )))
        }
        (Some(declared), _) => declared.to_string(),
        (None, Some(sent)) if !sent.is_empty() => sent.to_string(),
        _ => {
            if value.get("manifests").is_some() {
                IMAGE_INDEX.to_string()
            } else {
                IMAGE_MANIFEST.to_string()
            }
        }
    };
    let is_index = media_type == IMAGE_INDEX || media_type == DOCKER_MANIFEST_LIST;
    if !is_index && media_type != IMAGE_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(Error::oci(
            OciCode::Unsupported,
            format!("manifests of type {media_type} are not supported"),
        ));
    }
    let list = |field: &str| -> Result<Vec<Descriptor>> {
        match value.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| descriptor(item, &format!("{field}[{i}]")))
                .collect(),
            Some(_) => Err(invalid(format!("{field} must be a list"))),
        }
    };
    let config = match value.get("config") {
        Some(config) if !is_index => Some(descriptor(config, "config")?),
        None if !is_index => return Err(invalid("an image manifest needs a config")),
        _ => None,
    };
    let subject = match value.get("subject") {
        Some(Value::Null) | None => None,
        Some(subject) => Some(descriptor(subject, "subject")?),
    };
    Ok(Parsed {
        artifact_type: value
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        layers: if is_index {
            Vec::new()
        } else {
            list("layers")?
        },
        manifests: if is_index {
            list("manifests")?
        } else {
            Vec::new()
        },
        config,
        subject,
        annotations: string_map(value.get("annotations")),
        media_type,
    })
}

/// The image index the referrers API answers with.
pub fn referrers_index(descriptors: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_INDEX,
        "manifests": descriptors,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::records::now;

    fn file(name: &str, sha: &str) -> PackageFile {
        PackageFile {
            id: 1,
            package_id: 2,
            project_id: 3,
            file_name: name.into(),
            size: 5,
            md5: String::new(),
            sha1: String::new(),
            sha256: sha.into(),
            created_at: now(),
            ci: None,
            format: None,
        }
    }

    fn version() -> ModelVersion {
        ModelVersion {
            id: 9,
            project_id: 3,
            model_id: 4,
            version: "1.2.3".into(),
            seq: 1,
            description: "scores".into(),
            author_id: None,
            candidate_id: 5,
            package_id: 2,
            source: None,
            source_run_id: None,
            stage: None,
            seal: None,
            signature_check: None,
            created_at: now(),
            updated_at: now(),
        }
    }

    #[test]
    fn generation_is_deterministic_and_names_every_file() {
        let files = vec![
            file("model.onnx", &"a".repeat(64)),
            file("README.md", &"b".repeat(64)),
            file("data/x.bin2", &"c".repeat(64)),
        ];
        let v = version();
        let one = generate("fraud", &v, &[], Some("root"), &files);
        let two = generate("fraud", &v, &[], Some("root"), &files);
        assert_eq!(one.manifest, two.manifest);
        assert_eq!(one.manifest_digest, digest_of(&one.manifest));
        let parsed = parse(&one.manifest, None).unwrap();
        assert_eq!(parsed.artifact_type.as_deref(), Some(MODEL_ARTIFACT));
        assert_eq!(parsed.config.unwrap().sha256, one.config_digest);
        let types: Vec<&str> = parsed
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        assert_eq!(types, [WEIGHT, DOC, GENERIC_LAYER]);
        assert_eq!(parsed.layers[2].annotations[TITLE], "data/x.bin2");
        let described = generate(
            "fraud",
            &ModelVersion {
                description: "other".into(),
                ..v
            },
            &[],
            None,
            &files,
        );
        assert_ne!(described.manifest_digest, one.manifest_digest);
    }

    #[test]
    fn digests_tags_and_bad_manifests() {
        assert!(parse_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(matches!(
            parse_digest("sha512:abc"),
            Err(Error::Oci(OciCode::Unsupported, _))
        ));
        assert!(matches!(
            parse_digest("sha256:ABC"),
            Err(Error::Oci(OciCode::DigestInvalid, _))
        ));
        assert!(matches!(
            parse_digest("latest"),
            Err(Error::Oci(OciCode::DigestInvalid, _))
        ));
        assert_eq!(tag_of("1.2.3+build.5"), "1.2.3_build.5");
        assert_eq!(version_of_tag("1.2.3_build.5"), "1.2.3+build.5");
        assert!(is_tag("1.2.3-rc.1") && is_tag("latest") && !is_tag("-x") && !is_tag("a+b"));
        for bad in [
            &b"{"[..],
            b"{\"schemaVersion\": 1}",
            b"{\"schemaVersion\": 2, \"layers\": []}",
        ] {
            assert!(
                matches!(
                    parse(bad, None),
                    Err(Error::Oci(OciCode::ManifestInvalid, _))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse(
                b"{\"schemaVersion\": 2}",
                Some("application/vnd.oci.image.config.v1+json")
            ),
            Err(Error::Oci(OciCode::Unsupported, _))
        ));
    }
}
