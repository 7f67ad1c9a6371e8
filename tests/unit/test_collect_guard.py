"""Which addresses a feed may make the collector connect to.

Public addresses pass; loopback, private, link-local (cloud metadata), and the
IPv6 forms that smuggle an IPv4 address are refused, unless the operator
allowed that network explicitly.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from monitor.collect.guard import (
    AddressRefusedError,
    NetworkPolicy,
    NetworkPolicyError,
    parse_networks,
)

NOTHING_ALLOWED = NetworkPolicy()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.254.0.9", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata address
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("fe80::1", "link-local (cloud metadata)"),
        ("100.64.0.1", "shared address space"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("::7f00:1", "loopback"),  # IPv4-compatible, deprecated
    ],
)
def test_addresses_that_are_not_public_are_refused_with_the_reason(address: str, why: str) -> None:
    refusal = NOTHING_ALLOWED.refusal(address)

    assert refusal is not None
    assert refusal.startswith(f"refused address {ipaddress.ip_address(address)}")
    assert f": {why}, not in --allow-network" in refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address: str) -> None:
    assert NOTHING_ALLOWED.refusal(address) is None


def test_an_allowed_network_lets_exactly_its_addresses_through() -> None:
    policy = NetworkPolicy.allowing("127.0.0.1/32", "10.20.0.0/16")

    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None  # the same address, mapped
    assert policy.refusal("10.20.5.5") is None
    assert policy.refusal("127.0.0.2") is not None
    assert policy.refusal("10.21.0.1") is not None
    assert policy.refusal("169.254.169.254") is not None


def test_networks_come_repeated_or_comma_and_space_separated() -> None:
    assert [str(n) for n in parse_networks(["127.0.0.1/32", "10.0.0.0/8, ::1/128 fd00::/8"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
        "fd00::/8",
    ]


def test_an_allow_list_entry_that_is_not_a_network_is_a_clear_error() -> None:
    with pytest.raises(NetworkPolicyError, match="'localhost'"):
        parse_networks(["localhost"])


def test_the_socket_factory_refuses_before_creating_a_socket() -> None:
    info = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))

    with pytest.raises(AddressRefusedError, match=r"169\.254\.169\.254: link-local"):
        NOTHING_ALLOWED.socket_factory(info)

    allowed = NetworkPolicy.allowing("169.254.169.254/32").socket_factory(info)
    allowed.close()
