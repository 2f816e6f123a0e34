#!/usr/bin/env python3
"""log-batch throughput: MLflow `runs/log-batch` calls of 1,000 metrics each, from several
keep-alive clients, against a fresh server. The bodies are encoded before the clock starts, so the
figure is the server's, not the client's JSON encoder's.

    bench/log_batch.py [--bin target/release/modelyard] [--calls 400] [--clients 8] [--per 1000]

Prints metrics/s and calls/s (issue #11's target: >= 1,000,000 metrics/s with 1,000 per call).
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-log-batch-token-0123456789"


def start(binary, data):
    env = dict(os.environ, MODELYARD_ROOT_TOKEN=TOKEN, MODELYARD_LOG=os.environ.get("MODELYARD_LOG", "warn"))
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    for line in proc.stdout:
        if line.startswith("modelyard listening on "):
            base = line.split()[-1]
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            host, port = base.replace("http://", "").split(":")
            return proc, host, int(port)
    raise SystemExit("the server exited before listening")


def cpu_seconds(pid):
    """User + system CPU seconds the process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flushes(host, port):
    """The server's count of durable metadata flushes (its /metrics, read as the admin)."""
    conn = http.client.HTTPConnection(host, port)
    conn.request("GET", "/metrics", headers={"PRIVATE-TOKEN": TOKEN})
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith("modelyard_metadata_flushes_total "):
            return int(float(line.split()[1]))
    return 0


def call(conn, method, path, body=None):
    headers = {"PRIVATE-TOKEN": TOKEN, "Content-Type": "application/json"}
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    data = reply.read()
    if reply.status >= 300:
        raise SystemExit(f"{method} {path}: {reply.status} {data[:300]!r}")
    return json.loads(data) if data else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/modelyard")
    ap.add_argument("--calls", type=int, default=400, help="log-batch calls in all")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per", type=int, default=1000, help="metrics per call")
    ap.add_argument("--runs", type=int, default=8, help="runs the calls are spread over")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        os.chmod(data, 0o700)
        proc, host, port = start(args.bin, data)
        try:
            conn = http.client.HTTPConnection(host, port)
            project = call(conn, "POST", "/api/v4/projects", json.dumps({"name": "bench"}))["id"]
            api = f"/api/v4/projects/{project}/ml/mlflow/api/2.0/mlflow"
            experiment = call(conn, "POST", f"{api}/experiments/create", json.dumps({"name": "lb"}))["experiment_id"]
            runs = [
                call(conn, "POST", f"{api}/runs/create", json.dumps({"experiment_id": experiment}))["run"]["info"]["run_id"]
                for _ in range(args.runs)
            ]
            bodies = []
            for c in range(args.calls):
                run = runs[c % len(runs)]
                base = (c // len(runs)) * args.per
                metrics = [
                    {"key": f"m{i % 10}", "value": i * 0.5, "timestamp": 1700000000000 + base + i, "step": base + i}
                    for i in range(args.per)
                ]
                bodies.append((run, json.dumps({"run_id": run, "metrics": metrics}).encode()))
            per_client = [bodies[i :: args.clients] for i in range(args.clients)]

            def work(mine):
                c = http.client.HTTPConnection(host, port)
                for _, body in mine:
                    call(c, "POST", f"{api}/runs/log-batch", body)

            threads = [threading.Thread(target=work, args=(mine,)) for mine in per_client]
            flushes_before = flushes(host, port)
            server_cpu_before = cpu_seconds(proc.pid)
            client_before = os.times()
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            server_cpu = cpu_seconds(proc.pid) - server_cpu_before
            client_after = os.times()
            flushed = flushes(host, port) - flushes_before
            client_cpu = (client_after.user - client_before.user) + (client_after.system - client_before.system)
            total = args.calls * args.per
            print(f"log-batch: {args.calls} calls x {args.per} metrics from {args.clients} clients in {elapsed:.2f} s")
            print(f"  {total / elapsed:,.0f} metrics/s  ({args.calls / elapsed:,.0f} calls/s); target >= 1,000,000 metrics/s: "
                  f"ratio {total / elapsed / 1e6:.2f}")
            print(f"  CPU in the window: server {server_cpu:.2f} s ({server_cpu / elapsed:.2f} cores, "
                  f"{server_cpu / args.calls * 1e6:,.0f} us/call), client {client_cpu:.2f} s ({client_cpu / elapsed:.2f} cores); "
                  f"{flushed} metadata flushes ({args.calls / max(flushed, 1):.1f} calls each)")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
