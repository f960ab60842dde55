"""lock: the plan resolved by uv for the workers' platform into a PEP 751 ``pylock.toml``.

``resolve`` runs uv and relaxes what the target cannot install; ``index_failures`` turns
uv's failures into errors that name the index at fault.
"""
