"""The code examples of README.md and docs/ are true: the runnable ones run, as written.

A fenced block's info string says what it is:

- ```` ```python ```` runs. Every ``python`` and ``sh`` block of one page runs in page order
  in one fresh process (so a block may use what an earlier one defined), in an empty
  working directory of its own, from a client venv that holds packsync, httpx,
  dask-jobqueue and the demo's ``my_local_package`` (editable), with a packsync cache
  shared by all pages. Tracebacks name the page and its line.
- ```` ```sh ```` runs in that same process and directory, with ``bash -e -o pipefail`` and
  the client venv's ``bin`` first on ``PATH``.
- ```` ```py ```` is shown, not run: it needs what a test here cannot have (SSH hosts, a
  batch system, Kubernetes, a conda environment, a server, a placeholder path). It must
  still compile, every ``packsync`` module and name it uses must exist, and the keywords
  it passes to packsync's callables must be ones they accept.
- ```` ```shell ```` is shown, not run (installs, ``make`` targets, other machines).
- ``text``, ``yaml``, ``toml`` and an empty info string are not code. Any other info string
  is an error, so that a typo cannot hide an example from this test.

``test_python_examples_compile_and_name_what_exists`` checks ``python`` and ``py`` blocks
alike without running them; ``test_runnable_examples_run`` runs the ``python`` and ``sh``
ones.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.venvs import REPO, ClientEnv, make_client

pytestmark = pytest.mark.integration

RUN = ("python", "sh")
SHOWN = ("py", "shell")
NOT_CODE = ("text", "yaml", "toml", "")
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>.*)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Block:
    """One fenced block: its language, its code, and the line its code starts on."""

    path: str  # relative to the repository
    line: int  # 1-based line of the first code line
    lang: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The top-level fenced blocks of a Markdown page."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        index += 1
        if match is None:
            continue
        start, body = index, []
        while index < len(lines) and lines[index].strip() != match["fence"]:
            body.append(lines[index])
            index += 1
        index += 1
        info = match["info"].strip()
        found.append(Block(path=str(page.relative_to(REPO)), line=start + 1,
                           lang=info.split()[0] if info else "", code="\n".join(body) + "\n"))
    return found


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


RUNNABLE = [page for page in PAGES if any(b.lang in RUN for b in blocks(page))]


def test_every_block_is_marked_and_the_key_examples_run():
    for page in PAGES:
        for block in blocks(page):
            assert block.lang in RUN + SHOWN + NOT_CODE, (
                f"{block.where}: unknown info string {block.lang!r}; see this module's docstring")
    runnable = {page_id(page) for page in RUNNABLE}
    assert {"docs/guides/local.md", "docs/live-code.md", "docs/planning.md",
            "docs/how-it-works.md", "docs/guides/jobqueue.md"} <= runnable
    local = [b for b in blocks(REPO / "docs" / "guides" / "local.md") if b.lang == "python"]
    assert any("packsync.Cluster(" in b.code for b in local)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_python_examples_compile_and_name_what_exists(page: Path):
    for block in blocks(page):
        if block.lang not in ("python", "py"):
            continue
        tree = ast.parse(block.code, filename=block.where)
        imported = _packsync_names(tree, block)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                target = _resolve(node.func, imported)
                if target is not None:
                    unknown = {k.arg for k in node.keywords if k.arg} - _keywords(target, node)
                    assert not unknown, f"{block.where}: {ast.unparse(node.func)} takes no {unknown}"


def _packsync_names(tree: ast.AST, block: Block) -> dict[str, Any]:
    """Every packsync module and name the block imports or reads, resolved (or an error)."""
    import packsync

    names: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("packsync"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{block.where}: {node.module} has no {alias.name}"
                names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("packsync"):
                    importlib.import_module(alias.name)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "packsync"):
            assert hasattr(packsync, node.attr), f"{block.where}: packsync has no {node.attr}"
    names["packsync"] = packsync
    return names


def _resolve(func: ast.expr, names: dict[str, Any]) -> Any:
    """The packsync object a call's function names (``packsync.X.y``, an imported name)."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in names:
        return None
    value = names[func.id]
    for part in parts:
        value = getattr(value, part, None)
    module = getattr(value, "__module__", "") or ""
    return value if callable(value) and module.startswith("packsync") else None


def _keywords(target: Any, call: ast.Call | None = None) -> set[str]:
    """The keyword names a callable accepts; a class's ``**kwargs`` go to its bases, a
    function's (``packsync.jobqueue``'s, to the cluster class it is given) are not checked."""
    if not inspect.isclass(target) and call is not None and any(
            p.kind is p.VAR_KEYWORD for p in inspect.signature(target).parameters.values()):
        return {k.arg for k in call.keywords if k.arg}
    accepted: set[str] = set()
    functions = ([c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)]
                 if inspect.isclass(target) else [target])
    for function in functions:
        parameters = inspect.signature(function).parameters.values()
        accepted |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                               p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return accepted


RUNNER = r"""
import json, subprocess, sys
namespace = {"__name__": "__main__"}
for block in json.load(open(sys.argv[1])):
    print(f"--- {block['path']}:{block['line']}", file=sys.stderr, flush=True)
    if block["lang"] == "python":
        exec(compile("\n" * (block["line"] - 1) + block["code"], block["path"], "exec"), namespace)
    else:
        subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]], check=True)
"""


@pytest.fixture(scope="module")
def docs_client(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    """A client venv with what the runnable examples import, and one cache for all pages."""
    root = tmp_path_factory.mktemp("docs")
    package = root / "my_local_package"
    shutil.copytree(REPO / "examples" / "seed_demo" / "my_local_package", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    client = make_client(root, "httpx", "dask-jobqueue", "-e", str(package))
    return client


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_runnable_examples_run(page: Path, docs_client: ClientEnv, tmp_path: Path):
    runnable = [b for b in blocks(page) if b.lang in RUN]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([asdict(b) for b in runnable]))
    workdir = tmp_path / "work"
    workdir.mkdir()
    path = f"{docs_client.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        [str(docs_client.python), "-c", RUNNER, str(script)], cwd=workdir,
        env=docs_client.env(PATH=path, COLUMNS="120"), capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"an example of {page_id(page)} failed (the last '---' line names it):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    assert result.stderr.count("--- ") >= len(runnable)


def test_the_runner_reports_a_failing_block_by_page_and_line(tmp_path: Path):
    """A failing example names its page and line: the check above can fail, and says where."""
    failing = Block(path="docs/example.md", line=7, lang="python", code="x = 1\nraise SystemExit(x / 0)\n")
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps([asdict(failing)]))
    result = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'File "docs/example.md", line 8' in result.stderr
