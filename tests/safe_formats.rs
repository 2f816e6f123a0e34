//! Safe-format hints over a real socket: every uploaded file records its format, safetensors
//! and GGUF headers give their facts (parsed while the bytes stream in), malformed headers are
//! recorded and never fail the upload, pickle-based files carry a warning in the API and UI.

mod common;

use common::*;
use serde_json::{json, Value};

/// A safetensors file: 8-byte little-endian header length, the JSON header, the data.
fn safetensors(header: &Value, data_len: usize) -> Vec<u8> {
    let header = serde_json::to_vec(header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend(std::iter::repeat_n(7u8, data_len));
    out
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A GGUF v3 file: magic, version, tensor count, metadata count, metadata, tensor infos, data.
fn gguf(tensors: &[(&str, &[u64], u32)], tokens: usize) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&3u64.to_le_bytes());
    gguf_string(&mut out, "general.architecture");
    out.extend_from_slice(&8u32.to_le_bytes());
    gguf_string(&mut out, "llama");
    gguf_string(&mut out, "llama.context_length");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&4096u32.to_le_bytes());
    gguf_string(&mut out, "tokenizer.ggml.tokens");
    out.extend_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(tokens as u64).to_le_bytes());
    for i in 0..tokens {
        gguf_string(&mut out, &format!("tok{i}"));
    }
    for (name, dims, kind) in tensors {
        gguf_string(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in *dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
    }
    out.extend(std::iter::repeat_n(0u8, 4096));
    out
}

/// A minimal zip as `torch.save` writes it: a stored `archive/data.pkl` entry first.
fn pytorch_zip() -> Vec<u8> {
    let name = b"archive/data.pkl";
    let data = b"\x80\x02}q\x00.";
    let mut out = b"PK\x03\x04".to_vec();
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0]); // crc (not checked here)
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    out
}

fn files_by_name(version: &Value) -> std::collections::HashMap<String, Value> {
    version["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file_name"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

#[test]
fn formats_and_header_facts_are_recorded_while_uploading() {
    let server = TestServer::start();
    let project_id = project(&server, "formats", "public");
    let api = Api::root(&server);
    let created = api.post_json(
        &format!("/api/v4/projects/{project_id}/ml/models"),
        json!({ "name": "llm" }),
    );
    assert_eq!(created.status, 201);
    let weights = safetensors(
        &json!({
            "__metadata__": { "format": "pt" },
            "embed.weight": { "dtype": "BF16", "shape": [1000, 64], "data_offsets": [0, 128000] },
            "head.weight": { "dtype": "F32", "shape": [64, 10], "data_offsets": [128000, 130560] },
            "head.bias": { "dtype": "F32", "shape": [10], "data_offsets": [130560, 130600] },
        }),
        130_600,
    );
    // Enough metadata that the GGUF header spans several upload chunks.
    let quantized = gguf(
        &[
            ("token_embd.weight", &[64, 1000], 12),
            ("output.weight", &[64, 1000], 14),
            ("output_norm.weight", &[64], 0),
        ],
        30_000,
    );
    assert!(quantized.len() > 300_000);
    let mut malformed = 40u64.to_le_bytes().to_vec();
    malformed.extend_from_slice(b"{\"a\": {\"dtype\": \"F32\", \"shape\": [oops");
    let mut oversized = (17u64 << 20).to_le_bytes().to_vec();
    oversized.extend_from_slice(b"{\"a\":{}}");
    let uploads: Vec<(&str, Vec<u8>)> = vec![
        ("model.safetensors", weights),
        ("weights/model-q4.gguf", quantized),
        ("broken.safetensors", malformed),
        ("huge-header.safetensors", oversized),
        ("model.onnx", b"\x08\x07\x12\x04onnx".to_vec()),
        ("sklearn/model.pkl", b"\x80\x04\x95\x00".to_vec()),
        ("pipeline.joblib", b"joblib bytes".to_vec()),
        ("torch/model.pt", pytorch_zip()),
        ("README.md", b"# a readme".to_vec()),
    ];
    for (name, body) in &uploads {
        let put = api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/llm/1.0.0/{name}"),
            body,
        );
        assert_eq!(put.status, 201, "{name}: {}", put.text());
    }
    let version = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/models/llm/versions/1.0.0"
        ))
        .json();
    let files = files_by_name(&version);
    let st = &files["model.safetensors"];
    assert_eq!(st["format"], "safetensors");
    assert_eq!(st["tensor_count"], 3);
    assert_eq!(st["parameter_count"], 64_000 + 640 + 10);
    assert_eq!(st["dtypes"], json!(["BF16", "F32"]));
    assert_eq!(st["format_error"], Value::Null);
    assert_eq!(st["format_warning"], Value::Null);
    let gg = &files["weights/model-q4.gguf"];
    assert_eq!(gg["format"], "gguf", "{gg}");
    assert_eq!(gg["tensor_count"], 3);
    assert_eq!(gg["parameter_count"], 64_000 * 2 + 64);
    assert_eq!(gg["dtypes"], json!(["F32", "Q4_K", "Q6_K"]));
    assert_eq!(gg["format_error"], Value::Null);
    let broken = &files["broken.safetensors"];
    assert_eq!(broken["format"], "safetensors");
    assert_eq!(broken["tensor_count"], Value::Null);
    assert!(broken["format_error"]
        .as_str()
        .unwrap()
        .contains("truncated"));
    let huge = &files["huge-header.safetensors"];
    assert_eq!(huge["format"], "safetensors");
    assert_eq!(huge["tensor_count"], Value::Null);
    assert!(
        huge["format_error"]
            .as_str()
            .unwrap()
            .contains("larger than the 16 MiB"),
        "{huge}"
    );
    assert_eq!(files["model.onnx"]["format"], "onnx");
    assert_eq!(files["model.onnx"]["format_warning"], Value::Null);
    for pickled in ["sklearn/model.pkl", "pipeline.joblib", "torch/model.pt"] {
        let file = &files[pickled];
        let expected = if pickled.ends_with(".pt") {
            "pytorch"
        } else {
            "pickle"
        };
        assert_eq!(file["format"], expected, "{pickled}");
        assert!(
            file["format_warning"]
                .as_str()
                .unwrap()
                .contains("runs code"),
            "{pickled}: {file}"
        );
    }
    assert_eq!(files["README.md"]["format"], Value::Null);
    // The packages API shows the same on each file.
    let package_id = version["package_id"].as_u64().unwrap();
    let package_files = api
        .get(&format!(
            "/api/v4/projects/{project_id}/packages/{package_id}/package_files?per_page=100"
        ))
        .json();
    let listed: Vec<&Value> = package_files.as_array().unwrap().iter().collect();
    let pkl = listed
        .iter()
        .find(|f| f["file_name"] == "sklearn%2Fmodel.pkl" || f["file_name"] == "model.pkl")
        .unwrap_or_else(|| panic!("{package_files}"));
    assert_eq!(pkl["format"], "pickle");
    assert!(pkl["format_warning"].as_str().is_some());
    let st = listed
        .iter()
        .find(|f| f["file_name"] == "model.safetensors")
        .unwrap();
    assert_eq!(st["format_facts"]["tensor_count"], 3);
    // Deploy by checksum of the same content records the same facts (read from the blob).
    let deployed = api.send(
        "PUT",
        &format!("/api/v4/projects/{project_id}/packages/generic/llm/1.1.0/copy.safetensors"),
        &[
            ("X-Checksum-Deploy", "true"),
            ("X-Checksum-Sha256", &sha256_hex(&uploads[0].1)),
        ],
        b"",
    );
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let copy = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/models/llm/versions/1.1.0"
        ))
        .json();
    assert_eq!(files_by_name(&copy)["copy.safetensors"]["tensor_count"], 3);
    // The UI shows the formats and the pickle warning.
    let model = api
        .get(&format!("/api/v4/projects/{project_id}/ml/models/llm"))
        .json();
    let page = Api::anonymous(&server)
        .get(&format!(
            "/root/formats/-/ml/models/{}/versions/{}",
            model["id"], version["id"]
        ))
        .text();
    assert!(page.contains("format-warning"), "{page}");
    assert!(page.contains("runs code when loaded"));
    assert!(
        page.contains("3 tensors, 64650 parameters, BF16, F32"),
        "{page}"
    );
}

#[test]
fn mlflow_artifacts_record_their_format_too() {
    let server = TestServer::start();
    let project_id = project(&server, "mlflow-formats", "private");
    let api = Api::root(&server);
    let base = format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0");
    let experiment = api.post_json(
        &format!("{base}/mlflow/experiments/create"),
        json!({ "name": "formats" }),
    );
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = api.post_json(
        &format!("{base}/mlflow/runs/create"),
        json!({ "experiment_id": experiment_id }),
    );
    let run_id = run.json()["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let put = api.put_bytes(
        &format!(
            "{base}/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/model/model.pkl"
        ),
        b"\x80\x04pickled",
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let candidate = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/experiments/{experiment_id}/candidates"
        ))
        .json();
    let iid = candidate[0]["iid"]
        .as_u64()
        .unwrap_or_else(|| panic!("{candidate}"));
    let shown = api
        .get(&format!(
            "/api/v4/projects/{project_id}/ml/candidates/{iid}"
        ))
        .json();
    let file = &shown["files"][0];
    assert_eq!(file["file_name"], "model/model.pkl");
    assert_eq!(file["format"], "pickle");
    assert!(file["format_warning"].as_str().is_some());
}
