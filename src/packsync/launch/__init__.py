"""launch: Dask processes started in a materialized environment, and checked once they run.

``cluster`` is the user's ``Cluster``: its arguments, handed to ``layout`` (the specs
of its processes), ``preparation`` (the environment ready here), ``early_start`` (the
first workers started while the scheduler starts), ``worker_checks`` (each worker
against the lock) and ``watcher`` (live code on every save). ``spec_internals`` holds
every use of ``SpecCluster``'s private API, and ``summary`` is the notebook view.
``local`` and ``hosts`` start the scheduler and workers on this machine or on SSH
hosts, over the shared process base in ``processes``; ``verify`` compares each
worker's ``worker_report`` with the lock; ``worker_command`` is the same environment
for other deployers (dask-jobqueue, Kubernetes).
"""
