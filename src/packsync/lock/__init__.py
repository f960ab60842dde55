"""lock: the plan resolved by uv for the workers' platform into a PEP 751 ``pylock.toml``.

``lockfile`` is the lock's format (reading, validating, writing, digest); ``resolve``
runs uv and relaxes what the target cannot install; ``index_failures`` turns uv's
failures with an index into errors that name the index at fault.
"""
