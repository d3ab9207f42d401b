"""Which hosts an agent may reach through its door, decided after resolving the name.

An allowlist entry is a host name (`github.com`), a wildcard for subdomains (`*.github.com`),
an IP address or a CIDR block, each optionally with `:port`; without one it allows 80 and 443.
`default` stands for the built-in list (GitHub and the package registries). A destination that
resolves to a loopback, link-local (cloud metadata), private or otherwise non-public address is
refused unless an entry names it explicitly (an exact name or an address, never a wildcard or a
default entry), so DNS pointing a public name at 127.0.0.1 gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from app.errors import AppError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HOSTS = (
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "proxy.golang.org",
    "sum.golang.org",
    "rubygems.org",
    "index.rubygems.org",
    "repo.maven.apache.org",
    "repo1.maven.org",
)
DEFAULT_PORTS = frozenset({80, 443})
_NAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


class Refused(AppError):
    """The egress policy does not allow this destination."""

    status = 403
    code = "egress_refused"


@dataclass(frozen=True)
class Entry:
    text: str
    name: str | None = None  # lower-case host name, without a leading "*."
    wildcard: bool = False
    network: IPNetwork | None = None
    ports: frozenset[int] = DEFAULT_PORTS
    default: bool = False  # from the built-in list

    @property
    def explicit(self) -> bool:
        """Named on purpose by whoever configured the app: may reach non-public addresses."""
        return not self.default and not self.wildcard

    def matches(self, host: str, port: int) -> bool:
        if port not in self.ports:
            return False
        if self.network is not None:
            address = _as_address(host)
            return address is not None and address in self.network
        if self.name is None:
            return False
        if self.wildcard:
            return host.endswith("." + self.name)
        return host == self.name


def parse_entry(text: str, *, default: bool = False) -> Entry:
    """One allowlist entry; ValueError with the reason if it is not one."""
    raw = text.strip().lower()
    host, ports = _split_port(raw)
    if not host:
        raise ValueError(f"{text!r}: empty host")
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        return Entry(text=raw, network=network, ports=ports, default=default)
    if not _NAME.match(host):
        raise ValueError(f"{text!r}: not a host name, wildcard (*.example.com), address or CIDR")
    wildcard = host.startswith("*.")
    return Entry(
        text=raw, name=host.removeprefix("*."), wildcard=wildcard, ports=ports, default=default
    )


def parse_allowlist(text: str) -> tuple[Entry, ...]:
    """`AGENT_ALLOWED_HOSTS`: comma-separated entries; `default` adds the built-in list."""
    entries: list[Entry] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.lower() == "default":
            entries += [parse_entry(host, default=True) for host in DEFAULT_HOSTS]
        else:
            entries.append(parse_entry(item))
    return tuple(entries)


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class EgressPolicy:
    def __init__(self, entries: Sequence[Entry], resolver: Resolver | None = None) -> None:
        self.entries = tuple(entries)
        self._lookup = resolver or lookup

    def describe(self) -> str:
        return ", ".join(e.text for e in self.entries) or "(none)"

    def with_entries(self, extra: Sequence[Entry]) -> EgressPolicy:
        """This allowlist and `extra` (checked after it), resolved the same way."""
        return EgressPolicy([*self.entries, *extra], self._lookup)

    def entry_for(self, host: str, port: int) -> Entry | None:
        host = _normal_host(host)
        return next((e for e in self.entries if e.matches(host, port)), None)

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for host:port; Refused with the reason otherwise."""
        host = _normal_host(host)
        if not 0 < port < 65536:
            raise Refused(f"Port {port} is not a valid port.")
        entry = self.entry_for(host, port)
        if entry is None:
            raise Refused(
                f"{host}:{port} is not on this app's allowlist for agents "
                f"(AGENT_ALLOWED_HOSTS: {self.describe()})."
            )
        literal = _as_address(host)
        addresses = [literal] if literal is not None else await self._lookup(host, port)
        if not addresses:
            raise Refused(f"{host} does not resolve to any address.")
        for address in addresses:
            if not address.is_global and not entry.explicit:
                raise Refused(
                    f"{host}:{port} resolves to {address}, a {kind_of(address)} address; "
                    "such addresses are reachable only when listed explicitly "
                    "in AGENT_ALLOWED_HOSTS."
                )
        return addresses


def kind_of(address: IPAddress) -> str:
    address = _unmapped(address)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    return "non-public"


async def lookup(host: str, port: int) -> list[IPAddress]:
    """The system resolver's addresses for host (empty when it does not resolve)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return _unique(ipaddress.ip_address(info[4][0]) for info in infos)


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return seen


def _as_address(host: str) -> IPAddress | None:
    try:
        return _unmapped(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    """`::ffff:127.0.0.1` is 127.0.0.1: judge it as such."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    literal = _as_address(host)
    return str(literal) if literal is not None else host


def _split_port(raw: str) -> tuple[str, frozenset[int]]:
    """`host:port`, `[v6]:port`, `v6` or `host`; no port means 80 and 443."""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ""
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    else:
        host, port = raw, ""
    if not port:
        return host, DEFAULT_PORTS
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{raw!r}: bad port {port!r}")
    return host, frozenset({int(port)})
