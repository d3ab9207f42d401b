"""The egress allowlist: what it lets through, and what it refuses however it is asked."""

from __future__ import annotations

import ipaddress

import pytest

from app.sandbox.policy import (
    DEFAULT_HOSTS,
    EgressPolicy,
    IPAddress,
    Refused,
    parse_allowlist,
    parse_entry,
)


def resolving(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, _port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    return resolve


PUBLIC = {"github.com": ["140.82.121.3"], "api.github.com": ["140.82.121.6"]}


async def test_default_hosts_on_https_and_http_only() -> None:
    policy = EgressPolicy(parse_allowlist("default"), resolving(PUBLIC))
    assert await policy.resolve("github.com", 443) == [ipaddress.ip_address("140.82.121.3")]
    assert await policy.resolve("API.GitHub.com.", 80)
    with pytest.raises(Refused, match="not on this app's allowlist"):
        await policy.resolve("github.com", 22)
    with pytest.raises(Refused, match="not on this app's allowlist"):
        await policy.resolve("evil.example", 443)
    assert len(parse_allowlist("default")) == len(DEFAULT_HOSTS)


async def test_a_public_name_pointing_at_a_private_address_is_refused() -> None:
    rebinding = {"github.com": ["127.0.0.1"], "x.github.com": ["169.254.169.254"]}
    policy = EgressPolicy(parse_allowlist("default"), resolving(rebinding))
    with pytest.raises(Refused, match="loopback"):
        await policy.resolve("github.com", 443)
    with pytest.raises(Refused, match="link-local"):
        await policy.resolve("x.github.com", 443)


async def test_wildcards_never_reach_private_addresses_but_explicit_names_do() -> None:
    table = {"git.corp.example": ["10.1.2.3"]}
    wildcard = EgressPolicy(parse_allowlist("*.corp.example"), resolving(table))
    with pytest.raises(Refused, match="private"):
        await wildcard.resolve("git.corp.example", 443)
    explicit = EgressPolicy(parse_allowlist("git.corp.example"), resolving(table))
    assert await explicit.resolve("git.corp.example", 443) == [ipaddress.ip_address("10.1.2.3")]


async def test_addresses_and_blocks_with_ports() -> None:
    policy = EgressPolicy(parse_allowlist("127.0.0.2:8080, 10.0.0.0/8, [::1]:9000"))
    assert await policy.resolve("127.0.0.2", 8080)
    with pytest.raises(Refused):
        await policy.resolve("127.0.0.2", 8081)
    with pytest.raises(Refused):
        await policy.resolve("127.0.0.1", 8080)
    assert await policy.resolve("10.9.8.7", 443)
    with pytest.raises(Refused):
        await policy.resolve("10.9.8.7", 5432)
    assert await policy.resolve("::1", 9000)


async def test_loopback_in_disguise_is_still_loopback() -> None:
    policy = EgressPolicy(parse_allowlist("default"), resolving(PUBLIC))
    for host in ("127.0.0.1", "::ffff:127.0.0.1", "[::1]", "0.0.0.0", "169.254.169.254"):
        with pytest.raises(Refused):
            await policy.resolve(host, 443)


async def test_unresolvable_names_are_refused_clearly() -> None:
    policy = EgressPolicy(parse_allowlist("nowhere.example"), resolving({}))
    with pytest.raises(Refused, match="does not resolve"):
        await policy.resolve("nowhere.example", 443)


@pytest.mark.parametrize("bad", ["", "exa mple.com", "http://x.com", "x.com:99999", "*.", "a:b"])
def test_bad_entries_are_reported(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(bad)
