"""RFC 6125 name matching, against examples and against a reference model on random names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.names import (
    Identity,
    IdentityKind,
    InvalidName,
    PresentedNames,
    covering_name,
    dns_id_matches,
    srv_id_matches,
    to_a_label,
    xmpp_addr_matches,
)


@pytest.mark.parametrize(
    ("presented", "reference", "expected"),
    [
        ("sip.contoso.test", "sip.contoso.test", True),
        ("SIP.Contoso.TEST", "sip.contoso.test", True),
        ("sip.contoso.test.", "sip.contoso.test", True),
        ("*.contoso.test", "sip.contoso.test", True),
        ("*.contoso.test", "contoso.test", False),  # never the bare parent
        ("*.contoso.test", "a.sip.contoso.test", False),  # exactly one label
        ("s*.contoso.test", "sip.contoso.test", False),  # partial-label wildcard
        ("sip.*.test", "sip.contoso.test", False),  # not left-most
        ("*.test", "contoso.test", False),  # would span a TLD
        ("*.contoso.test", "xn--bcher-kva.contoso.test", True),  # a whole A-label is a label
        ("xn--*.contoso.test", "xn--bcher-kva.contoso.test", False),  # never inside an A-label
        ("sip.contoso.test", "sip.contoso.test.evil.test", False),
    ],
)
def test_dns_id_rules(presented: str, reference: str, expected: bool) -> None:
    assert dns_id_matches(presented, reference) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bücher.test", "xn--bcher-kva.test"),
        ("Contoso.TEST.", "contoso.test"),
        ("  sip.contoso.test ", "sip.contoso.test"),
        ("XN--BCHER-KVA.test", "xn--bcher-kva.test"),
    ],
)
def test_to_a_label(text: str, expected: str) -> None:
    assert to_a_label(text) == expected


@pytest.mark.parametrize(
    "bad", ["", ".", "a..b", "-a.test", "a-.test", "a/b.test", "x" * 64 + ".test", "xn--zz.test"]
)
def test_invalid_names_raise_one_clear_error(bad: str) -> None:
    with pytest.raises(InvalidName):
        to_a_label(bad)


def test_srv_id_and_xmpp_addr() -> None:
    assert srv_id_matches("_xmpp-server.contoso.test", "contoso.test")
    assert not srv_id_matches("_xmpp-client.contoso.test", "contoso.test")
    assert not srv_id_matches("_xmpp-server.*.test", "contoso.test")
    assert xmpp_addr_matches("Bücher.test", "xn--bcher-kva.test")
    assert not xmpp_addr_matches("user@contoso.test", "contoso.test")


def test_xmpp_othernames_count_only_for_xmpp_identities() -> None:
    names = PresentedNames(srv=("_xmpp-server.contoso.test",), xmpp_addrs=("contoso.test",))
    assert covering_name(names, Identity("contoso.test", IdentityKind.XMPP_DOMAIN)) == (
        "_xmpp-server.contoso.test",
        "srv-id",
    )
    assert covering_name(names, Identity("contoso.test", IdentityKind.SRV_TARGET)) is None


# --- reference model ------------------------------------------------------------------------

label = st.text(alphabet="abcxyz0-", min_size=1, max_size=4).filter(
    lambda s: not s.startswith("-") and not s.endswith("-")
)
hostname = st.lists(label, min_size=2, max_size=4).map(".".join)
presented = st.one_of(
    hostname,
    hostname.map(lambda h: "*." + h),
    st.tuples(label, hostname).map(lambda t: f"{t[0]}*.{t[1]}"),
    hostname.map(str.upper),
)


def reference_model(pres: str, ref: str) -> bool:
    """RFC 6125 6.4.3 written the obvious way, independently of the implementation."""
    p, r = pres.lower().split("."), ref.lower().split(".")
    if p[0] != "*":
        return "*" not in pres and p == r
    return len(p) >= 3 and len(p) == len(r) and p[1:] == r[1:] and "*" not in "".join(p[1:])


@given(presented, hostname)
def test_matching_agrees_with_reference_model(pres: str, ref: str) -> None:
    assert dns_id_matches(pres, ref) is reference_model(pres, ref)


@given(hostname)
def test_every_name_matches_itself_and_its_wildcard_parent_matches_it(name: str) -> None:
    assert dns_id_matches(name, name)
    parent = name.split(".", 1)[1]
    assert dns_id_matches("*." + parent, name) is (parent.count(".") >= 1)
    assert not dns_id_matches("*." + name, name)


def test_times_are_written_and_read_one_way() -> None:
    """scanner.isotime: UTC to the second with Z; what it writes it reads back identically."""
    import datetime as dt

    from scanner.isotime import iso, parse_iso

    paris = dt.timezone(dt.timedelta(hours=1))
    t = dt.datetime(2030, 1, 1, 1, 0, 0, 999_999, tzinfo=paris)
    assert iso(t) == "2030-01-01T00:00:00Z"
    assert iso(dt.datetime(2030, 1, 1)) == "2030-01-01T00:00:00Z"  # naive = UTC
    assert parse_iso("2030-01-01T00:00:00Z") == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert parse_iso("2030-01-01T01:00:00+01:00") == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert parse_iso("2030-01-01").tzinfo is not None
    assert parse_iso(iso(t)) == t.replace(microsecond=0)
    with pytest.raises(ValueError):
        parse_iso("yesterday")
