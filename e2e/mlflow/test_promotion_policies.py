"""Promotion policies through the real MLflow client (3.x, and 2.x in its own venv).

A model's rules refuse `set_registered_model_alias` for a protected alias: the client raises an
MlflowException whose message names each failed rule; once the version passes, the same call
succeeds.
"""
import uuid

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def api(server, method, path, **kwargs):
    headers = {"PRIVATE-TOKEN": server.root_token}
    return requests.request(method, server.url + "/api/v4" + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture()
def project(server, monkeypatch):
    name = "policy-" + uuid.uuid4().hex[:8]
    reply = api(server, "POST", "/projects", json={"name": name, "visibility": "private"})
    assert reply.status_code == 201, reply.text
    project = reply.json()
    uri = f"{server.url}/api/v4/projects/{project['id']}/ml/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.root_token)
    mlflow.set_tracking_uri(uri)
    return project


def test_set_registered_model_alias_names_the_failed_rules(server, project):
    client = MlflowClient()
    client.create_registered_model("fraud")
    settings = api(
        server,
        "PATCH",
        f"/projects/{project['id']}/ml/models/fraud",
        json={"protected_aliases": ["production"], "promotion_rules": ["metrics.auc >= 0.92", "ci_link"]},
    )
    assert settings.status_code == 200, settings.text
    assert settings.json()["promotion_rules"] == ["metrics.auc >= 0.92", "ci_link"]

    experiment = client.create_experiment("training")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "auc", 0.81)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version("fraud", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)

    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("fraud", "production", version.version)
    message = str(refused.value)
    assert "INVALID_STATE" in message
    assert "metrics.auc >= 0.92" in message and "metric 'auc' is 0.81, not >= 0.92" in message
    assert "ci_link" in message
    assert "production" not in client.get_model_version("fraud", version.version).aliases
    # An unprotected alias is not checked.
    client.set_registered_model_alias("fraud", "challenger", version.version)

    # The version's run gets a better value and its CI job's tags: now the move passes.
    # (MLflow numbers versions; the native API lists the one version with its own run.)
    versions = api(server, "GET", f"/projects/{project['id']}/ml/models/fraud/versions").json()
    assert len(versions) == 1, versions
    version_run = versions[0]
    client.log_metric(version_run["run_id"], "auc", 0.95, step=1)
    with pytest.raises(MlflowException) as still:
        client.set_registered_model_alias("fraud", "production", version.version)
    assert "ci_link" in str(still.value) and "metrics.auc" not in str(still.value)
    client.set_tag(version_run["run_id"], "gitlab.CI_JOB_ID", "4242")
    client.set_registered_model_alias("fraud", "production", version.version)
    assert client.get_model_version_by_alias("fraud", "production").version == version.version
