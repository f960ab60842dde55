"""codesync: the working directory's code, shipped beside the environment and kept live.

``bundle`` packs the importable files into a content-addressed zip, ``live`` sends each
change from the client (``Cluster.sync()``, ``watch=True``), and ``plugin`` is the Dask
plugin that applies it on the workers and the scheduler.
"""
