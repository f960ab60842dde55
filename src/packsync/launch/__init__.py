"""launch: Dask processes started in a materialized environment, and checked once they run.

``cluster`` is the user's ``Cluster``; ``local`` and ``hosts`` start the scheduler and
workers on this machine or on SSH hosts, over the shared process base in ``processes``;
``verify`` compares each worker's ``worker_report`` with the lock; ``worker_command`` is
the same environment for other deployers (dask-jobqueue, Kubernetes).
"""
