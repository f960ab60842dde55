"""plan: what the workers get and why, decided without I/O from a Snapshot and a Target.

``rules`` holds the package-sync rules, ``crossplatform`` what changes when the workers run
another platform, ``dependencies`` the requirement graph they walk, ``targets`` the worker
platforms, ``options`` the user's choices, and ``resolved`` the plan as uv resolved it.
"""
