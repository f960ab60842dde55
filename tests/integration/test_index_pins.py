"""``[tool.uv.sources]`` pins a package to a named (explicit) index: the workers get that
index's file, even when another configured index has a file of the same version."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from packsync.errors import LockError
from packsync.lock.resolve import lock
from packsync.plan.rules import plan
from packsync.scan.indexes import discover
from packsync.store import open_store
from tests.integration.test_resolution import linux_snapshot
from tests.support.projects import make_wheel, write
from tests.support.simple_index import serve_indexes

pytestmark = pytest.mark.integration

PROBE = "packsync-pin-probe"


def project(root: Path, pinned: str, index_name: str = "pinned") -> Path:
    return write(root / "pyproject.toml", f"""\
        [project]
        name = "pinning-app"
        version = "0.1.0"
        [[tool.uv.index]]
        name = "pinned"
        url = "{pinned}"
        explicit = true
        [tool.uv.sources]
        {PROBE} = {{ index = "{index_name}" }}
        """).parent


def probe_url(text: str) -> str:
    lines = text.splitlines()
    start = lines.index(f'name = "{PROBE}"')
    return next(line for line in lines[start:] if line.startswith("url = "))


def test_a_package_pinned_to_an_index_comes_from_it_alone(tmp_path):
    same_version = {
        "general": [make_wheel(tmp_path / "a", PROBE, "1.0.0", modules={"p.py": "FROM = 'a'\n"})],
        "pinned": [make_wheel(tmp_path / "b", PROBE, "1.0.0", modules={"p.py": "FROM = 'b'\n"})],
    }
    with serve_indexes(tmp_path / "served", same_version) as url:
        env = {"UV_INDEX": f"{url}/general", "HOME": str(tmp_path),
               "PIP_CONFIG_FILE": os.devnull}
        root = project(tmp_path / "app", f"{url}/pinned")
        settings = discover(env, prefix=str(tmp_path), cwd=root)
        assert [(p.package, p.index) for p in settings.pins] == [(PROBE, "pinned")]
        decided = plan(linux_snapshot("1.0.0", probe=PROBE))

        def resolved(chosen, cache: str) -> str:
            result = lock(decided, {}, store=open_store(str(tmp_path / "store")),
                          settings=chosen, cache=tmp_path / cache)
            return probe_url(result.text)

        assert f"{url}/files/pinned/" in resolved(settings, "c1")
        # without the pin, the same version comes from the first index that has it
        assert f"{url}/files/general/" in resolved(replace(settings, pins=()), "c2")

        broken = discover(env, prefix=str(tmp_path),
                          cwd=project(tmp_path / "broken", f"{url}/pinned", "nowhere"))
        with pytest.raises(LockError, match="no index of that name") as caught:
            resolved(broken, "c3")
        assert caught.value.package == PROBE
