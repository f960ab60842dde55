"""The parts of a Dask Kubernetes operator ``DaskCluster`` that run its pods in your environment.

A pod needs three things from packsync: its container ``command`` (the worker command,
then ``-m distributed.cli.dask_worker`` or ``dask_scheduler``), the shared store mounted
at the path the command names (a ``ReadWriteMany`` claim: the pods unpack the
environment from it and write failure reports to it), and, with ``install="index"``,
the index credentials from a Kubernetes secret (never from the client: the command
names the variables, the secret holds the values). ``pod_parts`` says them as the
operator's resource spells them; ``with_environment`` puts them into a ``DaskCluster``
made by dask-kubernetes' ``make_cluster_spec``, keeping its arguments (``--name``,
dashboard ports) and everything else.

Checked offline against the operator's published ``DaskCluster`` schema; no test here
runs a Kubernetes cluster (``docs/guides/kubernetes.md``).
"""

from __future__ import annotations

import copy
from typing import Any

from packsync.launch.worker_command import WorkerCommand

STORE_VOLUME = "packsync-store"
CACHE_VOLUME = "packsync-cache"
POD_CACHE = "/var/cache/packsync"  # the pods' cache when it is a node's directory
MODULES = {"worker": "distributed.cli.dask_worker", "scheduler": "distributed.cli.dask_scheduler"}
# what make_cluster_spec puts first in ``args`` for the image's own entry point
_ENTRY_POINTS = {"dask-worker", "dask-scheduler", "dask", "worker", "scheduler"}


def pod_parts(
    command: WorkerCommand,
    role: str,
    *,
    store_claim: str,
    credentials_secret: str = "packsync-index-credentials",
    node_cache: str | None = None,
) -> dict[str, Any]:
    """``{"container": {command, env, volumeMounts}, "volumes": [...]}`` for one role.

    ``store_claim`` is the PersistentVolumeClaim of the shared store; ``node_cache`` a
    directory of each node (``hostPath``) kept as the pods' cache, so that pods on a node
    after the first find the environment ready (default: the container's own disk).
    """
    if role not in MODULES:
        raise ValueError(f"role {role!r} is not one of {sorted(MODULES)}")
    mounts: list[dict[str, Any]] = [{"name": STORE_VOLUME, "mountPath": command.store}]
    volumes: list[dict[str, Any]] = [
        {"name": STORE_VOLUME, "persistentVolumeClaim": {"claimName": store_claim}}]
    env: list[dict[str, Any]] = []
    for index in command.indexes:
        keys = list(zip(index.variables, ("username", "password"), strict=True)
                    ) if index.credentials else []
        if index.url_variable:  # the URL that carries the index's token
            keys.append((index.url_variable, "url"))
        for variable, key in keys:
            env.append({"name": variable, "valueFrom": {"secretKeyRef": {
                "name": credentials_secret, "key": f"{index.name}-{key}"}}})
    if node_cache:
        argv = list(command.argv)
        cache = argv[argv.index("--cache") + 1] if "--cache" in argv else POD_CACHE
        if "--cache" not in argv:
            env.append({"name": "PACKSYNC_CACHE_DIR", "value": POD_CACHE})
        mounts.append({"name": CACHE_VOLUME, "mountPath": cache})
        volumes.append({"name": CACHE_VOLUME,
                        "hostPath": {"path": node_cache, "type": "DirectoryOrCreate"}})
    container = {"command": [*command.argv, "-m", MODULES[role]], "volumeMounts": mounts}
    if env:
        container["env"] = env
    return {"container": container, "volumes": volumes}


def with_environment(
    cluster_spec: dict[str, Any],
    command: WorkerCommand,
    *,
    store_claim: str,
    credentials_secret: str = "packsync-index-credentials",
    node_cache: str | None = None,
) -> dict[str, Any]:
    """A copy of ``cluster_spec`` (a ``DaskCluster``) whose scheduler and workers run in the
    environment: each role's first container gets the command, mounts and secrets; its
    ``args`` keep what followed the image's entry point."""
    spec = copy.deepcopy(cluster_spec)
    for role in MODULES:
        parts = pod_parts(command, role, store_claim=store_claim,
                          credentials_secret=credentials_secret, node_cache=node_cache)
        pod = spec["spec"][role]["spec"]
        container = pod["containers"][0]
        container["command"] = parts["container"]["command"]
        args = list(container.get("args") or [])
        container["args"] = args[1:] if args[:1] and args[0] in _ENTRY_POINTS else args
        container["env"] = [*(container.get("env") or []), *parts["container"].get("env", [])]
        container["volumeMounts"] = [*(container.get("volumeMounts") or []),
                                     *parts["container"]["volumeMounts"]]
        pod["volumes"] = [*(pod.get("volumes") or []), *parts["volumes"]]
    return spec
