"""OCI clients against the real server: the `oras` Python SDK (pinned in e2e/requirements.txt)
pushes and pulls versions, and Debian's skopeo (scripts/install-skopeo.sh) inspects and copies
them to an OCI layout. The README's OCI snippets run here as written there."""
import hashlib
import json
import os
import re
import subprocess
import uuid

import oras.client
import pytest
import requests

import modelyard_server

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


@pytest.fixture(scope="module")
def registry():
    """A server of its own: the README's snippets use the quickstart's names (root/fraud)."""
    running = modelyard_server.start()
    running.host = running.url.removeprefix("http://")
    yield running
    modelyard_server.cleanup(running)


def api(registry, method, path, **kwargs):
    response = requests.request(
        method, registry.url + "/api/v4" + path, headers={"PRIVATE-TOKEN": registry.root_token}, **kwargs
    )
    assert response.status_code < 300, response.text
    return response


def new_model(registry, project=None, model=None):
    project = project or f"p{uuid.uuid4().hex[:8]}"
    model = model or "scorer"
    api(registry, "POST", "/projects", data={"name": project, "visibility": "private"})
    api(registry, "POST", f"/projects/root%2F{project}/ml/models", json={"name": model})
    return project, model


def curl_upload(registry, project, model, version, path):
    """Uploads a file the quickstart's way: curl --upload-file on the generic package path."""
    subprocess.run(
        [
            "curl", "--fail", "--silent", "--show-error",
            "--header", f"PRIVATE-TOKEN: {registry.root_token}",
            "--upload-file", str(path),
            f"{registry.url}/api/v4/projects/root%2F{project}/packages/generic/{model}/{version}/{os.path.basename(path)}",
        ],
        check=True,
    )


def client_for(registry, workdir):
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.login(
        username="root",
        password=registry.root_token,
        hostname=registry.host,
        config_path=str(workdir / "oras-auth.json"),
    )
    return client


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write(path, data):
    path.write_bytes(data)
    return path


def test_oras_pushes_a_three_file_version_and_pulls_it_back_byte_identical(registry, tmp_path, monkeypatch):
    project, model = new_model(registry)
    monkeypatch.chdir(tmp_path)
    files = {
        "model.onnx": os.urandom(3 << 20),
        "config.json": b'{"threshold": 0.7}',
        "README.md": b"# scorer\n",
    }
    for name, data in files.items():
        write(tmp_path / name, data)
    client = client_for(registry, tmp_path)
    target = f"{registry.host}/root/{project}/{model}:1.3.0"
    pushed = client.push(target, files=list(files))
    assert pushed.status_code == 201
    pulled = client.pull(target, outdir=str(tmp_path / "pulled"))
    assert sorted(os.path.basename(p) for p in pulled) == sorted(files)
    for path in pulled:
        with open(path, "rb") as f:
            assert f.read() == files[os.path.basename(path)]
    # The push made the version, visible to the model registry's API with the same files.
    version = api(registry, "GET", f"/projects/root%2F{project}/ml/models/{model}/versions/1.3.0").json()
    assert sorted(f["file_name"] for f in version["files"]) == sorted(files)


def test_oras_pulls_a_version_uploaded_with_curl(registry, tmp_path):
    project, model = new_model(registry)
    weights = write(tmp_path / "model.onnx", os.urandom(1 << 20))
    curl_upload(registry, project, model, "2.0.0", weights)
    client = client_for(registry, tmp_path)
    pulled = client.pull(f"{registry.host}/root/{project}/{model}:2.0.0", outdir=str(tmp_path / "out"))
    assert [os.path.basename(p) for p in pulled] == ["model.onnx"]
    assert sha256_of(pulled[0]) == sha256_of(weights)


def test_oras_pulls_the_newest_patch_of_a_floating_tag(registry, tmp_path):
    project, model = new_model(registry)
    for version in ["1.2.0", "1.2.3", "1.3.0", "1.2.4-rc.1"]:
        directory = tmp_path / version
        directory.mkdir()
        curl_upload(registry, project, model, version, write(directory / "version.txt", version.encode()))
    client = client_for(registry, tmp_path)
    pulled = client.pull(f"{registry.host}/root/{project}/{model}:1.2", outdir=str(tmp_path / "out"))
    with open(pulled[0], "rb") as f:
        assert f.read() == b"1.2.3"


def skopeo(*args):
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True).stdout


def test_skopeo_inspects_the_raw_manifest(registry, tmp_path):
    project, model = new_model(registry)
    curl_upload(registry, project, model, "1.0.0", write(tmp_path / "model.onnx", os.urandom(4096)))
    ref = f"docker://{registry.host}/root/{project}/{model}:1.0.0"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", f"root:{registry.root_token}", ref)
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert manifest["layers"][0]["annotations"]["org.opencontainers.image.title"] == "model.onnx"
    assert manifest["layers"][0]["digest"] == "sha256:" + sha256_of(tmp_path / "model.onnx")
    # The same bytes as the registry serves, whose digest it names.
    served = requests.get(
        f"{registry.url}/v2/root/{project}/{model}/manifests/1.0.0", auth=("root", registry.root_token)
    )
    assert served.content == raw.encode()
    assert served.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(served.content).hexdigest()


def test_skopeo_copies_a_version_to_an_oci_layout_whose_blobs_verify(registry, tmp_path):
    project, model = new_model(registry)
    weights = write(tmp_path / "model.onnx", os.urandom(2 << 20))
    curl_upload(registry, project, model, "1.1.0", weights)
    curl_upload(registry, project, model, "1.1.0", write(tmp_path / "labels.txt", b"fraud\nok\n"))
    layout = tmp_path / "layout"
    skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", f"root:{registry.root_token}",
        f"docker://{registry.host}/root/{project}/{model}:1.1", f"oci:{layout}:1.1",
    )
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    blobs = layout / "blobs" / "sha256"
    for blob in blobs.iterdir():
        assert sha256_of(blob) == blob.name, f"{blob.name} does not verify"
    manifest = json.loads((blobs / manifest_digest.removeprefix("sha256:")).read_text())
    names = {layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]}
    assert names == {"model.onnx", "labels.txt"}
    assert (blobs / manifest["config"]["digest"].removeprefix("sha256:")).exists()
    assert (blobs / sha256_of(weights)).exists()


def readme_snippets():
    text = open(README, encoding="utf-8").read()
    section = text.split("\n## OCI\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", section, re.S)


def test_the_readmes_oci_snippets_run(registry, tmp_path, monkeypatch):
    snippets = readme_snippets()
    assert [lang for lang, _ in snippets] == ["sh", "python"]
    # The quickstart's state: project root/fraud, model fraud, version 1.2.0 uploaded with curl.
    new_model(registry, project="fraud", model="fraud")
    quickstart = tmp_path / "quickstart"
    quickstart.mkdir()
    curl_upload(registry, "fraud", "fraud", "1.2.0", write(quickstart / "model.onnx", os.urandom(65536)))
    monkeypatch.chdir(tmp_path)
    shell = snippets[0][1].replace("127.0.0.1:8080", registry.host)
    subprocess.run(["bash", "-euo", "pipefail", "-c", shell], check=True, env={**os.environ, "TOKEN": registry.root_token})
    assert json.loads((tmp_path / "fraud-layout" / "index.json").read_text())["manifests"]
    for name, data in {"model.onnx": os.urandom(1000), "config.json": b"{}", "README.md": b"# fraud"}.items():
        write(tmp_path / name, data)
    python = snippets[1][1].replace("127.0.0.1:8080", registry.host)
    exec(compile(python, "README.md", "exec"), {"TOKEN": registry.root_token})
    for name in ["model.onnx", "config.json", "README.md"]:
        assert sha256_of(tmp_path / "pulled" / name) == sha256_of(tmp_path / name)
