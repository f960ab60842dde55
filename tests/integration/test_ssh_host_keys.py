"""SSH host keys: checked against known_hosts as ssh does; an unknown or changed key stops
the launch naming the host, and turning the check off is warned about."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from packsync.errors import LaunchError
from packsync.launch.hosts.spec import HostSpec
from packsync.launch.hosts.ssh import HostConnection
from tests.support import sshd

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(sshd.available() is not None, reason=str(sshd.available()))]


def connect(port: int, key: Path, known_hosts: object) -> None:
    spec = HostSpec(address="127.0.0.1", port=port, username="root", connect_options={
        "client_keys": [str(key)], "known_hosts": known_hosts})

    async def once() -> None:
        connection = await HostConnection.open(spec)
        connection.close()
        await connection.wait_closed()

    asyncio.run(once())


@pytest.mark.attack("impostor SSH host")
def test_a_host_key_not_in_known_hosts_stops_the_launch_and_no_check_is_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with sshd.plain_sshd(tmp_path) as (port, key):
        other = sshd.keygen(tmp_path / "impostor")
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {Path(f'{other}.pub').read_text()}")
        with pytest.raises(LaunchError) as refused:
            connect(port, key, str(known))
        assert "host key" in refused.value.message and f"127.0.0.1:{port}" in refused.value.message
        assert "known_hosts" in refused.value.hint
        real = (tmp_path / "sshd" / "host.pub").read_text()
        known.write_text(f"[127.0.0.1]:{port} {real}")
        with caplog.at_level(logging.WARNING, logger="packsync.launch.hosts.ssh"):
            connect(port, key, str(known))
            assert not caplog.records
            connect(port, key, None)
        assert [r.getMessage() for r in caplog.records] == [
            f"the SSH host key of root@127.0.0.1:{port} is not checked (known_hosts=None): an "
            "impostor at that address would receive the environment, the code and index "
            "credentials; add the host to ~/.ssh/known_hosts instead"]
