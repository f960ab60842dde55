"""materialize: a lock made into a ready, byte-compiled environment in the cache.

``environments`` builds ``<cache>/envs/<digest>/`` under a file lock, installing the lock's
index wheels from uv's cache when it holds them (``uv_cache``) and reusing byte code found
on this machine (``bytecode``, over ``pyc_reuse``: stdlib only, shipped to hosts too),
with uv and the byte compiler as children a killed build cannot leave behind
(``children``); ``artifacts`` packs a built environment for hosts. The environment's
lifecycle (leases, damage checks, expiry) is ``hostside``'s, shared with every host.
"""
