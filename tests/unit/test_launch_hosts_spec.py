"""Which machines a cluster runs on, as users name them (packsync.launch.hosts.spec)."""

from __future__ import annotations

import pytest

from packsync.launch.hosts.spec import DEFAULT_HOST_CACHE, HostSpec, parse_hosts


def test_hosts_are_named_in_parse_errors() -> None:
    specs = parse_hosts(["a", "u@b:2200", {"address": "c", "python": "/p"}],
                        connect_options={"known_hosts": None}, cache_dir="/c")
    assert [s.name for s in specs] == ["a", "u@b:2200", "c"]
    assert specs[1].ssh_options() == {"known_hosts": None, "port": 2200, "username": "u"}
    assert specs[2].python == "/p" and specs[0].cache_dir == "/c"
    with pytest.raises(ValueError, match="named twice"):
        parse_hosts(["a", "a"])


def test_per_host_values_apply_in_order_and_a_host_dict_wins_over_them() -> None:
    specs = parse_hosts(
        ["a", {"address": "b", "python": "/own", "connect_options": {"port": 2}}],
        connect_options=[{"known_hosts": None}, {"port": 1, "agent_path": None}],
        python=["/pa", "/pb"],
    )
    assert [s.python for s in specs] == ["/pa", "/own"]
    assert specs[0].connect_options == {"known_hosts": None}
    assert specs[1].connect_options == {"port": 2, "agent_path": None}
    assert [s.cache_dir for s in specs] == [DEFAULT_HOST_CACHE, DEFAULT_HOST_CACHE]


def test_one_string_is_one_host_and_a_host_spec_is_kept_as_given() -> None:
    given = HostSpec(address="10.0.0.9", python="/usr/bin/python3")
    assert [s.name for s in parse_hosts("node")] == ["node"]
    assert parse_hosts([given, "other"])[0] is given


def test_a_host_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="has no address"):
        parse_hosts([{"python": "/p"}])


def test_explicit_ssh_options_win_over_the_address_they_came_with() -> None:
    spec = HostSpec(address="a", port=22, username="u", connect_options={"port": 2222})
    assert spec.ssh_options() == {"port": 2222, "username": "u"}
    assert spec.name == "u@a:22"
