"""A PEP 503 "simple" package index on 127.0.0.1, laid out on disk by the test (as a static
mirror or the PyTorch index is: ``/simple/<project>/`` pages linking to wheel files with
their SHA-256) and served from a thread of the test process."""

from __future__ import annotations

import functools
import hashlib
import html
import http.server
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from .servers import serve_http


def lay_out(root: Path, wheels: Iterable[Path], base: str = "simple") -> Path:
    """``root/<base>/<project>/index.html`` for ``wheels`` (copied under
    ``root/files/<base>``); ``root``. ``base`` is the index's path (``whl/cu124`` for
    one laid out like PyTorch's)."""
    projects: dict[str, list[Path]] = {}
    files = root / "files" / base
    files.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        copy = files / wheel.name
        copy.write_bytes(wheel.read_bytes())
        projects.setdefault(canonicalize_name(parse_wheel_filename(wheel.name)[0]), []).append(copy)
    for project, copies in projects.items():
        up = "../" * (len(Path(base).parts) + 1)
        links = "".join(
            f'<a href="{up}files/{base}/{html.escape(c.name)}#sha256='
            f'{hashlib.sha256(c.read_bytes()).hexdigest()}">{html.escape(c.name)}</a><br>\n'
            for c in sorted(copies))
        page = root / base / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    listing = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(projects))
    (root / base / "index.html").write_text(f"<html><body>\n{listing}</body></html>\n")
    return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve_simple_index(root: Path, wheels: Iterable[Path]) -> Iterator[str]:
    """The index of ``wheels`` laid out under ``root``, served: its ``…/simple/`` URL."""
    lay_out(root, wheels)
    with serve_http(functools.partial(_Quiet, directory=str(root))) as url:
        yield f"{url}/simple/"


@contextmanager
def serve_indexes(root: Path, indexes: dict[str, list[Path]]) -> Iterator[str]:
    """Several indexes under one server, each ``{path: wheels}`` at ``URL/<path>/`` (the way
    download.pytorch.org serves ``/whl/cpu`` and ``/whl/cu124``): the server's URL."""
    for base, wheels in indexes.items():
        lay_out(root, wheels, base)
    with serve_http(functools.partial(_Quiet, directory=str(root))) as url:
        yield url
