"""``packsync.Cluster``: a Dask ``SpecCluster`` whose processes run in your replicated environment.

With no arguments it is the embedded default: the scheduler in this process, as
``LocalCluster`` has it (this process imports exactly the versions the environment
holds, which is the point), and workers as local processes started with the cached
environment's own interpreter, never with the client's site-packages. Everything Dask
users expect of ``LocalCluster`` (``get_client()``, ``scale()``, ``adapt()``,
``close()``, async use, the dashboard) comes from ``SpecCluster``.

Working-directory code is live: ``sync()`` sends the files changed since the last sync
to the running workers and to a scheduler process of its own (``watch=True`` does it on
every save), and workers that join later start on the current code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

from dask.system import CPU_COUNT
from distributed.core import Status
from distributed.deploy.spec import ProcessInterface, SpecCluster
from distributed.deploy.utils import nprocesses_nthreads
from distributed.scheduler import Scheduler
from distributed.versions import VersionMismatchWarning

from packsync import config
from packsync.codesync.bundle import code_rules
from packsync.codesync.live import LiveCode, SyncResult
from packsync.errors import LaunchError, PacksyncError
from packsync.launch.hosts.placement import HostsLaunch, SchedulerOn
from packsync.launch.hosts.spec import HostLike
from packsync.launch.local import (
    EnvNannies,
    EnvScheduler,
    EnvWorker,
    SharedWorker,
    process_environment,
)
from packsync.launch.verify import Verification, WorkerVerifier
from packsync.pipeline import Prepared, lock_environment, prepare_local
from packsync.plan.options import plan_options
from packsync.progress import Reporter, StageClock, stage

logger = logging.getLogger(__name__)


class Cluster(SpecCluster):
    """A Dask cluster whose scheduler and workers import exactly what this process can.

    Parameters
    ----------
    n_workers, threads_per_worker, memory_limit:
        As for ``distributed.LocalCluster``.
    ignore:
        Distributions not to sync (never dask, distributed, tornado, cloudpickle, msgpack;
        a package another synced package requires is still synced).
    only:
        Sync just these, the mandatory Dask packages and what they require.
    strict:
        Exact versions even for another platform; dependency conflicts stop the launch.
    fail_on:
        Which plan problems stop the launch: ``"critical"`` (default), ``"warning"`` or
        ``"any"``. Each option defaults to the Dask config key ``packsync.<name>``.
    cache_dir, store:
        Where environments are cached and local-code artifacts stored (defaults:
        ``PACKSYNC_CACHE_DIR`` / dask config ``packsync.cache-dir`` / user cache dir).
    python:
        The interpreter environments are created from (default: the one running).
    include, exclude:
        Git-style globs, relative to the working directory, of files to ship besides its
        importable modules (data files) and of files never to ship. Default: Dask config
        ``packsync.include`` / ``packsync.exclude``. ``.gitignore`` is honoured.
    watch:
        Sync changed working-directory code to the running cluster on every save
        (polled every ``packsync.watch-interval``, default 0.5 s). Default: Dask config
        ``packsync.watch``, else False; ``sync()`` does it on demand.
    reporter:
        Receives progress events (the CLI passes a rich one).
    hosts, connect_options, scheduler_on, remote_python, host_cache_dir, shared_store:
        Run the workers on these SSH hosts (``"node"``, ``"user@node:port"``, or dicts
        with ``address``, ``port``, ``username``, ``python``, ``cache_dir``,
        ``connect_options``). ``connect_options`` go to ``asyncssh.connect`` (one dict,
        or one per host). The scheduler runs on the client, or on the first host with
        ``scheduler_on="first-host"``. A host needs only SSH and Python of the client's
        major.minor (``python<major.minor>`` or ``python3`` there, or ``remote_python``);
        packsync sends uv, the lock, local wheels and code into its cache
        (``host_cache_dir``, default ``~/.cache/packsync``), or the hosts read the store
        from ``shared_store`` (its directory as the hosts see it, or an ``s3://`` URL for
        which the client presigns a download URL per object a host lacks; also the
        client's ``store`` unless that is given).
        ``n_workers`` defaults to one per host, spread round-robin.
    scheduler_process:
        Run the scheduler as a process of its own in the environment (as the workers
        run) instead of in this process. Default: Dask config
        ``packsync.scheduler-process``, else False. In this process it starts faster and
        unpickles graphs with the very modules the client pickled them with; live code
        sync then leaves it alone (its code is the client's own).
    verify:
        Check every worker's environment against the lock when it joins (default True);
        ``fail_on`` decides which differences stop the cluster at launch. A worker that
        ``scale()`` or ``adapt()`` adds later and that ``fail_on`` refuses is retired with
        an error logged; ``cluster.verification`` lists every difference and retired worker.
    """

    def __init__(
        self,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        *,
        memory_limit: str | float | int | None = "auto",
        ignore: Sequence[str] | None = None,
        only: Sequence[str] | None = None,
        strict: bool | None = None,
        fail_on: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        watch: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        python: str | None = None,
        nanny: bool = True,
        host: str = "127.0.0.1",
        dashboard_address: str | None = ":8787",
        scheduler_options: dict[str, Any] | None = None,
        worker_options: dict[str, Any] | None = None,
        reporter: Reporter | None = None,
        hosts: Sequence[HostLike] | None = None,
        connect_options: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        scheduler_on: SchedulerOn = "client",
        remote_python: str | Sequence[str | None] | None = None,
        host_cache_dir: str | None = None,
        shared_store: str | None = None,
        host_install: str = "artifact",
        scheduler_process: bool | None = None,
        verify: bool = True,
        asynchronous: bool = False,
        loop: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._hosts = HostsLaunch(
            hosts, connect_options=connect_options, python=remote_python,
            cache_dir=host_cache_dir, scheduler_on=scheduler_on, shared_store=shared_store,
            install=host_install,  # type: ignore[arg-type]  # checked there
        ) if hosts else None
        self._verify = verify
        self._verifier: WorkerVerifier | None = None
        if self._hosts is not None:
            n_workers = len(self._hosts.specs) if n_workers is None else n_workers
            threads_per_worker = threads_per_worker or 1
            if host == "127.0.0.1":
                host = self._hosts.scheduler_host()
        if n_workers is None and threads_per_worker is None:
            n_workers, threads_per_worker = nprocesses_nthreads()
        elif n_workers is None:
            n_workers = max(1, CPU_COUNT // (threads_per_worker or 1))
        elif threads_per_worker is None:
            threads_per_worker = max(1, CPU_COUNT // max(n_workers, 1))
        assert threads_per_worker is not None
        self._options = plan_options(ignore=ignore, only=only, strict=strict, fail_on=fail_on)
        self._code_rules = code_rules(include=include, exclude=exclude)
        self._watch = bool(watch if watch is not None else config.watch())
        self._watch_interval = config.watch_interval()
        self._watcher: asyncio.Task[None] | None = None
        self._sync_lock: asyncio.Lock | None = None
        self.live_code: LiveCode | None = None
        self._cache_dir = cache_dir
        self._store = store if store is not None or not hosts else shared_store
        self._python = python
        self.clock = StageClock(reporter)
        self.prepared: Prepared | None = None
        self._first_workers_timed = False

        scheduler_opts: dict[str, Any] = {
            "host": host, "port": 0, "dashboard_address": dashboard_address
        }
        scheduler_opts.update(scheduler_options or {})
        worker_opts: dict[str, Any] = {
            "nthreads": threads_per_worker,
            "memory_limit": memory_limit,
            "host": host,
            "dashboard_address": None,
        }
        worker_opts.update(worker_options or {})
        self._scheduler_opts = scheduler_opts
        remote = self._hosts is not None and self._hosts.remote_scheduler
        self._scheduler_in_process = not remote and not bool(
            scheduler_process if scheduler_process is not None
            else config.scheduler_process()
        )
        scheduler: dict[str, Any] = (
            {"cls": Scheduler, "options": scheduler_opts} if self._scheduler_in_process
            else {"cls": EnvScheduler, "options": {"options": scheduler_opts}}
        )
        worker = {"cls": EnvWorker, "options": {"nanny": nanny, "options": worker_opts}}
        workers = {i: _copy_spec(worker) for i in range(n_workers)}
        super().__init__(
            workers=workers,
            scheduler=scheduler,
            worker=worker,
            asynchronous=asynchronous,
            loop=loop,
            name=name,
            **kwargs,
        )

    @property
    def timings(self) -> dict[str, float]:
        """Seconds spent in each stage of the last start (scan, plan, …, launch)."""
        return dict(self.clock.seconds)

    async def _start(self) -> None:
        if self.prepared is None:
            self.prepared = await asyncio.to_thread(self._prepare)
            launch = self._launch_options(self.prepared)
            if self.scheduler_spec["cls"] is EnvScheduler:
                self.scheduler_spec["options"].update(launch)
            self.new_spec["options"].update(launch)
            for spec in self.worker_spec.values():
                spec["options"].update(launch)
            if self._hosts is not None:
                await self._hosts.prepare(self.prepared, self.clock)
                self._hosts.place(self.scheduler_spec, self.worker_spec, self.new_spec)
        early = self._start_first_workers_early()
        try:
            with stage(self.clock, "launch", f"scheduler and {len(early)} workers"):
                await super()._start()
                await self._adopt(early)
                await self._verify_workers()
            if self._watch and self._watcher is None:
                self._watcher = asyncio.ensure_future(self._watch_code())
        except BaseException as error:
            # a worker still starting would open its process after close() and outlive us
            for _, starting in early.values():
                starting.cancel()
            await asyncio.gather(*(t for _, t in early.values()), return_exceptions=True)
            await asyncio.gather(*(w.close() for w, _ in early.values()), return_exceptions=True)
            if self.scheduler is not None:
                self.status = Status.failed
                await self._close()  # the scheduler, and anything else already started
            if isinstance(error, RuntimeError) and isinstance(error.__cause__, PacksyncError):
                raise error.__cause__ from None
            raise

    def _start_first_workers_early(
        self,
    ) -> dict[Any, tuple[ProcessInterface, asyncio.Future[Any]]]:
        """Start the first workers while the scheduler starts, on an address fixed in advance.

        Python start-up dominates a warm launch; workers retry connecting until the
        scheduler listens, so both start-ups overlap instead of adding up.
        """
        options = self._scheduler_opts
        if self._hosts is not None and self._hosts.remote_scheduler:
            return {}  # its port is chosen on its host
        if self.scheduler is not None or options.get("port") != 0 or not self.worker_spec:
            return {}
        options["port"] = _free_port(options["host"])
        address = f"tcp://{options['host']}:{options['port']}"
        early: dict[Any, tuple[ProcessInterface, asyncio.Future[Any]]] = {}
        nannies = self._shared_nannies(address)
        for name, spec in self.worker_spec.items():
            worker: ProcessInterface = (
                SharedWorker(nannies, name) if nannies is not None
                else spec["cls"](address, **{"name": name, **spec["options"]})
            )
            early[name] = (worker, asyncio.ensure_future(worker))
        return early

    def _shared_nannies(self, scheduler: str) -> EnvNannies | None:
        """One process for the nannies of the first local workers (see ``packsync.launch.local``).

        Not when asked otherwise (``packsync.shared-nannies: false``), for workers
        without a nanny, on hosts, or with a nanny port of the user's.
        """
        specs = list(self.worker_spec.values())
        if not config.shared_nannies() or any(
            s["cls"] is not EnvWorker or not s["options"].get("nanny", True)
            or s["options"].get("options", {}).get("port") for s in specs
        ):
            return None
        first = specs[0]["options"]
        workers = {}
        for name, spec in self.worker_spec.items():
            opts = dict(spec["options"].get("options", {}))
            opts["host"] = opts.get("host") or "127.0.0.1"
            opts["port"] = _free_port(opts["host"])
            workers[name] = opts
        return EnvNannies(
            scheduler, python=first["python"], workers=workers, env=first.get("env"),
            cwd=first.get("cwd"),
        )

    async def _adopt(
        self, early: dict[Any, tuple[ProcessInterface, asyncio.Future[Any]]]
    ) -> None:
        if not early:
            return
        results = await asyncio.gather(*(t for _, t in early.values()), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        for name, (worker, _) in early.items():
            worker._cluster = weakref.ref(self)  # type: ignore[attr-defined]
            self._created.add(worker)
            self.workers[name] = worker
        self._first_workers_timed = True

    def _prepare(self) -> Prepared:
        locked = lock_environment(
            options=self._options, cache=self._cache_dir, store=self._store, reporter=self.clock
        )
        prepared = prepare_local(
            locked, python=self._python, code_rules=self._code_rules, reporter=self.clock
        )
        self.live_code = LiveCode(
            roots=locked.snapshot.code_paths,
            rules=self._code_rules,
            store=locked.store,
            cache=locked.cache,
            bundle=prepared.code,
            version_dir=prepared.code_dir,
        )
        return prepared

    def _launch_options(self, prepared: Prepared) -> dict[str, Any]:
        link = self.live_code.link if self.live_code is not None else prepared.code_dir
        return {
            "python": str(prepared.environment.python),
            "env": process_environment(link),
            "cwd": os.getcwd(),
        }

    def sync(self, func: Any = None, *args: Any, **kwargs: Any) -> Any:
        """With no arguments: send changed working-directory code to the running cluster.

        Only the files changed since the last sync travel. Every worker (and a scheduler
        that runs as a process of its own) then imports the new code on the next task (the
        modules that changed are re-imported, the others keep their state); workers that
        join later get it too.
        Returns a ``SyncResult`` (awaitable with ``asynchronous=True``). Called with a
        function, this is Dask's own ``sync`` helper.
        """
        if func is None:
            return super().sync(self._sync_code, **kwargs)
        return super().sync(func, *args, **kwargs)

    async def _sync_code(self) -> SyncResult:
        live = self.live_code
        if live is None or self.scheduler_comm is None or self.status != Status.running:
            raise LaunchError(
                "sync() needs a running cluster", hint="start the cluster first"
            )
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            start = time.perf_counter()
            update = await asyncio.to_thread(live.next_update)
            if update is None:
                return SyncResult(code_id=live.code_id, sent=(), deleted=(), workers=0,
                                  seconds=time.perf_counter() - start)
            # a scheduler in this process has the client's own modules: current already
            result = await live.push(
                update, self.scheduler_comm, on_scheduler=not self._scheduler_in_process
            )
            logger.info("code %s: sent %s to the scheduler and %d workers",
                        result.code_id[:12], ", ".join(result.sent) or "no file", result.workers)
            return result

    async def _watch_code(self) -> None:
        """Poll file sizes and mtimes; sync when they change. A failure is logged, not fatal."""
        assert self.live_code is not None
        while True:
            await asyncio.sleep(self._watch_interval)
            try:
                if await asyncio.to_thread(self.live_code.touched):
                    await self._sync_code()
            except asyncio.CancelledError:
                raise
            except PacksyncError as error:
                logger.warning("code not synced: %s", error)
            except Exception:
                logger.exception("code not synced")

    async def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        try:
            await super()._close()
        finally:
            if self.live_code is not None:
                self.live_code.close()
            if self._hosts is not None:
                await self._hosts.close()

    async def _correct_state_internal(self) -> None:
        if self._first_workers_timed:
            await super()._correct_state_internal()  # scale() and adapt(): not part of launch
            await self._verify_joined()
            return
        self._first_workers_timed = True
        with stage(self.clock, "launch", "workers"):
            await super()._correct_state_internal()
        await self._verify_workers()

    def new_worker_spec(self) -> dict[Any, dict[str, Any]]:
        spec: dict[Any, dict[str, Any]] = super().new_worker_spec()
        if self._hosts is not None and self._hosts.prepared:
            return {name: self._hosts.next_worker(self.new_spec, self.worker_spec)
                    for name in spec}
        return spec

    @property
    def verification(self) -> Verification:
        """What checking every worker against the lock found: differences, retired workers."""
        return self._verifier.verification if self._verifier is not None else Verification()

    def _verifier_ready(self) -> WorkerVerifier | None:
        if not self._verify or self.prepared is None or self.scheduler_comm is None:
            return None
        if self._verifier is None:
            warnings.filterwarnings("ignore", category=VersionMismatchWarning)
            self._verifier = WorkerVerifier(self.prepared.locked.lock, self._options.fail_on)
        return self._verifier

    def _host_of(self, name: Any) -> str:
        spec = self.worker_spec.get(name)
        return self._hosts.host_of(spec) if self._hosts is not None else "this machine"

    async def _verify_workers(self) -> None:
        """Each new worker's environment against the lock (replaces Dask's version check)."""
        verifier = self._verifier_ready()
        if verifier is not None:
            await verifier.check(self.scheduler_comm, self._host_of)

    async def _verify_joined(self) -> None:
        """Workers added by scale() or adapt(): one whose environment ``fail_on`` refuses is
        retired (its tasks would run with other code than the lock's), with an error logged
        and recorded in ``verification``; the cluster keeps running."""
        verifier = self._verifier_ready()
        if verifier is None:
            return
        try:
            retire = await verifier.check_joined(self.scheduler_comm, self._host_of)
        except Exception:  # a report that cannot be asked for must not break scaling
            logger.exception("could not verify the workers that joined")
            return
        dropped = [name for name in retire.values() if self.worker_spec.pop(name, None)]
        if dropped:
            await super()._correct_state_internal()  # closes the workers no spec names


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _copy_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {"cls": spec["cls"], "options": dict(spec["options"])}
