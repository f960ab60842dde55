"""``jobqueue(SLURMCluster, ...)``: a dask-jobqueue cluster in your replicated environment.

One line for dask-jobqueue users (``jobqueue`` is exported by ``import packsync``)::

    cluster = jobqueue(SLURMCluster, cores=8, memory="32GB", store="/shared/ps")

Why a function that takes the cluster class: a dask-jobqueue user already chose a batch
system by its class (``SLURMCluster``, ``PBSCluster``, ``SGECluster``, ...) and knows its
keywords. ``jobqueue`` keeps both, and returns an instance of that very class (of a
subclass made once per class), so ``isinstance``, ``job_script()``, ``scale(jobs=)``,
``adapt()``, ``get_client()``, the dashboard and ``close()`` are dask-jobqueue's own,
unwrapped. A wrapper object would have to forward all of them; a class per batch
system would have to follow every one dask-jobqueue adds.

What it adds, as ``packsync.Cluster`` has it:

- the environment locked, built here once and published in ``store`` (a directory the
  compute nodes mount): each job unpacks it (``worker_command``) and needs no index;
- every worker checked against the lock when it joins, including those ``scale()`` and
  ``adapt()`` add later; one that ``fail_on`` refuses is retired, with an error logged
  and recorded in ``verification``;
- a job that cannot make the environment on its machine (store not mounted, disk full,
  another Python, no index) is reported at the client, naming the job and the machine:
  logged, told to the reporter, and raised by ``wait_for_workers`` (also reached through
  ``Client.wait_for_workers``) instead of a timeout. The job says why in a report in the
  store; a job that cannot even read the store (not mounted on its machine) says it on
  stderr, which the client reads from dask-jobqueue's ``log_directory`` when one is set;
- working-directory code live: ``sync()`` sends the files changed since the last sync to
  every worker, ``watch=True`` on every save; workers that join later get it too;
- plan options (``ignore``, ``only``, ``strict``, ``fail_on``) and progress through a
  ``Reporter``; ``timings`` as ``Cluster`` has them.

The scheduler is dask-jobqueue's: in this process, with this process's own code, so live
code updates go to the workers only.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_timedelta
from distributed.core import Status
from distributed.exceptions import WorkerStartTimeoutError

from packsync.codesync.bundle import code_rules
from packsync.codesync.live import LiveCode, SyncResult
from packsync.errors import LaunchError
from packsync.hostside import layout, lease
from packsync.launch.hosts.prepare import HostInstall
from packsync.launch.spec_internals import SpecClusterInternals
from packsync.launch.verify import Verification
from packsync.launch.watcher import CodeWatcher, LiveSync, watch_settings
from packsync.launch.worker_checks import WorkerChecks
from packsync.launch.worker_command import (
    JobFailure,
    WorkerCommand,
    job_error,
    read_failures,
    worker_command,
)
from packsync.plan.options import plan_options
from packsync.progress import Reporter, StageClock

logger = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks for failed jobs and workers to check


def jobqueue(
    cluster_class: type[Any],
    *args: Any,
    store: str | os.PathLike[str],
    python: str = "python3",
    host_cache_dir: str | None = None,
    install: HostInstall = "artifact",
    ignore: Sequence[str] | None = None,
    only: Sequence[str] | None = None,
    strict: bool | None = None,
    fail_on: str | None = None,
    relax_same_platform: bool | None = None,
    accelerator: str | None = None,
    lock_environment: str | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    watch: bool | None = None,
    verify: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    **kwargs: Any,
) -> Any:
    """A ``cluster_class`` (``SLURMCluster``, ``PBSCluster``, ...) cluster in this environment.

    ``args`` and ``kwargs`` are ``cluster_class``'s own (``cores``, ``memory``, ``queue``,
    ``account``, ``walltime``, ``job_script_prologue``, ``log_directory``, ...), except
    ``python``, which is the interpreter on the compute nodes (default ``python3``, of
    this machine's major.minor). ``store`` is a directory every compute node mounts at
    the same path; ``host_cache_dir`` the nodes' cache (default ``$PACKSYNC_CACHE_DIR``
    there, else ``~/.cache/packsync``); ``install="index"`` makes each job install from
    the package indexes instead (the jobs then authenticate to them from their own
    environment: see ``worker_command``). The other options are ``packsync.Cluster``'s.
    """
    options = plan_options(ignore=ignore, only=only, strict=strict, fail_on=fail_on,
                           relax_same_platform=relax_same_platform, accelerator=accelerator,
                           lock_environment=lock_environment)
    rules = code_rules(include=include, exclude=exclude)
    clock = StageClock(reporter)
    link = f"jobs-{uuid.uuid4().hex[:16]}"
    command = worker_command(
        store=store, python=python, host_cache_dir=host_cache_dir, options=options,
        cache=cache_dir, reporter=clock, install=install, code_rules=rules, link=link)
    locked = command.locked
    assert locked is not None  # worker_command keeps what it made
    live = LiveCode(roots=locked.snapshot.code_paths, rules=rules, store=locked.store,
                    cache=locked.cache, bundle=command.code, version_dir=None)
    built = layout.env_dir(str(locked.cache), command.lock.env_id)  # here, for the artifact
    setup = Setup(command=command, live=live, clock=clock, verify=verify,
                  fail_on=options.fail_on, watch=watch,
                  scratch=locked.cache / "jobqueue" / command.report_key,
                  held=lease.Use(built) if lease.holds(built) else None)
    try:
        return _with_packsync(cluster_class)(
            *args, python=_python_option(cluster_class, command, setup.scratch), setup=setup,
            **kwargs)
    except BaseException:
        if setup.held is not None:
            setup.held.end()
        live.close()
        shutil.rmtree(setup.scratch, ignore_errors=True)
        raise


@dataclass(frozen=True, kw_only=True, slots=True)
class Setup:
    """What ``jobqueue`` made before the cluster: the command, live code, the options."""

    command: WorkerCommand
    live: LiveCode
    clock: StageClock
    verify: bool
    fail_on: str
    watch: bool | None
    scratch: Path  # this machine's files of the cluster (a worker script), removed at close
    held: lease.Use | None  # of the environment built here, held while the cluster is open


def _python_option(cluster_class: type[Any], command: WorkerCommand, scratch: Path) -> str:
    """dask-jobqueue's ``python=``: the command as one shell string, or as a script for the
    local job queue, which splits ``python=`` on spaces (the script stays on this machine)."""
    from dask_jobqueue.local import LocalCluster as LocalJobQueue

    if not issubclass(cluster_class, LocalJobQueue):
        return command.python
    return str(command.write_script(scratch / "worker-python"))


_CLASSES: dict[type[Any], type[Any]] = {}


def _with_packsync(cluster_class: type[Any]) -> type[Any]:
    """``cluster_class`` with packsync's additions: one class per dask-jobqueue class."""
    made = _CLASSES.get(cluster_class)
    if made is None:
        made = _CLASSES[cluster_class] = type(
            cluster_class.__name__, (PacksyncJobs, cluster_class),
            {"__module__": cluster_class.__module__,
             "__doc__": f"{cluster_class.__name__} in your replicated environment "
                        "(made by packsync's jobqueue)."})
    return made


class PacksyncJobs(SpecClusterInternals):
    """Mixed before a dask-jobqueue cluster class by ``jobqueue``."""

    def __init__(self, *args: Any, setup: Setup, **kwargs: Any) -> None:
        self.command = setup.command
        self.live_code = setup.live
        self._scratch = setup.scratch
        self._lease = setup.held
        self.clock = setup.clock
        self._checks = WorkerChecks(enabled=setup.verify, fail_on=setup.fail_on)
        self._watch = watch_settings(setup.watch)
        self._live_sync = LiveSync(setup.live, on_scheduler=False)
        self._watcher: CodeWatcher | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._failures: dict[str, JobFailure] = {}
        self._raised: set[str] = set()  # failures and retired workers wait_for_workers raised
        self._announced: set[str] = set()  # workers told to the reporter as checked
        super().__init__(*args, **kwargs)
        # dask-jobqueue's job template (as job_script() uses it): where jobs' stderr goes
        self._log_directory: str | None = getattr(getattr(self, "_dummy_job", None),
                                                  "log_directory", None)

    @property
    def timings(self) -> dict[str, float]:
        """Seconds spent in each stage of preparing the environment (scan, plan, ...)."""
        return dict(self.clock.seconds)

    @property
    def verification(self) -> Verification:
        """What checking every worker against the lock found: differences, retired workers."""
        return self._checks.verification

    @property
    def failures(self) -> list[JobFailure]:
        """The jobs that could not make the environment on their machines, oldest first."""
        return sorted(self._failures.values(), key=lambda f: f.time)

    def sync(self, func: Any = None, *args: Any, **kwargs: Any) -> Any:
        """With no arguments: send changed working-directory code to every worker.

        Only the files changed since the last sync travel; workers that join later get
        them too. Returns a ``SyncResult``. Called with a function, this is Dask's own
        ``sync`` helper.
        """
        if func is None:
            return super().sync(self._sync_code, **kwargs)
        return super().sync(func, *args, **kwargs)

    async def _wait_for_workers(self, n_workers: int = 0, timeout: Any = None) -> None:
        """Until ``n_workers`` are running and verified; a job that failed raises at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + parse_timedelta(timeout) if timeout else None
        while True:
            await self._look()
            self._raise_new()
            ready = await self._ready_workers()
            if ready >= n_workers:
                return
            if deadline is not None and loop.time() > deadline:
                raise WorkerStartTimeoutError(ready, n_workers, timeout)
            await asyncio.sleep(POLL / 5)

    # --- SpecCluster's steps (see spec_internals) -------------------------------------------

    async def _launch(self) -> None:
        await self._dask_start()
        self._monitor = asyncio.ensure_future(self._keep_looking())
        if self._watch.enabled and self._watcher is None:
            self._watcher = CodeWatcher(self.live_code, self._sync_code,
                                        interval=self._watch.interval, method=self._watch.method)
            self._watcher.start()

    async def _shut_down(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
            self._monitor = None
        try:
            await self._dask_close()
        finally:
            self.live_code.close()
            shutil.rmtree(self.command.reports, ignore_errors=True)
            shutil.rmtree(self._scratch, ignore_errors=True)
            if self._lease is not None:
                self._lease.end()

    # --- watching the jobs ----------------------------------------------------------------

    async def _keep_looking(self) -> None:
        while True:
            try:
                await self._look()
            except Exception:  # a failed look must not stop the next ones
                logger.exception("could not check the cluster's jobs and workers")
            await asyncio.sleep(POLL)

    async def _look(self) -> None:
        """Record new job failures; check new workers, retiring those ``fail_on`` refuses."""
        if self.status != Status.running or self.scheduler_comm is None:
            return
        identity = await self.scheduler_comm.identity()
        hosts = {info.get("name"): str(info.get("host", "?"))
                 for info in identity.get("workers", {}).values()}
        for failure in await asyncio.to_thread(read_failures, self.command.reports):
            self._record(failure)
        if self._log_directory:
            silent = {name: str(job.job_id) for name, job in self.workers.items()
                      if getattr(job, "job_id", None) and not self._heard_from(name, hosts)}
            for failure in await asyncio.to_thread(failures_in_logs, self._log_directory,
                                                   silent):
                self._record(failure)
        refused = await self._checks.refused_joined(
            self.command.lock, self.scheduler_comm, lambda name: self._where(name, hosts))
        for name in refused:
            self._forget_job(name)
        if refused:
            await self._dask_match_workers()
        verification = self.verification
        for address in sorted(set(verification.verified) - set(verification.retired)
                              - self._announced):
            self._announced.add(address)
            self.clock.step("launch", f"worker {address} joined, its environment as locked")

    def _record(self, failure: JobFailure) -> None:
        if failure.path in self._failures or any(
                failure.worker and f.worker == failure.worker for f in self._failures.values()):
            return
        self._failures[failure.path] = failure
        logger.error("%s\n%s", failure.describe(), failure.log)
        self.clock.step("launch", f"failed: {failure.describe()}")
        self._forget_job(failure.worker)

    def _heard_from(self, job: Any, workers: Mapping[Any, str]) -> bool:
        """Whether a worker of this job joined, or the job reported a failure."""
        names = [*workers, *(f.worker for f in self._failures.values())]
        return any(n == job or (isinstance(n, str) and n.startswith(f"{job}-")) for n in names)

    def _where(self, name: Any, hosts: dict[Any, str]) -> str:
        """A worker's machine and job, as errors name them."""
        job = self._job_of(name)
        job_id = getattr(self.workers.get(job), "job_id", None) if job is not None else None
        host = hosts.get(name, "?")
        return f"{host} (job {job_id})" if job_id else host

    def _job_of(self, name: Any) -> Any:
        """The ``worker_spec`` entry (one job) a worker name belongs to."""
        if name in self.worker_spec:
            return name
        return next((job for job in self.worker_spec
                     if isinstance(name, str) and name.startswith(f"{job}-")), None)

    def _forget_job(self, name: Any) -> None:
        """A job that will bring no usable worker: no longer counted as requested."""
        job = self._job_of(name) if name else None
        if job is not None:
            self.worker_spec.pop(job, None)

    def _raise_new(self) -> None:
        failures = [f for f in self.failures if f.path not in self._raised]
        if failures:
            self._raised.update(f.path for f in failures)
            raise job_error(failures)
        retired = [a for a in self.verification.retired if a not in self._raised]
        if retired:
            self._raised.update(retired)
            differences = [d for d in self.verification.differences if d.worker in retired
                           and d.severity != "notice"]
            raise LaunchError(
                f"{len(retired)} worker(s) retired: their environment differs from the lock:"
                "\n  " + "\n  ".join(f"{d.severity}: {d.describe()}" for d in differences),
                host=", ".join(sorted({d.host for d in differences})),
                hint="a job's cache on that machine was changed after packsync made it: "
                     "remove its <cache>/envs/<id> directory")

    async def _ready_workers(self) -> int:
        """Workers running, and checked against the lock when checks are on."""
        assert self.scheduler_comm is not None
        identity = await self.scheduler_comm.identity()
        running = [a for a, info in identity.get("workers", {}).items()
                   if info.get("status") == Status.running.name]
        if not self._checks.enabled:
            return len(running)
        verified = set(self.verification.verified)
        return len([a for a in running if a in verified])

    async def _sync_code(self) -> SyncResult:
        if self.scheduler_comm is None or self.status != Status.running:
            raise LaunchError("sync() needs a running cluster", hint="start the cluster first")
        return await self._live_sync.sync(self.scheduler_comm)


# what the worker command's bootstrap says when it cannot run the host side (loader)
_SAID = re.compile(r"^packsync: failed on (?P<host>[^:\s]+): (?P<message>.+)$", re.MULTILINE)


def failures_in_logs(log_directory: str, jobs: Mapping[str, str]) -> list[JobFailure]:
    """What the ``.err`` files of jobs (worker name -> job id) say the worker command's
    bootstrap failed on: a job that could not read the store cannot write a report there.
    dask-jobqueue names a job's error file ``<job name>-<job id>.err`` in its
    ``log_directory``."""
    found: list[JobFailure] = []
    for name, job_id in jobs.items():
        for path in glob.glob(os.path.join(glob.escape(log_directory), f"*-{job_id}.err")):
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
                when = os.path.getmtime(path)
            except OSError:
                continue
            said = _SAID.search(text)
            if said is None:
                continue
            found.append(JobFailure(
                job=job_id, worker=name, host=said["host"],
                kind="integrity" if "refusing" in said["message"] else "store",
                message=said["message"], log="\n".join(text.splitlines()[-20:]), time=when,
                path=path))
    return found
