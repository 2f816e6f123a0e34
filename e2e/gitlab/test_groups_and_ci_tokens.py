"""python-gitlab (pinned in e2e/requirements.txt) against groups, deploy tokens, project access
tokens, job tokens, `owned=True`, sudo and GitLab's 409s, as it would use them against GitLab."""
import http.server
import json
import threading
import uuid

import gitlab
import pytest
import requests
from gitlab.const import AccessLevel

import modelyard_server


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def root(server):
    gl = gitlab.Gitlab(server.url, private_token=server.root_token)
    gl.auth()
    return gl


def new_user(gl):
    name = unique("user")
    user = gl.users.create(
        {"username": name, "name": name.title(), "email": f"{name}@example.org", "password": "correct-horse-battery"}
    )
    return user


def client_of(server, user, scopes=("api",)):
    token = user.personal_access_tokens.create({"name": "t", "scopes": list(scopes)}).token
    gl = gitlab.Gitlab(server.url, private_token=token)
    gl.auth()
    return gl


def test_groups_members_and_inherited_access(server, root):
    owner, developer = new_user(root), new_user(root)
    as_owner, as_dev = client_of(server, owner), client_of(server, developer)
    path = unique("team")
    group = as_owner.groups.create({"name": path.title(), "path": path})
    assert group.full_path == path
    assert [g.id for g in as_owner.groups.list(owned=True, get_all=True)] == [group.id]

    group.members.create({"user_id": developer.id, "access_level": AccessLevel.DEVELOPER})
    assert {m.username: m.access_level for m in group.members.list(get_all=True)} == {
        owner.username: AccessLevel.OWNER,
        developer.username: AccessLevel.DEVELOPER,
    }
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as twice:
        group.members.create({"user_id": developer.id, "access_level": AccessLevel.DEVELOPER})
    assert twice.value.response_code == 409

    # Only Maintainers and Owners create projects in a group.
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as refused:
        as_dev.projects.create({"name": "models", "namespace_id": group.id})
    assert refused.value.response_code == 403
    project = as_owner.projects.create({"name": "models", "namespace_id": group.id})
    assert project.path_with_namespace == f"{path}/models"
    assert project.namespace["kind"] == "group"
    assert [p.id for p in as_owner.groups.get(group.id).projects.list(get_all=True)] == [project.id]

    # The developer is no project member, yet uploads through the group membership.
    dev_project = as_dev.projects.get(project.path_with_namespace)
    dev_project.generic_packages.upload(package_name="tools", package_version="1.0.0", file_name="t.sh", data=b"t")
    assert [p.name for p in dev_project.packages.list(get_all=True)] == ["tools"]
    assert project.id in [p.id for p in as_dev.projects.list(membership=True, get_all=True)]

    group.members.delete(developer.id)
    with pytest.raises(gitlab.exceptions.GitlabGetError) as gone:
        as_dev.projects.get(project.id)
    assert gone.value.response_code == 404
    namespaces = {n.full_path: n.kind for n in as_owner.namespaces.list(get_all=True)}
    assert namespaces[owner.username] == "user" and namespaces[path] == "group"


def test_owned_true_and_conflicts(server, root):
    user = new_user(root)
    as_user = client_of(server, user)
    mine = as_user.projects.create({"name": unique("mine")})
    root.projects.create({"name": unique("roots")})
    assert [p.id for p in as_user.projects.list(owned=True, get_all=True)] == [mine.id]
    assert mine.id in [p.id for p in as_user.projects.list(owned="t", get_all=True)]

    with pytest.raises(gitlab.exceptions.GitlabCreateError) as taken:
        root.users.create({"username": user.username, "name": "Again", "email": f"{uuid.uuid4().hex}@example.org"})
    assert taken.value.response_code == 409
    mine.members.create({"user_id": new_user(root).id, "access_level": AccessLevel.REPORTER})
    member = mine.members.list(get_all=True)[-1]
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as again:
        mine.members.create({"user_id": member.id, "access_level": AccessLevel.REPORTER})
    assert again.value.response_code == 409

    # Scopes GitLab knows are understood; a self-made token expires by default.
    token = user.personal_access_tokens.create({"name": "reader", "scopes": ["api", "read_user"]})
    assert token.scopes == ["api", "read_user"]
    own = as_user.http_post("/user/personal_access_tokens", post_data={"name": "self", "scopes": ["read_api"]})
    assert own["expires_at"], own
    read_user = gitlab.Gitlab(server.url, private_token=user.personal_access_tokens.create({"name": "ru", "scopes": ["read_user"]}).token)
    read_user.auth()
    assert read_user.user.username == user.username
    with pytest.raises(gitlab.exceptions.GitlabGetError) as scoped:
        read_user.projects.get(mine.id)
    assert scoped.value.response_code == 403


def test_sudo_for_admins(server, root):
    alice, bob = new_user(root), new_user(root)
    sudo_token = root.users.get(root.user.id).personal_access_tokens.create({"name": "sudo", "scopes": ["api", "sudo"]})
    admin = gitlab.Gitlab(server.url, private_token=sudo_token.token)
    created = admin.projects.create({"name": unique("as-alice")}, sudo=alice.username)
    assert created.namespace["full_path"] == alice.username
    assert created.creator_id == alice.id
    admin_as_alice = gitlab.Gitlab(server.url, private_token=sudo_token.token)
    admin_as_alice.headers["Sudo"] = str(alice.id)
    admin_as_alice.auth()
    assert admin_as_alice.user.username == alice.username

    # Without the sudo scope, or for a non-admin, Sudo is refused rather than ignored.
    plain = gitlab.Gitlab(server.url, private_token=server.root_token)
    plain.headers["Sudo"] = alice.username
    with pytest.raises(gitlab.exceptions.GitlabGetError) as no_scope:
        plain.auth()
    assert no_scope.value.response_code == 403
    as_bob = client_of(server, bob)
    as_bob.headers["Sudo"] = alice.username
    with pytest.raises(gitlab.exceptions.GitlabGetError) as not_admin:
        as_bob.auth()
    assert not_admin.value.response_code == 403

    # Admins edit and delete users.
    user = root.users.get(bob.id)
    user.name = "Robert"
    user.save()
    assert root.users.get(bob.id).name == "Robert"
    root.users.delete(bob.id)
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        root.users.get(bob.id)


def test_deploy_tokens_and_project_access_tokens(server, root):
    project = root.projects.create({"name": unique("deployed"), "visibility": "private"})
    root.http_post(f"/projects/{project.id}/ml/models", post_data={"name": "fraud"})
    project.generic_packages.upload(package_name="fraud", package_version="1.0.0", file_name="model.onnx", data=b"w1")

    deploy = project.deploytokens.create({"name": "prod", "scopes": ["read_package_registry"]})
    assert deploy.username.startswith("gitlab+deploy-token-") and deploy.token
    url = f"{server.url}/api/v4/projects/{project.id}/packages/generic/fraud/1.0.0/model.onnx"
    assert requests.get(url, headers={"DEPLOY-TOKEN": deploy.token}, timeout=10).content == b"w1"
    assert requests.get(url, auth=(deploy.username, deploy.token), timeout=10).status_code == 200
    assert requests.put(url, data=b"x", headers={"DEPLOY-TOKEN": deploy.token}, timeout=10).status_code == 403
    assert [t.id for t in project.deploytokens.list(get_all=True)] == [deploy.id]
    project.deploytokens.delete(deploy.id)
    assert requests.get(url, headers={"DEPLOY-TOKEN": deploy.token}, timeout=10).status_code == 401

    bot_token = project.access_tokens.create(
        {"name": "jenkins", "scopes": ["api"], "access_level": AccessLevel.DEVELOPER}
    )
    assert bot_token.access_level == AccessLevel.DEVELOPER and bot_token.expires_at
    bot = gitlab.Gitlab(server.url, private_token=bot_token.token)
    bot.auth()
    assert bot.user.bot is True
    bot.projects.get(project.id, lazy=True).generic_packages.upload(
        package_name="fraud", package_version="1.1.0", file_name="model.onnx", data=b"w2"
    )
    assert [t.name for t in project.access_tokens.list(get_all=True)] == ["jenkins"]
    project.access_tokens.delete(bot_token.id)
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
        gitlab.Gitlab(server.url, private_token=bot_token.token).auth()


class _StubGitlab(http.server.BaseHTTPRequestHandler):
    """GitLab's `GET /api/v4/job` for one running job."""

    jobs = {}

    def do_GET(self):
        job = self.jobs.get(self.headers.get("JOB-TOKEN", ""))
        if self.path != "/api/v4/job" or job is None:
            self.send_response(401)
            body = b'{"message":"401 Unauthorized"}'
        else:
            self.send_response(200)
            body = json.dumps(job).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_job_tokens_through_python_gitlab():
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubGitlab)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    gitlab_url = f"http://127.0.0.1:{stub.server_address[1]}"
    _StubGitlab.jobs["ci-job-token"] = {
        "id": 314, "name": "train", "status": "running", "ref": "main",
        "web_url": f"{gitlab_url}/ml-team/trainer/-/jobs/314",
        "pipeline": {"id": 27, "project_id": 5, "sha": "c0ffee", "ref": "main",
                     "web_url": f"{gitlab_url}/ml-team/trainer/-/pipelines/27"},
        "user": {"username": "alice"},
    }
    server = modelyard_server.start(extra_env={"MODELYARD_GITLAB_URL": gitlab_url})
    try:
        root = gitlab.Gitlab(server.url, private_token=server.root_token)
        project = root.projects.create({"name": "fraud", "visibility": "private"})
        project.ci_job_token_gitlab_projects = ["ml-team/trainer"]
        project.save()
        job = gitlab.Gitlab(server.url, job_token="ci-job-token")
        as_job = job.projects.get(project.id, lazy=True)
        as_job.generic_packages.upload(package_name="data", package_version="1.0.0", file_name="d.csv", data=b"a,b")
        package = project.packages.list(get_all=True)[0]
        assert package.pipeline["id"] == 27 and package.pipeline["sha"] == "c0ffee"
        with pytest.raises(gitlab.exceptions.GitlabAuthenticationError) as bad:
            gitlab.Gitlab(server.url, job_token="finished").projects.get(project.id)
        assert bad.value.response_code == 401
    finally:
        modelyard_server.cleanup(server)
        stub.shutdown()
