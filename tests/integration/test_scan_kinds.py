"""Every install kind, made by real installers in real environments, then scanned there.

One pip-made venv (pip 23 and an old setuptools, for ``setup.py develop`` and
``pip install -e git+…``) receives every kind of install; ``packsync scan --json`` then
runs inside it, from a working directory holding a stray ``*.egg-info``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.projects import (
    git_init,
    legacy_project,
    make_project,
    make_wheel,
    setuptools_project,
)
from tests.support.venvs import BASE_PYTHON, REPO, hermetic_env, uv_install, uv_venv

pytestmark = pytest.mark.integration


def flat_project(root: Path, name: str) -> Path:
    """A flat-layout setuptools project (its editable install uses a finder module)."""
    return setuptools_project(root, name, {f"{name}/__init__.py": "VALUE = 2\n"},
                              version="0.2.0", requires="setuptools>=68",
                              tool=f'[tool.setuptools]\npackages = ["{name}"]\n')


class KindsEnv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        subprocess.run([BASE_PYTHON, "-m", "venv", str(self.venv)], check=True, env=hermetic_env())
        self.site = Path(subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True).stdout.strip())
        self.install(str(REPO), "setuptools<64", "wheel", "six")

    def install(self, *args: str) -> None:
        """``uv pip install args`` into this venv."""
        uv_install(self.python, *args, capture=True)

    def pip(self, *args: str, cwd: Path | None = None) -> None:
        result = subprocess.run(
            [str(self.python), "-m", "pip", "--no-input", "--disable-pip-version-check", *args],
            env=hermetic_env(), capture_output=True, text=True, cwd=cwd,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def scan(self, cwd: Path) -> dict:
        """Scan as code run from ``cwd`` would (``python -c``: the directory is on sys.path)."""
        code = "import sys; from packsync.cli import main; sys.exit(main(['scan', '--json']))"
        result = subprocess.run([str(self.python), "-c", code], cwd=cwd,
                                env=hermetic_env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("kinds")
    env = KindsEnv(root)
    links = root / "links"
    links.mkdir()
    facts: dict = {}

    # index install (from find-links: no direct_url.json), and one whose files are then deleted
    make_wheel(links, "from-index", "1.0.0")
    make_wheel(links, "ghost", "1.0.0")
    env.install("--find-links", str(links), "from-index==1.0.0", "ghost==1.0.0")
    (env.site / "ghost.py").unlink()

    # local wheel file, with pip (records a hash) and with uv
    facts["pip_wheel"] = make_wheel(root, "pip-wheel", "0.5.0")
    env.pip("install", "--no-deps", "--no-index", str(facts["pip_wheel"]))
    facts["uv_wheel"] = make_wheel(root, "uv-wheel", "0.6.0")
    env.install(str(facts["uv_wheel"]))

    # PEP 660 editables: src layout (hatchling, a .pth path file) and flat layout (setuptools)
    facts["src"] = make_project(root / "srcpkg", "srcpkg", "VALUE = 3\n")
    env.install("-e", str(facts["src"]))
    facts["flat"] = flat_project(root / "flatpkg", "flatpkg")
    env.install("-e", str(facts["flat"]))

    # a non-editable local directory
    facts["dir"] = make_project(root / "dirpkg", "dirpkg", "VALUE = 4\n")
    env.install(str(facts["dir"]))

    # legacy egg-link editable: setup.py develop through pip, with setuptools < 64
    facts["legacy"] = legacy_project(root / "legacy", "legacypkg")
    env.pip("install", "--no-build-isolation", "--no-deps", "-e", str(facts["legacy"]))

    # a Git repository: installed from Git at a commit, and as an editable checkout
    repo = make_project(root / "repo", "gitpkg", "VALUE = 5\n")
    facts["commit"] = git_init(repo)
    env.install(f"gitpkg @ git+{repo.as_uri()}@{facts['commit']}")
    checkout = legacy_project(root / "editrepo", "giteditpkg")
    facts["edit_commit"] = git_init(checkout)
    env.pip("install", "--no-build-isolation", "--no-deps", "-e",
            f"git+{checkout.as_uri()}#egg=giteditpkg", cwd=root)

    # an egg directory put on the path by a .pth file
    egg = env.site / "eggpkg-1.1.0-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: eggpkg\nVersion: 1.1.0\n")
    (egg / "eggpkg.py").write_text("VALUE = 6\n")
    (env.site / "eggs.pth").write_text(f"{egg}\n")

    # broken metadata: not UTF-8
    broken = env.site / "broken-1.0.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: broken\nVersion: 1.0\nSummary: \xff\xfe\n")

    # a stray egg-info in the working directory
    work = root / "work"
    (work / "stray.egg-info").mkdir(parents=True)
    (work / "stray.egg-info" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: stray\nVersion: 9.9\n")
    facts["site"] = env.site
    return env.scan(work), facts


def dist(snapshot: dict, name: str) -> dict:
    matches = [d for d in snapshot["dists"] if d["name"].lower().replace("_", "-") == name]
    assert matches, f"{name} not found in the scan"
    return matches[0]


def test_index_installs_have_no_direct_url(scanned):
    snapshot, _ = scanned
    d = dist(snapshot, "from-index")
    assert d["source"] == {"kind": "index"} and d["installer"] == "uv"


def test_wheel_files_are_archives_with_their_path(scanned):
    snapshot, facts = scanned
    pip_wheel = dist(snapshot, "pip-wheel")
    assert pip_wheel["source"]["kind"] == "archive" and pip_wheel["installer"] == "pip"
    assert pip_wheel["source"]["url"] == facts["pip_wheel"].as_uri()
    assert len(pip_wheel["source"]["sha256"]) == 64  # pip records the hash; uv does not
    assert dist(snapshot, "uv-wheel")["source"]["url"] == facts["uv_wheel"].as_uri()


def test_editables_of_both_layouts_and_a_local_directory(scanned):
    snapshot, facts = scanned
    for name, path in (("srcpkg", facts["src"]), ("flatpkg", facts["flat"])):
        assert dist(snapshot, name)["source"] == {"kind": "editable", "path": str(path),
                                                  "commit": ""}
    assert dist(snapshot, "dirpkg")["source"] == {"kind": "directory", "path": str(facts["dir"])}


def test_legacy_egg_link_editable_points_at_its_project(scanned):
    snapshot, facts = scanned
    legacy = dist(snapshot, "legacypkg")
    assert legacy["source"] == {"kind": "editable", "path": str(facts["legacy"]), "commit": ""}
    assert legacy["version"] == "0.3.0" and legacy["requires"] == ["six"]


def test_git_installs_record_the_commit(scanned):
    snapshot, facts = scanned
    source = dist(snapshot, "gitpkg")["source"]
    assert (source["kind"], source["commit"]) == ("vcs", facts["commit"])
    editable = dist(snapshot, "giteditpkg")["source"]
    assert editable["kind"] == "editable" and editable["commit"] == facts["edit_commit"]
    assert Path(editable["path"]).name == "giteditpkg"  # pip's checkout under <venv>/src


def test_eggs_on_the_path_are_found(scanned):
    snapshot, _ = scanned
    egg = dist(snapshot, "eggpkg")
    assert (egg["version"], egg["installer"]) == ("1.1.0", "egg")


def test_what_is_not_an_install_is_reported_and_skipped(scanned):
    snapshot, _ = scanned
    names = {d["name"] for d in snapshot["dists"]}
    assert "stray" not in names, "a stray egg-info in the working directory was synced"
    assert "ghost" not in names, "a distribution whose files are gone was synced"
    notes = " ".join(snapshot["notes"])
    assert "stray.egg-info is not an install" in notes
    assert "ghost 1.0.0 has metadata" in notes and "files are gone" in notes


def test_broken_metadata_is_reported_not_fatal(scanned):
    snapshot, _ = scanned
    assert any("UTF-8" in p for p in dist(snapshot, "broken")["problems"])


def test_system_and_user_site_packages_are_seen_and_shadowed_by_the_venv(tmp_path):
    base_site = subprocess.run(
        [BASE_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    venv = tmp_path / "venv"
    python = uv_venv(venv, system_site_packages=True)
    uv_install(python, str(REPO))
    own = {p.name.split("-")[0].lower() for p in venv.glob("lib/*/site-packages/*.dist-info")}
    candidates = [p.name.split("-")[0] for p in sorted(Path(base_site).glob("*.dist-info"))
                  if p.name.split("-")[0].lower() not in own]
    if not candidates:
        pytest.skip(f"the base interpreter has no distributions of its own in {base_site}")
    shadow = candidates[0]
    wheel = make_wheel(tmp_path, shadow, "999.0")
    uv_install(python, "--no-deps", str(wheel))

    user_base = tmp_path / "userbase"  # pip install --user, as on a system interpreter
    user_wheel = make_wheel(tmp_path, "user-only", "2.0")
    subprocess.run([BASE_PYTHON, "-m", "pip", "install", "--quiet", "--no-input", "--user",
                    "--no-index", "--no-warn-script-location", str(user_wheel)],
                   check=True, env=hermetic_env(PYTHONUSERBASE=str(user_base)))

    scanned = subprocess.run([str(venv / "bin/packsync"), "scan", "--json"], cwd=tmp_path,
                             env=hermetic_env(PYTHONUSERBASE=str(user_base)),
                             capture_output=True, text=True, check=True)
    snapshot = json.loads(scanned.stdout)
    assert base_site in {d["location"] for d in snapshot["dists"]}  # base packages are seen
    assert dist(snapshot, "user-only")["location"].startswith(str(user_base))
    winner = dist(snapshot, shadow.lower().replace("_", "-"))
    assert winner["version"] == "999.0" and winner["location"].startswith(str(venv))
    assert any(f"shadowed by {winner['name']} 999.0" in n and base_site in n
               for n in snapshot["notes"])
