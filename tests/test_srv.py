"""Pure SRV rules: processing order, the suffix rule, and planning findings/endpoints."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.findings import Finding, Severity
from scanner.srv import (
    SERVICES,
    Endpoint,
    Lookup,
    Outcome,
    SrvPlan,
    SrvRecord,
    is_microsoft_365,
    order_srv,
    plan_endpoints,
    plan_srv,
    target_in_sip_domain,
)

SIP = SERVICES["sip-federation"]
XMPP = SERVICES["xmpp-server"]


def rec(priority: int, weight: int, target: str, port: int = 5061) -> SrvRecord:
    return SrvRecord(priority, weight, port, target)


def srv_answer(*records: SrvRecord, name: str = "_sipfederationtls._tcp.contoso.com") -> Lookup[SrvRecord]:
    return Lookup(name, "SRV", Outcome.ANSWER, records)


def addr(name: str, rdtype: str, *values: str, outcome: Outcome = Outcome.ANSWER) -> Lookup[str]:
    return Lookup(name, rdtype, outcome, values, "SERVFAIL" if outcome is Outcome.ERROR else "")


def codes(findings: Iterable[Finding]) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in findings]


# --- order_srv ----------------------------------------------------------------------------


def test_priority_strictly_first() -> None:
    records = [rec(20, 1000, "c"), rec(10, 0, "a"), rec(10, 1, "b"), rec(30, 5, "d")]
    for seed in range(50):
        ordered = order_srv(records, random.Random(seed))
        assert [r.priority for r in ordered] == [10, 10, 20, 30]


def test_order_is_deterministic_for_a_seed() -> None:
    records = [rec(0, w, f"t{w}") for w in (1, 2, 3, 4, 5)]
    assert order_srv(records, random.Random(7)) == order_srv(records, random.Random(7))


def test_weights_share_the_first_pick_proportionally() -> None:
    records = [rec(0, 90, "heavy"), rec(0, 10, "light")]
    rng = random.Random(1234)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(4000))
    assert 0.85 < firsts["heavy"] / 4000 < 0.95


def test_weight_zero_is_picked_first_only_on_a_zero_draw() -> None:
    """RFC 2782: weight-0 records go first and win only when the draw is 0 (1 in 101 here)."""
    records = [rec(0, 0, "zero"), rec(0, 100, "busy")]
    rng = random.Random(99)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(5000))
    assert 0 < firsts["zero"] < 150
    assert firsts["busy"] > 4800


def test_all_zero_weights_still_share_the_load() -> None:
    records = [rec(0, 0, "a"), rec(0, 0, "b")]
    rng = random.Random(5)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(1000))
    assert firsts["a"] > 300 and firsts["b"] > 300


def test_order_keeps_every_record() -> None:
    records = [rec(p, w, f"t{p}{w}") for p in (0, 1) for w in (0, 1, 5)]
    assert sorted(order_srv(records, random.Random(0)), key=repr) == sorted(records, key=repr)


# --- suffix rule and hosted targets ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "domain", "inside"),
    [
        ("sip.contoso.com", "contoso.com", True),
        ("SIP.Contoso.COM.", "contoso.com", True),
        ("edge.pool.contoso.com", "contoso.com.", True),
        ("contoso.com", "contoso.com", True),
        ("sip.contoso.com.evil.com", "contoso.com", False),
        ("evilcontoso.com", "contoso.com", False),
        ("sip.contoso.net", "contoso.com", False),
        (".", "contoso.com", False),
    ],
)
def test_target_in_sip_domain(target: str, domain: str, inside: bool) -> None:
    assert target_in_sip_domain(target, domain) is inside


def test_microsoft_365_targets() -> None:
    assert is_microsoft_365("sipfed.online.lync.com")
    assert is_microsoft_365("SIPFED.online.lync.com.")
    assert not is_microsoft_365("sipfed.online.lync.com.evil.com")


# --- planning: the SRV answer ---------------------------------------------------------------


def test_lone_dot_disables_the_service() -> None:
    plan = plan_srv("contoso.com", SIP, srv_answer(rec(0, 0, ".", 0)), random.Random(0))
    assert codes(plan.findings) == [("srv-service-disabled", Severity.INFO)]
    assert plan.hosts == ()


@pytest.mark.parametrize("outcome", [Outcome.NXDOMAIN, Outcome.NODATA])
def test_missing_sip_srv_is_critical(outcome: Outcome) -> None:
    answer: Lookup[SrvRecord] = Lookup("_sipfederationtls._tcp.contoso.com", "SRV", outcome)
    plan = plan_srv("contoso.com", SIP, answer, random.Random(0))
    assert codes(plan.findings) == [("srv-missing", Severity.CRITICAL)]
    assert plan.hosts == ()


@pytest.mark.parametrize("service", ["xmpps-server", "sip-access"])
def test_missing_optional_srv_is_info(service: str) -> None:
    answer: Lookup[SrvRecord] = Lookup("_x._tcp.contoso.com", "SRV", Outcome.NXDOMAIN)
    plan = plan_srv("contoso.com", SERVICES[service], answer, random.Random(0))
    assert codes(plan.findings) == [("srv-missing", Severity.INFO)]


def test_missing_xmpp_srv_falls_back_to_5269() -> None:
    answer: Lookup[SrvRecord] = Lookup("_xmpp-server._tcp.contoso.com", "SRV", Outcome.NODATA)
    plan = plan_srv("contoso.com", XMPP, answer, random.Random(0))
    assert codes(plan.findings) == [("srv-fallback", Severity.INFO)]
    assert plan.hosts == ("contoso.com",)
    _, endpoints = plan_endpoints(plan, {"contoso.com": (addr("contoso.com", "A", "192.0.2.1"),)})
    assert endpoints == (
        Endpoint("contoso.com", "xmpp-server", "contoso.com", 5269, "192.0.2.1", 0, 0, "contoso.com"),
    )


def test_unresolvable_fallback_is_not_critical() -> None:
    answer: Lookup[SrvRecord] = Lookup("_xmpp-server._tcp.contoso.com", "SRV", Outcome.NODATA)
    plan = plan_srv("contoso.com", XMPP, answer, random.Random(0))
    absent = (addr("contoso.com", "A", outcome=Outcome.NODATA),)
    findings, endpoints = plan_endpoints(plan, {"contoso.com": absent})
    assert findings == () and endpoints == ()


def test_srv_servfail_is_dns_error_not_missing() -> None:
    answer: Lookup[SrvRecord] = Lookup("_sipfederationtls._tcp.contoso.com", "SRV", Outcome.ERROR,
                                       reason="SERVFAIL")
    plan = plan_srv("contoso.com", SIP, answer, random.Random(0))
    assert codes(plan.findings) == [("dns-error", Severity.UNKNOWN)]
    assert plan.findings[0].details["reason"] == "SERVFAIL"


def test_target_outside_domain_is_critical_but_scanned() -> None:
    plan = plan_srv("contoso.com", SIP, srv_answer(rec(0, 0, "edge.fabrikam.com")), random.Random(0))
    assert codes(plan.findings) == [("srv-target-outside-domain", Severity.CRITICAL)]
    assert plan.hosts == ("edge.fabrikam.com",)


def test_suffix_rule_only_for_sip_federation() -> None:
    answer = srv_answer(rec(0, 0, "xmpp.fabrikam.com", 5269), name="_xmpp-server._tcp.contoso.com")
    assert plan_srv("contoso.com", XMPP, answer, random.Random(0)).findings == ()


def test_microsoft_365_is_hosted_and_not_scanned() -> None:
    plan = plan_srv("contoso.com", SIP, srv_answer(rec(100, 1, "sipfed.online.lync.com")),
                    random.Random(0))
    assert codes(plan.findings) == [("hosted-microsoft-365", Severity.INFO)]
    assert plan.hosted and plan.hosts == ()


def test_records_are_capped_after_ordering() -> None:
    records = [rec(p, 1, "sip.contoso.com", 5000 + p) for p in range(40)]
    plan = plan_srv("contoso.com", SIP, srv_answer(*records), random.Random(0), cap=32)
    assert codes(plan.findings) == [("srv-records-capped", Severity.WARNING)]
    assert [r.priority for r in plan.srv_records] == list(range(32))


# --- planning: the addresses ------------------------------------------------------------------


def sip_plan(*records: SrvRecord) -> SrvPlan:
    return plan_srv("contoso.com", SIP, srv_answer(*records), random.Random(0))


def test_every_address_of_a_pool_is_an_endpoint_once() -> None:
    plan = sip_plan(rec(0, 0, "sip.contoso.com"), rec(1, 0, "sip.contoso.com"))
    lookups = (addr("sip.contoso.com", "A", "192.0.2.1", "192.0.2.2"),
               addr("sip.contoso.com", "AAAA", "2001:db8::1"))
    findings, endpoints = plan_endpoints(plan, {"sip.contoso.com": lookups})
    assert findings == ()
    assert [e.address for e in endpoints] == ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
    assert all(e.xmpp_domain is None for e in endpoints)


def test_target_without_address_is_unresolvable() -> None:
    plan = sip_plan(rec(0, 0, "sip.contoso.com"))
    lookups = (addr("sip.contoso.com", "A", outcome=Outcome.NXDOMAIN),
               addr("sip.contoso.com", "AAAA", outcome=Outcome.NXDOMAIN))
    findings, endpoints = plan_endpoints(plan, {"sip.contoso.com": lookups})
    assert codes(findings) == [("target-unresolvable", Severity.CRITICAL)]
    assert endpoints == ()


def test_failed_address_lookup_is_dns_error_not_unresolvable() -> None:
    plan = sip_plan(rec(0, 0, "sip.contoso.com"))
    lookups = (addr("sip.contoso.com", "A", outcome=Outcome.NODATA),
               addr("sip.contoso.com", "AAAA", outcome=Outcome.ERROR))
    findings, _ = plan_endpoints(plan, {"sip.contoso.com": lookups})
    assert codes(findings) == [("dns-error", Severity.UNKNOWN)]


def test_xmpp_endpoints_carry_the_xmpp_domain() -> None:
    answer = srv_answer(rec(0, 0, "xmpp.contoso.com", 5269), name="_xmpp-server._tcp.contoso.com")
    plan = plan_srv("contoso.com", XMPP, answer, random.Random(0))
    _, endpoints = plan_endpoints(plan, {"xmpp.contoso.com": (addr("x", "A", "192.0.2.9"),)})
    assert [e.xmpp_domain for e in endpoints] == ["contoso.com"]


@given(
    st.lists(
        st.builds(SrvRecord, st.integers(0, 3), st.integers(0, 5), st.integers(1, 65535),
                  st.sampled_from(["a.test", "b.test", "c.test"])),
        max_size=12,
    ),
    st.integers(0, 2**32),
)
def test_order_is_a_priority_sorted_permutation(records: list[SrvRecord], seed: int) -> None:
    ordered = order_srv(records, random.Random(seed))
    assert Counter(ordered) == Counter(records)
    assert [r.priority for r in ordered] == sorted(r.priority for r in records)


def test_the_service_registry_is_the_one_table_of_services() -> None:
    """Ports to publish, transport and XMPP-ness come from srv.SERVICES for every reader."""
    from scanner.srv import SERVICES, parse_services

    assert {n: (s.port, s.direct_tls, s.xmpp) for n, s in SERVICES.items()} == {
        "sip-federation": (5061, True, False),
        "xmpp-server": (5269, False, True),
        "xmpps-server": (5270, True, True),
        "sip-access": (443, True, False),
    }
    assert parse_services(["xmpp-server", "sip-federation", "xmpp-server"], "--service") == (
        "xmpp-server", "sip-federation")
    with pytest.raises(ValueError, match=r"^unknown --service 'smtp' \(choose from sip-federation, "):
        parse_services(["smtp"], "--service")
