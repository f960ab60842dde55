"""Conda environments: their packages (Python or not, the interpreter included) travel too.

``scan`` and ``names`` need nothing beyond packsync itself; ``solve`` and ``install`` use
py-rattler (``pip install packsync[conda]``), imported only when a conda prefix is synced.
"""
