#!/usr/bin/env python3
"""The scale benchmark of issue #11: fill a fresh modelyard through its HTTP APIs, then time reads.

Started by bench/scale.sh (see bench/README.md). Standard library only: http.client keep-alive
connections, one per client thread.

Fill (all through the public APIs, several concurrent keep-alive clients):
  * 1,000 models (native API) and 1,000 generic package versions (10 names x 100, one small file each),
  * 1 model with N versions (native API); version i is `{major}.{minor}.{patch}` with ten majors,
    100 patches per minor: for N = 100,000 that is `{i/10000}.{(i/100)%100}.{i%100}`,
  * 1 MLflow experiment with N runs (runs/create + one log-batch: the param `p` and metrics x, y, z).
Create rates are timed with one client right after the first 1,000 records and for the last 500.
Then every read is requested 200 times in a row on one keep-alive connection (after one warm-up)
and reported as p50/p99 against its target. Server RSS (VmRSS) is sampled throughout.
"""

import argparse
import datetime
import hashlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

TOKEN = "scale-bench-root-token"
P99_TARGET_MS = 20.0
DEEP_P99_TARGET_MS = 100.0
RATE_RATIO_TARGET = 0.8
RSS_TARGET_MIB = 256
# Issue #12's targets for PostgreSQL + S3 at 100k versions: every page p99 < 50 ms.
SCALEOUT_P99_TARGET_MS = 50.0
S3_KEY, S3_SECRET = "bench-key", "bench-secret-0123456789"
# order_by values tried, in turn, for the keyset next page of each listing; the first that gets a
# cursor-style `Link: rel="next"` (one without a `page` parameter) is measured.
KEYSET_ORDERS = {
    "versions": ("version", "created_at", "id"),
    "models": ("id", "created_at", "name", "updated_at"),
    "packages": ("id", "created_at", "name", "version"),
}


def log(*parts):
    print(*parts, flush=True)


# ---- HTTP -----------------------------------------------------------------------------------


class Client:
    """One keep-alive connection; reconnects when the server closed it (idle timeout)."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None
        self.last_use = 0.0

    def _connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes). JSON-encodes dict/list bodies."""
        hdrs = {"PRIVATE-TOKEN": TOKEN}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        # The server closes connections idle for --header-read-timeout (30 s): don't race it.
        if self.conn is None or time.monotonic() - self.last_use > 10:
            self._connect()
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                self.last_use = time.monotonic()
                return resp.status, resp.headers, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt:
                    raise
                self._connect()
        raise AssertionError("unreachable")


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params) if params else path


# ---- the server -----------------------------------------------------------------------------


class Server:
    def __init__(self, binary, work, flags=()):
        self.binary, self.work = binary, work
        self.flags = list(flags)
        self.proc = None
        self.base = None

    def start(self):
        data = os.path.join(self.work, "data")
        self.stdout_path = os.path.join(self.work, "server.log")
        env = dict(os.environ, MODELYARD_ROOT_TOKEN=TOKEN, MODELYARD_LOG=os.environ.get("MODELYARD_LOG", "warn"))
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, *self.flags],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as f:
                m = re.search(rb"modelyard listening on (http://[^\s]+)", f.read())
            if m:
                self.base = m.group(1).decode()
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode} before listening")
            time.sleep(0.01)
        else:
            raise SystemExit("server did not print 'modelyard listening on' within 60 s")
        u = urllib.parse.urlsplit(self.base)
        self.host, self.port = u.hostname, u.port
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def status_kib(self, field):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RssSampler(threading.Thread):
    """VmRSS of the server every 0.2 s; the maximum per phase."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.phase = "start"
        self.peaks = {}
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set() and self.server.alive():
            self.sample()
            self.stop_event.wait(0.2)

    def sample(self):
        rss = self.server.status_kib("VmRSS")
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
        return rss

    def peak(self, *phases):
        return max((self.peaks.get(p, 0) for p in phases), default=0)


# ---- fill ------------------------------------------------------------------------------------


class WindowProfile:
    """`perf record` of the server over one timed window (--perf DIR): the call-graph report,
    by symbol, is written to DIR/<label>.txt, so a missed ratio comes with its profile."""

    def __init__(self, directory, pid, label):
        os.makedirs(directory, exist_ok=True)
        stem = os.path.join(directory, re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-"))
        self.data, self.report = stem + ".perf.data", stem + ".txt"
        self.label = label
        self.proc = subprocess.Popen(
            ["perf", "record", "-F", "999", "-g", "-o", self.data, "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches before the window starts

    def finish(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait()
        report = subprocess.run(
            ["perf", "report", "-i", self.data, "--no-children", "-g", "none", "--sort", "symbol", "--stdio",
             "--percent-limit", "0.7"],
            capture_output=True, text=True)
        with open(self.report, "w") as f:
            f.write(f"# {self.label}: perf record -F 999 -g -p <server>; "
                    "perf report --no-children --sort symbol\n")
            f.write(report.stdout)
        os.remove(self.data)
        log(f"  profile of {self.label}: {self.report}")


class Fill:
    def __init__(self, server, sampler, clients, perf_dir=None):
        self.server, self.sampler, self.clients = server, sampler, clients
        self.perf_dir = perf_dir
        self.errors = 0
        self.error_samples = []
        self.seconds = {}

    def client(self):
        return Client(self.server.host, self.server.port)

    def note_error(self, what, status, body):
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{what}: {status} {body[:200]!r}")
            log(f"  ! {what}: {status} {body[:200]!r}")

    def run(self, label, indices, job, clients=None, group=None):
        """Runs job(client, i) for every i with `clients` threads; prints progress; items/s. The
        time counts towards `group` (default: the label) in the fill summary."""
        clients = clients or self.clients
        indices = list(indices)
        total = len(indices)
        if total == 0:
            return 0.0
        lock = threading.Lock()
        state = {"next": 0, "done": 0}
        stop = threading.Event()
        failure = []

        def worker():
            c = self.client()
            while not stop.is_set():
                with lock:
                    k = state["next"]
                    if k >= total:
                        return
                    state["next"] = k + 1
                try:
                    job(c, indices[k])
                except Exception as e:  # a dead server or a broken connection: stop the bench
                    failure.append(f"{label} #{indices[k]}: {e!r}")
                    stop.set()
                    return
                with lock:
                    state["done"] += 1

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(clients, total))]
        profile = None
        if self.perf_dir and clients == 1:  # the timed windows
            profile = WindowProfile(self.perf_dir, self.server.proc.pid, label)
        start = time.monotonic()
        for t in threads:
            t.start()
        last_t, last_done = start, 0
        try:
            while True:
                alive = [t for t in threads if t.is_alive()]
                if not alive:
                    break
                alive[0].join(timeout=0.5)
                now = time.monotonic()
                done = state["done"]
                # Every 2 s for the first half minute, then every 10 s.
                if now - last_t >= (2.0 if now - start < 30 else 10.0) and done < total:
                    rate_now = (done - last_done) / (now - last_t)
                    rate_all = done / (now - start)
                    eta = (total - done) / rate_now if rate_now > 0 else float("inf")
                    log(f"  {label}: {done}/{total}  {rate_all:.0f}/s overall, {rate_now:.0f}/s now,"
                        f" eta {fmt_duration(eta)}, RSS {self.sampler.sample() // 1024} MiB, errors {self.errors}")
                    last_t, last_done = now, done
        except KeyboardInterrupt:
            stop.set()
            raise
        if failure:
            raise SystemExit(f"fill failed: {failure[0]}")
        elapsed = time.monotonic() - start
        if profile is not None:
            profile.finish()
        rate = total / elapsed
        group = group or label
        self.seconds[group] = self.seconds.get(group, 0.0) + elapsed
        log(f"  {label}: {total} in {elapsed:.1f} s = {rate:.0f}/s with {len(threads)} client(s);"
            f" RSS {self.sampler.sample() // 1024} MiB")
        return rate


def fmt_duration(seconds):
    if seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Scaleout:
    """A private PostgreSQL (scripts/postgres.sh, durable settings) and an s3s-fs over a dir of
    the run dir: the flags that put a server on them."""

    def __init__(self, work):
        self.work = work
        self.pg_dir = None
        self.s3 = None

    def start(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([os.path.join(root, "scripts/s3.sh")], check=True, stdout=sys.stderr)
        out = subprocess.run([os.path.join(root, "scripts/postgres.sh"), "start"], check=True,
                             capture_output=True, text=True, env=dict(os.environ, MODELYARD_PG_DURABLE="1"))
        exports = dict(re.findall(r"export (\w+)=(\S+)", out.stdout))
        self.pg_dir = exports["MODELYARD_TEST_POSTGRES_DIR"]
        url = exports["MODELYARD_TEST_POSTGRES_URL"]
        log(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "PostgreSQL started")
        s3root = os.path.join(self.work, "s3root")
        os.makedirs(os.path.join(s3root, "mlreg"), exist_ok=True)
        port = free_port()
        self.s3 = subprocess.Popen(
            ["s3s-fs", "--host", "127.0.0.1", "--port", str(port), "--access-key", S3_KEY,
             "--secret-key", S3_SECRET, s3root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("s3s-fs did not listen")
                time.sleep(0.05)
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = S3_KEY, S3_SECRET
        log(f"s3s-fs on 127.0.0.1:{port} over {s3root}")
        return ["--metadata", url, "--blobs", "s3://mlreg/scale", "--s3-endpoint", f"http://127.0.0.1:{port}",
                "--s3-region", "us-east-1", "--s3-path-style", "--s3-allow-http"]

    def stop(self):
        if self.s3 is not None and self.s3.poll() is None:
            self.s3.terminate()
            self.s3.wait()
        if self.pg_dir:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            subprocess.run([os.path.join(root, "scripts/postgres.sh"), "stop", self.pg_dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.pg_dir = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shown_flags(flags):
    """The flags with the database password hidden."""
    return " ".join(re.sub(r"(postgres(?:ql)?://[^:/@]+:)[^@]*@", r"\1***@", f) for f in flags)


def version_string(i, n):
    """Ten majors, 100 patches per minor: version i of N. For N = 100,000 this is
    `{i/10000}.{(i/100)%100}.{i%100}`."""
    per_major = max(100, math.ceil(n / 10))
    return f"{i // per_major}.{(i % per_major) // 100}.{i % 100}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/modelyard", help="the modelyard binary to run")
    ap.add_argument("--n", type=int, default=100_000, help="versions of the big model and runs of the experiment")
    ap.add_argument("--models", type=int, default=1000, help="other models")
    ap.add_argument("--packages", type=int, default=1000, help="generic package versions (10 names)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients for the fill")
    ap.add_argument("--requests", type=int, default=200, help="sequential requests per measured figure")
    ap.add_argument("--work", default="target/bench-scale", help="where the run dir (data dir, server log) is made")
    ap.add_argument("--keep", action="store_true", help="keep the run dir and its data")
    ap.add_argument("--save", action="store_true", help="save the table to bench/profiles/scale-<date>.txt")
    ap.add_argument("--perf", metavar="DIR", help="perf-record the server over each timed create window; reports in DIR")
    ap.add_argument("--runs", type=int, help="runs of the experiment (default: --n)")
    storage = ap.add_argument_group("storage (the server's own options, passed on)")
    storage.add_argument("--metadata", help="sled (default) or a postgres:// URL")
    storage.add_argument("--blobs", help="local (default) or s3://bucket/prefix (credentials: AWS_*)")
    storage.add_argument("--s3-endpoint")
    storage.add_argument("--s3-region")
    storage.add_argument("--s3-path-style", action="store_true")
    storage.add_argument("--s3-allow-http", action="store_true")
    storage.add_argument("--scaleout", action="store_true",
                         help="start a private PostgreSQL and an s3s-fs and run the server on them")
    storage.add_argument("--both", action="store_true",
                         help="run the embedded default, then --scaleout, and print them side by side")
    storage.add_argument("--against", metavar="TABLE",
                         help="with --scaleout: a saved table (bench/profiles/scale-*.txt) of the embedded"
                              " run to print side by side, instead of running it again")
    args = ap.parse_args()
    if args.n < 8:
        ap.error("--n must be at least 8")
    if args.runs is None:
        args.runs = args.n
    if args.runs < 8:
        ap.error("--runs must be at least 8")
    flags = []
    for name in ("metadata", "blobs", "s3_endpoint", "s3_region"):
        if getattr(args, name):
            flags += ["--" + name.replace("_", "-"), getattr(args, name)]
    flags += [f for f, on in (("--s3-path-style", args.s3_path_style), ("--s3-allow-http", args.s3_allow_http)) if on]
    if (args.both or args.against) and flags:
        ap.error("--both and --against run the embedded default and --scaleout, not given storage options")
    if args.against and not args.scaleout:
        args.scaleout = True

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no executable at {binary} (build it, or pass --bin)")
    # A fresh run dir inside --work: only it is removed afterwards.
    os.makedirs(args.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=os.path.abspath(args.work))

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    configurations = []
    if args.both:
        configurations = [("embedded", False), ("PostgreSQL + S3", True)]
    elif args.scaleout:
        configurations = [("PostgreSQL + S3", True)]
    else:
        configurations = [("embedded" if not flags else "given storage options", False)]
    tables = []
    for label, scaleout in configurations:
        run_dir = os.path.join(work, re.sub(r"[^a-z]+", "-", label.lower()))
        os.makedirs(run_dir)
        pair = Scaleout(run_dir) if scaleout else None
        server = Server(binary, run_dir, flags)
        sampler = RssSampler(server)
        try:
            if pair is not None:
                server.flags = flags + pair.start()
            log(f"configuration: {label} {shown_flags(server.flags)}")
            server.start()
            sampler.start()
            lines = bench(args, binary, server, sampler, label)
            tables.append((label, lines))
            print("\n" + "\n".join(lines), flush=True)
        except BaseException:
            if server.proc is not None and not server.alive():
                log(f"the server exited with {server.proc.returncode}; the end of its log:")
                with open(server.stdout_path, errors="replace") as f:
                    log("".join(f.readlines()[-20:]))
            raise
        finally:
            sampler.stop_event.set()
            server.stop()
            if pair is not None:
                pair.stop()
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.against:
        with open(args.against) as f:
            tables.insert(0, (f"embedded ({os.path.basename(args.against)})", f.read().splitlines()))
    text = "\n\n".join("\n".join(lines) for _, lines in tables) + "\n"
    if len(tables) == 2:
        text += "\n" + "\n".join(side_by_side(tables[0], tables[1])) + "\n"
    if len(tables) == 2:
        print()
        print(text.rsplit("\n\n", 1)[-1], end="")
    if args.save:
        profiles = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
        os.makedirs(profiles, exist_ok=True)
        stem = os.path.join(profiles, f"scale-{datetime.date.today().isoformat()}")
        path, k = stem + ".txt", 2
        while os.path.exists(path):  # never overwrite an earlier run's table
            path, k = f"{stem}-{k}.txt", k + 1
        with open(path, "w") as f:
            f.write(text)
        log(f"saved to {path}")


def bench(args, binary, server, sampler, configuration="embedded"):
    n = args.n
    n_runs = args.runs
    fill = Fill(server, sampler, args.clients, args.perf)
    c = fill.client()
    started = time.monotonic()
    log(f"server {binary} at {server.base} (pid {server.proc.pid}); N = {n}")

    status, _, body = c.request("POST", "/api/v4/projects", body={"name": "scale"})
    if status != 201:
        raise SystemExit(f"project create: {status} {body[:300]!r}")
    pid = json.loads(body)["id"]
    api = f"/api/v4/projects/{pid}"
    ml = f"{api}/ml"
    mlflow = f"{ml}/mlflow/api/2.0/mlflow"

    def expect(what, want, status, body):
        if status != want:
            fill.note_error(what, status, body)

    # -- other models and generic packages: the neighbours of the big model
    sampler.phase = "fill"

    def make_model(cl, j):
        expect("model create", 201, *cl.request("POST", f"{ml}/models", body={"name": f"model-{j:04d}"})[::2])

    def make_package(cl, j):
        content = hashlib.sha256(str(j).encode()).hexdigest().encode()
        expect("generic upload", 201, *cl.request(
            "PUT", f"{api}/packages/generic/pkg-{j % 10}/1.0.{j // 10}/file.bin", body=content)[::2])

    log(f"fill: {args.models} models, {args.packages} generic package versions")
    fill.run("models", range(args.models), make_model)
    fill.run("generic packages", range(args.packages), make_package)

    # -- the big model: N versions, the create rate timed at 1k and at N with one client
    expect("model create", 201, *c.request("POST", f"{ml}/models", body={"name": "big"})[::2])

    def make_version(cl, i):
        expect("version create", 201, *cl.request(
            "POST", f"{ml}/models/big/versions", body={"version": version_string(i, n)})[::2])

    k1 = min(1000, n // 3)                  # "at 1k": right after the first 1,000 records
    w = min(500, n // 6)                    # records per timed window: [k1, k1 + w) and [n - w, n)
    log(f"fill: model 'big' with {n} versions ({args.clients} clients; one client for the timed windows)")
    fill.run("versions", range(0, k1), make_version)
    v_rate_1k = fill.run(f"versions (timed at {k1})", range(k1, k1 + w), make_version, clients=1, group="versions")
    fill.run("versions", range(k1 + w, n - w), make_version)
    v_rate_n = fill.run(f"versions (timed at {n - w})", range(n - w, n), make_version, clients=1, group="versions")

    # -- one experiment with N runs, each with a param and 3 metrics
    status, _, body = c.request("POST", f"{mlflow}/experiments/create", body={"name": "scale"})
    if status != 200:
        raise SystemExit(f"experiment create: {status} {body[:300]!r}")
    experiment = json.loads(body)["experiment_id"]
    t0 = 1_700_000_000_000

    def make_run(cl, i):
        status, _, body = cl.request("POST", f"{mlflow}/runs/create", body={
            "experiment_id": experiment, "run_name": f"run-{i:06d}", "start_time": t0 + i * 1000})
        if status != 200:
            fill.note_error("run create", status, body)
            return
        run_id = json.loads(body)["run"]["info"]["run_id"]
        ts = t0 + i * 1000 + 500
        expect("log-batch", 200, *cl.request("POST", f"{mlflow}/runs/log-batch", body={
            "run_id": run_id,
            "params": [{"key": "p", "value": f"v{i % 100}"}],
            "metrics": [
                {"key": "x", "value": (i * 0.6180339887498949) % 1.0, "timestamp": ts, "step": 0},
                {"key": "y", "value": float(i), "timestamp": ts, "step": 0},
                {"key": "z", "value": 1.0 / (i + 1), "timestamp": ts, "step": 0},
            ]})[::2])

    rk1 = min(1000, n_runs // 3)
    rw = min(500, n_runs // 6)
    log(f"fill: experiment 'scale' with {n_runs} runs (runs/create + log-batch each)")
    fill.run("runs", range(0, rk1), make_run)
    r_rate_1k = fill.run(f"runs (timed at {rk1})", range(rk1, rk1 + rw), make_run, clients=1, group="runs")
    fill.run("runs", range(rk1 + rw, n_runs - rw), make_run)
    r_rate_n = fill.run(f"runs (timed at {n_runs - rw})", range(n_runs - rw, n_runs), make_run, clients=1,
                        group="runs")
    fill_seconds = time.monotonic() - started

    sampler.phase = "after fill"
    time.sleep(2)
    rss_after_fill = sampler.sample()
    log(f"fill done in {fmt_duration(fill_seconds)}; errors {fill.errors}; RSS {rss_after_fill // 1024} MiB")

    # -- reads
    sampler.phase = "reads"
    mid = n // 2
    per_major = max(100, math.ceil(n / 10))
    major = min(4, (n - 1) // per_major)
    minor = 1 if per_major > 100 and major < (n - 1) // per_major else 0
    deep = max(2, round(0.4 * n / 20))      # 2000 at N = 100,000 (per_page 20)
    figures = []
    warnings = []
    statements = {}  # label: statements one request sent to PostgreSQL

    def statements_sent(cl):
        """The server's count of statements sent to PostgreSQL (None on the embedded store)."""
        status, _, data = cl.request("GET", "/metrics")
        m = re.search(rb"^modelyard_metadata_statements_total (\d+)", data, re.M) if status == 200 else None
        return int(m.group(1)) if m else None

    def measure(label, method, path, body=None, target=P99_TARGET_MS, check=None):
        cl = fill.client()
        before = statements_sent(cl)
        status, headers, data = cl.request(method, path, body=body)  # warm-up, and the check
        after = statements_sent(cl)
        if before is not None and after is not None:
            floor = statements_sent(cl) - after  # what reading the counter costs by itself
            statements[label] = after - before - floor
        if status != 200:
            figures.append((label, None, None, target, f"HTTP {status}"))
            warnings.append(f"{label}: HTTP {status} {data[:200]!r}")
            return
        if check:
            problem = check(json.loads(data))
            if problem:
                warnings.append(f"{label}: {problem}")
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            status, _, data = cl.request(method, path, body=body)
            times.append((time.perf_counter() - t) * 1000)
            if status != 200:
                figures.append((label, None, None, target, f"HTTP {status}"))
                warnings.append(f"{label}: HTTP {status} {data[:200]!r}")
                return
        times.sort()
        figures.append((label, nearest_rank(times, 50), nearest_rank(times, 99), target, None))
        sent = f", {statements[label]} statements" if label in statements else ""
        log(f"  {label}: p50 {nearest_rank(times, 50):.1f} ms, p99 {nearest_rank(times, 99):.1f} ms{sent}")

    def count(key=None, want=None):
        """A check of the answer: `want` items (None: at least one)."""
        def check(doc):
            items = doc if key is None else doc.get(key, [])
            if (want is None and not items) or (want is not None and len(items) != want):
                return f"{len(items)} items, expected {want if want is not None else 'some'}"
            return None
        return check

    log(f"reads: {args.requests} sequential requests per figure, one keep-alive connection")
    measure("GET /-/health (the client's own floor)", "GET", "/-/health", target=None)
    versions = f"{ml}/models/big/versions"
    measure("versions page 1", "GET", versions, check=count(want=min(20, n)))

    def keyset(label, listing, orders):
        """The next page of a keyset listing: the `Link: rel="next"` of its first page, with the
        first of `orders` that gets a cursor (a next link without a `page` parameter)."""
        for order in orders:
            status, headers, _ = c.request("GET", q(listing, pagination="keyset", order_by=order))
            nxt = next_link(headers)
            if status == 200 and nxt and "page" not in urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query):
                u = urllib.parse.urlsplit(nxt)
                measure(f"{label} (order_by={order})", "GET", u.path + ("?" + u.query if u.query else ""),
                        check=count(want=20))
                return
        figures.append((label, None, None, P99_TARGET_MS, "n/a (no Link rel=next)"))

    keyset("versions keyset next page", versions, KEYSET_ORDERS["versions"])
    measure(f"versions deep page {deep} (offset)", "GET", q(versions, page=deep), target=DEEP_P99_TARGET_MS,
            check=count(want=20))
    measure("model with latest (GET /ml/models/big)", "GET", f"{ml}/models/big")
    measure(f"version by string ({version_string(mid, n)})", "GET", f"{versions}/{version_string(mid, n)}")
    measure(f"version by MLflow number ({mid})", "GET", q(f"{mlflow}/model-versions/get", name="big", version=mid))
    measure(f"resolve ^{major}", "GET", q(f"{versions}/resolve", requirement=f"^{major}"))
    measure(f"resolve ~{major}.{minor}", "GET", q(f"{versions}/resolve", requirement=f"~{major}.{minor}"))
    measure("models list page 1", "GET", f"{ml}/models", check=count(want=min(20, args.models + 1)))
    keyset("models keyset next page", f"{ml}/models", KEYSET_ORDERS["models"])
    measure("models search (model-05: 100 match)", "GET", q(f"{ml}/models", search="model-05"),
            check=count(want=min(20, max(0, args.models - 500))))
    measure("packages list page 1", "GET", f"{api}/packages", check=count(want=min(20, n + args.packages)))
    keyset("packages keyset next page", f"{api}/packages", KEYSET_ORDERS["packages"])
    measure("packages by name (pkg-3)", "GET", q(f"{api}/packages", package_name="pkg-3"),
            check=count(want=min(20, len(range(3, args.packages, 10)))))
    measure("packages by name (big: N match)", "GET", q(f"{api}/packages", package_name="big"),
            check=count(want=min(20, n)))
    measure("MLflow search_model_versions name='big' (100)", "GET",
            q(f"{mlflow}/model-versions/search", filter="name='big'", max_results=100),
            check=count("model_versions", min(100, n)))
    measure("MLflow get_latest_versions big", "POST", f"{mlflow}/registered-models/get-latest-versions",
            body={"name": "big"}, check=count("model_versions", 1))
    measure("MLflow search_registered_models LIKE 'model-05%'", "GET",
            q(f"{mlflow}/registered-models/search", filter="name LIKE 'model-05%'", max_results=100),
            check=count("registered_models", min(100, max(0, args.models - 500))))
    runs = f"{mlflow}/runs/search"
    measure("MLflow runs/search newest 100", "POST", runs,
            body={"experiment_ids": [experiment], "max_results": 100}, check=count("runs", min(100, n_runs)))
    measure("MLflow runs/search metrics.x > 0.99 by metric", "POST", runs,
            body={"experiment_ids": [experiment], "max_results": 100, "filter": "metrics.x > 0.99",
                  "order_by": ["metrics.x DESC"]}, check=count("runs", 100 if n_runs >= 20_000 else None))
    measure("MLflow runs/search params.p = 'v42'", "POST", runs,
            body={"experiment_ids": [experiment], "max_results": 100, "filter": "params.p = 'v42'"},
            check=count("runs", min(100, len(range(42, n_runs, 100)))))
    sampler.phase = "end"
    rss_end = sampler.sample()
    hwm = server.status_kib("VmHWM")

    # -- the table
    rows = []
    misses = []

    def row(figure, p50, value, target, ratio, verdict):
        rows.append(f"{figure:<50} {p50:>8} {value:>10} {target:<14} {ratio:>6}  {verdict}")
        if verdict.startswith("MISS") or verdict.startswith("HTTP"):
            misses.append(figure)

    for label, p50, p99, target, note in figures:
        if note:
            row(label, "", "", f"p99 < {target:.0f} ms" if target else "", "", note)
        elif target is None:
            row(label, f"{p50:.2f}", f"{p99:.2f}", "", "", "")
        else:
            ratio = p99 / target
            row(label, f"{p50:.1f}", f"{p99:.1f}", f"p99 < {target:.0f} ms", f"{ratio:.2f}",
                "ok" if p99 < target else "MISS")
    for what, rate_1k, rate_n, at_1k, at_n in (
            ("version creates", v_rate_1k, v_rate_n, k1, n - w),
            ("runs/create + log-batch", r_rate_1k, r_rate_n, rk1, n_runs - rw)):
        row(f"{what} at {at_1k}, one client (/s)", "", f"{rate_1k:.0f}", "", "", "")
        ratio = rate_n / rate_1k if rate_1k else 0.0
        row(f"{what} at {at_n}, one client (/s)", "", f"{rate_n:.0f}", f">= {RATE_RATIO_TARGET} x at {at_1k}",
            f"{ratio:.2f}", "ok" if ratio >= RATE_RATIO_TARGET else "MISS")
    for what, kib in (("server RSS during the fill, max", sampler.peak("start", "fill")),
                      ("server RSS after the fill", rss_after_fill),
                      ("server RSS during the reads, max", sampler.peak("reads", "end")),
                      ("server peak RSS (VmHWM)", hwm)):
        mib = kib / 1024
        row(f"{what} (MiB)", "", f"{mib:.0f}", f"< {RSS_TARGET_MIB} MiB", f"{mib / RSS_TARGET_MIB:.2f}",
            "ok" if mib < RSS_TARGET_MIB else "MISS")

    head = [
        f"bench/scale.sh {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}  binary {binary}"
        f" (sha256 {sha256_of(binary)[:12]})",
        f"configuration: {configuration} {shown_flags(server.flags)}; load average {load_average()}",
        f"N = {n} versions of one model and {n_runs} runs of one experiment, {args.models} models,"
        f" {args.packages} generic package versions; fill with {args.clients} clients took"
        f" {fmt_duration(fill_seconds)} ({', '.join(f'{k} {v:.0f} s' for k, v in fill.seconds.items())});"
        f" fill errors {fill.errors}",
        f"latencies: {args.requests} sequential keep-alive requests per figure (client included: see /-/health)",
        "",
        f"{'figure':<50} {'p50 ms':>8} {'p99/value':>10} {'target':<14} {'ratio':>6}  verdict",
    ]
    tail = []
    if warnings:
        tail += ["", "warnings:"] + [f"  {w_}" for w_ in warnings]
    if fill.error_samples:
        tail += ["", "fill errors (first 5):"] + [f"  {e}" for e in fill.error_samples]
    tail += ["", f"misses: {len(misses)}" + (f" ({'; '.join(misses)})" if misses else "")]
    if statements:
        tail += ["", "statements sent to PostgreSQL by one request (its /metrics counter):"]
        tail += [f"  {label:<50} {n:>6}" for label, n in statements.items()]
    return head + rows + tail


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def parse_table(lines):
    """{figure: (p50, p99 or value)} of a table printed by bench() (fixed columns)."""
    rows = {}
    started = False
    for line in lines:
        if line.startswith("figure "):
            started = True
            continue
        if not started or not line.strip():
            if started and not line.strip():
                break
            continue
        figure, rest = line[:50].rstrip(), line[51:]
        rows[figure] = (rest[:8].strip(), rest[9:19].strip())
    return rows


def side_by_side(first, second):
    """The two configurations' figures in columns, the ratio second / first, and issue #12's
    targets for PostgreSQL + S3 (every page p99 < 50 ms at 100k versions)."""
    (name_a, lines_a), (name_b, lines_b) = first, second
    a, b = parse_table(lines_a), parse_table(lines_b)
    out = [f"side by side: p99 (ms) or value; ratio = {name_b} / {name_a}; target for {name_b}", "",
           f"{'figure':<50} {'first':>10} {'second':>10} {'ratio':>6}  {'target':<16} verdict",
           f"{'':<50} {'(' + name_a[:8] + ')':>10} {'(' + name_b[:8] + ')':>10}"]
    misses = []
    for figure in list(a) + [f for f in b if f not in a]:
        va, vb = a.get(figure, ("", ""))[1], b.get(figure, ("", ""))[1]
        try:
            ratio = f"{float(vb) / float(va):.2f}"
        except ValueError:
            ratio = ""
        except ZeroDivisionError:
            ratio = ""
        target, verdict = "", ""
        is_read = not any(word in figure for word in ("/-/health", "creates", "runs/create", "RSS"))
        if is_read and vb:
            target = f"p99 < {SCALEOUT_P99_TARGET_MS:.0f} ms"
            ok = float(vb) < SCALEOUT_P99_TARGET_MS
            verdict = "ok" if ok else "MISS"
            if not ok:
                misses.append(figure)
        out.append(f"{figure:<50} {va:>10} {vb:>10} {ratio:>6}  {target:<16} {verdict}")
    out += ["", f"pages missing p99 < {SCALEOUT_P99_TARGET_MS:.0f} ms on {name_b}: {len(misses)}"
            + (f" ({'; '.join(misses)})" if misses else "")]
    return out


def nearest_rank(sorted_values, pct):
    k = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def next_link(headers):
    links = headers.get_all("link") if hasattr(headers, "get_all") else [headers.get("link")]
    for part in ",".join(v for v in links or [] if v).split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if m:
            return m.group(1)
    return None


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
