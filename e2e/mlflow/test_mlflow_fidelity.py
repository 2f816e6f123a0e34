"""MLflow fidelity (issue 14): what MLflow's own server promises, case by case.

Each test follows the expectations of MLflow's own tests (tests/tracking/test_rest_tracking.py,
tests/tracking/test_model_registry.py) with the real client, and raw REST where the client cannot
reach the case. The MLflow 3 only cases are skipped under MLflow 2.
"""
import json
import os
import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

MLFLOW_MAJOR = int(mlflow.__version__.split(".")[0])
mlflow3 = pytest.mark.skipif(MLFLOW_MAJOR < 3, reason="an MLflow 3 API")


def api(server, method, path, token=None, **kwargs):
    headers = {"PRIVATE-TOKEN": token or server.root_token}
    return requests.request(method, server.url + "/api/v4" + path, headers=headers, timeout=60, **kwargs)


def new_project(server):
    reply = api(server, "POST", "/projects", json={"name": "mf-" + uuid.uuid4().hex[:8], "visibility": "private"})
    assert reply.status_code == 201, reply.text
    project = reply.json()
    project["tracking_uri"] = f"{server.url}/api/v4/projects/{project['id']}/ml/mlflow"
    return project


@pytest.fixture()
def project(server, monkeypatch):
    project = new_project(server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project["tracking_uri"])
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.root_token)
    mlflow.set_tracking_uri(project["tracking_uri"])
    return project


def rest(server, project, method, path, **kwargs):
    """A raw MLflow REST call below the project's tracking URI."""
    return requests.request(method, project["tracking_uri"] + path, timeout=60,
                            headers={"Authorization": f"Bearer {server.root_token}"}, **kwargs)


def training_data():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.8], [0.9, 0.1], [0.4, 0.7], [0.7, 0.2]])
    y = np.array([0, 1, 0, 1, 0, 1])
    return X, y


def log_model(model, name, **kwargs):
    if MLFLOW_MAJOR >= 3:
        return mlflow.sklearn.log_model(model, name=name, **kwargs)
    return mlflow.sklearn.log_model(model, artifact_path=name, **kwargs)


# 1. run_id on model versions and logged models is stored as given.

def test_a_version_keeps_a_run_id_that_is_not_a_run_here(server, project):
    client = MlflowClient()
    client.create_registered_model("elsewhere")
    foreign = uuid.uuid4().hex
    # As in MLflow's test_create_model_version: source and run_id are kept as the client sent them.
    mv = client.create_model_version("elsewhere", f"runs:/{foreign}/model", run_id=foreign)
    assert mv.run_id == foreign and mv.source == f"runs:/{foreign}/model"
    assert client.get_model_version("elsewhere", mv.version).run_id == foreign

    # A run of another project on this server is stored as given, never shown.
    other = new_project(server)
    other_run = rest(server, other, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
    other_run_id = other_run["info"]["run_id"]
    mv2 = client.create_model_version("elsewhere", f"runs:/{other_run_id}/model", run_id=other_run_id)
    assert mv2.run_id == other_run_id
    with pytest.raises(MlflowException) as hidden:
        client.get_run(other_run_id)
    assert hidden.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # A run here is linked: its params come along to the version's own record.
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.1")
    mv3 = client.create_model_version("elsewhere", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    assert mv3.run_id == run.info.run_id


@mlflow3
def test_a_logged_model_keeps_a_foreign_source_run(server, project):
    client = MlflowClient()
    experiment_id = client.create_experiment("lm-foreign")
    foreign = uuid.uuid4().hex
    model = client.create_logged_model(experiment_id, source_run_id=foreign)
    assert model.source_run_id == foreign
    assert client.get_logged_model(model.model_id).source_run_id == foreign
