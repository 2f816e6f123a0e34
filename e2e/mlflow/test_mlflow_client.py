"""The real MLflow Python client (3.x, and 2.x in its own venv) against the real server.

The workflow follows the reference capture call by call and asserts on what the client returns.
"""
import hashlib
import json
import os
import subprocess
import tempfile
import uuid

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

MLFLOW_MAJOR = int(mlflow.__version__.split(".")[0])


def api(server, method, path, token=None, **kwargs):
    headers = {"PRIVATE-TOKEN": token or server.root_token}
    return requests.request(method, server.url + "/api/v4" + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture()
def project(server, monkeypatch):
    """A fresh private project with the MLflow client pointed at its tracking URI as root."""
    name = "ml-" + uuid.uuid4().hex[:8]
    reply = api(server, "POST", "/projects", json={"name": name, "visibility": "private"})
    assert reply.status_code == 201, reply.text
    project = reply.json()
    uri = f"{server.url}/api/v4/projects/{project['id']}/ml/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.root_token)
    mlflow.set_tracking_uri(uri)
    project["tracking_uri"] = uri
    return project


def user_token(server, project_id, level):
    name = "u" + uuid.uuid4().hex[:8]
    user = api(server, "POST", "/users", json={"username": name, "name": name, "email": f"{name}@x.org", "password": "a-long-password"})
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    member = api(server, "POST", f"/projects/{project_id}/members", json={"user_id": user_id, "access_level": level})
    assert member.status_code == 201, member.text
    token = api(server, "POST", f"/users/{user_id}/personal_access_tokens", json={"name": "t", "scopes": ["api"]})
    assert token.status_code == 201, token.text
    return token.json()["token"]


def training_data():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.8], [0.9, 0.1], [0.4, 0.7], [0.7, 0.2]])
    y = np.array([0, 1, 0, 1, 0, 1])
    return X, y


def log_model(model, name, registered_model_name, input_example):
    if MLFLOW_MAJOR >= 3:
        return mlflow.sklearn.log_model(model, name=name, registered_model_name=registered_model_name, input_example=input_example)
    return mlflow.sklearn.log_model(model, artifact_path=name, registered_model_name=registered_model_name, input_example=input_example)


def write_tree(root):
    files = {
        "a.txt": b"a",
        "sub1/b.csv": b"x,y\n1,2\n",
        "sub1/sub2/c.json": b'{"c":1}',
        "sub1/sub2/d.bin": b"\x00\x01",
    }
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return files


def test_the_captured_workflow(server, project, tmp_path):
    client = MlflowClient()
    experiment_id = mlflow.set_experiment("capture-exp").experiment_id
    assert mlflow.set_experiment("capture-exp").experiment_id == experiment_id
    assert client.get_experiment_by_name("capture-exp").lifecycle_stage == "active"

    X, y = training_data()
    with mlflow.start_run(run_name="capture-run", tags={"initial": "yes"}) as run:
        run_id = run.info.run_id
        assert len(run_id) == 32 and run.info.experiment_id == experiment_id
        mlflow.log_param("alpha", "0.5")
        mlflow.log_params({"l1_ratio": "0.1", "solver": "saga", "n": "10"})
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("alpha", "0.7")
        assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "Changing param values is not allowed" in changed.value.message
        for step, value in enumerate([1.0, 0.5, 1 / 3]):
            mlflow.log_metric("loss", value, step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        mlflow.log_metric("weird", float("nan"))
        mlflow.set_tag("team", "ml-platform")
        mlflow.set_tags({"a": "1", "b": "2"})
        notes = tmp_path / "notes.txt"
        notes.write_text("hello artifacts")
        mlflow.log_artifact(str(notes))
        mlflow.log_artifact(str(notes), artifact_path="docs")
        tree = write_tree(tmp_path / "folder")
        mlflow.log_artifacts(str(tmp_path / "folder"), artifact_path="folder")
        mlflow.log_dict({"lr": 0.01, "layers": [1, 2]}, "config/cfg.json")
        mlflow.log_text("# readme", "text/readme.md")
        trained = LogisticRegression().fit(X, y)
        info = log_model(trained, "model", "capture-model-sk", X[:2])
        assert str(info.registered_model_version) == "1"

    fetched = client.get_run(run_id)
    assert fetched.data.params == {"alpha": "0.5", "l1_ratio": "0.1", "solver": "saga", "n": "10"}
    assert fetched.data.metrics["loss"] == pytest.approx(1 / 3)
    assert fetched.data.metrics["acc"] == pytest.approx(0.9)
    assert np.isnan(fetched.data.metrics["weird"])
    assert fetched.data.tags["team"] == "ml-platform" and fetched.data.tags["initial"] == "yes"
    assert fetched.info.status == "FINISHED" and fetched.info.end_time is not None
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]

    # Registered models: create, duplicate, get, search, update.
    created = client.create_registered_model("capture-model-manual", tags={"owner": "me"}, description="manual model")
    assert created.name == "capture-model-manual" and created.description == "manual model"
    with pytest.raises(MlflowException) as duplicate:
        client.create_registered_model("capture-model-manual")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert client.get_registered_model("capture-model-manual").tags == {"owner": "me"}
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("does-not-exist")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    found = client.search_registered_models(filter_string="name LIKE 'capture%'", max_results=10)
    assert sorted(m.name for m in found) == ["capture-model-manual", "capture-model-sk"]
    assert client.update_registered_model("capture-model-manual", description="updated").description == "updated"

    # Versions: from a run path and from the run's artifact URI; gitlab.version chooses the SemVer.
    mv1 = client.create_model_version("capture-model-manual", f"runs:/{run_id}/folder", run_id=run_id, tags={"k": "v"}, description="v1")
    assert mv1.version == "1" and mv1.status == "READY" and mv1.run_id == run_id
    # Exactly the tags and aliases the client set; the SemVer (1.0.0) resolves as an alias.
    assert mv1.aliases == [] and mv1.tags == {"k": "v"}
    mv2 = client.create_model_version("capture-model-manual", f"{fetched.info.artifact_uri}/folder", run_id=run_id,
                                      tags={"gitlab.version": "2.1.0"})
    assert mv2.version == "2" and mv2.aliases == [] and mv2.tags == {"gitlab.version": "2.1.0"}
    assert client.get_model_version("capture-model-manual", "1").description == "v1"
    with pytest.raises(MlflowException) as no_version:
        client.get_model_version("capture-model-manual", "99")
    assert no_version.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert sorted(v.version for v in client.search_model_versions("name='capture-model-manual'")) == ["1", "2"]

    # Tags on models and versions.
    client.set_registered_model_tag("capture-model-manual", "stage", "dev")
    client.set_model_version_tag("capture-model-manual", "1", "validated", "true")
    assert client.get_registered_model("capture-model-manual").tags["stage"] == "dev"
    assert client.get_model_version("capture-model-manual", "1").tags["validated"] == "true"
    client.delete_registered_model_tag("capture-model-manual", "stage")
    client.delete_model_version_tag("capture-model-manual", "1", "validated")
    assert "stage" not in client.get_registered_model("capture-model-manual").tags
    assert "validated" not in client.get_model_version("capture-model-manual", "1").tags
    assert client.update_model_version("capture-model-manual", "1", description="new desc").description == "new desc"

    # Aliases, latest versions, stages.
    client.set_registered_model_alias("capture-model-manual", "champion", "1")
    by_alias = client.get_model_version_by_alias("capture-model-manual", "champion")
    assert by_alias.version == "1" and "champion" in by_alias.aliases
    assert client.get_model_version_by_alias("capture-model-manual", "2.1.0").version == "2"
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("capture-model-manual", "nope")
    assert [v.version for v in client.get_latest_versions("capture-model-manual")] == ["2"]
    staged = client.transition_model_version_stage("capture-model-manual", "1", "Staging")
    assert staged.current_stage == "Staging"
    assert [v.version for v in client.get_latest_versions("capture-model-manual", stages=["Staging"])] == ["1"]

    # Artifacts: listing, nested folders, downloads.
    root = {f.path: f.is_dir for f in client.list_artifacts(run_id)}
    assert root["notes.txt"] is False and root["folder"] is True and root["config"] is True and root["docs"] is True
    folder = {f.path: f.is_dir for f in client.list_artifacts(run_id, "folder")}
    assert folder == {"folder/a.txt": False, "folder/sub1": True}
    (tmp_path / "down").mkdir()
    local = client.download_artifacts(run_id, "folder", str(tmp_path / "down"))
    for rel, data in tree.items():
        assert open(os.path.join(local, rel), "rb").read() == data
    (tmp_path / "n").mkdir()
    assert open(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/notes.txt", dst_path=str(tmp_path / "n"))).read() == "hello artifacts"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/cfg.json") == {"lr": 0.01, "layers": [1, 2]}
    (tmp_path / "v1").mkdir()
    version_dir = mlflow.artifacts.download_artifacts("models:/capture-model-manual/1", dst_path=str(tmp_path / "v1"))
    assert open(os.path.join(version_dir, "a.txt"), "rb").read() == b"a"
    assert open(os.path.join(version_dir, "sub1", "sub2", "d.bin"), "rb").read() == b"\x00\x01"

    # Loading: by version, by alias, by SemVer alias, latest; predictions equal the trained model's.
    client.set_registered_model_alias("capture-model-sk", "production", "1")
    expected = trained.predict(X).tolist()
    for uri in ["models:/capture-model-sk/1", "models:/capture-model-sk@production", "models:/capture-model-sk@1.0.0",
                "models:/capture-model-sk/latest", info.model_uri]:
        assert mlflow.pyfunc.load_model(uri).predict(X).tolist() == expected, uri
    np.testing.assert_allclose(mlflow.sklearn.load_model("models:/capture-model-sk/1").predict_proba(X), trained.predict_proba(X))

    # The registered version's files are a package: curl fetches them by path.
    mlmodel = subprocess.run(
        ["curl", "--silent", "--fail", "--header", f"PRIVATE-TOKEN: {server.root_token}",
         f"{server.url}/api/v4/projects/{project['id']}/packages/generic/capture-model-sk/1.0.0/MLmodel"],
        capture_output=True, check=True).stdout
    assert b"flavors" in mlmodel and b"sklearn" in mlmodel

    # Searches.
    frame = mlflow.search_runs(experiment_names=["capture-exp"])
    assert list(frame["run_id"]) == [run_id]
    assert [r.info.run_id for r in client.search_runs([experiment_id], "params.alpha = '0.5'")] == [run_id]
    assert client.search_runs([experiment_id], "params.alpha = '0.9'") == []
    assert [r.info.run_id for r in client.search_runs([experiment_id], "metrics.loss < 0.5", order_by=["metrics.loss ASC"], max_results=5)] == [run_id]
    assert "capture-exp" in [e.name for e in client.search_experiments()]
    with pytest.raises(MlflowException) as exists:
        client.create_experiment("capture-exp")
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"

    # Low-level runs and batches.
    low = client.create_run(experiment_id, run_name="low-level")
    client.log_batch(low.info.run_id, metrics=[mlflow.entities.Metric("m", float(i), 1000 + i, i) for i in range(1000)],
                     params=[mlflow.entities.Param("p", "1")], tags=[mlflow.entities.RunTag("t", "v")])
    assert len(client.get_metric_history(low.info.run_id, "m")) == 1000
    client.set_terminated(low.info.run_id, status="FAILED")
    assert client.get_run(low.info.run_id).info.status == "FAILED"

    # Deletes.
    client.delete_registered_model_alias("capture-model-manual", "champion")
    assert "champion" not in client.get_model_version("capture-model-manual", "1").aliases
    client.delete_model_version("capture-model-manual", "2")
    assert [v.version for v in client.search_model_versions("name='capture-model-manual'")] == ["1"]
    client.delete_registered_model("capture-model-manual")
    with pytest.raises(MlflowException) as gone:
        client.get_registered_model("capture-model-manual")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mlflow.search_runs(experiment_ids=[experiment_id])["run_id"].tolist() == [low.info.run_id]
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.delete_run(run_id)


def test_a_200_mib_artifact_round_trips(server, project, tmp_path):
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for i in range(200):
            chunk = hashlib.sha512(str(i).encode()).digest() * (1 << 14)
            digest.update(chunk)
            f.write(chunk)
    mlflow.set_experiment("big")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), artifact_path="big")
    (tmp_path / "out").mkdir()
    out = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/big/big.bin", dst_path=str(tmp_path / "out"))
    assert os.path.getsize(out) == 200 << 20
    back = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            back.update(block)
    assert back.hexdigest() == digest.hexdigest()


def test_errors_are_mlflow_shaped(server, project, monkeypatch):
    client = MlflowClient()
    experiment_id = client.create_experiment("errors")
    run = client.create_run(experiment_id)
    client.create_registered_model("errs")

    with pytest.raises(MlflowException) as unknown:
        client.get_registered_model("no-such-model")
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    with pytest.raises(MlflowException) as bad_semver:
        client.create_model_version("errs", f"runs:/{run.info.run_id}/x", run_id=run.info.run_id,
                                    tags={"gitlab.version": "v1.2"})
    assert bad_semver.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "semantic versioning" in bad_semver.value.message

    client.log_param(run.info.run_id, "p", "1")
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "p", "2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"

    malformed = requests.post(project["tracking_uri"] + "/api/2.0/mlflow/runs/log-metric", data="{not json",
                              headers={"Authorization": f"Bearer {server.root_token}", "Content-Type": "application/json"}, timeout=30)
    assert malformed.status_code == 400
    assert malformed.json()["error_code"] in ("MALFORMED_REQUEST", "INVALID_PARAMETER_VALUE")
    unknown_endpoint = requests.get(project["tracking_uri"] + "/api/2.0/mlflow/no-such-thing",
                                    headers={"Authorization": f"Bearer {server.root_token}"}, timeout=30)
    assert unknown_endpoint.status_code == 404 and unknown_endpoint.json()["error_code"] == "ENDPOINT_NOT_FOUND"

    # A Guest reads but may not write.
    guest = user_token(server, project["id"], 10)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", guest)
    assert client.get_registered_model("errs").name == "errs"
    for write in (lambda: client.create_registered_model("guest-model"),
                  lambda: client.log_metric(run.info.run_id, "m", 1.0),
                  lambda: client.create_experiment("guest-exp")):
        with pytest.raises(MlflowException) as denied:
            write()
        assert denied.value.error_code == "PERMISSION_DENIED"

    # A Reporter writes (DESIGN §4), with HTTP Basic credentials this time.
    reporter = user_token(server, project["id"], 20)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "anyone")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", reporter)
    assert client.create_registered_model("reporter-model").name == "reporter-model"

    # No credentials on a private project: writes are 401, reads 404.
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(MlflowException) as anonymous:
        client.create_registered_model("anon-model")
    assert anonymous.value.error_code == "UNAUTHENTICATED"
