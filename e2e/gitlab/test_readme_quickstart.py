"""The README's Quickstart as a new user runs it: the shell block, then the python-gitlab block,
against a fresh server, from a directory holding `modelyard-data/initial_root_token`."""
import pathlib
import re
import subprocess
import sys

import modelyard_server

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def quickstart_blocks():
    text = README.read_text()
    quickstart = text[text.index("## Quickstart"):text.index("\n## ", text.index("## Quickstart") + 1)]
    blocks = dict(re.findall(r"```(sh|python)\n(.*?)```", quickstart, re.S))
    return blocks["sh"], blocks["python"]


def test_the_quickstart_runs_as_written(tmp_path):
    shell, python = quickstart_blocks()
    server = modelyard_server.start()
    try:
        (tmp_path / "modelyard-data").mkdir()
        (tmp_path / "modelyard-data" / "initial_root_token").write_text(server.root_token + "\n")
        local = "http://127.0.0.1:8080"
        subprocess.run(["bash", "-euo", "pipefail", "-c", shell.replace(local, server.url)], cwd=tmp_path, check=True)
        script = python.replace(local, server.url) + "\nassert data == open('model.onnx', 'rb').read()\n"
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path, check=True, capture_output=True, text=True,
        )
        assert out.stdout.strip().isdigit(), out.stdout
    finally:
        modelyard_server.cleanup(server)
