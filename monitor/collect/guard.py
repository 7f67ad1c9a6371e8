"""Which network addresses a feed may make the collector connect to, checked at connect time.

A feed URL is written by whoever edits the catalogue, and every redirect hop by
whoever runs the feed's server. Neither may point the collector at the machine
it runs on, its private network, or a cloud metadata service. The check runs
on the address a socket is about to connect to (aiohttp's `socket_factory`),
after DNS, after redirects, after numeric host forms have been turned into an
address: so a name that resolves to 10.0.0.1, a DNS answer that changes
between two lookups (rebinding), a redirect to `http://[::ffff:127.0.0.1]/`
and `http://2130706433/` are all refused the same way.

Only addresses that are globally routable get through, unless the operator
allows a network explicitly (`--allow-network 127.0.0.1/32`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.errors import MonitorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by `is_private` in every Python version, and never a news site.
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # embeds an IPv4 address in its last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class AddressRefusedError(OSError):
    """A connection to an address the policy refuses; raised before any packet is sent."""


class NetworkPolicyError(MonitorError, ValueError):
    """An allow-list entry that is not a network (e.g. `--allow-network localhost`)."""


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs as given on the command line or in MONITOR_ALLOW_NETWORKS (commas or spaces)."""
    networks: list[IPNetwork] = []
    for entry in entries:
        for text in entry.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as error:
                raise NetworkPolicyError(f"--allow-network {text!r}: {error}") from None
    return tuple(networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address; the server part is public anyway
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible (::a.b.c.d, deprecated) except :: and ::1 themselves.
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def _why_not_public(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        # 169.254.169.254 and fe80::… : where cloud metadata services answer.
        return "link-local (cloud metadata)"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE:
        return "shared address space"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class NetworkPolicy:
    """Public addresses pass; anything else only inside an explicitly allowed network."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, *entries: str) -> NetworkPolicy:
        return cls(parse_networks(entries))

    def _allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allowed)

    def refusal(self, address: IPAddress | str) -> str | None:
        """Why a connection to `address` is refused, or None when it may go ahead."""
        if isinstance(address, str):
            # Socket addresses of scoped IPv6 carry "%interface"; the address is what counts.
            address = ipaddress.ip_address(address.split("%", 1)[0])
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                # What it stands for names the reason best ("loopback", not "reserved").
                candidates.insert(0, embedded)
        if any(self._allowed(candidate) for candidate in candidates):
            return None
        for candidate in candidates:
            why = _why_not_public(candidate)
            if why is not None:
                shown = str(address) if candidate is address else f"{address} ({candidate})"
                return f"refused address {shown}: {why}, not in --allow-network"
        return None

    def socket_factory(self, addr_info: Any) -> socket.socket:
        """aiohttp's hook to create every socket it connects: vet the address first."""
        family, type_, proto, _, sockaddr = addr_info
        why = self.refusal(str(sockaddr[0]))
        if why is not None:
            raise AddressRefusedError(why)
        return socket.socket(family=family, type=type_, proto=proto)


def guarded_connector(
    policy: NetworkPolicy,
    *,
    limit: int = 100,
    resolver: aiohttp.abc.AbstractResolver | None = None,
) -> aiohttp.TCPConnector:
    """A connector whose every connection goes through `policy` at connect time."""
    return aiohttp.TCPConnector(
        limit=limit,
        resolver=resolver,
        socket_factory=policy.socket_factory,
        # A cached answer would be vetted again at connect time anyway; no cache keeps
        # a changed DNS answer from outliving its TTL.
        use_dns_cache=False,
    )


def guarded_session(
    policy: NetworkPolicy,
    *,
    limit: int = 100,
    resolver: aiohttp.abc.AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """A client session for feeds: guarded connector, no proxy from the environment, no cookies."""
    return aiohttp.ClientSession(
        connector=guarded_connector(policy, limit=limit, resolver=resolver),
        # A proxy would make the connection, not us: the check would vet the proxy only.
        trust_env=False,
        # Feeds have no business setting state in the collector.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def refusal_of(error: BaseException) -> str | None:
    """The policy's reason if `error` (as aiohttp raised it) is a refused address."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefusedError):
            return str(current)
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, AddressRefusedError):
            return str(os_error)
        if isinstance(os_error, OSError) and "refused address" in str(os_error):
            # Happy eyeballs joins several refusals into one message.
            text = str(os_error)
            return text[text.index("refused address") :]
        current = current.__cause__ or current.__context__
    return None
