"""What tests and benchmarks share: real venvs made with uv (``venvs``), small projects and
wheels written by hand (``projects``), servers on loopback (``servers``, ``private_index``,
``sshd``, ``netns``, ``conda_channel``), local-code builds (``builds``) and the processes a
benchmark starts (``processes``). Fixtures stay in ``tests/integration/conftest.py``."""
