//! API details real clients hit: multipart bodies, GitLab's booleans, member expiry, token
//! scopes, `select=package_file`, the users' listings.

mod common;

use common::*;
use serde_json::json;

fn curl_form(server: &TestServer, path: &str, fields: &[&str]) -> (u16, serde_json::Value) {
    let mut cmd = curl();
    cmd.args(["-o", "-", "-w", "\n%{http_code}", "-H"])
        .arg(format!("PRIVATE-TOKEN: {ROOT_TOKEN}"));
    for field in fields {
        cmd.arg("-F").arg(field);
    }
    let out = cmd.arg(server.url(path)).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (
        code.trim().parse().expect("status"),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn multipart_bodies_create_users_and_projects() {
    let server = TestServer::start();
    let (status, user) = curl_form(
        &server,
        "/api/v4/users",
        &[
            "username=mpuser",
            "name=Multi Part",
            "email=mp@example.com",
            "password=correct horse battery",
        ],
    );
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["name"], "Multi Part");
    let (status, project) = curl_form(
        &server,
        "/api/v4/projects",
        &[
            "name=form-made",
            "visibility=internal",
            "generic_duplicates_allowed=f",
        ],
    );
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["visibility"], "internal");
    assert_eq!(project["generic_duplicates_allowed"], false);
    let (status, _) = curl_form(
        &server,
        "/api/v4/users",
        &["username=mpuser", "email=x@example.com"],
    );
    assert_eq!(status, 409);
}

#[test]
fn booleans_as_gitlab_takes_them() {
    let server = TestServer::start();
    let root = Api::root(&server);
    let mine = project(&server, "mine", "private");
    for value in ["True", "true", "t", "on", "1", "yes"] {
        let listed = root.get(&format!("/api/v4/projects?owned={value}"));
        assert_eq!(listed.status, 200, "owned={value}: {}", listed.text());
        assert_eq!(listed.json()[0]["id"], mine);
    }
    for value in ["False", "f", "off", "0"] {
        assert_eq!(
            root.get(&format!("/api/v4/projects?owned={value}")).status,
            200
        );
    }
    let bad = root.get("/api/v4/projects?owned=maybe");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "owned is invalid");
}

#[test]
fn members_expire_scopes_are_understood_and_users_are_listed() {
    let server = TestServer::start();
    let root = Api::root(&server);
    let id = project(&server, "p", "private");
    let (alice_id, _) = user_with_token(&server, "alice", "api");
    let added = root.post_json(
        &format!("/api/v4/projects/{id}/members"),
        json!({ "user_id": alice_id, "access_level": 30, "expires_at": "2999-01-31" }),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    assert_eq!(added.json()["expires_at"], "2999-01-31");
    let shown = root.get(&format!("/api/v4/projects/{id}/members/{alice_id}"));
    assert_eq!(shown.json()["expires_at"], "2999-01-31");
    let past = root.put_json(
        &format!("/api/v4/projects/{id}/members/{alice_id}"),
        json!({ "access_level": 30, "expires_at": "2001-01-01" }),
    );
    assert_eq!(past.status, 400, "{}", past.text());

    let scoped = root.post_json(
        &format!("/api/v4/users/{alice_id}/personal_access_tokens"),
        json!({ "name": "many", "scopes": ["api", "read_user", "read_registry", "write_registry", "sudo"] }),
    );
    assert_eq!(scoped.status, 201, "{}", scoped.text());
    assert_eq!(scoped.json()["scopes"].as_array().map(Vec::len), Some(5));
    let unknown = root.post_json(
        &format!("/api/v4/users/{alice_id}/personal_access_tokens"),
        json!({ "name": "bad", "scopes": ["api", "everything"] }),
    );
    assert_eq!(unknown.status, 400);

    let memberships = root.get(&format!("/api/v4/users/{alice_id}/memberships"));
    assert_eq!(memberships.status, 200, "{}", memberships.text());
    assert_eq!(memberships.json()[0]["source_id"], id);
    assert_eq!(memberships.json()[0]["source_type"], "Project");
    let projects = root.get("/api/v4/users/root/projects");
    assert_eq!(projects.json()[0]["id"], id, "{}", projects.text());

    // select=package_file answers GitLab's file object.
    let file = root.put_bytes(
        &format!("/api/v4/projects/{id}/packages/generic/pkg/1.0.0/f.bin?select=package_file"),
        b"bytes",
    );
    assert_eq!(file.status, 200, "{}", file.text());
    let file = file.json();
    for field in [
        "id",
        "package_id",
        "created_at",
        "updated_at",
        "size",
        "file_store",
        "file_md5",
        "file_sha1",
        "file_sha256",
        "file_name",
        "file",
        "verification_retry_at",
        "verified_at",
        "verification_failure",
        "verification_retry_count",
        "verification_checksum",
        "verification_state",
        "verification_started_at",
        "new_file_path",
        "status",
        "file_final_path",
        "project_id",
    ] {
        assert!(file.get(field).is_some(), "{field} missing from {file}");
    }
}

/// `GET /users` reads one page by id with the kept total, finds a username through its index
/// (any case), and a search walks past the first batch of users it reads.
#[test]
fn the_users_listing_pages_with_a_kept_total_and_searches_past_a_batch() {
    let server = TestServer::start();
    let root = Api::root(&server);
    for i in 0..520 {
        let name = if i == 515 {
            "Needle Person".to_string()
        } else {
            format!("User {i}")
        };
        let made = root.post_json(
            "/api/v4/users",
            json!({"username": format!("u{i:03}"), "name": name, "email": format!("u{i}@example.com")}),
        );
        assert_eq!(made.status, 201, "{}", made.text());
    }
    let second = root.get("/api/v4/users?per_page=50&page=2");
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("x-total"), Some("521"), "root and 520 users");
    assert_eq!(second.header("x-total-pages"), Some("11"));
    assert_eq!(second.header("x-next-page"), Some("3"));
    let names: Vec<String> = second
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (49..99).map(|i| format!("u{i:03}")).collect();
    assert_eq!(names, expected, "page 2 is users 50-99 by id, root first");
    let last = root.get("/api/v4/users?per_page=50&page=11");
    assert_eq!(last.json().as_array().unwrap().len(), 21);
    assert_eq!(last.header("x-next-page"), Some(""));

    let one = root.get("/api/v4/users?username=U042");
    assert_eq!(one.json().as_array().unwrap().len(), 1);
    assert_eq!(one.json()[0]["username"], "u042");
    assert_eq!(one.header("x-total"), Some("1"));
    let none = root.get("/api/v4/users?username=nobody");
    assert_eq!(none.json(), json!([]));

    let found = root.get("/api/v4/users?search=needle");
    assert_eq!(found.status, 200);
    let found = found.json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(
        found[0]["username"], "u515",
        "a match after the first 500 users read"
    );
    let many = root.get("/api/v4/users?search=user%201&per_page=5&page=2");
    let many_names: Vec<String> = many
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        many_names,
        ["u014", "u015", "u016", "u017", "u018"],
        "matches 6-10 in id order"
    );
    assert_eq!(
        many.header("x-next-page"),
        Some("3"),
        "more matches after this page"
    );
}
