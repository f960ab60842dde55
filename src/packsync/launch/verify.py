"""Every worker's environment against the lock: a full diff, not ten package names.

Each worker reports what it imports (``packsync.launch.worker_report``); the client checks
the report against its schema (``WorkerReport``, with a format version), then compares it
with the lock: every distribution's version, the local wheels (file name
and untouched installed files) and the interpreter. Each worker also checks the files of
every package of its environment (``hostside.contents.worker_check``): against the record
made when the environment became ready (a missing, changed or added file, ``.pth`` and
``sitecustomize.py`` included), or, where there is none, against each ``RECORD``.
Differences carry a severity, so ``fail_on`` decides, as for plan problems, which of them
stop the cluster and which are logged as warnings. Dask's own ten-package version check
is silenced for these clusters: this check covers it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle
from packaging.utils import canonicalize_name, parse_wheel_filename

from packsync import serial
from packsync.errors import LaunchError
from packsync.hostside import contents
from packsync.launch import worker_report as workerreport
from packsync.lock.lockfile import Lock
from packsync.model import FAIL_ON_LEVELS
from packsync.plan.rules import MANDATORY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)

cloudpickle.register_pickle_by_value(workerreport)  # workers may lack packsync
cloudpickle.register_pickle_by_value(contents)


@dataclass(frozen=True, kw_only=True, slots=True)
class Difference:
    """One way a worker's environment is not the lock's."""

    package: str
    expected: str
    actual: str
    severity: str  # "critical" | "warning" | "notice", as plan problems
    worker: str
    host: str

    def describe(self) -> str:
        return (f"{self.package}: lock {self.expected}, worker {self.worker} on {self.host} "
                f"has {self.actual}")


def read_report(raw: object) -> workerreport.WorkerReport:
    """A worker's JSON answer as a report: a ``FormatError`` naming the field if it is not one."""
    if not isinstance(raw, (str, bytes)):
        raise serial.FormatError(f"report: expected JSON text, found {type(raw).__name__}")
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise serial.FormatError(f"report: not JSON ({error})") from error
    return serial.from_data(workerreport.WorkerReport, data, "report")


def compare_raw(lock: Lock, raw: object, *, worker: str, host: str) -> list[Difference]:
    """Every difference between the lock and a worker's answer, which may not be a report."""
    try:
        report = read_report(raw)
    except serial.FormatError as error:
        expected = f"a report of format {workerreport.REPORT_FORMAT}"
        return [Difference(package="(report)", expected=expected, actual=error.message,
                           severity="critical", worker=worker, host=host)]
    return compare(lock, report, worker=worker, host=host)


def compare(
    lock: Lock, report: workerreport.WorkerReport, *, worker: str, host: str
) -> list[Difference]:
    """Every difference between ``report`` (from one worker) and ``lock``."""
    found: list[Difference] = []

    def add(package: str, expected: str, actual: str, severity: str) -> None:
        found.append(Difference(package=package, expected=expected, actual=actual,
                                severity=severity, worker=worker, host=host))

    python = report["python"]
    if python.split(".")[:2] != lock.python.split(".")[:2]:
        add("python", lock.python, python or "unknown", "critical")
    elif python != lock.python:
        add("python", lock.python, python, "notice")
    versions = report["versions"]
    conditional = _conditional(lock)
    mandatory = {str(canonicalize_name(n)) for n in MANDATORY}
    for name, expected in sorted(lock.versions.items()):
        actual = versions.get(name)
        if actual is None:
            add(name, expected, "nothing installed",
                "notice" if name in conditional else _severity(name, mandatory))
        elif actual != expected:
            add(name, expected, actual, _severity(name, mandatory))
    for name in sorted(set(versions) - set(lock.versions)):
        add(name, "not in the lock", versions[name], "notice")
    local = report["local"]
    for wheel in lock.local_wheels:
        name = canonicalize_name(parse_wheel_filename(wheel.filename)[0])
        seen = local.get(name)
        if seen is None:
            if name in versions:
                add(name, wheel.filename, "not installed from that wheel", "critical")
            continue
        if seen["wheel"] != wheel.filename:
            add(name, wheel.filename, seen["wheel"], "critical")
        altered = seen["altered"]
        if altered:
            shown = ", ".join(altered[:5]) + (" …" if len(altered) > 5 else "")
            add(name, f"files as in {wheel.filename}", f"altered files: {shown}", "critical")
    return found


def stopping(differences: Iterable[Difference], fail_on: str) -> list[Difference]:
    """The differences that ``fail_on`` does not accept."""
    levels = FAIL_ON_LEVELS[fail_on]
    return [d for d in differences if d.severity in levels]


def _log_accepted(differences: Iterable[Difference], refused: list[Difference]) -> None:
    for difference in differences:
        if difference not in refused and difference.severity != "notice":
            logger.warning("worker environment differs from the lock: %s", difference.describe())


def enforce(differences: Iterable[Difference], fail_on: str) -> list[Difference]:
    """Raise one error listing every difference at the ``fail_on`` level; log the rest."""
    differences = list(differences)
    refused = stopping(differences, fail_on)
    _log_accepted(differences, refused)
    if refused:
        raise LaunchError(
            f"{len(refused)} difference(s) between the lock and the workers' environments "
            f"(fail_on={fail_on!r}):\n  "
            + "\n  ".join(f"{d.severity}: {d.describe()}" for d in refused),
            package=", ".join(sorted({d.package for d in refused})),
            host=", ".join(sorted({d.host for d in refused})),
            hint="something changed these environments after packsync built them: remove "
            "the host's <cache>/envs/<id> directory so that the next launch rebuilds it",
        )
    return differences


async def verify_workers(
    scheduler_comm: Any,
    lock: Lock,
    workers: Mapping[str, str],
) -> list[Difference]:
    """Ask the workers (address -> host name) for their reports and file checks, and
    compare each with the lock. A worker of this machine whose environment this process
    found intact a moment ago (it materialized it for this launch) does not walk it again."""
    if not workers:
        return []
    reports, checks = await asyncio.gather(
        _run_on_workers(scheduler_comm, workerreport.report_json, workers),
        _run_on_workers(scheduler_comm, contents.worker_check, workers,
                        socket.gethostname(), contents.checked_here()),
    )
    differences: list[Difference] = []
    unanswered = [a for a, r in reports.items()
                  if not isinstance(r, Mapping) or r.get("status") != "OK"]
    present = set((await scheduler_comm.identity()).get("workers", {})) if unanswered else set()
    for address, response in reports.items():
        host = workers.get(address, address)
        if address in unanswered and address not in present:
            logger.debug("worker %s left before it reported: nothing to check", address)
            continue
        if address in unanswered:
            differences.append(Difference(
                package="(report)", expected="a report", actual=_failure(response),
                severity="warning", worker=address, host=host,
            ))
            continue
        result = response.get("result")
        result = getattr(result, "data", result)  # to_serialize() around it
        differences += compare_raw(lock, result, worker=address, host=host)
        check = checks.get(address)
        if isinstance(check, Mapping) and check.get("status") == "OK":
            found = check.get("result")
            differences += compare_files(getattr(found, "data", found), worker=address,
                                         host=host)
    return differences


async def _run_on_workers(scheduler_comm: Any, function: Any, workers: Mapping[str, str],
                          *args: Any) -> dict[str, Any]:
    from distributed.protocol import pickle as dask_pickle

    responses: dict[str, Any] = await scheduler_comm.broadcast(
        msg={
            "op": "run",
            "function": dask_pickle.dumps(function),  # type: ignore[no-untyped-call]
            "args": dask_pickle.dumps(args),  # type: ignore[no-untyped-call]
            "kwargs": dask_pickle.dumps({}),  # type: ignore[no-untyped-call]
            "wait": True,
        },
        workers=list(workers),
        nanny=False,
        on_error="return",
    )
    return responses


def compare_files(check: object, *, worker: str, host: str) -> list[Difference]:
    """A worker's file check as differences: one per package with damaged files."""
    if not isinstance(check, Mapping) or not isinstance(check.get("problems"), list):
        return [Difference(package="(files)", expected="a file check", actual=repr(check)[:200],
                           severity="warning", worker=worker, host=host)]
    by_package: dict[str, list[str]] = {}
    for problem in check["problems"]:
        by_package.setdefault(_package_of(str(problem)), []).append(str(problem))
    expected = ("its files as when it was built" if check.get("recorded")
                else "the files its RECORD lists")
    return [Difference(package=package, expected=expected,
                       actual="damaged files: " + contents.describe(problems),
                       severity="critical", worker=worker, host=host)
            for package, problems in sorted(by_package.items())]


def _package_of(problem: str) -> str:
    """The top-level name under site-packages a problem is about (or the path's first part)."""
    path = problem.split(" ", 1)[-1]
    parts = path.split("/")
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1:]
        if rest:
            return rest[0].removesuffix(".py")
    return parts[0]


def verify_client(client: Any, lock: Lock, *, fail_on: str = "critical") -> list[Difference]:
    """Check every worker connected to ``client`` (any deployer) against ``lock``."""
    reports = client.run(workerreport.report_json)
    checks = client.run(contents.worker_check)
    differences: list[Difference] = []
    for address, text in reports.items():
        host = _host_of(address)
        differences += compare_raw(lock, text, worker=address, host=host)
        differences += compare_files(checks.get(address), worker=address, host=host)
    return enforce(differences, fail_on)


def _severity(name: str, mandatory: set[str]) -> str:
    return "critical" if name in mandatory else "warning"


def _conditional(lock: Lock) -> set[str]:
    """Packages the lock installs only where a marker matches: their absence is fine."""
    try:
        data = tomllib.loads(lock.text)
    except tomllib.TOMLDecodeError:
        return set()
    return {canonicalize_name(p["name"]) for p in data.get("packages", []) if p.get("marker")}


def _failure(response: Any) -> str:
    if isinstance(response, Mapping):
        return str(response.get("exception_text") or response.get("status"))
    return str(response)


def _host_of(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class Verification:
    """What checking the workers found so far, at launch and for every worker added later."""

    verified: tuple[str, ...] = ()  # worker addresses checked
    differences: tuple[Difference, ...] = ()  # every difference, notices included
    retired: tuple[str, ...] = ()  # workers stopped: a difference at the fail_on level

    @property
    def ok(self) -> bool:
        """No worker differs beyond a notice (a Python patch release, an extra package)."""
        return not self.retired and all(d.severity == "notice" for d in self.differences)


class WorkerVerifier:
    """Checks each worker once, when it first appears: at launch, after scale() or adapt().

    At launch a difference at the ``fail_on`` level stops the cluster (``check``). A
    worker that joins a running cluster cannot stop it; ``check_joined`` names the
    workers to retire instead, logs an error for each, and records everything in
    ``verification``.
    """

    def __init__(self, lock: Lock, fail_on: str) -> None:
        self.lock = lock
        self.fail_on = fail_on
        self.verified: set[str] = set()
        self.differences: list[Difference] = []
        self.retired: list[str] = []

    @property
    def verification(self) -> Verification:
        return Verification(verified=tuple(sorted(self.verified)),
                            differences=tuple(self.differences), retired=tuple(self.retired))

    async def check(self, scheduler_comm: Any, host_of: Any) -> list[Difference]:
        """Verify the workers not seen yet; ``host_of(name)`` names the host of a worker."""
        differences, _ = await self._collect(scheduler_comm, host_of)
        return enforce(differences, self.fail_on)

    async def check_joined(self, scheduler_comm: Any, host_of: Any) -> dict[str, Any]:
        """Verify workers that joined a running cluster: ``{address: name}`` of those to retire."""
        differences, names = await self._collect(scheduler_comm, host_of)
        refused = stopping(differences, self.fail_on)
        _log_accepted(differences, refused)
        retire: dict[str, Any] = {}
        for address in sorted({d.worker for d in refused}):
            own = [d for d in refused if d.worker == address]
            logger.error(
                "retiring worker %s on %s: its environment differs from the lock "
                "(fail_on=%r):\n  %s", address, own[0].host, self.fail_on,
                "\n  ".join(f"{d.severity}: {d.describe()}" for d in own),
            )
            retire[address] = names.get(address)
        self.retired += retire
        return retire

    async def _collect(
        self, scheduler_comm: Any, host_of: Any
    ) -> tuple[list[Difference], dict[str, Any]]:
        identity = await scheduler_comm.identity()
        names = {
            address: info.get("name")
            for address, info in identity.get("workers", {}).items()
            if address not in self.verified
        }
        if not names:
            return [], {}
        new = {address: str(host_of(name)) for address, name in names.items()}
        differences = await verify_workers(scheduler_comm, self.lock, new)
        self.verified.update(new)
        self.differences += differences
        return differences, names
