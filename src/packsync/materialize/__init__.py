"""materialize: a lock made into a ready, byte-compiled environment in the cache.

``environments`` builds ``<cache>/envs/<digest>/`` under a file lock; ``pyc_reuse`` (stdlib
only, shipped to hosts too) reuses the byte code of an earlier environment.
"""
