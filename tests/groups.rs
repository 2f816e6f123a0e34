//! Groups against a real server: members with roles, projects that inherit them (the higher of
//! group and project role), and the namespace rule (only a group's Maintainers and Owners create
//! projects in it).

mod common;

use common::*;
use serde_json::json;

#[test]
fn projects_in_a_group_inherit_its_members() {
    let server = TestServer::start();
    let root = Api::root(&server);
    let (alice_id, alice) = user_with_token(&server, "alice", "api");
    let (bob_id, bob) = user_with_token(&server, "bob", "api");
    let (carol_id, carol) = user_with_token(&server, "carol", "api");
    let (alice, bob, carol) = (
        Api::with_token(&server, &alice),
        Api::with_token(&server, &bob),
        Api::with_token(&server, &carol),
    );

    let group = alice.post_json(
        "/api/v4/groups",
        json!({ "name": "ML team", "path": "ml-team" }),
    );
    assert_eq!(group.status, 201, "{}", group.text());
    let group = group.json();
    let group_id = group["id"].as_u64().unwrap();
    assert_eq!(group["full_path"], "ml-team");
    assert_eq!(group["visibility"], "private");
    let members = alice.get(&format!("/api/v4/groups/{group_id}/members"));
    assert_eq!(members.json()[0]["id"], alice_id);
    assert_eq!(members.json()[0]["access_level"], 50);

    // Not a member: the private group is not there; no projects in it.
    assert_eq!(bob.get(&format!("/api/v4/groups/{group_id}")).status, 404);
    let denied = bob.post_json(
        "/api/v4/projects",
        json!({ "name": "fraud", "namespace_id": group_id }),
    );
    assert_eq!(denied.status, 404, "{}", denied.text());

    // A Developer of the group sees it but may not create projects in it.
    let added = alice.post_json(
        &format!("/api/v4/groups/{group_id}/members"),
        json!({ "user_id": bob_id, "access_level": 30 }),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    let again = alice.post_json(
        &format!("/api/v4/groups/{group_id}/members"),
        json!({ "user_id": bob_id, "access_level": 30 }),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    let denied = bob.post_json(
        "/api/v4/projects",
        json!({ "name": "fraud", "namespace_path": "ml-team" }),
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert!(
        denied.text().contains("Maintainers and Owners"),
        "{}",
        denied.text()
    );

    // The Owner creates one; its namespace is the group.
    let created = alice.post_json(
        "/api/v4/projects",
        json!({ "name": "fraud", "namespace_id": group_id, "visibility": "private" }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let project = created.json();
    assert_eq!(project["path_with_namespace"], "ml-team/fraud");
    assert_eq!(project["namespace"]["kind"], "group");
    assert_eq!(project["namespace"]["id"], group_id);
    let pid = project["id"].as_u64().unwrap();

    // Bob, a group Developer and no project member, uploads to it; deletes nothing.
    let upload = bob.put_bytes(
        &format!("/api/v4/projects/{pid}/packages/generic/a/1.0.0/a.bin"),
        b"a",
    );
    assert_eq!(upload.status, 201, "{}", upload.text());
    let package = root.get(&format!("/api/v4/projects/{pid}/packages")).json()[0]["id"]
        .as_u64()
        .unwrap();
    assert_eq!(
        bob.delete(&format!("/api/v4/projects/{pid}/packages/{package}"))
            .status,
        403
    );
    // The higher of group and project role: Carol, project Reporter and group Maintainer,
    // deletes; a Maintainer creates projects in the group.
    add_member(&server, pid, carol_id, 20);
    assert_eq!(
        carol
            .put_bytes(
                &format!("/api/v4/projects/{pid}/packages/generic/b/1.0.0/b"),
                b"b"
            )
            .status,
        403,
        "a project Reporter alone uploads no generic packages"
    );
    alice.post_json(
        &format!("/api/v4/groups/{group_id}/members"),
        json!({ "user_id": carol_id, "access_level": 40 }),
    );
    assert_eq!(
        carol
            .delete(&format!("/api/v4/projects/{pid}/packages/{package}"))
            .status,
        204
    );
    let theirs = carol.post_json(
        "/api/v4/projects",
        json!({ "name": "churn", "namespace_path": "ml-team" }),
    );
    assert_eq!(theirs.status, 201, "{}", theirs.text());

    // Subgroups inherit their parents' members too.
    let sub = alice.post_json(
        "/api/v4/groups",
        json!({ "name": "vision", "path": "vision", "parent_id": group_id }),
    );
    assert_eq!(sub.status, 201, "{}", sub.text());
    assert_eq!(sub.json()["full_path"], "ml-team/vision");
    let by_path = carol.get("/api/v4/groups/ml-team%2Fvision");
    assert_eq!(by_path.status, 200, "{}", by_path.text());
    assert_eq!(by_path.json()["parent_id"], group_id);
    let vision = carol.post_json(
        "/api/v4/projects",
        json!({ "name": "detector", "namespace_path": "ml-team/vision" }),
    );
    assert_eq!(
        vision.status,
        201,
        "a parent's Maintainer: {}",
        vision.text()
    );
    let vid = vision.json()["id"].as_u64().unwrap();
    assert_eq!(
        bob.put_bytes(
            &format!("/api/v4/projects/{vid}/packages/generic/a/1.0.0/a"),
            b"a"
        )
        .status,
        201
    );

    // Listings: the group's projects, bob's groups, namespaces.
    let projects = bob.get(&format!("/api/v4/groups/{group_id}/projects"));
    let paths: Vec<String> = projects
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path_with_namespace"].as_str().unwrap().to_string())
        .collect();
    assert!(
        paths.iter().any(|p| p == "ml-team/fraud") && paths.iter().any(|p| p == "ml-team/churn"),
        "{paths:?}"
    );
    assert_eq!(
        bob.get("/api/v4/groups").json().as_array().map(Vec::len),
        Some(2)
    );
    let namespaces = bob.get("/api/v4/namespaces");
    let kinds: Vec<String> = namespaces
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                n["kind"].as_str().unwrap(),
                n["full_path"].as_str().unwrap()
            )
        })
        .collect();
    assert!(kinds.contains(&"user:bob".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"group:ml-team".to_string()), "{kinds:?}");

    // Removing Bob from the group takes his inherited access away.
    assert_eq!(
        alice
            .delete(&format!("/api/v4/groups/{group_id}/members/{bob_id}"))
            .status,
        204
    );
    assert_eq!(bob.get(&format!("/api/v4/projects/{pid}")).status, 404);
    // The last Owner stays.
    let last = alice.delete(&format!("/api/v4/groups/{group_id}/members/{alice_id}"));
    assert_eq!(last.status, 403, "{}", last.text());

    // Owners and Maintainers edit a group; only Owners delete one, and only once it is empty.
    let renamed = carol.put_json(
        &format!("/api/v4/groups/{group_id}"),
        json!({ "description": "the ML team", "visibility": "internal" }),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    assert_eq!(renamed.json()["visibility"], "internal");
    assert_eq!(
        carol.delete(&format!("/api/v4/groups/{group_id}")).status,
        403
    );
    let busy = alice.delete(&format!("/api/v4/groups/{group_id}"));
    assert_eq!(busy.status, 400, "{}", busy.text());
    let vision_id = sub.json()["id"].as_u64().unwrap();
    assert_eq!(root.delete(&format!("/api/v4/projects/{vid}")).status, 202);
    assert_eq!(
        alice.delete(&format!("/api/v4/groups/{vision_id}")).status,
        202
    );
    assert_eq!(
        alice.get(&format!("/api/v4/groups/{vision_id}")).status,
        404
    );
}

#[test]
fn group_paths_and_usernames_share_one_namespace() {
    let server = TestServer::start();
    let root = Api::root(&server);
    let (_, alice) = user_with_token(&server, "alice", "api");
    let taken =
        Api::with_token(&server, &alice).post_json("/api/v4/groups", json!({ "name": "root" }));
    assert_eq!(taken.status, 400, "{}", taken.text());
    assert_eq!(
        root.post_json("/api/v4/groups", json!({ "name": "team" }))
            .status,
        201
    );
    let user = root.post_json(
        "/api/v4/users",
        json!({ "username": "team", "name": "Team", "email": "t@example.com" }),
    );
    assert_eq!(user.status, 409, "{}", user.text());
    let again = root.post_json(
        "/api/v4/users",
        json!({ "username": "alice", "name": "A", "email": "a2@example.com" }),
    );
    assert_eq!(again.status, 409, "{}", again.text());
    // An unknown parent, a bad path.
    assert_eq!(
        root.post_json(
            "/api/v4/groups",
            json!({ "name": "x", "parent_id": 999999 })
        )
        .status,
        404
    );
    assert_eq!(
        root.post_json("/api/v4/groups", json!({ "name": "x", "path": "../x" }))
            .status,
        400
    );
    assert_eq!(
        Api::anonymous(&server)
            .post_json("/api/v4/groups", json!({ "name": "y" }))
            .status,
        401
    );
}
