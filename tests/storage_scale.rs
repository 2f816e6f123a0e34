//! The storage layer at scale, over HTTP against the real server: automatic versions from
//! concurrent creators, keyset pagination of versions, models and packages, totals from kept
//! counts, requirement resolution from the ordered index, run searches ordered and filtered by
//! metrics, deletions that leave nothing behind.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};

fn mlflow(project_id: u64, rest: &str) -> String {
    format!("/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow/{rest}")
}

/// The URL of a `Link` header's `rel="next"`, without scheme and host.
fn next_link(reply: &Reply) -> Option<String> {
    let link = reply.header("link")?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        if !rel.contains("rel=\"next\"") {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let path = url.splitn(4, '/').nth(3)?;
        Some(format!("/{path}"))
    })
}

/// Every page of a keyset listing, following `rel="next"`; the items in order.
fn walk_keyset(api: &Api, first: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let reply = api.get(&path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert!(
            reply.header("x-total").is_none(),
            "keyset pages carry no totals"
        );
        items.extend(reply.json().as_array().cloned().unwrap_or_default());
        next = next_link(&reply);
        if let Some(n) = &next {
            assert!(
                !n.contains("?page=") && !n.contains("&page="),
                "a keyset link has no page number: {n}"
            );
        }
        pages += 1;
        assert!(pages < 1000, "the walk ends");
    }
    items
}

#[test]
fn eight_concurrent_creators_all_get_distinct_automatic_versions() {
    let server = TestServer::start();
    let project_id = project(&server, "concurrent", "private");
    let api = Api::root(&server);
    let created = api.post_json(&ml(project_id, "models"), json!({ "name": "busy" }));
    assert_eq!(created.status, 201, "{}", created.text());

    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    let base = server.base.clone();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                for _ in 0..EACH {
                    let reply = raw(
                        &base,
                        "POST",
                        &format!("/api/v4/projects/{project_id}/ml/models/busy/versions"),
                        &[
                            ("PRIVATE-TOKEN", ROOT_TOKEN),
                            ("Content-Type", "application/json"),
                        ],
                        b"{}",
                    );
                    assert_eq!(reply.status, 201, "{}", reply.text());
                    versions.push(reply.json()["version"].as_str().unwrap().to_string());
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.join().expect("creator thread"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), CLIENTS * EACH);
    assert_eq!(
        distinct.len(),
        CLIENTS * EACH,
        "every creator got its own number"
    );
    for patch in 0..(CLIENTS * EACH) {
        assert!(distinct.contains(&format!("1.0.{patch}")), "1.0.{patch}");
    }

    let model = api.get(&ml(project_id, "models/busy")).json();
    assert_eq!(model["version_count"], CLIENTS * EACH);
    assert_eq!(
        model["latest_version"]["version"],
        format!("1.0.{}", CLIENTS * EACH - 1)
    );
    // MLflow's sequence numbers are distinct too.
    let listed = api.get(&ml(project_id, "models/busy/versions?per_page=100"));
    assert_eq!(listed.header("x-total"), Some("200"));
    let versions = listed.json();
    assert_eq!(versions[0]["version"], "1.0.199", "newest first");
}

#[test]
fn keyset_pages_walk_versions_models_and_packages_in_order() {
    let server = TestServer::start();
    let project_id = project(&server, "keyset", "private");
    let api = Api::root(&server);
    assert_eq!(
        api.post_json(&ml(project_id, "models"), json!({ "name": "walk" }))
            .status,
        201
    );
    let mut expected = Vec::new();
    for major in 0..3 {
        for minor in 0..5 {
            for pre in ["", "-rc.1", "-rc.10", "-rc.2"] {
                let v = format!("{major}.{minor}.0{pre}");
                let reply = api.post_json(
                    &ml(project_id, "models/walk/versions"),
                    json!({ "version": v }),
                );
                assert_eq!(reply.status, 201, "{v}: {}", reply.text());
                expected.push(semver::Version::parse(&v).unwrap());
            }
        }
    }
    expected.sort();
    expected.reverse();
    let walked = walk_keyset(
        &api,
        &ml(
            project_id,
            "models/walk/versions?pagination=keyset&per_page=7",
        ),
    );
    let walked: Vec<String> = walked
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = expected.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        walked, expected,
        "SemVer precedence, newest first, every version once"
    );

    // Page numbers give the same order and totals from the kept count.
    let page3 = api.get(&ml(project_id, "models/walk/versions?page=3&per_page=7"));
    assert_eq!(page3.header("x-total"), Some("60"));
    assert_eq!(page3.header("x-total-pages"), Some("9"));
    let page3: Vec<String> = page3
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page3, expected[14..21].to_vec());

    // Resolution seeks the ordered index: prereleases only when named.
    let resolve = |req: &str| {
        let reply = api.get(&ml(
            project_id,
            &format!(
                "models/walk/versions/resolve?requirement={}",
                percent_encoding::utf8_percent_encode(req, percent_encoding::NON_ALPHANUMERIC)
            ),
        ));
        (
            reply.status,
            reply.json()["version"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(resolve("^1"), (200, "1.4.0".into()));
    assert_eq!(resolve("~1.2"), (200, "1.2.0".into()));
    assert_eq!(resolve("<1.2"), (200, "1.1.0".into()));
    assert_eq!(resolve("latest"), (200, "2.4.0".into()));
    assert_eq!(resolve(">=2.4.0-rc.1, <2.4.0"), (200, "2.4.0-rc.10".into()));
    assert_eq!(resolve("=1.3.0"), (200, "1.3.0".into()));
    assert_eq!(resolve("^3").0, 404);

    // Models by name, keyset.
    for i in 0..23 {
        let reply = api.post_json(
            &ml(project_id, "models"),
            json!({ "name": format!("m-{i:02}") }),
        );
        assert_eq!(reply.status, 201);
    }
    let names: Vec<String> = walk_keyset(
        &api,
        &ml(
            project_id,
            "models?pagination=keyset&order_by=name&sort=asc&per_page=5",
        ),
    )
    .iter()
    .map(|m| m["name"].as_str().unwrap().to_string())
    .collect();
    let mut expected_names: Vec<String> = (0..23).map(|i| format!("m-{i:02}")).collect();
    expected_names.push("walk".into());
    assert_eq!(names, expected_names);
    let all_models = api.get(&ml(project_id, "models?per_page=5"));
    assert_eq!(all_models.header("x-total"), Some("24"));

    // Packages of both types, created order, keyset.
    for i in 0..9 {
        let reply = api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/tool/{i}.0.0/t.bin"),
            b"x",
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let packages = walk_keyset(
        &api,
        &format!("/api/v4/projects/{project_id}/packages?pagination=keyset&per_page=4"),
    );
    assert_eq!(
        packages.len(),
        60 + 9,
        "every model version's package and the generic ones"
    );
    let ids: Vec<u64> = packages.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");
    let generic = walk_keyset(
        &api,
        &format!(
            "/api/v4/projects/{project_id}/packages?pagination=keyset&per_page=4&package_type=generic&sort=desc"
        ),
    );
    let versions: Vec<&str> = generic
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["8.0.0", "7.0.0", "6.0.0", "5.0.0", "4.0.0", "3.0.0", "2.0.0", "1.0.0", "0.0.0"]
    );
    let by_name = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?package_name=too&per_page=3&page=2"
    ));
    assert_eq!(by_name.header("x-total"), Some("9"));
    assert_eq!(by_name.json().as_array().unwrap().len(), 3);
    // Keyset pagination is GitLab's 405 where it is not offered, and a forged cursor is a 400.
    let unsupported = api.get(&format!(
        "/api/v4/projects/{project_id}/packages?pagination=keyset&order_by=type"
    ));
    assert_eq!(unsupported.status, 405, "{}", unsupported.text());
    let forged = api.get(&ml(
        project_id,
        "models/walk/versions?pagination=keyset&cursor=AAAA",
    ));
    assert_eq!(forged.status, 400, "{}", forged.text());
    let garbage = api.get(&ml(
        project_id,
        "models/walk/versions?pagination=keyset&cursor=%%%",
    ));
    assert_eq!(garbage.status, 400, "{}", garbage.text());
}

#[test]
fn run_searches_order_and_filter_by_latest_metrics() {
    let server = TestServer::start();
    let project_id = project(&server, "runs", "private");
    let api = Api::root(&server);
    let experiment = api.post_json(
        &mlflow(project_id, "experiments/create"),
        json!({ "name": "sweep" }),
    );
    assert_eq!(experiment.status, 200, "{}", experiment.text());
    let experiment_id = experiment.json()["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut runs = Vec::new();
    for i in 0..30i64 {
        let run = api.post_json(
            &mlflow(project_id, "runs/create"),
            json!({ "experiment_id": experiment_id, "start_time": 1_700_000_000_000i64 + i }),
        );
        assert_eq!(run.status, 200, "{}", run.text());
        let run_id = run.json()["run"]["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        // An early bad value then the real one at a later step: search sees the latest.
        let auc = (i * 7 % 30) as f64 / 30.0;
        let mut metrics = vec![
            json!({ "key": "auc", "value": 5.0, "timestamp": 1, "step": 0 }),
            json!({ "key": "auc", "value": auc, "timestamp": 2, "step": 1 }),
        ];
        if i % 5 == 0 {
            metrics.clear(); // some runs never log the metric
        }
        let batch = api.post_json(
            &mlflow(project_id, "runs/log-batch"),
            json!({
                "run_id": run_id,
                "metrics": metrics,
                "params": [{ "key": "lr", "value": if i % 3 == 0 { "0.1" } else { "0.01" } }],
            }),
        );
        assert_eq!(batch.status, 200, "{}", batch.text());
        runs.push((run_id, i, if i % 5 == 0 { None } else { Some(auc) }));
    }
    let search = |body: Value| -> (Vec<String>, Option<String>) {
        let reply = api.post_json(&mlflow(project_id, "runs/search"), body);
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        let ids = body["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| r["info"]["run_id"].as_str().unwrap().to_string())
            .collect();
        (ids, body["next_page_token"].as_str().map(str::to_string))
    };
    // Newest first by default, paged by token.
    let (first, token) = search(json!({ "experiment_ids": [experiment_id], "max_results": 12 }));
    let (second, _) = search(
        json!({ "experiment_ids": [experiment_id], "max_results": 12, "page_token": token }),
    );
    let newest: Vec<String> = runs.iter().rev().map(|r| r.0.clone()).collect();
    assert_eq!(first, newest[..12].to_vec());
    assert_eq!(second, newest[12..24].to_vec());

    // Ordered by the latest auc, descending, runs without it last; filtered by it and a param.
    let mut walked = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({ "experiment_ids": [experiment_id], "max_results": 7, "order_by": ["metrics.auc DESC"] });
        if let Some(t) = &token {
            body["page_token"] = json!(t);
        }
        let (ids, next) = search(body);
        walked.extend(ids);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(
        walked.len(),
        30,
        "every run once, those without the metric at the end"
    );
    let values: Vec<Option<f64>> = walked
        .iter()
        .map(|id| runs.iter().find(|r| &r.0 == id).unwrap().2)
        .collect();
    let with: Vec<f64> = values
        .iter()
        .take(24)
        .map(|v| v.expect("metric first"))
        .collect();
    assert!(
        with.windows(2).all(|w| w[0] >= w[1]),
        "descending by the latest value: {with:?}"
    );
    assert!(values[24..].iter().all(Option::is_none));

    let (filtered, _) = search(json!({
        "experiment_ids": [experiment_id],
        "filter": "metrics.auc > 0.5 and params.lr = '0.01'",
        "order_by": ["metrics.auc ASC"],
    }));
    let expected: Vec<String> = {
        let mut e: Vec<&(String, i64, Option<f64>)> = runs
            .iter()
            .filter(|r| r.2.is_some_and(|v| v > 0.5) && r.1 % 3 != 0)
            .collect();
        e.sort_by(|a, b| a.2.partial_cmp(&b.2).unwrap());
        e.iter().map(|r| r.0.clone()).collect()
    };
    assert!(!expected.is_empty());
    assert_eq!(filtered, expected);
    // A param equality walks the runs with that value, newest first, page by page.
    let mut walked = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({
            "experiment_ids": [experiment_id],
            "max_results": 3,
            "filter": "params.lr = '0.1'",
        });
        if let Some(t) = &token {
            body["page_token"] = json!(t);
        }
        let (ids, next) = search(body);
        walked.extend(ids);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let expected: Vec<String> = runs
        .iter()
        .rev()
        .filter(|r| r.1 % 3 == 0)
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(walked, expected);
    let (none, _) = search(json!({
        "experiment_ids": [experiment_id],
        "filter": "params.lr = '0.5'",
    }));
    assert!(none.is_empty());
    // A bounded metric walk with an offset-free descending page.
    let (top, _) = search(json!({
        "experiment_ids": [experiment_id],
        "filter": "metrics.auc >= 0.5 and metrics.auc < 0.7",
        "order_by": ["metrics.auc DESC"],
    }));
    let mut in_range: Vec<&(String, i64, Option<f64>)> = runs
        .iter()
        .filter(|r| r.2.is_some_and(|v| (0.5..0.7).contains(&v)))
        .collect();
    in_range.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap());
    assert_eq!(top.len(), in_range.len(), "{top:?} vs {in_range:?}");
    // The stale step-0 value (5.0) matches nothing: search reads the latest values only.
    let (stale, _) =
        search(json!({ "experiment_ids": [experiment_id], "filter": "metrics.auc > 1" }));
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn version_searches_list_the_most_recently_updated_first_page_by_page() {
    let server = TestServer::start();
    let project_id = project(&server, "search", "private");
    let api = Api::root(&server);
    let mut created = Vec::new(); // (model, number), oldest first
    for i in 0..12u64 {
        let name = if i % 3 == 0 { "alpha" } else { "beta" };
        if i < 2 {
            let model = api.post_json(
                &mlflow(project_id, "registered-models/create"),
                json!({ "name": name }),
            );
            assert_eq!(model.status, 200, "{}", model.text());
        }
        let version = api.post_json(
            &mlflow(project_id, "model-versions/create"),
            json!({ "name": name, "source": format!("s3://bucket/{i}") }),
        );
        assert_eq!(version.status, 200, "{}", version.text());
        let number = version.json()["model_version"]["version"]
            .as_str()
            .unwrap()
            .to_string();
        created.push((name.to_string(), number));
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    // Updating the oldest version makes it the most recently updated one.
    let (old_name, old_number) = created[0].clone();
    let updated = api.send(
        "PATCH",
        &mlflow(project_id, "model-versions/update"),
        &[("Content-Type", "application/json")],
        json!({ "name": old_name, "version": old_number, "description": "retrained" })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    let mut expected: Vec<(String, String)> = created[1..].iter().rev().cloned().collect();
    expected.insert(0, created[0].clone());

    let walk = |filter: &str| -> Vec<(String, String)> {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let encode = |text: &str| {
                percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            let mut query = format!("filter={}&max_results=5", encode(filter));
            if let Some(token) = &token {
                query.push_str(&format!("&page_token={}", encode(token)));
            }
            let reply = api.get(&mlflow(
                project_id,
                &format!("model-versions/search?{query}"),
            ));
            assert_eq!(reply.status, 200, "{}", reply.text());
            let page = reply.json();
            let versions = page["model_versions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(versions.len() <= 5);
            for v in versions {
                seen.push((
                    v["name"].as_str().unwrap().to_string(),
                    v["version"].as_str().unwrap().to_string(),
                ));
            }
            match page["next_page_token"].as_str() {
                Some(next) => token = Some(next.to_string()),
                None => return seen,
            }
        }
    };
    assert_eq!(
        walk(""),
        expected,
        "the project's versions, newest update first"
    );
    let betas: Vec<_> = expected
        .iter()
        .filter(|(n, _)| n == "beta")
        .cloned()
        .collect();
    assert_eq!(walk("name = 'beta'"), betas, "one model's index");
    let alphas: Vec<_> = expected
        .iter()
        .filter(|(n, _)| n == "alpha")
        .cloned()
        .collect();
    assert_eq!(walk("name = 'alpha'"), alphas);
    assert_eq!(alphas[0], created[0], "the updated version leads");
}

#[test]
fn deleting_a_model_removes_everything_it_owned() {
    let server = TestServer::start();
    let project_id = project(&server, "cleanup", "private");
    let api = Api::root(&server);
    assert_eq!(
        api.post_json(&ml(project_id, "models"), json!({ "name": "gone" }))
            .status,
        201
    );
    for v in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let reply = api.put_bytes(
            &format!("/api/v4/projects/{project_id}/packages/generic/gone/{v}/model.bin"),
            v.as_bytes(),
        );
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let packages = api.get(&format!("/api/v4/projects/{project_id}/packages"));
    assert_eq!(packages.header("x-total"), Some("3"));
    // Deleting the latest moves "latest" to the next one.
    let latest = api.get(&ml(project_id, "models/gone")).json();
    assert_eq!(latest["latest_version"]["version"], "1.1.0");
    assert_eq!(
        api.delete(&ml(project_id, "models/gone/versions/1.1.0"))
            .status,
        204
    );
    let latest = api.get(&ml(project_id, "models/gone")).json();
    assert_eq!(latest["latest_version"]["version"], "1.0.0");
    assert_eq!(latest["version_count"], 2);
    assert_eq!(api.delete(&ml(project_id, "models/gone")).status, 204);
    let packages = api.get(&format!("/api/v4/projects/{project_id}/packages"));
    assert_eq!(packages.header("x-total"), Some("0"));
    assert_eq!(packages.json(), json!([]));
    let models = api.get(&ml(project_id, "models"));
    assert_eq!(models.header("x-total"), Some("0"));
    // The name is free again, with nothing of the old model showing through.
    assert_eq!(
        api.post_json(&ml(project_id, "models"), json!({ "name": "gone" }))
            .status,
        201
    );
    let fresh = api.get(&ml(project_id, "models/gone")).json();
    assert_eq!(fresh["version_count"], 0);
    assert!(fresh["latest_version"].is_null());
}
