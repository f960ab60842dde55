"""A DaskCluster in the environment, checked offline against the operator's published schema.

The schema is the ``DaskCluster`` CustomResourceDefinition that dask-kubernetes ships
(its Helm chart's ``crds/daskcluster.yaml``); it is applied as the Kubernetes API server
would: null values pruned, and, stricter than a server that prunes unknown fields
silently, every field the schema does not know refused.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml
from dask_kubernetes.operator import make_cluster_spec

from packsync.launch.kubernetes import pod_parts, with_environment
from packsync.launch.worker_command import JobIndex, WorkerCommand
from packsync.lock.lockfile import Lock

LOCK = Lock(text="", digest="ab" * 32, python="3.11.7", local_wheels=(), versions={})
STORE = "/mnt/packsync"
ARGV = ("python3", "-I", "-c", "<bootstrap>", f"{STORE}/sha256/cd/cd", "cd",
        "worker", "--store", STORE, "--lock", "ab" * 32, "--uv", "ef", "--index",
        "corp=https://pkgs.example/simple/", "--report", "0123", "--")
COMMAND = WorkerCommand(argv=ARGV, lock=LOCK, store=STORE, report_key="0123",
                        indexes=(JobIndex(name="corp", url="https://pkgs.example/simple/"),))


def _daskcluster_schema() -> dict[str, Any]:
    crd = resources.files("dask_kubernetes.operator") / "deployment" / "helm" / \
        "dask-kubernetes-operator" / "crds" / "daskcluster.yaml"
    document = yaml.safe_load(crd.read_text())
    [version] = [v for v in document["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"].update({  # every resource's, implied by the definition
        "apiVersion": {"const": f"{document['spec']['group']}/v1"},
        "kind": {"const": document["spec"]["names"]["kind"]},
        "metadata": {"type": "object"},
    })
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema


def _strict(schema: Any) -> Any:
    """Unknown fields refused wherever the schema lists the known ones."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def _pruned(value: Any) -> Any:
    """As the API server stores it: null values dropped."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _validate(resource: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(_daskcluster_schema()).validate(_pruned(resource))


def test_the_operators_schema_refuses_what_it_does_not_know() -> None:
    spec = make_cluster_spec(name="demo", image="python:3.11-slim", n_workers=2)
    _validate(spec)  # the operator's own template passes
    spec["spec"]["worker"]["spec"]["containers"][0]["volumeMount"] = []  # a typo
    with pytest.raises(jsonschema.ValidationError, match="volumeMount"):
        _validate(spec)


def test_a_daskcluster_with_the_environment_is_one_the_operator_accepts() -> None:
    base = make_cluster_spec(name="demo", image="python:3.11-slim", n_workers=2)
    spec = with_environment(base, COMMAND, store_claim="packsync-shared",
                            credentials_secret="index-secret", node_cache="/var/lib/packsync")
    _validate(spec)
    assert base["spec"]["worker"]["spec"].get("volumes") is None  # the input is not changed
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    assert worker["command"] == [*ARGV, "-m", "distributed.cli.dask_worker"]
    assert worker["args"][:2] == ["--name", "$(DASK_WORKER_NAME)"]  # dask-worker gone
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["command"][-1] == "distributed.cli.dask_scheduler"
    assert scheduler["args"] == ["--host", "0.0.0.0"]
    assert {"name": "packsync-store", "mountPath": STORE} in worker["volumeMounts"]
    volumes = spec["spec"]["worker"]["spec"]["volumes"]
    assert {"name": "packsync-store",
            "persistentVolumeClaim": {"claimName": "packsync-shared"}} in volumes
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in worker["env"]
               if "valueFrom" in e}
    assert secrets == {
        "UV_INDEX_CORP_USERNAME": {"name": "index-secret", "key": "corp-username"},
        "UV_INDEX_CORP_PASSWORD": {"name": "index-secret", "key": "corp-password"},
    }
    assert {"name": "PACKSYNC_CACHE_DIR", "value": "/var/cache/packsync"} in worker["env"]


def test_pod_parts_need_no_secret_for_an_artifact_command() -> None:
    command = WorkerCommand(argv=(*ARGV[:11], "--artifact", "12", "--cache", "/c", "--"),
                            lock=LOCK, store=STORE)
    parts = pod_parts(command, "worker", store_claim="shared", node_cache="/node/cache")
    assert "env" not in parts["container"]  # the --cache of the command is mounted as it is
    assert {"name": "packsync-cache", "mountPath": "/c"} in parts["container"]["volumeMounts"]
    with pytest.raises(ValueError, match="role"):
        pod_parts(command, "client", store_claim="shared")
