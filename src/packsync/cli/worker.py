"""``packsync worker-command``: the workers' "python" for dask-jobqueue, Kubernetes, shell jobs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from packsync.cli.console import err
from packsync.cli.inspection import plan_choices, plan_options
from packsync.cli.reporter import RichReporter


def register(commands: Any) -> None:
    command = commands.add_parser(
        "worker-command",
        help="lock this environment into a shared directory and print a worker command",
        description="Prints a command that acts as the workers' Python interpreter: "
        "COMMAND -m distributed.cli.dask_worker SCHEDULER unpacks the environment from the "
        "shared directory on the machine that runs it (no index needed there), then "
        "starts the worker in it. Give it to dask-jobqueue as python=, or use it as a "
        "container command.",
    )
    command.add_argument("--store", required=True,
                         help="a directory every worker machine sees (shared filesystem)")
    command.add_argument("--python", default="python3",
                         help="the interpreter on the worker machines (default python3)")
    command.add_argument("--host-cache-dir",
                         help="cache directory on the worker machines (default "
                              "$PACKSYNC_CACHE_DIR there, else ~/.cache/packsync)")
    command.add_argument("--cache-dir", help="packsync cache directory here")
    command.add_argument("--install", choices=("artifact", "index"), default="artifact",
                         help="how worker machines get the environment: unpacked from the "
                              "shared directory (default), or installed from the indexes")
    command.add_argument("--script", metavar="PATH",
                         help="also write the command as an executable script at PATH, for "
                              "deployers that split python= on spaces")
    command.add_argument("--json", action="store_true", help="print argv as a JSON list")
    command.add_argument("--kubernetes", metavar="CLAIM",
                         help="print, as JSON, the container command, volumes and secrets of "
                              "a DaskCluster's worker and scheduler pods (Dask Kubernetes "
                              "operator) whose store is on the PersistentVolumeClaim CLAIM")
    command.add_argument("--credentials-secret", default="packsync-index-credentials",
                         help="with --kubernetes and --install index: the secret holding "
                              "each index's <name>-username and <name>-password")
    command.add_argument("--node-cache", metavar="DIR",
                         help="with --kubernetes: a directory of each node kept as the pods' "
                              "cache (hostPath)")
    plan_choices(command)
    command.set_defaults(run=_worker_command)


def _worker_command(args: argparse.Namespace) -> int:
    from packsync.launch.worker_command import worker_command

    made = worker_command(
        store=args.store,
        python=args.python,
        host_cache_dir=args.host_cache_dir,
        options=plan_options(args),
        cache=args.cache_dir,
        reporter=RichReporter(err),
        install=args.install,
    )
    if args.script:
        err.print(f"worker command script: {made.write_script(args.script)}")
    err.print(f"environment sha256:{made.lock.digest[:16]}… in {made.store}")
    for index in made.indexes:
        username, password = index.variables
        if index.url_variable:
            err.print(f"worker jobs read the token of {index.url} from {index.url_variable}: "
                      "set it to the index's full URL in their environment")
        if index.credentials:
            err.print(f"worker jobs authenticate to {index.url} themselves: set {username} "
                      f"and {password} in their environment, or give them a netrc entry for "
                      "its host")
    if args.kubernetes:
        from packsync.launch.kubernetes import MODULES, pod_parts

        print(json.dumps({role: pod_parts(made, role, store_claim=args.kubernetes,
                                          credentials_secret=args.credentials_secret,
                                          node_cache=args.node_cache)
                          for role in MODULES}, indent=2))
        return 0
    print(json.dumps(list(made.argv)) if args.json else made.python)
    return 0
