"""Index tokens in a lock: placeholders that name the index on disk, the live value only
in the private file uv installs from (packsync.lock.tokens, packsync.hostside.placeholders)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import tomli_w

from packsync.errors import LockError
from packsync.hostside import placeholders
from packsync.hostside.jobs import job_index_environment
from packsync.hostside.protocol import HostError
from packsync.launch.kubernetes import pod_parts
from packsync.launch.worker_command import WorkerCommand, job_indexes
from packsync.lock.export import export, tokens_note
from packsync.lock.lockfile import Lock
from packsync.lock.tokens import mask_document, mask_text, unmask
from packsync.redact import secrets_in
from packsync.scan.index_config import Index
from packsync.scan.indexes import IndexSettings
from packsync.store import LocalStore

CLOUDSMITH = "AbC123token456XyZ789"
FURY = "fury9Token8Value7xyz"
QUERY = "q-s3cr3t%2Fval"
SETTINGS = IndexSettings(
    indexes=(
        Index(url="https://pypi.org/simple", role="default", origin="default"),
        Index(url=f"https://dl.cloudsmith.io/{CLOUDSMITH}/acme/repo/python/simple/",
              role="extra", origin="$UV_INDEX", name="corp"),
        Index(url=f"https://pypi.fury.io/{FURY}/acme/", role="extra", origin="pip.conf"),
        Index(url=f"https://u:pw@pkgs.example.com/simple/?token={QUERY}", role="extra",
              origin="pip.conf"),
    ),
    environ={"HOME": "/nonexistent", "NETRC": "/nonexistent"},
)
WHEEL = f"https://dl.cloudsmith.io/{CLOUDSMITH}/acme/repo/python/packages/a-1.0-py3-none-any.whl"


def lock_document() -> dict[str, object]:
    return {
        "lock-version": "1.0", "created-by": "uv",
        "packages": [{
            "name": "a", "version": "1.0",
            "index": f"https://dl.cloudsmith.io/{CLOUDSMITH}/acme/repo/python/simple/",
            "wheels": [{"url": WHEEL, "hashes": {"sha256": "0" * 64}}],
        }, {
            "name": "b", "version": "2.0",
            "sdist": {"url": f"https://pkgs.example.com/files/b-2.0.tar.gz?token={QUERY}",
                      "hashes": {"sha256": "1" * 64}},
        }],
        "tool": {"packsync": {"format": 1, "python": "3.11.7"}},
    }


def test_each_token_is_labelled_after_its_index_and_travels_only_in_uv_environment() -> None:
    assert SETTINGS.lock_tokens() == {"corp-1": CLOUDSMITH, "pypi-fury-io-1": FURY,
                                      "pkgs-example-com-1": QUERY}
    env = SETTINGS.uv_environment()
    assert json.loads(env[placeholders.VARIABLE]) == SETTINGS.lock_tokens()
    assert {CLOUDSMITH, FURY, "q-s3cr3t/val", QUERY} <= secrets_in(env)
    assert SETTINGS.masked_url(SETTINGS.indexes[3]) == \
        "https://pkgs.example.com/simple/?token={packsync-secret:pkgs-example-com-1}"
    plain = IndexSettings(indexes=(Index(url="https://pypi.org/simple", role="default",
                                         origin="default"),), environ={})
    assert plain.lock_tokens() == {} and placeholders.VARIABLE not in plain.uv_environment()


def test_the_lock_holds_placeholders_and_is_restored_exactly() -> None:
    tokens = SETTINGS.lock_tokens()
    live = tomli_w.dumps(lock_document())
    masked = tomli_w.dumps(mask_document(lock_document(), tokens))
    assert CLOUDSMITH not in masked and QUERY not in masked
    assert "https://dl.cloudsmith.io/{packsync-secret:corp-1}/acme/repo/python/packages/" in masked
    assert "?token={packsync-secret:pkgs-example-com-1}" in masked
    lock = Lock.from_text(masked)  # a valid PEP 751 lock
    assert lock.token_labels == ["corp-1", "pkgs-example-com-1"]
    assert CLOUDSMITH not in repr(lock)
    assert placeholders.restore(masked, tokens) == live
    assert mask_text(live, tokens) == masked  # a --live-urls lock reads back as packsync's
    assert mask_text(masked, tokens) == masked


def test_a_value_is_never_looked_for_inside_a_placeholder() -> None:
    values = {"corp-1": "corp-1", "x-1": "secret"}
    masked = placeholders.mask("https://h/corp-1/secret/", values)
    assert masked == "https://h/{packsync-secret:corp-1}/{packsync-secret:x-1}/"
    assert placeholders.restore(masked, values) == "https://h/corp-1/secret/"


def test_a_missing_token_is_named_and_nothing_is_installed(tmp_path: Path) -> None:
    with pytest.raises(HostError, match=r"\{packsync-secret:corp-1\}") as caught:
        placeholders.restore("url = 'https://h/{packsync-secret:corp-1}/x'", {})
    assert caught.value.kind == "secret"
    with pytest.raises(LockError, match="cannot write .* with live URLs"):
        unmask("url = 'https://h/{packsync-secret:corp-1}/x'", {}, "pylock.toml")


def test_the_live_lock_is_private_and_removed_after_use(tmp_path: Path) -> None:
    written = tmp_path / "pylock.toml"
    written.write_text("url = 'https://h/{packsync-secret:corp-1}/x'\n")
    with placeholders.live_lock(str(written), written.read_text(), {"corp-1": CLOUDSMITH}) as live:
        assert Path(live).parent == tmp_path and Path(live).name == placeholders.LIVE_LOCK
        assert CLOUDSMITH in Path(live).read_text()
        assert stat.S_IMODE(Path(live).stat().st_mode) == 0o600
    assert not Path(live).exists()
    with pytest.raises(RuntimeError), \
            placeholders.live_lock(str(written), written.read_text(), {"corp-1": "t" * 20}):
        raise RuntimeError("uv failed")
    assert not (tmp_path / placeholders.LIVE_LOCK).exists()
    with placeholders.live_lock(str(written), "url = 'https://h/x'\n", {}) as same:
        assert same == str(written)


def test_live_values_are_read_from_the_url_a_job_gives() -> None:
    masked = "https://dl.cloudsmith.io/{packsync-secret:corp-1}/acme/simple/"
    assert placeholders.values_from(masked, f"https://u:p@dl.cloudsmith.io/{CLOUDSMITH}/acme/"
                                    "simple/") == {"corp-1": CLOUDSMITH}
    assert placeholders.values_from(masked, "https://elsewhere.example/simple/") is None
    twice = "https://h/{packsync-secret:a-1}/x/{packsync-secret:a-1}/"
    assert placeholders.values_from(twice, "https://h/tok/x/tok/") == {"a-1": "tok"}
    assert placeholders.values_from(twice, "https://h/tok/x/other/") is None


def test_a_job_takes_the_token_from_its_own_environment() -> None:
    entry = "corp=https://dl.cloudsmith.io/{packsync-secret:corp-1}/acme/simple/"
    needs = "url = 'https://dl.cloudsmith.io/{packsync-secret:corp-1}/acme/a.whl'"
    with pytest.raises(HostError, match="set UV_INDEX_CORP_URL to the index's full URL"):
        job_index_environment([entry], {}, needs)
    with pytest.raises(HostError, match="UV_INDEX_CORP_URL is not a URL of the index corp"):
        job_index_environment([entry], {"UV_INDEX_CORP_URL": "https://other/simple/"}, needs)
    live = f"https://dl.cloudsmith.io/{CLOUDSMITH}/acme/simple/"
    env = job_index_environment([entry], {"UV_INDEX_CORP_URL": live,
                                          "UV_INDEX_CORP_PASSWORD": "pw"}, needs)
    assert env == {"UV_INDEX": f"corp={live}", "UV_INDEX_CORP_PASSWORD": "pw",
                   placeholders.VARIABLE: json.dumps({"corp-1": CLOUDSMITH}),
                   "NETRC": os.devnull}  # a netrc's default entry goes to no index
    assert job_index_environment([entry], {}, "url = 'https://pypi.org/a.whl'") == {
        "NETRC": os.devnull}


def test_worker_commands_name_token_indexes_without_their_token() -> None:
    found = job_indexes(SETTINGS)
    assert [(i.name, i.url, i.url_variable, i.credentials) for i in found] == [
        ("corp", "https://dl.cloudsmith.io/{packsync-secret:corp-1}/acme/repo/python/simple/",
         "UV_INDEX_CORP_URL", False),
        ("pypi-fury-io", "https://pypi.fury.io/{packsync-secret:pypi-fury-io-1}/acme/",
         "UV_INDEX_PYPI_FURY_IO_URL", False),
        ("pkgs-example-com",
         "https://pkgs.example.com/simple/?token={packsync-secret:pkgs-example-com-1}",
         "UV_INDEX_PKGS_EXAMPLE_COM_URL", True),
    ]
    assert not any(s in repr(found) for s in (CLOUDSMITH, FURY, "s3cr3t", "pw"))
    lock = Lock(text="", digest="ab" * 32, python="3.11.7", local_wheels=(), versions={})
    command = WorkerCommand(argv=("python3",), lock=lock, store="/mnt/s", indexes=found)
    env = pod_parts(command, "worker", store_claim="claim")["container"]["env"]
    assert [(e["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in env] == [
        ("UV_INDEX_CORP_URL", "corp-url"),
        ("UV_INDEX_PYPI_FURY_IO_URL", "pypi-fury-io-url"),
        ("UV_INDEX_PKGS_EXAMPLE_COM_USERNAME", "pkgs-example-com-username"),
        ("UV_INDEX_PKGS_EXAMPLE_COM_PASSWORD", "pkgs-example-com-password"),
        ("UV_INDEX_PKGS_EXAMPLE_COM_URL", "pkgs-example-com-url"),
    ]


def test_export_warns_of_placeholders_and_writes_live_urls_privately(tmp_path: Path) -> None:
    tokens = SETTINGS.lock_tokens()
    lock = Lock.from_text(tomli_w.dumps(mask_document(lock_document(), tokens)))
    store = LocalStore(tmp_path / "store")
    export(lock, tmp_path / "masked" / "pylock.toml", store)
    assert (tmp_path / "masked" / "pylock.toml").read_text() == lock.text
    note = tokens_note(lock, Path("pylock.toml"), live=False)
    assert "{packsync-secret:corp-1}, {packsync-secret:pkgs-example-com-1}" in note
    assert "plain uv cannot install it" in note and "--live-urls" in note
    export(lock, tmp_path / "live" / "pylock.toml", store, tokens)
    written = tmp_path / "live" / "pylock.toml"
    assert CLOUDSMITH in written.read_text() and "packsync-secret" not in written.read_text()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "readable by you only" in tokens_note(lock, written, live=True)
    assert tokens_note(Lock.from_text(tomli_w.dumps(lock_document())), written, live=False) == ""


def test_locks_resolved_with_live_tokens_before_are_removed(tmp_path: Path) -> None:
    from packsync.lock.resolve import forget_live_locks

    (tmp_path / "old.toml").write_text(tomli_w.dumps(lock_document()))
    (tmp_path / "new.toml").write_text(
        tomli_w.dumps(mask_document(lock_document(), SETTINGS.lock_tokens())))
    (tmp_path / "other.toml").write_text('url = "https://pypi.org/x.whl"\n')
    assert forget_live_locks(tmp_path, SETTINGS.lock_tokens().values()) == [tmp_path / "old.toml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.toml", "other.toml"]
    assert forget_live_locks(tmp_path, []) == []
