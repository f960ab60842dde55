"""Settings: declared once in packsync.yaml, loaded into Dask's config, read through one module."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dask.config
import pytest
import yaml

from packsync import config
from packsync.config_reference import PAGE, key_comments, markdown
from packsync.errors import LaunchError, PacksyncError, PlanError, ScanError, StoreError
from packsync.scan.workdir import MAX_BUNDLE_BYTES
from packsync.uvtool import uv_binary

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "packsync"
# It runs on hosts where packsync is not installed, so it cannot import packsync.config.
READ_THEIR_OWN_VARIABLES = {"hostside/jobs.py"}
HOUR = 3600.0


def _clean_environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "PACKSYNC_"))}
    env["DASK_CONFIG"] = str(tmp_path)  # no user YAML file either
    return env


def test_importing_packsync_puts_every_declared_default_into_dask_config(tmp_path):
    declared = yaml.safe_load((SRC / "packsync.yaml").read_text())["packsync"]
    # any stage reads its settings through packsync.config, which loads the defaults
    probe = ("import dask.config, json, packsync.config; "
             "print(json.dumps(dask.config.get('packsync')))")
    result = subprocess.run([sys.executable, "-c", probe], env=_clean_environment(tmp_path),
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == declared
    assert set(declared) >= {"cache-dir", "store", "store-expiry", "store-options", "strict"}


def test_dask_and_packsync_environment_variables_reach_the_accessors(tmp_path):
    env = _clean_environment(tmp_path) | {
        "DASK_PACKSYNC__MAX_CODE_SIZE": "1kB", "DASK_PACKSYNC__STRICT": "true",
        "DASK_PACKSYNC__IGNORE": "a, b", "DASK_PACKSYNC__STORE_EXPIRY": "1h",
        "PACKSYNC_STORE_EXPIRY": "36h", "PACKSYNC_STORE": "memory://bucket",
    }
    probe = ("import json; from packsync import config as c; print(json.dumps([c.max_code_size(), "
             "c.strict(), c.ignore(), c.store_expiry(), c.store_url(None, c.cache_dir())]))")
    result = subprocess.run([sys.executable, "-c", probe], env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [1000, True, ["a", "b"], 36 * HOUR, "memory://bucket"]


def test_defaults_through_the_accessors(monkeypatch, tmp_path):
    for variable in config.VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert config.store_expiry() == 24 * HOUR
    assert config.store_options() == {}
    assert (config.ignore(), config.only(), config.strict(), config.fail_on()) == (
        (), None, False, "critical")
    assert (config.include(), config.exclude()) == ((), ())
    assert config.max_code_size() == MAX_BUNDLE_BYTES  # the cap a CodeRules() has
    assert (config.watch(), config.watch_interval()) == (False, 0.5)
    assert (config.scheduler_process(), config.shared_nannies()) == (False, True)
    assert config.store_url(None, tmp_path) == str(tmp_path / "store")
    assert config.uv_path() is None


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("PACKSYNC_CACHE_DIR", raising=False)
    with dask.config.set({"packsync.cache-dir": str(tmp_path / "from-config")}):
        assert config.cache_dir() == tmp_path / "from-config"
        monkeypatch.setenv("PACKSYNC_CACHE_DIR", str(tmp_path / "from-env"))
        assert config.cache_dir() == tmp_path / "from-env"
        assert config.cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
        monkeypatch.setenv("PACKSYNC_CACHE_DIR", "")  # empty: as if unset
        assert config.cache_dir() == tmp_path / "from-config"


def test_store_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("PACKSYNC_STORE", raising=False)
    assert config.store_url("s3://bucket/x", tmp_path) == "s3://bucket/x"
    with dask.config.set({"packsync.store": "memory://config"}):
        assert config.store_url(None, tmp_path) == "memory://config"
        monkeypatch.setenv("PACKSYNC_STORE", "memory://env")
        assert config.store_url(None, tmp_path) == "memory://env"


@pytest.mark.parametrize(("key", "value", "read", "expected"), [
    ("store-expiry", "36h", config.store_expiry, 36 * HOUR),
    ("store-expiry", None, config.store_expiry, 24 * HOUR),
    ("store-options", {"anon": True}, config.store_options, {"anon": True}),
    ("store-options", None, config.store_options, {}),
    ("ignore", "Some_Pkg, other", config.ignore, ("Some_Pkg", "other")),
    ("only", ["numpy"], config.only, ("numpy",)),
    ("strict", True, config.strict, True),
    ("fail-on", "any", config.fail_on, "any"),
    ("include", "data/*.csv, *.json", config.include, ("data/*.csv", "*.json")),
    ("exclude", ["scratch/"], config.exclude, ("scratch/",)),
    ("max-code-size", "1MB", config.max_code_size, 1_000_000),
    ("max-code-size", 0, config.max_code_size, 0),
    ("max-code-size", None, config.max_code_size, MAX_BUNDLE_BYTES),
    ("watch", True, config.watch, True),
    ("watch-interval", "2s", config.watch_interval, 2.0),
    ("watch-interval", 0.1, config.watch_interval, 0.1),
    ("scheduler-process", True, config.scheduler_process, True),
    ("shared-nannies", False, config.shared_nannies, False),
])
def test_dask_config_overrides_a_default(monkeypatch, key, value, read, expected):
    monkeypatch.delenv("PACKSYNC_STORE_EXPIRY", raising=False)
    with dask.config.set({f"packsync.{key}": value}):
        assert read() == expected


def test_store_options_reach_an_fsspec_store_under_the_given_ones():
    from packsync.store import open_store

    options = {"color": "config", "size": "config"}
    with dask.config.set({"packsync.store-options": options}):
        store = open_store("memory://packsync-config-test", storage_options={"size": "given"})
    assert store.fs.storage_options == {"color": "config", "size": "given"}


def test_store_expiry_from_argument_variable_or_config(monkeypatch):
    monkeypatch.delenv("PACKSYNC_STORE_EXPIRY", raising=False)
    with dask.config.set({"packsync.store-expiry": "36h"}):
        monkeypatch.setenv("PACKSYNC_STORE_EXPIRY", "7 days")
        assert config.store_expiry() == 7 * 24 * HOUR
        assert config.store_expiry(60) == 60.0
        assert config.store_expiry("0") == 0.0


@pytest.mark.parametrize(("key", "value", "read", "error"), [
    ("store-expiry", "soon", config.store_expiry, StoreError),
    ("store-expiry", "-1h", config.store_expiry, StoreError),
    ("store-options", "anon=true", config.store_options, StoreError),
    ("cache-dir", 42, config.cache_dir, PacksyncError),
    ("ignore", 5, config.ignore, PlanError),
    ("only", ["numpy", 3], config.only, PlanError),
    ("strict", "maybe", config.strict, PlanError),
    ("fail-on", "sometimes", config.fail_on, PlanError),
    ("include", {"a": 1}, config.include, ScanError),
    ("max-code-size", "lots", config.max_code_size, ScanError),
    ("watch", "often", config.watch, LaunchError),
    ("watch-interval", "soonish", config.watch_interval, LaunchError),
    ("shared-nannies", None, config.shared_nannies, LaunchError),
])
def test_a_bad_value_names_its_key(monkeypatch, key, value, read, error):
    for variable in config.VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with dask.config.set({f"packsync.{key}": value}), pytest.raises(error) as caught:
        read()
    assert f"packsync.{key}" in str(caught.value) and repr(value) in str(caught.value)
    assert f"packsync.{key}" in caught.value.hint


def test_a_bad_variable_names_the_variable(monkeypatch):
    monkeypatch.setenv("PACKSYNC_STORE_EXPIRY", "soon")
    with pytest.raises(StoreError, match="PACKSYNC_STORE_EXPIRY is 'soon', not a duration"):
        config.store_expiry()
    with pytest.raises(StoreError, match="not a duration"):
        config.store_expiry("later")


def test_packsync_uv_chooses_the_uv_binary(monkeypatch, tmp_path):
    monkeypatch.delenv("PACKSYNC_UV", raising=False)
    shipped = uv_binary()
    assert Path(shipped).name.startswith("uv")
    monkeypatch.setenv("PACKSYNC_UV", str(tmp_path / "uv"))
    assert uv_binary() == str(tmp_path / "uv")
    monkeypatch.setenv("PACKSYNC_UV", "")
    assert uv_binary() == shipped


def test_the_committed_reference_is_the_generated_one():
    committed = (ROOT / PAGE).read_text(encoding="utf-8")
    assert committed == markdown(), (
        f"{PAGE} is stale: run python -m packsync.config_reference {PAGE}")


def test_the_reference_names_every_key_and_variable():
    page = markdown()
    for key in config.DEFAULTS:
        assert f"### `packsync.{key}`" in page
    for variable in config.VARIABLES:
        assert f"| `{variable}` |" in page


def test_a_key_without_a_comment_is_refused():
    text = "packsync:\n  # Documented.\n  strict: false\n  watch: false\n"
    with pytest.raises(PacksyncError, match="packsync.watch has no comment"):
        key_comments(text)
    assert key_comments(text.replace("  watch", "  # Also.\n  watch")) == {
        "strict": "Documented.", "watch": "Also."}


def _sources() -> list[tuple[str, str]]:
    return [(p.relative_to(SRC).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(SRC.rglob("*.py"))]


def test_the_source_names_only_declared_keys_and_variables():
    """Every ``packsync.<key>`` and ``PACKSYNC_*`` the code reads or mentions is declared."""
    keys = {k.replace("_", "-") for k in config.DEFAULTS}
    undeclared = []
    for relpath, text in _sources():
        for match in re.finditer(r"\bpacksync\.([a-z][a-z0-9_-]*[a-z0-9])", text):
            name = match.group(1)
            if any((SRC / candidate).exists() for candidate in (name, f"{name}.py",
                                                                 f"packsync.{name}")):
                continue  # a module (packsync.scan) or a file (packsync.yaml)
            if name.replace("_", "-") not in keys:
                undeclared.append(f"{relpath}: packsync.{name}")
        for match in re.finditer(r"\bPACKSYNC_[A-Z0-9_]*[A-Z0-9]\b", text):
            if match.group(0) not in config.VARIABLES:
                undeclared.append(f"{relpath}: {match.group(0)}")
    assert undeclared == []


def test_only_the_config_module_reads_settings():
    """No inline default elsewhere: reads of packsync keys and variables go through it."""
    reads = re.compile(r"config\.get\(\s*f?[\"']packsync|environ(?:\.get\(|\[)\s*[\"']PACKSYNC_"
                       r"|getenv\(\s*[\"']PACKSYNC_")
    elsewhere = [relpath for relpath, text in _sources() if reads.search(text)
                 and relpath not in {"config.py", *READ_THEIR_OWN_VARIABLES}]
    assert elsewhere == []
