"""The web UI in headless Chromium: signing in, creating a model and a version with a file,
downloading it, charts and CI links, visibility, escaping, CSRF, screenshots and page times."""
import hashlib
import os
import time
import uuid

import requests
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser_support import screenshot

PASSWORD = "correct horse battery"


class Api:
    def __init__(self, server, token=None):
        self.base = server.url + "/api/v4"
        self.headers = {"PRIVATE-TOKEN": token or server.root_token}

    def post(self, path, **json):
        reply = requests.post(self.base + path, json=json, headers=self.headers, timeout=30)
        assert reply.status_code == 201, reply.text
        return reply.json()

    def get(self, path):
        reply = requests.get(self.base + path, headers=self.headers, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def project_with_member(server, visibility="private", level=20):
    """A project made by root, and a user with a password who is a member at `level`."""
    api = Api(server)
    project = api.post("/projects", name=unique("proj"), visibility=visibility)
    username = unique("user")
    user = api.post("/users", username=username, name=username.title(),
                    email=f"{username}@example.com", password=PASSWORD)
    api.post(f"/projects/{project['id']}/members", user_id=user["id"], access_level=level)
    return project, username


def sign_in(driver, server, username):
    driver.get(server.url + "/users/sign_in")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
    assert username in driver.find_element(By.CSS_SELECTOR, ".account").text


def click_and_load(driver, element):
    """Clicks something that navigates and waits until the next page has replaced this one."""
    driver.execute_script("window.__leaving = true")
    element.click()

    def loaded(driver):
        try:
            return driver.execute_script(
                "return window.__leaving === undefined && document.readyState === 'complete'")
        except WebDriverException:
            return False  # between documents

    WebDriverWait(driver, 15).until(loaded)


def no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def wait_for_file(directory, name, timeout=30):
    path = os.path.join(directory, name)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and not os.path.exists(path + ".crdownload"):
            return path
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded into {directory}: {os.listdir(directory)}")


def test_sign_in_create_model_and_version_then_download(server, browser, downloads, tmp_path):
    project, username = project_with_member(server)
    base = f"{server.url}/{project['path_with_namespace']}/-/ml"
    sign_in(browser, server, username)

    browser.get(base + "/models")
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "Create model"))
    browser.find_element(By.ID, "name").send_keys("fraud-detector")
    browser.find_element(By.ID, "description").send_keys(
        "# Fraud detector\n\nScores card payments. <script>alert(1)</script>")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.form button.primary"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "fraud-detector"
    card = browser.find_element(By.ID, "model-card")
    assert "<script>alert(1)</script>" in card.text, "raw HTML is shown as text"
    assert no_alert(browser)

    payload = os.urandom(2 * 1024 * 1024 + 123)
    upload = tmp_path / "model.onnx"
    upload.write_bytes(payload)
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "Create version"))
    assert "This is the model's first version" in browser.page_source
    browser.find_element(By.ID, "version").send_keys("1.0.0")
    browser.find_element(By.ID, "description").send_keys("First release")
    browser.find_element(By.ID, "file").send_keys(str(upload))
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.form button.primary"))
    assert "fraud-detector / 1.0.0" in browser.find_element(By.TAG_NAME, "h1").text

    # Find it in the versions tab and open it from there.
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "h1 a"))
    click_and_load(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "Versions"))
    row = browser.find_element(By.CSS_SELECTOR, "#versions tbody tr")
    assert "latest" in row.text
    click_and_load(browser, row.find_element(By.CSS_SELECTOR, "a.version-link"))
    files = browser.find_element(By.ID, "files")
    assert "model.onnx" in files.text
    assert hashlib.sha256(payload).hexdigest()[:12] in files.text
    screenshot(browser, "version-with-file")

    files.find_element(By.CSS_SELECTOR, "a.file-link").click()
    downloaded = wait_for_file(downloads, "model.onnx")
    with open(downloaded, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(payload).hexdigest()

    # The same bytes through the package API: the version is the package.
    reply = requests.get(
        f"{server.url}/api/v4/projects/{project['id']}/packages/generic/fraud-detector/1.0.0/model.onnx",
        headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert reply.content == payload


def test_version_from_api_shows_chart_with_50_points_and_ci_links(server, browser):
    project, username = project_with_member(server, visibility="public")
    api = Api(server)
    ml = f"/projects/{project['id']}/ml"
    model = api.post(ml + "/models", name="ranker",
                     description="# Ranker\n\nLearning-to-rank model for **search results**.\n\n"
                                 "| input | type |\n|---|---|\n| query | text |\n| documents | list |")
    experiment = model["experiment_iid"]
    run = api.post(
        f"{ml}/experiments/{experiment}/candidates", name="nightly-train",
        params=[{"key": "learning_rate", "value": "0.01"}, {"key": "epochs", "value": "50"}],
        metrics=[{"key": "loss", "value": 2.0 / (step + 1) + 0.05, "step": step} for step in range(50)]
        + [{"key": "ndcg", "value": 0.5 + step / 120, "step": step} for step in range(50)],
        metadata=[{"key": "dataset", "value": "clicks-2026-11"}])
    ci = {
        "job_id": "4242", "name": "train", "url": "https://gitlab.example.com/ml/ranker/-/jobs/4242",
        "pipeline_id": "77", "pipeline_url": "https://gitlab.example.com/ml/ranker/-/pipelines/77",
        "merge_request_iid": "9", "merge_request_url": "https://gitlab.example.com/ml/ranker/-/merge_requests/9",
        "merge_request_title": "Better ranking features", "user": "alice", "ref": "main",
    }
    version = api.post(f"{ml}/models/ranker/versions", version="1.4.0", candidate_iid=run["iid"],
                       description="Nightly model trained on November clicks.", ci_job=ci)
    api.post(f"{ml}/models/ranker/versions", version="1.5.0-rc.1")
    candidate = api.post(f"{ml}/experiments/{experiment}/candidates", name="tuning-run",
                         params=[{"key": "learning_rate", "value": "0.02"}],
                         metrics=[{"key": "loss", "value": 1.0 / (s + 2), "step": s} for s in range(20)])
    requests.put(f"{server.url}/api/v4/projects/{project['id']}/packages/ml_models/candidate:{candidate['iid']}/files/model.pkl",
                 data=b"weights" * 1000, headers={"PRIVATE-TOKEN": server.root_token}, timeout=30).raise_for_status()

    browser.get(f"{server.url}/{project['path_with_namespace']}/-/ml/models/{model['id']}/versions/{version['id']}")
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    loss = [c for c in charts if c.get_attribute("data-metric") == "loss"]
    assert len(loss) == 1
    points = loss[0].find_element(By.CSS_SELECTOR, "polyline").get_attribute("points").split()
    assert len(points) == 50
    assert loss[0].find_elements(By.CSS_SELECTOR, "line.axis"), "the chart has axes"
    assert loss[0].find_elements(By.CSS_SELECTOR, "text.tick"), "and values on them"
    for key in ("url", "pipeline_url", "merge_request_url"):
        assert browser.find_elements(By.CSS_SELECTOR, f"#ci a[href='{ci[key]}']"), key
    assert "alice" in browser.find_element(By.ID, "ci").text
    screenshot(browser, "version")

    # The model page, with its tabs, then the candidate that is not a version yet.
    sign_in(browser, server, username)
    browser.get(f"{server.url}/{project['path_with_namespace']}/-/ml/models/{model['id']}")
    screenshot(browser, "model")
    click_and_load(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "Versions"))
    versions = browser.find_element(By.ID, "versions").text
    assert versions.index("1.5.0-rc.1") < versions.index("1.4.0"), "SemVer order, newest first"
    assert "prerelease" in versions
    screenshot(browser, "model-versions")
    click_and_load(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "Candidates"))
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "tuning-run"))
    assert browser.find_element(By.ID, "promote")
    screenshot(browser, "candidate")

    field = browser.find_element(By.CSS_SELECTOR, "#promote #version")
    field.send_keys("not-semver")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#promote button.primary"))
    assert "semantic versioning" in browser.find_element(By.CSS_SELECTOR, ".alert.error").text
    field = browser.find_element(By.CSS_SELECTOR, "#promote #version")
    field.clear()
    field.send_keys("1.5.0")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#promote button.primary"))
    assert "ranker / 1.5.0" in browser.find_element(By.TAG_NAME, "h1").text
    assert "model.pkl" in browser.find_element(By.ID, "files").text

    browser.get(f"{server.url}/{project['path_with_namespace']}/-/ml/experiments/{experiment}")
    runs = browser.find_element(By.ID, "runs").text
    assert "learning_rate" in runs and "nightly-train" in runs
    screenshot(browser, "experiment")


def test_anonymous_sees_public_registry_and_404_for_private(server, browser):
    api = Api(server)
    public = api.post("/projects", name=unique("public"), visibility="public")
    private = api.post("/projects", name=unique("private"), visibility="private")
    api.post(f"/projects/{public['id']}/ml/models", name="open-model")
    api.post(f"/projects/{private['id']}/ml/models", name="hidden-model")

    browser.get(f"{server.url}/{public['path_with_namespace']}/-/ml/models")
    assert "open-model" in browser.find_element(By.ID, "models").text
    assert not browser.find_elements(By.LINK_TEXT, "Create model")
    browser.get(f"{server.url}/{private['path_with_namespace']}/-/ml/models")
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("404")
    assert "hidden-model" not in browser.page_source
    browser.get(server.url + "/")
    assert public["path_with_namespace"] in browser.page_source
    assert private["path_with_namespace"] not in browser.page_source


def test_a_form_without_csrf_token_is_rejected(server, browser):
    project, username = project_with_member(server, level=30)
    sign_in(browser, server, username)
    browser.get(f"{server.url}/{project['path_with_namespace']}/-/ml/models/new")
    browser.execute_script(
        "document.querySelector('form.form input[name=authenticity_token]').remove()")
    browser.find_element(By.ID, "name").send_keys("forged")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.form button.primary"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
    assert "CSRF" in browser.page_source
    assert Api(server).get(f"/projects/{project['id']}/ml/models") == []
    browser.get(f"{server.url}/{project['path_with_namespace']}/-/ml/models")
    empty = browser.find_element(By.CSS_SELECTOR, ".empty-state").text
    assert "curl" in empty and "MLFLOW_TRACKING_URI" in empty and "MLFLOW_TRACKING_TOKEN" in empty
    screenshot(browser, "registry-empty")
