"""Foreign or damaged locks are refused; a lock names its local wheels and its digest."""

from __future__ import annotations

import hashlib

import pytest

from packsync.errors import LockError
from packsync.lock.resolve import Lock

GOOD = """lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "mine"
version = "0.1"
archive = { path = "wheels/mine-0.1-py3-none-any.whl", hashes = { sha256 = "%s" } }

[tool.packsync]
format = 1
python = "3.11.7"
""" % ("ab" * 32)


def test_lock_reads_its_local_wheels_and_digest():
    lock = Lock.from_text(GOOD)
    assert lock.python == "3.11.7" and lock.package_count == 1
    assert lock.local_wheels[0].filename == "mine-0.1-py3-none-any.whl"
    assert lock.digest == hashlib.sha256(GOOD.encode()).hexdigest()


@pytest.mark.parametrize("text, message", [
    ("not = [toml", "not valid TOML"),
    ('lock-version = "1.0"\ncreated-by = "x"\npackages = "nope"\n', "not a valid PEP 751"),
    (GOOD.split("[tool.packsync]")[0], "not written by packsync"),
    (GOOD.replace("wheels/mine", "../../etc/mine"), "did not put there"),
])
def test_foreign_or_damaged_locks_are_refused(text, message):
    with pytest.raises(LockError, match=message):
        Lock.from_text(text, "given.toml")
