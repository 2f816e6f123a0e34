"""python-gitlab (pinned in e2e/requirements.txt) drives users, tokens, projects, members and
generic packages exactly as it would against GitLab."""
import hashlib
import os
import uuid

import gitlab
import pytest
import requests
from gitlab.const import AccessLevel


@pytest.fixture()
def root(server):
    gl = gitlab.Gitlab(server.url, private_token=server.root_token)
    gl.auth()
    assert gl.user.username == "root"
    return gl


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_user(gl):
    name = unique("user")
    return gl.users.create(
        {"username": name, "name": name.title(), "email": f"{name}@example.org", "password": "correct-horse-battery"}
    )


def test_version_and_current_user(root):
    version, revision = root.version()
    assert version != "unknown" and revision != "unknown"
    assert root.user.is_admin is True


def test_root_manages_projects_users_members_and_tokens(server, root):
    project = root.projects.create({"name": unique("models"), "visibility": "private"})
    assert root.projects.get(project.id).name == project.name
    assert root.projects.get(project.path_with_namespace).id == project.id

    alice, bob = new_user(root), new_user(root)
    assert {u.username for u in root.users.list(get_all=True)} >= {"root", alice.username, bob.username}

    project.members.create({"user_id": alice.id, "access_level": AccessLevel.REPORTER})
    project.members.create({"user_id": bob.id, "access_level": AccessLevel.GUEST})
    levels = {m.username: m.access_level for m in project.members.list(get_all=True)}
    assert levels[alice.username] == AccessLevel.REPORTER and levels[bob.username] == AccessLevel.GUEST

    member = project.members.get(bob.id)
    member.access_level = AccessLevel.DEVELOPER
    member.save()
    assert project.members.get(bob.id).access_level == AccessLevel.DEVELOPER

    token = alice.personal_access_tokens.create({"name": "ci", "scopes": ["api"]})
    assert token.token and token.scopes == ["api"] and token.active

    as_alice = gitlab.Gitlab(server.url, private_token=token.token)
    as_alice.auth()
    assert as_alice.user.username == alice.username
    assert [p.id for p in as_alice.projects.list(get_all=True)] == [project.id]

    listed = {t.id for t in root.personal_access_tokens.list(get_all=True)}
    assert token.id in listed
    root.personal_access_tokens.delete(token.id)
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
        gitlab.Gitlab(server.url, private_token=token.token).auth()

    project.members.delete(bob.id)
    assert bob.username not in {m.username for m in project.members.list(get_all=True)}

    project.description = "ranking models"
    project.save()
    assert root.projects.get(project.id).description == "ranking models"
    root.projects.delete(project.id)
    with pytest.raises(gitlab.exceptions.GitlabGetError) as missing:
        root.projects.get(project.id)
    assert missing.value.response_code == 404


def test_generic_packages_upload_and_download(server, root, tmp_path):
    project = root.projects.create({"name": unique("packages")})
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "model.onnx"
    source.write_bytes(payload)

    created = project.generic_packages.upload(
        package_name="fraud", package_version="1.2.0", file_name="model.onnx", path=str(source)
    )
    assert created.message == "201 Created"

    fetched = project.generic_packages.download(package_name="fraud", package_version="1.2.0", file_name="model.onnx")
    assert hashlib.sha256(fetched).hexdigest() == hashlib.sha256(payload).hexdigest()

    streamed = tmp_path / "copy.onnx"
    with open(streamed, "wb") as out:
        project.generic_packages.download(
            package_name="fraud", package_version="1.2.0", file_name="model.onnx", streamed=True, action=out.write
        )
    assert streamed.read_bytes() == payload

    # A second upload with raw data lands in the same package.
    project.generic_packages.upload(
        package_name="fraud", package_version="1.2.0", file_name="README.md", data=b"# fraud\n"
    )
    packages = project.packages.list(package_type="generic", get_all=True)
    assert [(p.name, p.version) for p in packages] == [("fraud", "1.2.0")]
    files = {f.file_name: f for f in packages[0].package_files.list(get_all=True)}
    assert set(files) == {"model.onnx", "README.md"}
    assert files["model.onnx"].size == len(payload)
    assert files["model.onnx"].file_sha256 == hashlib.sha256(payload).hexdigest()

    with pytest.raises(gitlab.exceptions.GitlabUploadError) as bad:
        project.generic_packages.upload(
            package_name="fraud", package_version="..1.2.3", file_name="model.onnx", data=b"x"
        )
    assert bad.value.response_code == 400

    project.packages.delete(packages[0].id)
    with pytest.raises(gitlab.exceptions.GitlabGetError) as gone:
        project.generic_packages.download(package_name="fraud", package_version="1.2.0", file_name="model.onnx")
    assert gone.value.response_code == 404


def test_permissions_through_the_client(server, root):
    project = root.projects.create({"name": unique("guarded"), "visibility": "private"})
    guest, developer = new_user(root), new_user(root)
    project.members.create({"user_id": guest.id, "access_level": AccessLevel.GUEST})
    project.members.create({"user_id": developer.id, "access_level": AccessLevel.DEVELOPER})
    as_guest = gitlab.Gitlab(server.url, private_token=guest.personal_access_tokens.create({"name": "g", "scopes": ["api"]}).token)
    as_dev = gitlab.Gitlab(server.url, private_token=developer.personal_access_tokens.create({"name": "d", "scopes": ["api"]}).token)

    as_dev.projects.get(project.id, lazy=True).generic_packages.upload(
        package_name="tools", package_version="0.1.0", file_name="run.sh", data=b"echo ok\n"
    )
    guest_project = as_guest.projects.get(project.id, lazy=True)
    assert guest_project.generic_packages.download(package_name="tools", package_version="0.1.0", file_name="run.sh") == b"echo ok\n"
    with pytest.raises(gitlab.exceptions.GitlabUploadError) as denied:
        guest_project.generic_packages.upload(package_name="tools", package_version="0.1.0", file_name="x", data=b"x")
    assert denied.value.response_code == 403

    anonymous = gitlab.Gitlab(server.url)
    with pytest.raises(gitlab.exceptions.GitlabGetError) as hidden:
        anonymous.projects.get(project.id)
    assert hidden.value.response_code == 404
    assert requests.get(f"{server.url}/api/v4/projects/{project.id}/packages/generic/tools/0.1.0/run.sh", timeout=10).status_code == 404
