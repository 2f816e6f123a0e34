"""Starts the real release binary on 127.0.0.1 with an ephemeral port and a fresh data dir.

With MODELYARD_E2E_STORES=scaleout (scripts/e2e.sh --scaleout) every server runs on the
scale-out stores instead of the embedded default: a fresh PostgreSQL database of
MODELYARD_TEST_POSTGRES_URL and a prefix of its own in the bucket of the s3s-fs at
MODELYARD_E2E_S3_ENDPOINT.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass

LISTENING = re.compile(r"modelyard listening on (http://\S+)")


@dataclass
class Server:
    url: str
    root_token: str
    data_dir: str
    proc: subprocess.Popen
    # The database of MODELYARD_E2E_STORES=scaleout (dropped by cleanup).
    database: str = None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def _on_server(statement):
    """Runs one statement on the test PostgreSQL with psql (installed with the server)."""
    psql = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1]
    server = os.environ["MODELYARD_TEST_POSTGRES_URL"]
    subprocess.run([psql, "-q", "-d", server, "-c", statement], check=True)


def _fresh_database():
    """A new database on the test PostgreSQL; its URL."""
    from urllib.parse import urlsplit, urlunsplit

    name = "modelyard_e2e_" + uuid.uuid4().hex[:16]
    _on_server(f"CREATE DATABASE {name}")
    parts = urlsplit(os.environ["MODELYARD_TEST_POSTGRES_URL"])
    return urlunsplit(parts._replace(path="/" + name))


def store_env():
    """The environment that puts a server on the stores this run tests (empty: the default)."""
    if os.environ.get("MODELYARD_E2E_STORES") != "scaleout":
        return {}
    return {
        "MODELYARD_METADATA": _fresh_database(),
        "MODELYARD_BLOBS": "s3://" + os.environ["MODELYARD_E2E_S3_BUCKET"] + "/" + uuid.uuid4().hex,
        "MODELYARD_S3_ENDPOINT": os.environ["MODELYARD_E2E_S3_ENDPOINT"],
        "MODELYARD_S3_REGION": "us-east-1",
        "MODELYARD_S3_PATH_STYLE": "true",
        "MODELYARD_S3_ALLOW_HTTP": "true",
    }


def start(binary=None, extra_env=None):
    binary = binary or os.environ.get("MODELYARD_BIN") or os.path.join(
        os.path.dirname(__file__), "..", "target", "release", "modelyard"
    )
    data_dir = tempfile.mkdtemp(prefix="modelyard-e2e-")
    token = "root-" + uuid.uuid4().hex
    stores = store_env()
    env = {
        **os.environ,
        **stores,
        "MODELYARD_ROOT_TOKEN": token,
        "MODELYARD_LOG": "warn",
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = None
    for line in proc.stdout:
        match = LISTENING.search(line)
        if match:
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        raise RuntimeError(f"server exited before listening (code {proc.wait()})")
    # Keep draining stdout so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return Server(
        url=url,
        root_token=token,
        data_dir=data_dir,
        proc=proc,
        database=stores.get("MODELYARD_METADATA"),
    )


def cleanup(server):
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)
    if server.database:
        name = server.database.rsplit("/", 1)[-1]
        _on_server(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
