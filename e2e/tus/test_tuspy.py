"""The real tuspy client against the release binary: an upload interrupted by the server being
killed, the server restarted on the same data dir and port, the upload resumed to completion, and
the file's sha256 checked through a download. Also runs the README's tuspy snippet."""
import hashlib
import os
import re
import signal
import subprocess
import tempfile
import threading
import uuid

import pytest
import requests
from tusclient import client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage.filestorage import FileStorage

LISTENING = re.compile(r"modelyard listening on (http://\S+)")
README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def binary():
    return os.environ.get("MODELYARD_BIN") or os.path.join(
        os.path.dirname(__file__), "..", "..", "target", "release", "modelyard"
    )


def launch(data_dir, token, listen="127.0.0.1:0"):
    env = {**os.environ, "MODELYARD_ROOT_TOKEN": token, "MODELYARD_LOG": "warn"}
    proc = subprocess.Popen(
        [binary(), "serve", "--listen", listen, "--data-dir", data_dir],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        match = LISTENING.search(line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"server exited before listening (code {proc.wait()})")


@pytest.fixture
def restartable():
    data_dir = tempfile.mkdtemp(prefix="modelyard-tus-")
    os.chmod(data_dir, 0o700)
    token = "root-" + uuid.uuid4().hex
    state = {"data_dir": data_dir, "token": token}
    state["proc"], state["url"] = launch(data_dir, token)
    yield state
    if state["proc"].poll() is None:
        state["proc"].send_signal(signal.SIGTERM)
        state["proc"].wait(timeout=30)


def make_project(url, token, name):
    reply = requests.post(
        f"{url}/api/v4/projects",
        json={"name": name, "visibility": "private"},
        headers={"PRIVATE-TOKEN": token},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def test_an_interrupted_upload_resumes_after_a_server_restart(restartable, tmp_path):
    url, token = restartable["url"], restartable["token"]
    project_id = make_project(url, token, "tus-e2e")
    data = os.urandom(9 * 1024 * 1024 + 12345)
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    storage = str(tmp_path / "tus-urls.json")
    metadata = {"package_name": "tus-e2e", "package_version": "1.0.0", "filename": "weights/model.safetensors"}

    def uploader():
        tus = client.TusClient(f"{url}/api/v4/projects/{project_id}/uploads", headers={"PRIVATE-TOKEN": token})
        return tus.uploader(
            str(path),
            chunk_size=1024 * 1024,
            metadata=metadata,
            upload_checksum=True,
            store_url=True,
            url_storage=FileStorage(storage),
        )

    first = uploader()
    for _ in range(4):
        first.upload_chunk()
    assert first.offset == 4 * 1024 * 1024
    # The server is killed in the middle of the upload: the next chunk fails.
    restartable["proc"].kill()
    restartable["proc"].wait()
    with pytest.raises((TusCommunicationError, TusUploadFailed, requests.exceptions.RequestException)):
        first.upload_chunk()

    # Same data dir, same port: the stored upload URL is valid again.
    listen = url.removeprefix("http://")
    restartable["proc"], again = launch(restartable["data_dir"], token, listen)
    assert again == url
    resumed = uploader()
    assert resumed.url == first.url
    assert resumed.offset == 4 * 1024 * 1024, "HEAD after the restart says where to resume"
    resumed.upload()
    assert resumed.offset == len(data)

    got = requests.get(
        f"{url}/api/v4/projects/{project_id}/packages/generic/tus-e2e/1.0.0/weights/model.safetensors",
        headers={"PRIVATE-TOKEN": token},
    )
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert got.headers["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    # The finished upload is gone.
    assert requests.head(first.url, headers={"PRIVATE-TOKEN": token, "Tus-Resumable": "1.0.0"}).status_code == 404


def readme_snippet(name):
    text = open(README).read()
    match = re.search(r"```python tus-snippet=" + name + r"\n(.*?)```", text, re.S)
    assert match, f"README has no tus-snippet={name}"
    return match.group(1)


def test_the_readme_tuspy_snippet_uploads_and_resumes(restartable, tmp_path):
    url, token = restartable["url"], restartable["token"]
    make_project(url, token, "fraud")
    data = os.urandom(3 * 1024 * 1024)
    (tmp_path / "model.safetensors").write_bytes(data)
    env = {**os.environ, "HOST": url, "TOKEN": token}
    script = tmp_path / "upload.py"
    script.write_text(readme_snippet("python"))
    done = subprocess.run(
        [os.sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "/uploads/" in done.stdout
    got = requests.get(
        f"{url}/api/v4/projects/root%2Ffraud/packages/generic/fraud/1.2.0/model.safetensors",
        headers={"PRIVATE-TOKEN": token},
    )
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
