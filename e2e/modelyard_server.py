"""Starts the real release binary on 127.0.0.1 with an ephemeral port and a fresh data dir."""
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

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def start(binary=None, extra_env=None):
    binary = binary or os.environ.get("MODELYARD_BIN") or os.path.join(
        os.path.dirname(__file__), "..", "target", "release", "modelyard"
    )
    data_dir = tempfile.mkdtemp(prefix="modelyard-e2e-")
    token = "root-" + uuid.uuid4().hex
    env = {**os.environ, "MODELYARD_ROOT_TOKEN": token, "MODELYARD_LOG": "warn", **(extra_env or {})}
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
    return Server(url=url, root_token=token, data_dir=data_dir, proc=proc)


def cleanup(server):
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)
