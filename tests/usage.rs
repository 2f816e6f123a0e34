//! Download counts per version and file: counted on every surface's download path, shown in the
//! API and the UI at once, written in batches that survive a clean shutdown (and, once flushed,
//! a crash), and off with `--usage-counting off`.

mod common;

use common::*;
use serde_json::{json, Value};

fn ok(reply: Reply) -> Reply {
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    reply
}

/// A model `m` with versions 1.0.0 (files `w.bin` and `cfg.json`) and 2.0.0 (no files).
fn model(api: &Api, project_id: u64) -> String {
    ok(api.post_json(&ml(project_id, "models"), json!({ "name": "m" })));
    for version in ["1.0.0", "2.0.0"] {
        ok(api.post_json(
            &ml(project_id, "models/m/versions"),
            json!({ "version": version }),
        ));
    }
    let base = format!("/api/v4/projects/{project_id}/packages/generic/m/1.0.0");
    ok(api.put_bytes(&format!("{base}/w.bin"), b"0123456789"));
    ok(api.put_bytes(&format!("{base}/cfg.json"), b"{}"));
    base
}

fn version(api: &Api, project_id: u64, version: &str) -> Value {
    ok(api.get(&ml(project_id, &format!("models/m/versions/{version}")))).json()
}

fn file<'a>(version: &'a Value, name: &str) -> &'a Value {
    version["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file_name"] == name)
        .unwrap_or_else(|| panic!("no file {name} in {version}"))
}

#[test]
fn downloads_are_counted_per_version_and_file_and_survive_a_clean_shutdown() {
    let mut server = TestServer::start_with(&["--usage-flush-seconds", "3600"]);
    let project_id = project(&server, "used", "public");
    let api = Api::root(&server);
    let base = model(&api, project_id);

    let never = version(&api, project_id, "1.0.0");
    assert_eq!(never["download_count"], 0);
    assert_eq!(never["last_downloaded_at"], Value::Null);
    assert_eq!(file(&never, "w.bin")["download_count"], 0);

    let before = chrono::Utc::now();
    for _ in 0..3 {
        assert_eq!(ok(api.get(&format!("{base}/w.bin"))).body, b"0123456789");
    }
    ok(api.get(&format!("{base}/cfg.json")));
    // Not downloads: a HEAD, and a range that resumes past the start.
    assert_eq!(
        api.send("HEAD", &format!("{base}/w.bin"), &[], b"").status,
        200
    );
    let resumed = api.send(
        "GET",
        &format!("{base}/w.bin"),
        &[("Range", "bytes=4-")],
        b"",
    );
    assert_eq!(resumed.status, 206);
    // A range from the start is a download (parallel clients fetch the head first).
    let head = api.send(
        "GET",
        &format!("{base}/w.bin"),
        &[("Range", "bytes=0-3")],
        b"",
    );
    assert_eq!(head.status, 206);

    // Shown at once, though not yet written (the flush interval is an hour).
    let counted = version(&api, project_id, "1.0.0");
    assert_eq!(counted["download_count"], 5, "{counted}");
    assert_eq!(file(&counted, "w.bin")["download_count"], 4);
    assert_eq!(file(&counted, "cfg.json")["download_count"], 1);
    let last = counted["last_downloaded_at"].as_str().unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(last).unwrap();
    assert!(last >= before - chrono::Duration::seconds(1), "{last}");
    assert_eq!(version(&api, project_id, "2.0.0")["download_count"], 0);
    // The model's listing shows its versions' counts too.
    let versions = ok(api.get(&ml(project_id, "models/m/versions"))).json();
    let listed = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == "1.0.0")
        .unwrap()
        .clone();
    assert_eq!(listed["download_count"], 5);

    // The UI's version page says so ("is anyone still using 1.0.0?").
    let model_id = counted["model_id"].as_u64().unwrap();
    let version_id = counted["id"].as_u64().unwrap();
    let page = Api::anonymous(&server).get(&format!(
        "/root/used/-/ml/models/{model_id}/versions/{version_id}"
    ));
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let at = html.find("id=\"downloads\"").expect("a downloads field");
    assert!(html[at..at + 200].contains(">5"), "{}", &html[at..at + 200]);
    let other = ok(api.get(&ml(project_id, "models/m/versions/2.0.0"))).json();
    let page = Api::anonymous(&server).get(&format!(
        "/root/used/-/ml/models/{model_id}/versions/{}",
        other["id"]
    ));
    assert!(page.text().contains("never downloaded"));

    // A clean shutdown writes what was counted in memory.
    assert!(server.stop().success());
    server.restart();
    let api = Api::root(&server);
    let after = version(&api, project_id, "1.0.0");
    assert_eq!(after["download_count"], 5, "{after}");
    assert_eq!(after["last_downloaded_at"], counted["last_downloaded_at"]);
    assert_eq!(file(&after, "w.bin")["download_count"], 4);
}

#[test]
fn flushed_counts_survive_a_crash() {
    let mut server = TestServer::start_with(&["--usage-flush-seconds", "1"]);
    let project_id = project(&server, "crashy", "private");
    let api = Api::root(&server);
    let base = model(&api, project_id);
    for _ in 0..2 {
        ok(api.get(&format!("{base}/w.bin")));
    }
    // Once a flush has run, kill -9 loses nothing.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    server.kill9();
    server.restart();
    let api = Api::root(&server);
    assert_eq!(version(&api, project_id, "1.0.0")["download_count"], 2);
    // And counting goes on from there.
    ok(api.get(&format!("{base}/w.bin")));
    assert_eq!(version(&api, project_id, "1.0.0")["download_count"], 3);
}

#[test]
fn counting_off_counts_nothing() {
    let server = TestServer::start_with(&["--usage-counting", "off"]);
    let project_id = project(&server, "uncounted", "private");
    let api = Api::root(&server);
    let base = model(&api, project_id);
    ok(api.get(&format!("{base}/w.bin")));
    let v = version(&api, project_id, "1.0.0");
    assert_eq!(v["download_count"], 0);
    assert_eq!(file(&v, "w.bin")["download_count"], 0);
}
