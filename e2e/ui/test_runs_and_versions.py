"""Finding, comparing and trusting runs and versions in headless Chromium (issue #15): the runs
table (sort by a metric, MLflow filter, column picker, deleted and nested runs), comparing runs
and versions, aliases, artifact previews, adding files to a version, personal access tokens,
phone-width screenshots of every page kind, and page times with 1,000 runs and 1,000 versions."""
import os
import statistics
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import SCREENSHOTS, screenshot
from test_browser import Api, click_and_load, project_with_member, sign_in, unique


class MlflowRest:
    """MLflow's REST API as the client sends it, for runs with times, statuses and tags."""

    def __init__(self, server, project_id):
        self.base = f"{server.url}/api/v4/projects/{project_id}/ml/mlflow/api/2.0/mlflow"
        self.headers = {"Authorization": f"Bearer {server.root_token}"}

    def post(self, path, **body):
        reply = requests.post(f"{self.base}/{path}", json=body, headers=self.headers, timeout=30)
        assert reply.status_code == 200, (path, reply.text)
        return reply.json()

    def run(self, experiment_id, name, start, seconds, params=(), metrics=(), tags=(), status="FINISHED"):
        run = self.post("runs/create", experiment_id=experiment_id, run_name=name, start_time=start,
                        tags=[{"key": k, "value": v} for k, v in tags])["run"]["info"]
        run_id = run["run_id"]
        self.post("runs/log-batch", run_id=run_id,
                  params=[{"key": k, "value": v} for k, v in params],
                  metrics=[{"key": k, "value": v, "step": step, "timestamp": start + step * 1000}
                           for k, values in metrics for step, v in enumerate(values)])
        self.post("runs/update", run_id=run_id, status=status, end_time=start + seconds * 1000)
        return run_id


def png(width, height, rgb=(200, 40, 40)):
    """A real PNG image, so that the preview has something to draw."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def upload(server, project_id, package, version, name, data):
    reply = requests.put(
        f"{server.url}/api/v4/projects/{project_id}/packages/generic/{package}/{version}/{name}",
        data=data, headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert reply.status_code in (200, 201), reply.text


def column_values(driver, header_text):
    """The cells of the runs table's column whose header contains `header_text`."""
    headers = driver.find_elements(By.CSS_SELECTOR, "#runs thead th")
    index = next(i for i, th in enumerate(headers) if header_text in th.text)
    return [row.find_elements(By.CSS_SELECTOR, "td")[index].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]


def no_horizontal_scroll(driver):
    return driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def experiment_with_runs(server, project):
    mlflow = MlflowRest(server, project["id"])
    experiment_id = mlflow.post("experiments/create", name=unique("tuning"))["experiment_id"]
    start = int(time.time() * 1000) - 3600_000
    ids = {}
    for i in range(8):
        lr = "0.01" if i % 2 == 0 else "0.1"
        ids[f"run-{i}"] = mlflow.run(
            experiment_id, f"run-{i}", start + i * 60_000, 30 + i * 10,
            params=[("lr", lr), ("depth", str(i)), ("optimizer", "adam")],
            metrics=[("auc", [0.70 + i * 0.03 + s * 0.002 for s in range(5)]),
                     ("loss", [1.0 / (i + s + 1) for s in range(5)])],
            tags=[("team", "risk" if i < 4 else "growth")])
    parent = mlflow.run(experiment_id, "sweep", start + 10 * 60_000, 600, params=[("lr", "0.05")])
    for j in range(2):
        mlflow.run(experiment_id, f"sweep-child-{j}", start + (11 + j) * 60_000, 20,
                   params=[("lr", "0.05"), ("depth", str(10 + j))],
                   tags=[("mlflow.parentRunId", parent)])
    # One param as long as a serialized config: the table must not widen the page.
    mlflow.run(experiment_id, "long-config", start + 20 * 60_000, 5,
               params=[("config", "x" * 1500)], metrics=[("auc", [0.5])])
    gone = mlflow.run(experiment_id, "discarded", start + 30 * 60_000, 5)
    mlflow.post("runs/delete", run_id=gone)
    return experiment_id, ids


def test_runs_table_sort_filter_columns_and_compare(server, browser):
    project, username = project_with_member(server, visibility="private")
    experiment_id, _ = experiment_with_runs(server, project)
    base = f"{server.url}/{project['path_with_namespace']}/-/ml"
    sign_in(browser, server, username)
    browser.set_window_size(1440, 1000)
    browser.get(f"{base}/experiments/{experiment_id}")
    assert "discarded" not in browser.find_element(By.ID, "runs").text, "deleted runs are hidden"
    assert no_horizontal_scroll(browser), "a 1,500-character param scrolls inside the table"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 1440

    # Nested runs: the children follow their parent.
    rows = [r.find_element(By.CSS_SELECTOR, "td.run a").text for r in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
    sweep = rows.index("sweep")
    children = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr.child")
    assert len(children) == 2 and all("sweep-child" in c.text for c in children)
    assert rows[sweep + 1].startswith("sweep-child") and rows[sweep + 2].startswith("sweep-child"), rows
    assert column_values(browser, "Duration")[sweep] == "10m 00s"
    assert "finished" in browser.find_element(By.ID, "runs").text

    # Sort by a metric: a click on its header, then another for the other way round.
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#runs th a[data-order='metrics.auc']"))
    assert "order_by=metrics.auc+DESC" in browser.current_url
    aucs = [float(v) for v in column_values(browser, "auc") if v]
    assert len(aucs) == 9 and aucs == sorted(aucs, reverse=True), aucs
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#runs th a[data-order='metrics.auc']"))
    aucs = [float(v) for v in column_values(browser, "auc") if v]
    assert aucs == sorted(aucs), aucs
    screenshot(browser, "runs-sorted-by-metric")

    # Filter with MLflow's search syntax; a bad expression is explained on the page.
    box = browser.find_element(By.ID, "filter")
    box.clear()
    box.send_keys("metrics.auc > 0.8 and params.lr = '0.01'")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.run-search button[type=submit]"))
    names = [r.find_element(By.CSS_SELECTOR, "td.run a").text for r in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]
    assert sorted(names) == ["run-4", "run-6"], names
    screenshot(browser, "runs-filtered")
    box = browser.find_element(By.ID, "filter")
    box.clear()
    box.send_keys("metrics.auc >")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.run-search button[type=submit]"))
    assert "Invalid filter" in browser.find_element(By.ID, "search-error").text

    # Pick a column: the tag `team` is not shown until picked.
    browser.get(f"{base}/experiments/{experiment_id}")
    assert "team" not in browser.find_element(By.CSS_SELECTOR, "#runs thead").text
    browser.find_element(By.CSS_SELECTOR, "#column-picker summary").click()
    browser.find_element(By.CSS_SELECTOR, "#column-picker input[value='tags.team']").click()
    browser.find_element(By.CSS_SELECTOR, "#column-picker input[value='params.optimizer']").click()
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#column-picker button[type=submit]"))
    heads = browser.find_element(By.CSS_SELECTOR, "#runs thead").text
    assert "team" in heads and "optimizer" not in heads, heads
    assert "growth" in column_values(browser, "team")

    # Deleted runs when asked for.
    browser.find_element(By.CSS_SELECTOR, "form.run-search input[name=deleted]").click()
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.run-search button[type=submit]"))
    assert "discarded" in browser.find_element(By.ID, "runs").text

    # Compare three runs picked in the table.
    browser.get(f"{base}/experiments/{experiment_id}?order_by=attributes.run_name+ASC")
    for name in ("run-1", "run-2", "run-5"):
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
                   if r.find_element(By.CSS_SELECTOR, "td.run a").text == name)
        row.find_element(By.CSS_SELECTOR, "input[name=runs]").click()
    click_and_load(browser, browser.find_element(By.ID, "compare-button"))
    assert "/compare?runs=" in browser.current_url
    params = browser.find_element(By.ID, "compare-params")
    assert params.find_element(By.CSS_SELECTOR, "tr[data-key='depth']").get_attribute("class") == "diff"
    assert params.find_element(By.CSS_SELECTOR, "tr[data-key='optimizer']").get_attribute("class") == "same"
    metrics = browser.find_element(By.ID, "compare-metrics").text
    assert "auc" in metrics and "loss" in metrics
    auc = browser.find_element(By.CSS_SELECTOR, "#compare-charts figure.chart[data-metric='auc']")
    assert len(auc.find_elements(By.CSS_SELECTOR, "polyline")) == 3, "one line per run"
    assert len(auc.find_elements(By.CSS_SELECTOR, ".legend li")) == 3
    assert auc.find_elements(By.CSS_SELECTOR, "circle.pt title"), "hover values"
    screenshot(browser, "compare-runs")


def model_with_versions(server, project):
    api = Api(server)
    ml = f"/projects/{project['id']}/ml"
    model = api.post(ml + "/models", name=unique("scorer"),
                     description="# Scorer\n\n- [x] trained\n- [ ] evaluated on holdout\n\nAUC as in the paper.[^1]\n\n[^1]: Fawcett, 2006.")
    name = model["name"]
    versions = {}
    for number, (lr, auc) in {"1.2.0": ("0.1", 0.81), "1.3.0": ("0.05", 0.86)}.items():
        run = api.post(f"{ml}/experiments/{model['experiment_iid']}/candidates", name=f"train-{number}",
                       params=[{"key": "lr", "value": lr}, {"key": "epochs", "value": "20"}],
                       metrics=[{"key": "auc", "value": auc - 0.1 + s * 0.01, "step": s} for s in range(11)])
        versions[number] = api.post(f"{ml}/models/{name}/versions", version=number, candidate_iid=run["iid"])
        upload(server, project["id"], name, number, "model.bin", f"weights of {number}".encode() * 100)
        upload(server, project["id"], name, number, "config.json", b'{"threshold": 0.5}')
    upload(server, project["id"], name, "1.3.0", "eval/scores.csv",
           b"id,score,label\n1,0.91,fraud\n2,0.12,ok\n3,\"0.5\",\"ok, probably\"\n")
    upload(server, project["id"], name, "1.3.0", "eval/roc.png", png(64, 48))
    versions["2.0.0-alpha.1"] = api.post(f"{ml}/models/{name}/versions", version="2.0.0-alpha.1")
    return model, versions


def test_versions_compare_alias_preview_add_files_and_tokens(server, browser, tmp_path):
    project, username = project_with_member(server, visibility="private", level=20)
    model, versions = model_with_versions(server, project)
    base = f"{server.url}/{project['path_with_namespace']}/-/ml"
    model_url = f"{base}/models/{model['id']}"
    sign_in(browser, server, username)

    # "latest" is the highest release, in the UI as in downloads.
    browser.get(f"{model_url}?tab=versions")
    latest_row = browser.find_element(By.CSS_SELECTOR, "#versions tr[data-version='1.3.0']")
    assert "latest" in latest_row.text
    assert "latest" not in browser.find_element(By.CSS_SELECTOR, "#versions tr[data-version='2.0.0-alpha.1']").text
    latest = requests.get(f"{server.url}/api/v4/projects/{project['id']}/packages/generic/{model['name']}/latest/model.bin",
                          headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert latest.status_code == 200 and latest.content.startswith(b"weights of 1.3.0")

    # The version filter takes SemVer requirements.
    box = browser.find_element(By.ID, "version-filter")
    box.send_keys("^1.2")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form[role=search] button"))
    shown = [r.get_attribute("data-version") for r in browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")]
    assert shown == ["1.3.0", "1.2.0"], shown

    # Compare two versions: params, metrics, files by sha256.
    for number in ("1.2.0", "1.3.0"):
        browser.find_element(By.CSS_SELECTOR, f"#versions tr[data-version='{number}'] input[name=versions]").click()
    click_and_load(browser, browser.find_element(By.ID, "compare-button"))
    files = browser.find_element(By.ID, "compare-files")
    assert files.find_element(By.CSS_SELECTOR, "tr[data-file='model.bin']").get_attribute("class") == "diff"
    assert files.find_element(By.CSS_SELECTOR, "tr[data-file='config.json']").get_attribute("class") == "same"
    assert "added or removed" in files.find_element(By.CSS_SELECTOR, "tr[data-file='eval/scores.csv']").text
    assert browser.find_element(By.CSS_SELECTOR, "#compare-params tr[data-key='lr']").get_attribute("class") == "diff"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-charts figure[data-metric='auc'] polyline")) == 2
    screenshot(browser, "compare-versions")

    # Move an alias: set on 1.3.0, then on 1.2.0; the model page and the registry follow.
    for number in ("1.3.0", "1.2.0"):
        browser.get(f"{model_url}/versions/{versions[number]['id']}")
        browser.find_element(By.ID, "alias").send_keys("champion")
        click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#set-alias button[type=submit]"))
        assert browser.find_element(By.CSS_SELECTOR, "h1 .badge.alias").text == "@champion"
        snippet = browser.find_element(By.CSS_SELECTOR, "#aliases .snippet code").text
        assert snippet == f"models:/{model['name']}@champion"
    copy = browser.find_element(By.CSS_SELECTOR, "#aliases button.copy")
    copy.click()
    WebDriverWait(browser, 3).until(lambda d: copy.text == "Copied")
    WebDriverWait(browser, 5).until(lambda d: copy.text == "Copy"), "the copy button resets"
    screenshot(browser, "version-with-alias")
    browser.get(model_url)
    aliases = browser.find_element(By.ID, "model-aliases")
    assert "@champion" in aliases.text and "1.2.0" in aliases.text and "1.3.0" not in aliases.text
    card = browser.find_element(By.ID, "model-card")
    assert len(card.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")) == 2, "a task list"
    assert card.find_elements(By.CSS_SELECTOR, ".footnote"), "footnotes"
    screenshot(browser, "model-with-alias")
    browser.get(f"{base}/models")
    assert "@champion" in browser.find_element(By.ID, "models").text

    # Preview a CSV as a table and an image.
    browser.get(f"{model_url}/versions/{versions['1.3.0']['id']}")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#files tr[data-path='eval/scores.csv'] a.preview-link"))
    table = browser.find_element(By.ID, "csv-preview")
    assert [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")] == ["id", "score", "label"]
    cells = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tbody tr:nth-child(3) td")]
    assert cells == ["3", "0.5", "ok, probably"], cells
    screenshot(browser, "preview-csv")
    browser.back()
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#files tr[data-path='eval/roc.png'] a.preview-link"))
    image = browser.find_element(By.CSS_SELECTOR, "img.preview-image")
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return arguments[0].complete", image))
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 64
    screenshot(browser, "preview-image")

    # Add two files to the existing version, with the progress bar.
    first, second = tmp_path / "thresholds.yaml", tmp_path / "notes.txt"
    first.write_text("threshold: 0.42\n")
    second.write_text("retrained on March data\n")
    browser.get(f"{model_url}/versions/{versions['1.2.0']['id']}")
    form = browser.find_element(By.ID, "add-files")
    if not form.get_attribute("open"):
        form.find_element(By.TAG_NAME, "summary").click()
    browser.find_element(By.ID, "subfolder").send_keys("extra")
    browser.find_element(By.ID, "files-input").send_keys(f"{first}\n{second}")
    assert browser.find_element(By.ID, "upload-progress")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#add-files button[type=submit]"))
    paths = [r.get_attribute("data-path") for r in browser.find_elements(By.CSS_SELECTOR, "#files tr.file")]
    assert "extra/thresholds.yaml" in paths and "extra/notes.txt" in paths, paths
    got = requests.get(f"{server.url}/api/v4/projects/{project['id']}/packages/generic/{model['name']}/1.2.0/extra/thresholds.yaml",
                       headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert got.text == "threshold: 0.42\n"

    # A personal access token, created, used and revoked in the browser.
    browser.get(server.url + "/-/user_settings/personal_access_tokens")
    browser.find_element(By.ID, "token-name").send_keys("laptop")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#create-token button[type=submit]"))
    secret = browser.find_element(By.CSS_SELECTOR, "#new-token .snippet code").text
    me = requests.get(f"{server.url}/api/v4/user", headers={"PRIVATE-TOKEN": secret}, timeout=30)
    assert me.status_code == 200 and me.json()["username"] == username
    screenshot(browser, "tokens")
    browser.execute_script("window.confirm = () => true")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#tokens form button.danger"))
    assert "revoked" in browser.find_element(By.ID, "tokens").text
    assert requests.get(f"{server.url}/api/v4/user", headers={"PRIVATE-TOKEN": secret}, timeout=30).status_code == 401


def test_every_page_kind_fits_a_phone(server, browser):
    project, username = project_with_member(server, visibility="private")
    experiment_id, _ = experiment_with_runs(server, project)
    model, versions = model_with_versions(server, project)
    api = Api(server)
    candidate = api.post(f"/projects/{project['id']}/ml/experiments/{model['experiment_iid']}/candidates",
                         name="a-candidate-with-a-rather-long-name-for-a-phone",
                         params=[{"key": "a_really_long_parameter_name_for_phones", "value": "y" * 300}])
    root = f"{server.url}/{project['path_with_namespace']}"
    ml = root + "/-/ml"
    model_url = f"{ml}/models/{model['id']}"
    version_url = f"{model_url}/versions/{versions['1.3.0']['id']}"
    pages = {
        "sign-in": server.url + "/users/sign_in",
        "projects": server.url + "/",
        "project": root,
        "registry": ml + "/models",
        "new-model": ml + "/models/new",
        "model": model_url,
        "model-versions": model_url + "?tab=versions",
        "model-candidates": model_url + "?tab=candidates",
        "new-version": model_url + "/versions/new",
        "version": version_url,
        "compare-versions": f"{model_url}/compare?versions=1.2.0,1.3.0",
        "preview-csv": f"{version_url}/preview/eval/scores.csv",
        "preview-image": f"{version_url}/preview/eval/roc.png",
        "candidate": f"{ml}/candidates/{candidate['iid']}",
        "experiments": ml + "/experiments",
        "experiment": f"{ml}/experiments/{experiment_id}",
        "compare-runs": f"{ml}/experiments/{experiment_id}/compare?runs=1,2,3",
        "tokens": server.url + "/-/user_settings/personal_access_tokens",
        "not-found": root + "/-/ml/models/999999",
    }
    browser.get(pages["sign-in"])
    sign_in(browser, server, username)
    wide = []
    for name, url in pages.items():
        browser.set_window_size(390, 844)
        browser.get(url)
        if not no_horizontal_scroll(browser):
            wide.append((name, browser.execute_script("return document.documentElement.scrollWidth")))
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(390, max(844, min(int(height) + 40, 4000)))
        os.makedirs(SCREENSHOTS, exist_ok=True)
        browser.save_screenshot(os.path.join(SCREENSHOTS, f"phone-{name}.png"))
    assert not wide, f"pages wider than a 390 px phone: {wide}"
    browser.set_window_size(1400, 1000)
    browser.get(pages["not-found"])
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("404")
    assert browser.find_element(By.CSS_SELECTOR, ".error-nav a[href='/']")
    assert browser.find_element(By.CSS_SELECTOR, "a.skip-link")


@pytest.mark.skipif(
    os.environ.get("MODELYARD_E2E_STORES") == "scaleout",
    reason="the 50 ms page budget is the embedded store's; on PostgreSQL + S3 page costs are "
    "measured by bench/scale.sh --both (bench/README.md)",
)
def test_pages_with_1000_runs_and_1000_versions_are_fast(server, browser):
    project, username = project_with_member(server, visibility="private")
    api = Api(server)
    ml = f"/projects/{project['id']}/ml"
    for i in range(100):
        api.post(ml + "/models", name=f"model-{i:03d}", description=f"Model number {i}.")
    model = api.post(ml + "/models", name="big-model", description="# Big\n\nA thousand versions.")
    experiment = {"iid": MlflowRest(server, project["id"]).post("experiments/create", name="big-experiment")["experiment_id"]}

    def run(i):
        return api.post(f"{ml}/experiments/{experiment['iid']}/candidates", name=f"run-{i:04d}",
                        params=[{"key": "lr", "value": str((i % 10) / 100)}, {"key": "depth", "value": str(i % 16)},
                                {"key": "batch", "value": str(2 ** (i % 8))}],
                        metrics=[{"key": "auc", "value": 0.5 + (i % 500) / 1000 + s / 10000, "step": s} for s in range(20)]
                        + [{"key": "loss", "value": 1.0 / (i + 1), "step": 0}],
                        metadata=[{"key": "team", "value": "risk" if i % 3 else "growth"}])

    def version(i):
        return api.post(f"{ml}/models/big-model/versions", version=f"{i // 100}.{(i // 10) % 10}.{i % 10}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(run, range(1000)))
        all_versions = list(pool.map(version, range(1000)))
    upload(server, project["id"], "big-model", "9.9.9", "eval/scores.csv",
           b"id,score\n" + b"".join(f"{i},{i / 1000}\n".encode() for i in range(5000)))
    upload(server, project["id"], "big-model", "9.9.8", "eval/scores.csv", b"id,score\n1,0.5\n")
    last = next(v for v in all_versions if v["version"] == "9.9.9")

    sign_in(browser, server, username)
    session = requests.Session()
    session.cookies.set("modelyard_session", browser.get_cookie("modelyard_session")["value"])
    root = f"{server.url}/{project['path_with_namespace']}"
    model_url = f"{root}/-/ml/models/{model['id']}"
    experiment_url = f"{root}/-/ml/experiments/{experiment['iid']}"
    first_page = session.get(experiment_url, timeout=30).text
    token = first_page.split("page_token=")[1].split('"')[0].replace("&amp;", "&")
    run_iids = ",".join(str(r["iid"]) for r in runs[:3])
    pages = {
        "projects": server.url + "/",
        "project": root,
        "registry": root + "/-/ml/models",
        "registry, page 2": root + "/-/ml/models?page=2",
        "registry, search": root + "/-/ml/models?search=model-05",
        "model": model_url,
        "model, versions": model_url + "?tab=versions",
        "model, versions p. 10": model_url + "?tab=versions&page=10",
        "model, versions ^5.2": model_url + "?tab=versions&search=%5E5.2",
        "model, candidates": model_url + "?tab=candidates",
        "version": f"{model_url}/versions/{last['id']}",
        "version, log scale": f"{model_url}/versions/{last['id']}?scale=log&x=time",
        "preview CSV": f"{model_url}/versions/{last['id']}/preview/eval/scores.csv",
        "compare versions": f"{model_url}/compare?versions=9.9.8,9.9.9",
        "candidate": f"{root}/-/ml/candidates/{runs[-1]['iid']}",
        "experiments": root + "/-/ml/experiments",
        "runs": experiment_url,
        "runs, page 2": f"{experiment_url}?page_token={token}",
        "runs by metric": experiment_url + "?order_by=metrics.auc+DESC",
        "runs by param": experiment_url + "?order_by=params.depth+ASC",
        "runs by duration": experiment_url + "?order_by=attributes.duration+DESC",
        "runs, filter": experiment_url + "?filter=metrics.auc+%3E+0.9+and+params.lr+%3D+%270.05%27",
        "runs, columns": experiment_url + "?columns=params.lr,metrics.auc,tags.team",
        "compare 3 runs": f"{experiment_url}/compare?runs={run_iids}",
        "new version": f"{model_url}/versions/new",
        "tokens": server.url + "/-/user_settings/personal_access_tokens",
    }
    report = []
    for name, url in pages.items():
        times = []
        size = 0
        for _ in range(7):
            started = time.perf_counter()
            reply = session.get(url, timeout=30)
            times.append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200, (name, reply.status_code, reply.text[:500])
            size = len(reply.content)
        report.append((name, statistics.median(times), max(times), size))
    heading = "page (1,000 runs, 1,000 versions, 101 models)"
    lines = [f"{heading:<48}{'median ms':>10}{'max ms':>10}{'KiB':>8}"]
    lines += [f"{name:<48}{median:>10.2f}{worst:>10.2f}{size / 1024:>8.1f}" for name, median, worst, size in report]
    print("\n" + "\n".join(lines))
    os.makedirs(SCREENSHOTS, exist_ok=True)
    with open(os.path.join(SCREENSHOTS, "page-times.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    slow = [(name, median) for name, median, _, _ in report if median >= 50]
    assert not slow, f"pages slower than 50 ms: {slow}"
