"""hosts: a cluster over SSH hosts (``spec`` parses them, ``ssh`` connects, ``prepare`` makes
the environment there by running ``hostside``, ``processes`` and ``placement`` start Dask)."""
