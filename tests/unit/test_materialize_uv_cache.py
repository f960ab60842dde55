"""Which packages of a lock are asked of uv's cache, and pinned to what."""

from __future__ import annotations

from packsync.materialize.uv_cache import cached_requirements

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


def test_index_wheels_are_pinned_to_the_version_and_every_wheel_hash_of_the_lock():
    assert cached_requirements(LOCK) == [
        "cryptography==50.0.2 --hash=sha256:aa --hash=sha256:bb",  # never the sdist's
        "colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:cc",
    ]


def test_a_lock_without_index_wheels_asks_nothing():
    assert cached_requirements('lock-version = "1.0"\ncreated-by = "packsync"\npackages = []\n') \
        == []
