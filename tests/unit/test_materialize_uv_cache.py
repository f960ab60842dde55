"""Which packages of a lock are asked of uv's cache, and pinned to what."""

from __future__ import annotations

from pathlib import Path

from packsync.materialize.uv_cache import cached_requirements, installed_by_uv

WHEEL = "https://files.example/packages/{}"
LOCK = f"""
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "cryptography"
version = "50.0.2"
sdist = {{ url = "{WHEEL.format('cryptography-50.0.2.tar.gz')}", hashes = {{ sha256 = "sd" }} }}
wheels = [
  {{ url = "{WHEEL.format('cryptography-50.0.2-cp311-abi3-manylinux_2_28_x86_64.whl')}", hashes = {{ sha256 = "aa" }} }},
  {{ url = "{WHEEL.format('cryptography-50.0.2-cp311-abi3-manylinux_2_34_x86_64.whl')}", hashes = {{ sha256 = "bb" }} }},
]

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
wheels = [{{ url = "{WHEEL.format('colorama-0.4.6-py2.py3-none-any.whl')}", hashes = {{ sha256 = "cc" }} }}]

[[packages]]
name = "only-sdist"
version = "1.0"
sdist = {{ url = "{WHEEL.format('only_sdist-1.0.tar.gz')}", hashes = {{ sha256 = "dd" }} }}

[[packages]]
name = "mylib"
version = "0.1.0"
archive = {{ path = "wheels/mylib-0.1.0-py3-none-any.whl", hashes = {{ sha256 = "ee" }} }}

[[packages]]
name = "fromgit"
version = "2.0"
vcs = {{ type = "git", url = "https://git.example/fromgit", commit-id = "0123abcd" }}

[[packages]]
name = "nohash"
version = "1.0"
wheels = [{{ url = "{WHEEL.format('nohash-1.0-py3-none-any.whl')}", hashes = {{ md5 = "ff" }} }}]

[[packages]]
name = "noversion"
wheels = [{{ url = "{WHEEL.format('noversion-1.0-py3-none-any.whl')}", hashes = {{ sha256 = "gg" }} }}]
"""


EVERYTHING = {"cryptography": "50.0.2", "colorama": "0.4.6", "only-sdist": "1.0",
              "mylib": "0.1.0", "fromgit": "2.0", "nohash": "1.0", "noversion": "1.0"}


def test_index_wheels_are_pinned_to_the_version_and_every_wheel_hash_of_the_lock():
    assert cached_requirements(LOCK, EVERYTHING) == [
        "cryptography==50.0.2 --hash=sha256:aa --hash=sha256:bb",  # never the sdist's
        "colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:cc",
    ]


def test_only_what_uv_installed_here_at_the_lock_s_version_is_asked_for():
    assert cached_requirements(LOCK, {"colorama": "0.4.5", "cryptography": "50.0.2"}) == [
        "cryptography==50.0.2 --hash=sha256:aa --hash=sha256:bb",
    ]
    assert cached_requirements(LOCK, {"colorama": "0.4.6.0"}) == [  # the same version
        "colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:cc",
    ]
    assert cached_requirements(LOCK, {}) == []


def test_a_lock_without_index_wheels_asks_nothing():
    empty = 'lock-version = "1.0"\ncreated-by = "packsync"\npackages = []\n'
    assert cached_requirements(empty, EVERYTHING) == []


def installed(site: Path, name: str, version: str, installer: str | None) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if installer is not None:
        (info / "INSTALLER").write_text(f"{installer}\n")


def test_what_uv_installed_is_read_as_imports_would_find_it(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    installed(first, "Typing_Extensions", "4.16.0", "uv")
    installed(first, "pip", "23.2.1", "pip")  # seeded by python -m venv
    installed(first, "handmade", "1.0", None)
    installed(first, "shadowed", "2.0", "pip")
    installed(second, "shadowed", "1.0", "uv")  # behind the first one: never imported
    installed(second, "zict", "3.0.0", "uv")
    assert installed_by_uv([str(first), str(second)]) == {
        "typing-extensions": "4.16.0", "zict": "3.0.0",
    }
