"""Requests to addresses a caller gave us (partner webhooks) go to public addresses only.

A partner names a URL; we POST to it from inside our network. Unchecked, that is a
server-side request forgery: the cloud metadata service (169.254.169.254), the database on
127.0.0.1, a pod on 10.x, each reachable by naming it, or by naming a DNS name that resolves
to it. So:

- **At subscription** (``url_refusal``) the URL's host is refused when it is an address that is
  not public (in any of its spellings: the URL parser turns ``2130706433``, ``0x7f.1`` and
  ``127.1`` into ``127.0.0.1``), when it is a name only a private network answers
  (``localhost``, ``*.internal``, ``*.local``, a single label such as ``metadata``), or when
  it resolves now to an address that is not public.
- **At delivery** (``GuardedTransport``) the host is resolved once, *every* address it resolves
  to is checked, and the connection is made to a checked address: a DNS answer that changes
  between the check and the connect (rebinding) cannot win, because nothing is resolved
  again. TLS still verifies the certificate against the URL's host name, and SNI and the
  ``Host`` header still carry it, because httpcore takes those from the URL, not from the
  address connected to.

Refused: loopback, private (RFC 1918, ULA), link-local, shared/CGNAT (100.64.0.0/10),
multicast, reserved, unspecified (0.0.0.0, ::), documentation and benchmarking ranges (all
that Python's ``ipaddress`` does not call global), IPv4-mapped IPv6 (``::ffff:127.0.0.1``)
whatever it embeds, and 6to4 / NAT64 / Teredo addresses embedding an address refused here.
An ``AllowList`` (``EgressSettings.egress_allow``: CIDRs and host names) lets an operator
permit a partner's private endpoint; multicast, unspecified and IPv4-mapped are refused even
then, as no endpoint is reached that way.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# host, port → the addresses it resolves to (as text). The system resolver by default; a test
# passes its own to play a DNS server (a name that resolves to a private address, a name
# whose answer changes between the check and the connect).
Lookup = Callable[[str, int], Sequence[str]]

# Names that only a private network answers (RFC 6761 localhost, RFC 6762 .local, the
# ICANN-reserved .internal where cloud metadata lives, RFC 8375 home.arpa).
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain"})

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)


def system_lookup(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order, once each."""
    seen: dict[str, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


@dataclass(frozen=True)
class AllowList:
    """Addresses (CIDRs) and host names a request may reach though they are not public."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """``10.20.0.0/16``, ``127.0.0.1``, ``hooks.partner.internal``; ValueError naming the
        entry that is neither a network nor a host name."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
                continue
            except ValueError as exc:
                if "/" in entry and parse_address(entry.split("/", 1)[0]) is not None:
                    raise ValueError(f"egress allow-list entry {entry!r}: {exc}") from None
            name = _normal_name(entry)
            if not _is_host_name(name):
                raise ValueError(
                    f"egress allow-list entry {entry!r} is neither an address, a network "
                    "(CIDR) nor a host name"
                )
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def permits_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def permits_host(self, host: str) -> bool:
        return _normal_name(host) in self.hosts


def _normal_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _is_host_name(name: str) -> bool:
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(
        0 < len(label) <= 63
        and all(c.isalnum() or c == "-" for c in label)
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )


def parse_address(host: str) -> IPAddress | None:
    """The address a URL's host spells (``[::1]`` with or without brackets), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_refusal(ip: IPAddress, allow: AllowList = AllowList()) -> str | None:
    """Why a request must not go to ``ip`` (words for an error), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "is an IPv4-mapped IPv6 address"
    if ip.is_unspecified:
        return "is the unspecified address"
    if ip.is_multicast:
        return "is a multicast address"
    if allow.permits_address(ip):
        return None
    if ip.is_loopback:
        return "is a loopback address"
    if ip.is_link_local:
        return "is a link-local address (where cloud metadata services answer)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.IPv4Network("100.64.0.0/10"):
        return "is in the shared address space (carrier-grade NAT)"
    if ip.is_private:
        return "is a private address"
    if ip.is_reserved:
        return "is a reserved address"
    if not ip.is_global:
        return "is not a public address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        # The allow-list names addresses as written: not reached through a relay.
        if embedded is not None and address_refusal(embedded) is not None:
            return f"embeds {embedded}, which is not a public address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def name_refusal(host: str, allow: AllowList = AllowList()) -> str | None:
    """Why a host *name* is refused before it is even resolved, or None."""
    name = _normal_name(host)
    if allow.permits_host(name):
        return None
    if name in _PRIVATE_NAMES or name.endswith(_PRIVATE_SUFFIXES):
        return "is a name only a private network answers"
    if "." not in name:
        return "is a single-label name (resolved by the local network's search domains)"
    return None


def resolved_refusal(
    host: str, addresses: Sequence[str], allow: AllowList = AllowList()
) -> str | None:
    """Why the addresses ``host`` resolved to are refused (any one refused refuses all:
    a name answering both public and private addresses is not trusted), or None."""
    host_allowed = allow.permits_host(host)
    for text in addresses:
        ip = parse_address(text.split("%", 1)[0])  # a scoped IPv6 answer: its address
        if ip is None:
            return f"resolves to {text!r}, which is not an address"
        why = address_refusal(ip, allow)
        if why is not None and host_allowed and not _never(ip):
            continue
        if why is not None:
            return f"resolves to {ip}, which {why}"
    return None


def _never(ip: IPAddress) -> bool:
    """Refused even for an allowed host name: nothing is reached this way."""
    return (
        (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None)
        or ip.is_unspecified
        or ip.is_multicast
    )


def host_refusal(host: str, allow: AllowList = AllowList()) -> str | None:
    """The checks that need no DNS: an address literal, or a private-only name."""
    ip = parse_address(host)
    if ip is not None:
        return address_refusal(ip, allow)
    return name_refusal(host, allow)


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address requests may not reach: nothing was sent."""


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to checked addresses. httpcore calls
    ``connect_tcp`` with the URL's host for every new connection, then starts TLS with that
    host as the server name (SNI and certificate check): only the socket's address differs
    from an ordinary connection."""

    def __init__(self, allow: AllowList, lookup: Lookup = system_lookup) -> None:
        self.allow = allow
        self.lookup = lookup
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        why = host_refusal(host, self.allow)
        if why is not None:
            raise AddressRefused(f"{host} {why}")
        literal = parse_address(host)
        try:
            addresses = [str(literal)] if literal is not None else list(self.lookup(host, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        why = resolved_refusal(host, addresses, self.allow)
        if why is not None:
            raise AddressRefused(f"{host} {why}")
        # Connect to the addresses just checked, in the resolver's order: never to the name.
        last: Exception | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(
                    address.split("%", 1)[0], port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise AddressRefused("requests to a Unix socket are refused")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection goes through ``GuardedBackend``. No proxy
    (a proxy would make the connection, unchecked) and no environment settings (``trust_env``
    could bring one in)."""

    def __init__(
        self,
        allow: AllowList,
        lookup: Lookup = system_lookup,
        verify: typing.Any = True,
        limits: httpx.Limits = _LIMITS,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        # httpx builds its pool without a way to pass a network backend; replace it with the
        # same pool (its public constructor, the arguments httpx would give it) that has one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow, lookup),
        )


def refused_by_guard(exc: BaseException) -> AddressRefused | None:
    """The ``AddressRefused`` behind an httpx error (httpx re-raises httpcore's errors as
    its own, keeping the original as the cause), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
