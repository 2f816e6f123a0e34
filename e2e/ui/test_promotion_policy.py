"""A promotion policy's refusal in headless Chromium: a Maintainer moves the protected
`production` alias from the version page, and the page shows the refusal naming each failed
rule; once the version's run passes, the same form moves it."""
import requests
from selenium.webdriver.common.by import By

from browser_support import screenshot
from test_browser import Api, click_and_load, project_with_member, sign_in, unique


def test_the_version_page_shows_a_policy_refusal_then_moves_the_alias(server, browser):
    project, username = project_with_member(server, visibility="private", level=40)
    api = Api(server)
    ml = f"/projects/{project['id']}/ml"
    model = api.post(ml + "/models", name=unique("gated"))
    settings = requests.patch(
        f"{server.url}/api/v4{ml}/models/{model['name']}",
        json={"protected_aliases": ["production"], "promotion_rules": ["metrics.auc >= 0.92"]},
        headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert settings.status_code == 200, settings.text
    version = api.post(f"{ml}/models/{model['name']}/versions", version="1.0.0")
    mlflow = f"{server.url}/api/v4{ml}/mlflow/api/2.0/mlflow"
    logged = requests.post(f"{mlflow}/runs/log-metric", json={
        "run_id": version["run_id"], "key": "auc", "value": 0.8, "timestamp": 1_700_000_000_000, "step": 0},
        headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert logged.status_code == 200, logged.text

    sign_in(browser, server, username)
    page = f"{server.url}/{project['path_with_namespace']}/-/ml/models/{model['id']}/versions/{version['id']}"
    browser.get(page)
    assert "metrics.auc >= 0.92" in browser.find_element(By.ID, "promotion-rules").text
    browser.find_element(By.ID, "alias").send_keys("production")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#set-alias button[type=submit]"))
    alert = browser.find_element(By.CSS_SELECTOR, "div.alert.error[role=alert]").text
    assert "Promotion policy refused" in alert
    assert "metrics.auc >= 0.92" in alert and "metric 'auc' is 0.8, not >= 0.92" in alert
    assert not browser.find_elements(By.CSS_SELECTOR, "h1 .badge.alias")
    screenshot(browser, "promotion-policy-refusal")

    logged = requests.post(f"{mlflow}/runs/log-metric", json={
        "run_id": version["run_id"], "key": "auc", "value": 0.95, "timestamp": 1_700_000_001_000, "step": 1},
        headers={"PRIVATE-TOKEN": server.root_token}, timeout=30)
    assert logged.status_code == 200, logged.text
    browser.get(page)
    browser.find_element(By.ID, "alias").send_keys("production")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#set-alias button[type=submit]"))
    assert browser.find_element(By.CSS_SELECTOR, "h1 .badge.alias").text == "@production"
