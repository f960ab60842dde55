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
from collections.abc import Sequence
from typing import Any

from distributed.core import Status
from distributed.security import Security

from packsync import config
from packsync.codesync.bundle import code_rules
from packsync.codesync.live import LiveCode, SyncResult
from packsync.errors import LaunchError
from packsync.hostside import lease
from packsync.launch import layout
from packsync.launch.early_start import EarlyWorkers, start_early
from packsync.launch.hosts.placement import HostsLaunch, SchedulerOn
from packsync.launch.hosts.spec import HostLike
from packsync.launch.preparation import LaunchSettings, prepare_here
from packsync.launch.security import cluster_security, tls_options
from packsync.launch.spec_internals import SpecClusterInternals
from packsync.launch.summary import not_ready_html, summarize
from packsync.launch.verify import Verification
from packsync.launch.watcher import CodeWatcher, LiveSync, watch_settings
from packsync.launch.worker_checks import HostOf, WorkerChecks, host_namer
from packsync.lock.lockfile import Lock
from packsync.pipeline import Prepared
from packsync.plan.options import plan_options
from packsync.progress import Reporter, StageClock, stage


class Cluster(SpecClusterInternals):
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
    relax_same_platform:
        Let a version that no configured index has become the nearest one it has, for
        workers of this machine's platform too (default: refused as critical).
    accelerator:
        The workers' accelerator: ``"cpu"``, a CUDA version such as ``"cu124"``, or a ROCm
        one: the torch family then resolves to that variant (see ``docs/planning.md``).
    lock_environment:
        The environment of the project's ``pixi.lock`` the workers get (``"cuda"``), when
        this machine runs another (default: the one it runs; see ``docs/planning.md``).
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
        Sync changed working-directory code to the running cluster on every save (seen
        by watchfiles as it happens, else polled; a sync starts at most
        ``packsync.watch-interval`` after a save, default 0.5 s: see
        ``packsync.launch.watcher``). Default: Dask config ``packsync.watch``, else
        False; ``sync()`` does it on demand.
    reporter:
        Receives progress events (the CLI passes a rich one).
    hosts, connect_options, scheduler_on, remote_python, host_cache_dir, shared_store:
        Run the workers on these SSH hosts (``"node"``, ``"user@node:port"``, or dicts
        with ``address``, ``port``, ``username``, ``python``, ``cache_dir``,
        ``connect_options``). ``connect_options`` go to ``asyncssh.connect`` (one dict,
        or one per host). The scheduler runs on the client, or on the first host with
        ``scheduler_on="first-host"``. A host needs only SSH and Python of the client's
        major.minor (``python<major.minor>`` or ``python3`` there, or ``remote_python``).
        The environment built here is packed once into an archive that each host
        unpacks into its cache (``host_cache_dir``, default ``~/.cache/packsync``): sent
        to one host, passed on between hosts, or read from ``shared_store`` (its
        directory as the hosts see it, or an ``s3://`` URL for which the client presigns
        a download URL per object a host lacks; also the client's ``store`` unless that
        is given). ``n_workers`` defaults to one per host, spread round-robin.
    host_install, builder:
        ``host_install="index"`` makes each host install the lock from the package
        indexes instead of unpacking the archive (default: Dask config
        ``packsync.host-install``, ``"artifact"``). ``builder="first-host"`` (or a host's
        name) lets that host install from the indexes and pack the archive for the
        others, so this machine uploads nothing; ``"auto"`` (default
        ``packsync.builder``) builds here when the hosts can run this machine's build,
        else on the host with the oldest glibc.
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
    security:
        Who may connect. Default (Dask config ``packsync.tls``, true): TLS with a key and
        certificate made for this cluster at launch, held by this client, the scheduler
        and the workers alone, so that nobody else (another user of this machine, a peer
        on the network) can connect and run code; ``cluster.get_client()`` uses them.
        ``False``: plain TCP, open to anyone who reaches the port. A
        ``distributed.Security`` of yours is used as given. See ``docs/security.md``.
    dashboard_address:
        Where the dashboard listens: this machine's loopback by default
        (``"127.0.0.1:8787"``); ``":8787"`` for every interface, ``None`` for none.
    silence_logs:
        The level below which Dask's own log lines are not shown while the cluster starts
        (``logging.WARN``, as ``LocalCluster``): packsync's progress goes to ``reporter``.
        ``False`` shows them all.
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
        relax_same_platform: bool | None = None,
        accelerator: str | None = None,
        lock_environment: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        watch: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        python: str | None = None,
        nanny: bool = True,
        host: str = "127.0.0.1",
        dashboard_address: str | None = "127.0.0.1:8787",
        scheduler_options: dict[str, Any] | None = None,
        worker_options: dict[str, Any] | None = None,
        reporter: Reporter | None = None,
        hosts: Sequence[HostLike] | None = None,
        connect_options: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        scheduler_on: SchedulerOn = "client",
        remote_python: str | Sequence[str | None] | None = None,
        host_cache_dir: str | None = None,
        shared_store: str | None = None,
        host_install: str | None = None,
        builder: str | None = None,
        scheduler_process: bool | None = None,
        verify: bool = True,
        asynchronous: bool = False,
        loop: Any = None,
        name: str | None = None,
        silence_logs: int | str | bool = logging.WARN,
        security: Security | bool | None = None,
        **kwargs: Any,
    ) -> None:
        self._hosts = HostsLaunch(
            hosts, connect_options=connect_options, python=remote_python,
            cache_dir=host_cache_dir, scheduler_on=scheduler_on, shared_store=shared_store,
            install=host_install or config.host_install(),  # type: ignore[arg-type]
            builder=builder or config.builder(),
        ) if hosts else None
        if self._hosts is not None:
            n_workers, threads_per_worker, host = layout.on_hosts(
                self._hosts, n_workers, threads_per_worker, host)
        n_workers, threads_per_worker = layout.workers_and_threads(n_workers, threads_per_worker)
        options = plan_options(ignore=ignore, only=only, strict=strict, fail_on=fail_on,
                           relax_same_platform=relax_same_platform, accelerator=accelerator,
                           lock_environment=lock_environment)
        self._settings = LaunchSettings(
            options=options, code_rules=code_rules(include=include, exclude=exclude),
            cache_dir=cache_dir, store=store if store is not None or not hosts else shared_store,
            python=python,
        )
        self._checks = WorkerChecks(enabled=verify, fail_on=options.fail_on)
        self._watch = watch_settings(watch)
        self._watcher: CodeWatcher | None = None
        self._live_sync: LiveSync | None = None
        self.live_code: LiveCode | None = None
        self.clock = StageClock(reporter)
        self.prepared: Prepared | None = None
        self._lease: lease.Use | None = None  # of the environment, while this cluster is open
        self._first_workers_timed = False

        self.security = cluster_security(security)
        tls = tls_options(self.security, remote=bool(hosts))
        self._scheduler_opts = layout.scheduler_options(
            host, dashboard_address, {**tls, **(scheduler_options or {})})
        self._scheduler_in_process = layout.scheduler_in_process(
            scheduler_process, remote=self._hosts is not None and self._hosts.remote_scheduler,
            default=config.scheduler_process(),
        )
        memory_limit = layout.memory_per_worker(memory_limit, n_workers,
                                                local=self._hosts is None)
        worker = layout.worker_template(
            threads=threads_per_worker, memory_limit=memory_limit, host=host, nanny=nanny,
            extra={**tls, **(worker_options or {})},
        )
        super().__init__(
            workers=layout.first_workers(worker, n_workers),
            scheduler=layout.scheduler_spec(
                self._scheduler_opts, in_process=self._scheduler_in_process),
            worker=worker,
            asynchronous=asynchronous,
            loop=loop,
            name=name,
            silence_logs=silence_logs,
            security=self.security,
            **kwargs,
        )

    @property
    def timings(self) -> dict[str, float]:
        """Seconds spent in each stage of the last start (scan, plan, …, launch)."""
        return dict(self.clock.seconds)

    @property
    def verification(self) -> Verification:
        """What checking every worker against the lock found: differences, retired workers."""
        return self._checks.verification

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

    def new_worker_spec(self) -> dict[Any, dict[str, Any]]:
        spec: dict[Any, dict[str, Any]] = super().new_worker_spec()
        if self._hosts is not None and self._hosts.prepared:
            return {name: self._hosts.next_worker(self.new_spec, self.worker_spec)
                    for name in spec}
        return spec

    # --- the steps of SpecCluster this cluster adds to (see spec_internals) ---------------

    async def _launch(self) -> None:
        if self.prepared is None:
            await self._prepare()
        early = start_early(
            self._scheduler_opts, self.worker_spec, scheduler_started=self.scheduler is not None,
            remote_scheduler=self._hosts is not None and self._hosts.remote_scheduler,
        )
        try:
            with stage(self.clock, "launch", f"scheduler and {len(early)} workers"):
                await self._dask_start()
                await self._adopt_early(early)
                await self._checks.at_launch(*self._check_args())
            if self._watch.enabled and self._watcher is None:
                self._start_watcher()
        except BaseException:
            await early.cancel()
            if self.scheduler is not None:
                await self._close_failed()  # the scheduler, and anything else already started
            if self._lease is not None:
                self._lease.end()
            raise

    async def _prepare(self) -> None:
        """The environment and code ready here (and on the hosts), before any process."""
        if self._hosts is not None:
            self._hosts.connect()  # the SSH handshakes meanwhile
        try:
            prepared, live = await asyncio.to_thread(prepare_here, self._settings, self.clock)
        except BaseException:
            if self._hosts is not None:
                await self._hosts.abandon()
            raise
        self.prepared, self.live_code = prepared, live
        self._lease = lease.Use(str(prepared.environment.path))  # collectable after close
        self._live_sync = LiveSync(live, on_scheduler=not self._scheduler_in_process)
        layout.with_process_options(
            layout.process_options(prepared.environment.python, live.link),
            scheduler=self.scheduler_spec, template=self.new_spec, workers=self.worker_spec,
        )
        if self._hosts is not None:
            try:
                await self._hosts.prepare(prepared, self.clock)
            except BaseException:
                self._lease.end()  # the cluster never opens: nothing keeps the environment
                raise
            self._hosts.place(self.scheduler_spec, self.worker_spec, self.new_spec)

    async def _adopt_early(self, early: EarlyWorkers) -> None:
        if len(early):
            workers = await early.ready()
            self._adopt_workers(workers)
            self._first_workers_timed = True
            await self._learn_worker_addresses(workers.values())

    async def _learn_worker_addresses(self, workers: Any) -> None:
        """The worker address of each nanny whose log could not say it (nannies that
        share a process log together), from the scheduler, where they registered."""
        unknown = [w for w in workers if getattr(w, "worker_address", "") is None]
        if not unknown or self.scheduler_comm is None:
            return
        identity = await self.scheduler_comm.identity()
        by_nanny = {info.get("nanny"): address
                    for address, info in identity.get("workers", {}).items()}
        for worker in unknown:
            worker.worker_address = by_nanny.get(worker.address)

    def _start_watcher(self) -> None:
        assert self.live_code is not None
        self._watcher = CodeWatcher(
            self.live_code, self._sync_code, interval=self._watch.interval,
            method=self._watch.method,
        )
        self._watcher.start()

    async def _shut_down(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        try:
            await self._dask_close()
        finally:
            if self.live_code is not None:
                self.live_code.close()
            if self._hosts is not None:
                await self._hosts.close()
            if self._lease is not None:
                self._lease.end()  # its processes have ended

    async def _match_workers(self) -> None:
        if self._first_workers_timed:  # scale() and adapt(): not part of launch
            await self._dask_match_workers()
            await self._retire_refused()
            return
        self._first_workers_timed = True
        with stage(self.clock, "launch", "workers"):
            await self._dask_match_workers()
        await self._checks.at_launch(*self._check_args())

    async def _retire_refused(self) -> None:
        """Workers added by scale() or adapt() whose environment ``fail_on`` refuses are
        retired; the cluster keeps running (``verification`` records them)."""
        refused = await self._checks.refused_joined(*self._check_args())
        dropped = [name for name in refused if self.worker_spec.pop(name, None)]
        if dropped:
            await self._dask_match_workers()  # closes the workers no spec names

    def _check_args(self) -> tuple[Lock | None, Any, HostOf]:
        """What checking the workers needs: the lock, the scheduler, the hosts' names."""
        lock = self.prepared.locked.lock if self.prepared is not None else None
        return lock, self.scheduler_comm, host_namer(self._hosts, self.worker_spec)

    async def _sync_code(self) -> SyncResult:
        if self._live_sync is None or self.scheduler_comm is None or (
                self.status != Status.running):
            raise LaunchError("sync() needs a running cluster", hint="start the cluster first")
        return await self._live_sync.sync(self.scheduler_comm)

    def _summary_html(self) -> str:
        if self.prepared is None or self.live_code is None:
            return not_ready_html()
        return summarize(
            self.prepared, verify=self._checks.enabled, verification=self.verification,
            code_id=self.live_code.code_id, code_files=len(self.live_code.manifest),
            watch=self._watcher.describe() if self._watcher is not None else "",
        ).to_html()
