"""Discovery against the lab's authoritative DNS on loopback (no internet), and input parsing."""

from __future__ import annotations

import random
from functools import partial

import dns.asyncresolver
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from scanner.discovery import (
    ServiceDiscovery,
    discover,
    discover_service,
    make_resolver,
    normalize_domain,
    parse_nameserver,
)
from scanner.findings import Severity
from scanner.lab.dns import Zone, answer_query, decode_query, serve_dns, udp_wire

LIFETIME = 1.0

ZONE: dict[tuple[str, str], list[str]] = {
    # two A records behind one SRV target (a pool), plus an AAAA
    ("_sipfederationtls._tcp.contoso.test", "SRV"): ["0 0 5061 sip.contoso.test."],
    ("sip.contoso.test", "A"): ["127.0.0.1", "127.0.0.2"],
    ("_xmpp-server._tcp.v6.test", "SRV"): ["0 0 5269 xmpp.v6.test."],
    ("xmpp.v6.test", "AAAA"): ["::1"],
    ("_sipfederationtls._tcp.off.test", "SRV"): ["0 0 0 ."],
    # no SRV at all; the domain has an address for the XMPP fallback
    ("nosrv.test", "A"): ["127.0.0.3"],
    ("_sipfederationtls._tcp.servfail.test", "SRV"): ["0 0 5061 sip.servfail.test."],
    ("_sipfederationtls._tcp.timeout.test", "SRV"): ["0 0 5061 sip.timeout.test."],
    ("_sipfederationtls._tcp.trunc.test", "SRV"): ["0 0 5061 sip.trunc.test."],
    ("sip.trunc.test", "A"): ["127.0.0.4"],
    ("_sipfederationtls._tcp.noaddr.test", "SRV"): ["0 0 5061 sip.noaddr.test."],
    ("sip.noaddr.test", "TXT"): ['"exists, but has no address"'],
    ("_sipfederationtls._tcp.big.test", "SRV"): [
        f"{i % 5} {i % 7} {10000 + i} sip.big.test." for i in range(500)
    ],
    ("sip.big.test", "A"): ["127.0.0.5"],
    ("_sipfederationtls._tcp.loop.test", "CNAME"): ["a.loop.test."],
    ("a.loop.test", "CNAME"): ["_sipfederationtls._tcp.loop.test."],
    ("_sipfederationtls._tcp.hosted.test", "SRV"): ["100 1 5061 sipfed.online.lync.com."],
}
BEHAVIOURS = {
    "_sipfederationtls._tcp.servfail.test": "servfail",
    "_sipfederationtls._tcp.timeout.test": "timeout",
    "_sipfederationtls._tcp.trunc.test": "truncate",
}


@pytest.fixture
async def lab_port(nursery: trio.Nursery) -> int:
    port: int = await nursery.start(partial(serve_dns, ZONE, behaviours=BEHAVIOURS))
    return port


@pytest.fixture
def resolver(lab_port: int) -> dns.asyncresolver.Resolver:
    return make_resolver([("127.0.0.1", lab_port)], timeout=LIFETIME)


async def sip(domain: str, resolver: dns.asyncresolver.Resolver) -> ServiceDiscovery:
    return await discover_service(domain, "sip-federation", resolver, rng=random.Random(0))


def codes(result: ServiceDiscovery) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in result.findings]


# --- discovery on the lab DNS -----------------------------------------------------------------


async def test_srv_with_two_a_records_gives_two_endpoints(
    resolver: dns.asyncresolver.Resolver,
) -> None:
    result = await sip("contoso.test", resolver)
    assert result.findings == ()
    assert {(e.target, e.port, e.address) for e in result.endpoints} == {
        ("sip.contoso.test", 5061, "127.0.0.1"),
        ("sip.contoso.test", 5061, "127.0.0.2"),
    }
    assert [(r.port, r.target) for r in result.srv_records] == [(5061, "sip.contoso.test")]


async def test_aaaa_address_is_an_endpoint(resolver: dns.asyncresolver.Resolver) -> None:
    result = await discover_service("v6.test", "xmpp-server", resolver)
    assert result.findings == ()
    assert [(e.address, e.port, e.xmpp_domain) for e in result.endpoints] == [
        ("::1", 5269, "v6.test")
    ]


async def test_dot_target_disables_the_service(resolver: dns.asyncresolver.Resolver) -> None:
    result = await sip("off.test", resolver)
    assert codes(result) == [("srv-service-disabled", Severity.INFO)]
    assert result.endpoints == ()


async def test_missing_sip_srv_is_critical(resolver: dns.asyncresolver.Resolver) -> None:
    result = await sip("nosrv.test", resolver)
    assert codes(result) == [("srv-missing", Severity.CRITICAL)]


async def test_missing_sip_srv_on_absent_domain(resolver: dns.asyncresolver.Resolver) -> None:
    # discovery states both facts; the domain's result keeps "no such domain" (scanner.judge)
    result = await sip("absent.test", resolver)
    assert codes(result) == [("srv-missing", Severity.CRITICAL), ("domain-not-found", Severity.CRITICAL)]


async def test_missing_xmpp_srv_falls_back_to_5269(resolver: dns.asyncresolver.Resolver) -> None:
    result = await discover_service("nosrv.test", "xmpp-server", resolver)
    assert codes(result) == [("srv-fallback", Severity.INFO)]
    assert [(e.target, e.port, e.address) for e in result.endpoints] == [
        ("nosrv.test", 5269, "127.0.0.3")
    ]


async def test_servfail_is_dns_error(resolver: dns.asyncresolver.Resolver) -> None:
    result = await sip("servfail.test", resolver)
    assert codes(result) == [("dns-error", Severity.UNKNOWN)]
    assert "SERVFAIL" in result.findings[0].details["reason"]


async def test_timeout_is_dns_error_within_the_lifetime(
    resolver: dns.asyncresolver.Resolver,
) -> None:
    start = trio.current_time()
    with trio.fail_after(LIFETIME + 5):
        result = await sip("timeout.test", resolver)
    assert codes(result) == [("dns-error", Severity.UNKNOWN)]
    assert "Timeout" in result.findings[0].details["reason"]
    assert trio.current_time() - start < LIFETIME + 3  # the lifetime, plus slack for a loaded machine


async def test_truncated_udp_answer_is_retried_over_tcp(
    resolver: dns.asyncresolver.Resolver,
) -> None:
    result = await sip("trunc.test", resolver)
    assert result.findings == ()
    assert [e.address for e in result.endpoints] == ["127.0.0.4"]


async def test_target_without_address_is_unresolvable(
    resolver: dns.asyncresolver.Resolver,
) -> None:
    result = await sip("noaddr.test", resolver)
    assert codes(result) == [("target-unresolvable", Severity.CRITICAL)]
    assert result.endpoints == ()


async def test_500_srv_records_are_capped(resolver: dns.asyncresolver.Resolver) -> None:
    result = await sip("big.test", resolver)
    assert codes(result) == [("srv-records-capped", Severity.WARNING)]
    assert result.findings[0].details["published"] == 500
    assert len(result.srv_records) == 32
    assert len(result.endpoints) == 32
    assert [r.priority for r in result.srv_records] == sorted(r.priority for r in result.srv_records)
    assert {r.priority for r in result.srv_records} == {0}  # 100 records at priority 0 come first


async def test_cname_loop_ends_quickly_as_dns_error(resolver: dns.asyncresolver.Resolver) -> None:
    # the bound is a safety net, generous for a loaded machine; the code is the assertion
    with trio.fail_after(LIFETIME + 5):
        result = await sip("loop.test", resolver)
    assert codes(result) == [("dns-error", Severity.UNKNOWN)]


async def test_microsoft_365_hosted(resolver: dns.asyncresolver.Resolver) -> None:
    result = await sip("hosted.test", resolver)
    assert codes(result) == [("hosted-microsoft-365", Severity.INFO)]
    assert result.hosted and result.endpoints == ()


async def test_discover_keeps_input_order(resolver: dns.asyncresolver.Resolver) -> None:
    results = await discover(
        ["contoso.test", "servfail.test"], ["sip-federation", "xmpp-server"], resolver
    )
    assert [(r.domain, r.service) for r in results] == [
        ("contoso.test", "sip-federation"),
        ("contoso.test", "xmpp-server"),
        ("servfail.test", "sip-federation"),
        ("servfail.test", "xmpp-server"),
    ]
    assert codes(results[2]) == [("dns-error", Severity.UNKNOWN)]


async def test_lab_ignores_garbage_and_keeps_answering(
    resolver: dns.asyncresolver.Resolver, lab_port: int
) -> None:
    port = lab_port
    udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with udp:
        await udp.sendto(b"\x00\x01garbage", ("127.0.0.1", port))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"\x00\x05hello")
    assert [e.address for e in (await sip("trunc.test", resolver)).endpoints] == ["127.0.0.4"]


# --- user input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bücher.test", "xn--bcher-kva.test"),
        ("BÜCHER.Test", "xn--bcher-kva.test"),
        ("Contoso.COM", "contoso.com"),
        ("contoso.com.", "contoso.com"),
        ("  contoso.com ", "contoso.com"),
        ("xn--bcher-kva.test", "xn--bcher-kva.test"),
    ],
)
def test_normalize_domain(text: str, expected: str) -> None:
    assert normalize_domain(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", ".", "a..b", "x" * 64 + ".test", ".".join(["a" * 60] * 5), "foo_bar.test", "-a.test",
     "contoso.com:5061", "a b.test", "192.0.2.1", "contoso.com.."],
)
def test_normalize_domain_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid domain") as info:
        normalize_domain(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("2001:DB8::1", ("2001:db8::1", 53)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    "text", ["", "ns1.example.com", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1",
             "[::1]x", "[::1]:", "300.1.1.1"],
)
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid name server"):
        parse_nameserver(text)


@given(st.binary(max_size=600))
def test_lab_decoder_never_raises(wire: bytes) -> None:
    query = decode_query(wire)
    if query is not None:
        zone = Zone.build(ZONE, BEHAVIOURS)
        udp_wire(query, answer_query(zone, query), truncate=False)



async def test_address_cache_asks_each_question_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIP and XMPP SRV records of a domain point at one Edge: its A/AAAA are asked once."""
    import scanner.discovery as discovery
    from scanner.srv import Lookup, Outcome

    asked: list[tuple[str, str]] = []

    async def fake_lookup(resolver: object, host: str, rdtype: str) -> Lookup[str]:
        asked.append((host, rdtype))
        await trio.sleep(0.01)  # concurrent askers must wait for this answer, not ask again
        return Lookup(host, rdtype, Outcome.ANSWER, ("192.0.2.1",))

    monkeypatch.setattr(discovery, "lookup_address", fake_lookup)
    cache = discovery.AddressCache()
    limiter = trio.CapacityLimiter(8)
    resolver = discovery.make_resolver([("127.0.0.1", 53)])
    answers: list[Lookup[str]] = []

    async def ask() -> None:
        answers.append(await cache.lookup(resolver, "sip.contoso.test", "A", limiter))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
    await ask()
    assert asked == [("sip.contoso.test", "A")]
    assert len(answers) == 6 and {a.values for a in answers} == {("192.0.2.1",)}
