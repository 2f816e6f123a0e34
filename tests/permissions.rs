//! The access table of DESIGN §4 over HTTP, for generic packages and project administration.

mod common;

use common::*;
use serde_json::json;

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    NonMember,
    Guest,
    Reporter,
    Developer,
    Maintainer,
}

#[test]
fn generic_package_permission_matrix() {
    let server = TestServer::start();
    let public = project(&server, "open", "public");
    let private = project(&server, "closed", "private");
    let (non_member, non_member_token) = user_with_token(&server, "outsider", "api");
    let _ = non_member;
    let mut tokens = std::collections::HashMap::new();
    for (name, level) in [
        ("guest", 10u8),
        ("reporter", 20),
        ("developer", 30),
        ("maintainer", 40),
    ] {
        let (id, token) = user_with_token(&server, name, "api");
        add_member(&server, public, id, level);
        add_member(&server, private, id, level);
        tokens.insert(name, token);
    }
    let token_of = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::NonMember => Some(non_member_token.clone()),
            Who::Guest => Some(tokens["guest"].clone()),
            Who::Reporter => Some(tokens["reporter"].clone()),
            Who::Developer => Some(tokens["developer"].clone()),
            Who::Maintainer => Some(tokens["maintainer"].clone()),
        }
    };
    // (who, upload public, upload private, download public, download private, delete public, delete private)
    let table = [
        (Who::Anonymous, 401, 401, 200, 404, 401, 401),
        (Who::NonMember, 403, 404, 200, 404, 403, 404),
        (Who::Guest, 403, 403, 200, 200, 403, 403),
        (Who::Reporter, 403, 403, 200, 200, 403, 403),
        (Who::Developer, 201, 201, 200, 200, 403, 403),
        (Who::Maintainer, 201, 201, 200, 200, 204, 204),
    ];
    let root = Api::root(&server);
    for (who, up_pub, up_priv, down_pub, down_priv, del_pub, del_priv) in table {
        let api = Api {
            server: &server,
            token: token_of(who),
        };
        for (project_id, upload, download, delete) in [
            (public, up_pub, down_pub, del_pub),
            (private, up_priv, down_priv, del_priv),
        ] {
            let seeded =
                format!("/api/v4/projects/{project_id}/packages/generic/seed-{who:?}/1.0.0/f.txt");
            assert_eq!(root.put_bytes(&seeded, b"seed").status, 201);
            let package_id = root
                .get(&format!(
                    "/api/v4/projects/{project_id}/packages?package_name=seed-{who:?}"
                ))
                .json()[0]["id"]
                .as_u64()
                .unwrap();

            let put = api.put_bytes(
                &format!("/api/v4/projects/{project_id}/packages/generic/up-{who:?}/1.0.0/f.txt"),
                b"x",
            );
            assert_eq!(
                put.status,
                upload,
                "{who:?} upload to project {project_id}: {}",
                put.text()
            );
            let get = api.get(&seeded);
            assert_eq!(
                get.status, download,
                "{who:?} download from project {project_id}"
            );
            if download == 200 {
                assert_eq!(get.body, b"seed");
            }
            let del = api.delete(&format!(
                "/api/v4/projects/{project_id}/packages/{package_id}"
            ));
            assert_eq!(
                del.status,
                delete,
                "{who:?} delete in project {project_id}: {}",
                del.text()
            );
            for reply in [&put, &del] {
                if reply.status >= 400 {
                    assert!(
                        reply.json()["message"].is_string(),
                        "{who:?}: {}",
                        reply.text()
                    );
                }
            }
        }
    }
}

#[test]
fn bad_tokens_read_only_tokens_and_every_credential_form() {
    let server = TestServer::start();
    let project_id = project(&server, "creds", "private");
    let path = format!("/api/v4/projects/{project_id}/packages/generic/p/1.0.0/f.txt");
    let invalid = Api::with_token(&server, "glpat-not-a-real-token");
    assert_eq!(invalid.get(&path).status, 401);
    assert_eq!(
        invalid.get("/api/v4/projects/creds").json(),
        json!({ "message": "401 Unauthorized" })
    );

    let (user_id, read_only) = user_with_token(&server, "reader", "read_api");
    add_member(&server, project_id, user_id, 40);
    assert_eq!(Api::root(&server).put_bytes(&path, b"data").status, 201);
    let reader = Api::with_token(&server, &read_only);
    assert_eq!(reader.get(&path).status, 200);
    assert_eq!(reader.put_bytes(&path, b"nope").status, 403);

    let bearer = raw(
        &server.base,
        "GET",
        &path,
        &[("Authorization", &format!("Bearer {ROOT_TOKEN}"))],
        b"",
    );
    assert_eq!(bearer.status, 200);
    let basic = base64_encode(&format!("anything:{ROOT_TOKEN}"));
    let basic = raw(
        &server.base,
        "GET",
        &path,
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    );
    assert_eq!(basic.status, 200);
    let wrong_basic = base64_encode("root:wrong");
    let wrong = raw(
        &server.base,
        "GET",
        &path,
        &[("Authorization", &format!("Basic {wrong_basic}"))],
        b"",
    );
    assert_eq!(wrong.status, 401);
}

#[test]
fn revoked_and_expired_tokens_stop_working() {
    let server = TestServer::start();
    let (_, token) = user_with_token(&server, "leaver", "api");
    let api = Api::with_token(&server, &token);
    let me = api.get("/api/v4/user");
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["username"], "leaver");
    let tokens = api.get("/api/v4/personal_access_tokens").json();
    let id = tokens[0]["id"].as_u64().unwrap();
    assert_eq!(
        api.delete(&format!("/api/v4/personal_access_tokens/{id}"))
            .status,
        204
    );
    assert_eq!(api.get("/api/v4/user").status, 401);

    let root = Api::root(&server);
    let past = root.post_json(
        "/api/v4/user/personal_access_tokens",
        json!({ "name": "old", "scopes": ["api"], "expires_at": "2001-01-01" }),
    );
    assert_eq!(
        past.status,
        400,
        "expiry in the past is refused: {}",
        past.text()
    );
}

#[test]
fn project_administration_needs_maintainer_and_hides_private_projects() {
    let server = TestServer::start();
    let project_id = project(&server, "admin-me", "private");
    let (dev_id, dev) = user_with_token(&server, "dev", "api");
    let (maint_id, maint) = user_with_token(&server, "maint", "api");
    let (_, outsider) = user_with_token(&server, "nobody", "api");
    add_member(&server, project_id, dev_id, 30);
    add_member(&server, project_id, maint_id, 40);
    let settings = json!({ "description": "changed" });
    let path = format!("/api/v4/projects/{project_id}");
    assert_eq!(
        Api::with_token(&server, &dev)
            .put_json(&path, settings.clone())
            .status,
        403
    );
    assert_eq!(
        Api::with_token(&server, &maint)
            .put_json(&path, settings)
            .status,
        200
    );
    assert_eq!(Api::with_token(&server, &outsider).get(&path).status, 404);
    assert_eq!(Api::anonymous(&server).get(&path).status, 404);
    let listed = Api::with_token(&server, &outsider)
        .get("/api/v4/projects")
        .json();
    assert_eq!(
        listed,
        json!([]),
        "a private project is not listed to outsiders"
    );
    assert_eq!(Api::with_token(&server, &maint).delete(&path).status, 403);
    let members = Api::with_token(&server, &dev)
        .get(&format!("{path}/members"))
        .json();
    assert_eq!(members.as_array().unwrap().len(), 3);
    let add = Api::with_token(&server, &dev).post_json(
        &format!("{path}/members"),
        json!({ "user_id": dev_id, "access_level": 50 }),
    );
    assert_eq!(add.status, 403, "a developer cannot promote itself");
    assert_eq!(Api::root(&server).delete(&path).status, 202);
    assert_eq!(Api::root(&server).get(&path).status, 404);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
