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
    # Fluent runs go to this project's experiment 0, whatever an earlier test set active.
    mlflow.set_experiment(experiment_id="0")
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


# 2. Datasets and model inputs are kept and returned in run.inputs.

def test_log_input_keeps_the_dataset_and_its_context(server, project):
    import pandas as pd

    client = MlflowClient()
    X, y = training_data()
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.csv", name="train-set", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        # The same dataset again is one input (MLflow keeps one per name and digest).
        mlflow.log_input(dataset, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    logged = inputs[0].dataset
    assert logged.name == "train-set" and logged.digest == dataset.digest
    assert logged.source_type == "s3" and json.loads(logged.source)["uri"] == "s3://bucket/train.csv"
    assert json.loads(logged.schema)["mlflow_colspec"][0]["name"] == "a"
    assert json.loads(logged.profile)["num_rows"] == 6
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training"}

    # MLflow's own check: a dataset without a name is refused.
    bad = rest(server, project, "POST", "/api/2.0/mlflow/runs/log-inputs",
               json={"run_id": run.info.run_id, "datasets": [{"dataset": {"digest": "d", "source_type": "local", "source": "x"}}]})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert bad.json()["message"] == "Dataset name cannot be None"


def test_autolog_records_its_training_dataset(server, project):
    client = MlflowClient()
    X, y = training_data()
    mlflow.sklearn.autolog(log_datasets=True, log_models=False)
    try:
        with mlflow.start_run() as run:
            LogisticRegression().fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    contexts = {t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
    assert inputs and "train" in contexts, inputs


@mlflow3
def test_model_inputs_are_kept(server, project):
    from mlflow.entities import LoggedModelInput

    client = MlflowClient()
    experiment_id = client.create_experiment("model-inputs")
    model = client.create_logged_model(experiment_id, name="upstream")
    run = client.create_run(experiment_id)
    client.log_inputs(run.info.run_id, models=[LoggedModelInput(model.model_id)])
    inputs = client.get_run(run.info.run_id).inputs
    assert [m.model_id for m in inputs.model_inputs] == [model.model_id]
    with pytest.raises(MlflowException) as missing:
        client.log_inputs(run.info.run_id, models=[LoggedModelInput("m-" + uuid.uuid4().hex)])
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# 3. MLflow 3 links: outputs, metrics of logged models (with datasets), mlflow.modelVersions,
# search_logged_models by metric and dataset.

@mlflow3
def test_logged_model_links_are_kept(server, project):
    import pandas as pd

    client = MlflowClient()
    experiment_id = mlflow.set_experiment("links").experiment_id
    X, y = training_data()
    eval_set = mlflow.data.from_pandas(pd.DataFrame({"a": X[:, 0], "y": y}), name="eval-set")
    with mlflow.start_run() as run:
        good = log_model(LogisticRegression().fit(X, y), "good", input_example=X[:2])
        mlflow.log_metric("acc", 0.93, model_id=good.model_id, dataset=eval_set)
    with mlflow.start_run():
        poor = log_model(LogisticRegression(C=0.01).fit(X, y), "poor", input_example=X[:2])
        mlflow.log_metric("acc", 0.41, model_id=poor.model_id, dataset=eval_set)
        mlflow.log_metric("acc", 0.99, model_id=poor.model_id)

    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [good.model_id]
    [acc] = [m for m in client.get_logged_model(good.model_id).metrics if m.key == "acc"]
    assert acc.value == pytest.approx(0.93) and acc.run_id == run.info.run_id
    assert acc.dataset_name == "eval-set" and acc.dataset_digest == eval_set.digest

    # As MLflow's test_search_logged_models: by metric, by metric on a dataset, ordered by metric.
    by_metric = client.search_logged_models([experiment_id], filter_string="metrics.acc > 0.9")
    assert sorted(m.model_id for m in by_metric) == sorted([good.model_id, poor.model_id])
    on_eval = client.search_logged_models([experiment_id], filter_string="metrics.acc > 0.9",
                                          datasets=[{"dataset_name": "eval-set"}])
    assert [m.model_id for m in on_eval] == [good.model_id]
    ordered = client.search_logged_models(
        [experiment_id], order_by=[{"field_name": "metrics.acc", "ascending": True, "dataset_name": "eval-set"}])
    assert [m.model_id for m in ordered] == [poor.model_id, good.model_id]

    # Registering from the logged model records the version on it.
    mv = mlflow.register_model(f"models:/{good.model_id}", "linked-model")
    versions = json.loads(client.get_logged_model(good.model_id).tags["mlflow.modelVersions"])
    assert {"name": "linked-model", "version": int(mv.version)} in versions
    assert client.get_model_version("linked-model", mv.version).run_id == run.info.run_id


# 4. Endpoints: logged-model params and artifact directories, artifacts/list, and a plain
# artifact store under the project's tracking URI.

@mlflow3
def test_logged_model_params_and_artifact_directories(server, project):
    client = MlflowClient()
    experiment_id = client.create_experiment("lm-endpoints")
    model = client.create_logged_model(experiment_id, name="with-files", params={"a": "1"})
    client.log_model_params(model.model_id, {"b": "2"})
    assert client.get_logged_model(model.model_id).params == {"a": "1", "b": "2"}

    base = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/models/{model.model_id}/artifacts"
    for rel in ("MLmodel", "sub/weights.bin"):
        assert rest(server, project, "PUT", f"{base}/{rel}", data=b"x").status_code == 200
    listed = rest(server, project, "GET", f"/api/2.0/mlflow/logged-models/{model.model_id}/artifacts/directories")
    assert listed.status_code == 200, listed.text
    assert listed.json()["root_uri"] == model.artifact_location
    assert {(f["path"], f["is_dir"]) for f in listed.json()["files"]} == {("MLmodel", False), ("sub", True)}
    sub = rest(server, project, "GET", f"/api/2.0/mlflow/logged-models/{model.model_id}/artifacts/directories",
               params={"artifact_directory_path": "sub"}).json()
    assert sub["files"] == [{"path": "sub/weights.bin", "is_dir": False, "file_size": 1}]


def test_artifacts_list_of_a_run(server, project, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("hello")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "d"), artifact_path="out")
    # As MLflow's test_list_artifacts: paths relative to the run's root, with the root_uri.
    listed = rest(server, project, "GET", "/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"root_uri": run.info.artifact_uri, "files": [{"path": "out", "is_dir": True}]}
    inner = rest(server, project, "GET", "/api/2.0/mlflow/artifacts/list",
                 params={"run_id": run.info.run_id, "path": "out"}).json()
    assert inner["files"] == [{"path": "out/f.txt", "is_dir": False, "file_size": 5}]


def test_the_artifact_proxy_is_a_plain_store(server, project, tmp_path):
    # Paths that name no run or model are stored as they are, like MLflow's proxy does.
    put = rest(server, project, "PUT", "/api/2.0/mlflow-artifacts/artifacts/team/shared/readme.txt", data=b"shared")
    assert put.status_code == 200, put.text
    got = rest(server, project, "GET", "/api/2.0/mlflow-artifacts/artifacts/team/shared/readme.txt")
    assert got.status_code == 200 and got.content == b"shared"
    listing = rest(server, project, "GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": "team"}).json()
    assert listing == {"files": [{"path": "shared", "is_dir": True}]}
    # The client reads them through mlflow-artifacts URIs.
    local = mlflow.artifacts.download_artifacts("mlflow-artifacts:/team/shared/readme.txt", dst_path=str(tmp_path))
    assert open(local).read() == "shared"
    # Unsafe paths are refused.
    bad = rest(server, project, "PUT", "/api/2.0/mlflow-artifacts/artifacts/team/%2E%2E/escape.txt", data=b"x")
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # Another project does not see them.
    other = new_project(server)
    assert rest(server, other, "GET", "/api/2.0/mlflow-artifacts/artifacts/team/shared/readme.txt").status_code == 404


# 5. Validation and messages, as MLflow's handlers word them.

HINT = " See the API docs for more information about request parameters."


def test_wrongly_typed_fields_are_refused_as_mlflow_does(server, project):
    # MLflow's test_rest_tracking validates JSON inputs against each handler's schema.
    bad_name = rest(server, project, "POST", "/api/2.0/mlflow/registered-models/create", json={"name": 123})
    assert bad_name.status_code == 400
    assert bad_name.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message":
                               "Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'." + HINT}
    run = rest(server, project, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
    bad_run = rest(server, project, "POST", "/api/2.0/mlflow/runs/log-parameter", json={"run_id": 31, "key": "k", "value": "v"})
    assert bad_run.status_code == 400
    assert bad_run.json()["message"] == "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'." + HINT
    missing = rest(server, project, "POST", "/api/2.0/mlflow/runs/log-metric", json={"key": "m", "value": 1, "timestamp": 1})
    assert missing.status_code == 400
    assert missing.json()["message"] == "Missing value for required parameter 'run_id'." + HINT
    assert run["info"]["run_id"]


def test_versions_are_integers_and_max_results_have_caps(server, project):
    client = MlflowClient()
    client.create_registered_model("numbers")
    client.create_model_version("numbers", "runs:/" + uuid.uuid4().hex + "/m")
    with pytest.raises(MlflowException) as not_integer:
        client.get_model_version("numbers", "abc")
    assert not_integer.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Parameter 'version' must be an integer, got 'abc'." in not_integer.value.message

    experiment_id = client.create_experiment("caps")
    with pytest.raises(MlflowException) as runs_cap:
        client.search_runs([experiment_id], max_results=50001)
    assert runs_cap.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid value 50001 for parameter 'max_results' supplied" in runs_cap.value.message
    assert client.search_runs([experiment_id], max_results=50000) == []
    with pytest.raises(MlflowException) as models_cap:
        client.search_registered_models(max_results=1001)
    assert models_cap.value.error_code == "INVALID_PARAMETER_VALUE"
    versions_cap = rest(server, project, "GET", "/api/2.0/mlflow/model-versions/search", params={"max_results": 200001})
    assert versions_cap.status_code == 400 and versions_cap.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    experiments_cap = rest(server, project, "POST", "/api/2.0/mlflow/experiments/search", json={"max_results": 50001})
    assert experiments_cap.status_code == 400
    assert "It must be at most 50000" in experiments_cap.json()["message"]


def test_delete_tag_on_a_deleted_run_reports_its_state(server, project):
    client = MlflowClient()
    run = client.create_run("0", tags={"t": "v"})
    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as deleted:
        client.delete_tag(run.info.run_id, "t")
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"
    assert f"The run {run.info.run_id} must be in the 'active' state. Current state is deleted." in deleted.value.message


# 6. Defaults and orderings.

def test_the_default_experiment_exists_from_the_start(server, project):
    client = MlflowClient()
    # As MLflow's test_search_experiments on a fresh store: experiment "0" is "Default".
    assert [(e.experiment_id, e.name) for e in client.search_experiments()] == [("0", "Default")]
    assert client.get_experiment("0").name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    run = client.create_run("0")
    assert run.info.experiment_id == "0"


def test_artifact_location_is_recorded_and_returned(server, project, tmp_path):
    client = MlflowClient()
    experiment_id = client.create_experiment("elsewhere", artifact_location="s3://team-bucket/exp")
    assert client.get_experiment(experiment_id).artifact_location == "s3://team-bucket/exp"
    # Artifacts are still stored by the server.
    (tmp_path / "a.txt").write_text("a")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(tmp_path / "a.txt"))
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["a.txt"]
    with pytest.raises(MlflowException) as runs_uri:
        client.create_experiment("bad-location", artifact_location="runs:/abc/x")
    assert runs_uri.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_model_versions_lists_the_newest_updated_first(server, project):
    client = MlflowClient()
    client.create_registered_model("ordered")
    for _ in range(3):
        client.create_model_version("ordered", "runs:/" + uuid.uuid4().hex + "/m")
    client.update_model_version("ordered", "1", description="touched last")
    assert [v.version for v in client.search_model_versions("name='ordered'")] == ["1", "3", "2"]


def test_stage_changes_touch_the_registered_model(server, project):
    import time

    client = MlflowClient()
    client.create_registered_model("staged")
    client.create_model_version("staged", "runs:/" + uuid.uuid4().hex + "/m")
    before = client.get_registered_model("staged").last_updated_timestamp
    time.sleep(0.01)
    client.transition_model_version_stage("staged", "1", "Staging")
    assert client.get_registered_model("staged").last_updated_timestamp > before


@mlflow3
def test_logged_models_without_a_name_get_generated_names(server, project):
    import re

    client = MlflowClient()
    model = client.create_logged_model(client.create_experiment("names"))
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", model.name), model.name


def test_run_user_ids_follow_mlflow(server, project):
    client = MlflowClient()
    # The low-level client sends user_id "unknown": the authenticated user is shown.
    assert client.create_run("0").info.user_id == "root"
    # A user given by the request (or its mlflow.user tag) is kept.
    given = rest(server, project, "POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": "0", "user_id": "alice"})
    assert given.json()["run"]["info"]["user_id"] == "alice"
    tagged = client.create_run("0", tags={"mlflow.user": "bob"})
    assert client.get_run(tagged.info.run_id).info.user_id == "bob"


def test_downloads_carry_a_content_type_and_nosniff(server, project):
    with mlflow.start_run() as run:
        mlflow.log_dict({"a": 1}, "conf/settings.json")
        mlflow.log_text("<b>hi</b>", "page.html")
    base = f"/api/2.0/mlflow-artifacts/artifacts/0/{run.info.run_id}/artifacts"
    as_json = rest(server, project, "GET", f"{base}/conf/settings.json")
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.headers["X-Content-Type-Options"] == "nosniff"
    html = rest(server, project, "GET", f"{base}/page.html")
    assert html.headers["Content-Type"] == "text/html" and html.headers["X-Content-Type-Options"] == "nosniff"
    assert html.headers["Content-Disposition"].startswith("attachment")


# 7. SemVer resolves without being stored or listed as tags or aliases.

def test_clients_see_exactly_the_tags_and_aliases_they_set(server, project):
    client = MlflowClient()
    client.create_registered_model("exact")
    plain = client.create_model_version("exact", "runs:/" + uuid.uuid4().hex + "/m")
    # As MLflow's test_create_model_version: no tags or aliases nobody set.
    assert plain.tags == {} and plain.aliases == []
    chosen = client.create_model_version("exact", "runs:/" + uuid.uuid4().hex + "/m", tags={"gitlab.version": "1.4.0"})
    assert chosen.tags == {"gitlab.version": "1.4.0"} and chosen.aliases == []
    client.set_registered_model_alias("exact", "champion", chosen.version)
    assert client.get_model_version("exact", chosen.version).aliases == ["champion"]
    assert client.get_registered_model("exact").aliases == {"champion": chosen.version}
    assert [v.version for v in client.search_model_versions("name='exact' and tag.`gitlab.version` = '1.4.0'")] == [chosen.version]
    # SemVer names still resolve: exact versions and requirements.
    assert client.get_model_version_by_alias("exact", "1.0.0").version == plain.version
    assert client.get_model_version_by_alias("exact", "~1.4").version == chosen.version
    assert client.get_model_version_by_alias("exact", "latest").version == chosen.version
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("exact", "^3")


def test_copy_model_version_within_one_model(server, project):
    client = MlflowClient()
    client.create_registered_model("copied")
    src = client.create_model_version("copied", "runs:/" + uuid.uuid4().hex + "/m", tags={"gitlab.version": "1.2.0", "k": "v"})
    copy = client.copy_model_version(f"models:/copied/{src.version}", "copied")
    assert copy.version == "2" and copy.tags == {"k": "v"}
    assert client.get_model_version_by_alias("copied", "1.2.1").version == "2"


def test_load_model_by_a_semver_requirement(server, project):
    client = MlflowClient()
    X, y = training_data()
    client.create_registered_model("semver-model")
    trained = {}
    for semver, flip in (("1.2.0", False), ("1.3.0", True), ("2.0.0", False)):
        labels = 1 - y if flip else y
        model = LogisticRegression().fit(X, labels)
        with mlflow.start_run() as run:
            info = log_model(model, "model", input_example=X[:2])
        client.create_model_version("semver-model", info.model_uri, run_id=run.info.run_id, tags={"gitlab.version": semver})
        trained[semver] = model.predict(X).tolist()
    assert trained["1.3.0"] != trained["1.2.0"]
    # The newest version matching ^1.2 is 1.3.0, not 2.0.0.
    assert mlflow.pyfunc.load_model("models:/semver-model@^1.2").predict(X).tolist() == trained["1.3.0"]
    assert mlflow.pyfunc.load_model("models:/semver-model@~1.2").predict(X).tolist() == trained["1.2.0"]
    assert mlflow.pyfunc.load_model("models:/semver-model@2.0.0").predict(X).tolist() == trained["2.0.0"]


# 8. Lineage as MLflow shows it.

def test_a_registered_version_links_its_run_and_no_copy_stays_running(server, project):
    client = MlflowClient()
    X, y = training_data()
    with mlflow.start_run() as run:
        info = log_model(LogisticRegression().fit(X, y), "model", registered_model_name="lineage-model", input_example=X[:2])
    mv = client.get_model_version("lineage-model", str(info.registered_model_version))
    assert mv.run_id == run.info.run_id
    # The version's own record of the run (in the model's experiment) is finished, not running.
    model_experiment = client.get_experiment_by_name("[model]lineage-model")
    statuses = {r.info.status for r in client.search_runs([model_experiment.experiment_id])}
    assert statuses == {"FINISHED"}
    # The registry API links the version to its run.
    versions = api(server, "GET", f"/projects/{project['id']}/ml/models/lineage-model/versions").json()
    assert versions and all(v["candidate_iid"] for v in versions)


def test_deleted_runs_are_not_live_ones(server, project):
    client = MlflowClient()
    experiment_id = client.create_experiment("live")
    kept = client.create_run(experiment_id)
    gone = client.create_run(experiment_id)
    client.delete_run(gone.info.run_id)
    # As MLflow's run_view_type: the default view holds the live runs only.
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [kept.info.run_id]
    assert [r.info.run_id for r in client.search_runs([experiment_id], run_view_type=2)] == [gone.info.run_id]
    ml = f"/projects/{project['id']}/ml/experiments/{experiment_id}"
    assert api(server, "GET", ml).json()["candidate_count"] == 1
    listed = api(server, "GET", ml + "/candidates").json()
    assert [c["run_id"] for c in listed] == [kept.info.run_id]


# 9. Names: what GitLab's package names allow works; the rest is refused, saying why.

def test_model_names_follow_the_package_name_rule(server, project):
    client = MlflowClient()
    for name in ("my model", "tab\tname", "ünïcode"):
        with pytest.raises(MlflowException) as refused:
            client.create_registered_model(name)
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "package name" in refused.value.message and "no spaces" in refused.value.message
    # Names with the characters both allow work end to end, slashes and @ included.
    for name in ("team/fraud-scorer", "@org/scorer_v2.1"):
        assert client.create_registered_model(name).name == name
        mv = client.create_model_version(name, "runs:/" + uuid.uuid4().hex + "/m")
        assert client.get_model_version(name, mv.version).name == name
        assert client.get_registered_model(name).name == name
    with pytest.raises(MlflowException) as renamed:
        client.rename_registered_model("team/fraud-scorer", "fraud scorer")
    assert renamed.value.error_code == "INVALID_PARAMETER_VALUE"
