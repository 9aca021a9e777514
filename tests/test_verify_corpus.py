"""Every corpus certificate produces exactly the findings test-certs/README.md documents."""

from __future__ import annotations

import dataclasses

import pytest

from scanner.certinfo import CLIENT_AUTH
from scanner.findings import Severity, Status
from scanner.names import Identity, IdentityKind
from scanner.verify import Policy, TrustStore, verify_chain
from tests.conftest import CONTOSO_IDENTITIES, NOW, pem_chain_der

EXPECTED: dict[str, list[tuple[str, Severity]]] = {
    "edge.pem": [],
    "missing-sip-contoso.pem": [("san-missing", Severity.CRITICAL), ("cn-not-in-san", Severity.WARNING)],
    "missing-webcon.pem": [("san-missing", Severity.CRITICAL)],
    "missing-xmpp-contoso.pem": [("san-missing", Severity.CRITICAL)],
    "missing-sip-fabrikam.pem": [("san-missing", Severity.CRITICAL)],
    "missing-xmpp-fabrikam.pem": [("san-missing", Severity.CRITICAL)],
    "cn-not-in-san.pem": [("cn-not-in-san", Severity.WARNING)],
    "serverauth-only.pem": [("eku-client-auth-missing", Severity.CRITICAL)],
    "clientauth-only.pem": [("eku-server-auth-missing", Severity.CRITICAL)],
    "no-eku.pem": [("eku-absent", Severity.INFO)],
    "expired.pem": [("expired", Severity.CRITICAL)],
    "not-yet-valid.pem": [("not-yet-valid", Severity.CRITICAL)],
    "expires-soon-warning.pem": [("expires-soon", Severity.WARNING)],
    "expires-soon-critical.pem": [("expires-soon", Severity.CRITICAL)],
    "self-signed.pem": [("self-signed", Severity.CRITICAL)],
    "untrusted.pem": [("chain-untrusted", Severity.CRITICAL)],
    "rsa1024.pem": [("weak-key", Severity.CRITICAL)],
    "sha1.pem": [("weak-signature", Severity.CRITICAL)],
    "pss.pem": [("pss-signature", Severity.CRITICAL)],
    "wildcard-san.pem": [("wildcard-san", Severity.WARNING)],
    "wildcard-cn.pem": [("wildcard-cn", Severity.WARNING), ("wildcard-san", Severity.WARNING)],
    "no-crl.pem": [("no-crl-distribution-point", Severity.WARNING)],
    "ecdsa-p256.pem": [("ecdsa-key", Severity.INFO)],
    "leaf-only.pem": [("chain-incomplete", Severity.CRITICAL)],
    "misordered.pem": [("chain-order", Severity.WARNING)],
    # public chains as really served (issue 11): see tests/test_verify_paths.py
    "serverauth-ca.pem": [("chain-client-auth-not-permitted", Severity.CRITICAL)],
    "expired-cross-sign.pem": [("chain-unused-expired", Severity.WARNING)],
    "sha1-intermediate.pem": [("weak-signature", Severity.CRITICAL)],
    "ca-leaf.pem": [("leaf-is-ca", Severity.CRITICAL)],
    "zero-serial.pem": [("serial-not-positive", Severity.INFO)],
    "fractional-notafter.pem": [
        ("expired", Severity.CRITICAL),
        ("validity-fractional-seconds", Severity.WARNING),
    ],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_corpus_file_produces_exactly_its_findings(
    name: str, expected: list[tuple[str, Severity]], test_trust: TrustStore
) -> None:
    verdict = verify_chain(pem_chain_der(name), CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert sorted((f.code, f.severity) for f in verdict.findings) == sorted(expected)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("missing-sip-contoso.pem", "sip.contoso.test"),
        ("missing-webcon.pem", "webcon.contoso.test"),
        ("missing-xmpp-contoso.pem", "contoso.test"),
        ("missing-sip-fabrikam.pem", "sip.fabrikam.test"),
        ("missing-xmpp-fabrikam.pem", "fabrikam.test"),
    ],
)
def test_san_missing_names_the_namespace_and_its_kind(
    name: str, missing: str, test_trust: TrustStore
) -> None:
    verdict = verify_chain(pem_chain_der(name), CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    san = [f for f in verdict.findings if f.code == "san-missing"]
    assert [f.details["name"] for f in san] == [missing]
    kind = next(i.kind for i in CONTOSO_IDENTITIES if i.name == missing)
    assert san[0].details["kind"] == str(kind)
    assert missing in san[0].message


def test_every_problem_of_one_certificate_gets_its_own_finding(test_trust: TrustStore) -> None:
    # serverauth-only checked at a time when it is also about to expire, against a deployment
    # that also needs a name it lacks, with a trust store that does not know its root.
    from scanner.trust import load_ca_file
    from tests.conftest import CERTS

    wrong_trust = load_ca_file(CERTS / "untrusted-root.pem")
    soon = NOW.replace(year=2039, month=12, day=25)
    identities = (*CONTOSO_IDENTITIES, Identity("meet.contoso.test", IdentityKind.EXTRA))
    verdict = verify_chain(pem_chain_der("serverauth-only.pem"), identities, Policy(), wrong_trust, soon)
    assert sorted(f.code for f in verdict.findings) == [
        "chain-untrusted",
        "eku-client-auth-missing",
        "expires-soon",
        "san-missing",
    ]
    assert verdict.status is Status.CRITICAL


def test_client_auth_optional_makes_missing_client_auth_a_warning(test_trust: TrustStore) -> None:
    policy = Policy(client_auth_required=False)
    verdict = verify_chain(pem_chain_der("serverauth-only.pem"), CONTOSO_IDENTITIES, policy, test_trust, NOW)
    assert [(f.code, f.severity) for f in verdict.findings] == [("eku-client-auth-missing", Severity.WARNING)]
    assert verdict.status is Status.WARNING


def test_renewal_risk_only_on_publicly_trusted_chains_with_client_auth(test_trust: TrustStore) -> None:
    public = dataclasses.replace(test_trust, public=True)
    verdict = verify_chain(pem_chain_der("edge.pem"), CONTOSO_IDENTITIES, Policy(), public, NOW)
    assert [(f.code, f.severity) for f in verdict.findings] == [("client-auth-renewal-risk", Severity.INFO)]
    assert verdict.status is Status.OK
    assert verdict.leaf is not None and CLIENT_AUTH in (verdict.leaf.eku or ())
    # serverAuth-only: nothing left to lose at renewal; a private CA: policy does not apply
    sa = verify_chain(pem_chain_der("serverauth-only.pem"), CONTOSO_IDENTITIES, Policy(), public, NOW)
    assert "client-auth-renewal-risk" not in {f.code for f in sa.findings}


def test_expiry_thresholds_are_settable(test_trust: TrustStore) -> None:
    chain = pem_chain_der("expires-soon-warning.pem")  # 20 days left at NOW
    assert (
        verify_chain(chain, CONTOSO_IDENTITIES, Policy(warn_days=10, crit_days=5), test_trust, NOW).findings
        == ()
    )
    crit = verify_chain(chain, CONTOSO_IDENTITIES, Policy(warn_days=60, crit_days=25), test_trust, NOW)
    assert [(f.code, f.severity, f.details["days_left"]) for f in crit.findings] == [
        ("expires-soon", Severity.CRITICAL, 20)
    ]


def test_idn_domain_is_matched_in_a_label_form(test_trust: TrustStore) -> None:
    from scanner.names import to_a_label

    domain = to_a_label("bücher.test")
    identities = (
        Identity(f"sip.{domain}", IdentityKind.SIP_NAMESPACE),
        Identity(domain, IdentityKind.XMPP_DOMAIN),
    )
    assert verify_chain(pem_chain_der("idn.pem"), identities, Policy(), test_trust, NOW).findings == ()
    other = verify_chain(pem_chain_der("idn.pem"), CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert sorted(f.details["name"] for f in other.findings if f.code == "san-missing") == sorted(
        i.name for i in CONTOSO_IDENTITIES
    )


def test_xmpp_identity_by_srv_id_and_xmpp_addr(test_trust: TrustStore) -> None:
    identities = (
        Identity("contoso.test", IdentityKind.XMPP_DOMAIN),
        Identity("fabrikam.test", IdentityKind.XMPP_DOMAIN),
        Identity("sip.contoso.test", IdentityKind.EXTRA),
    )
    verdict = verify_chain(pem_chain_der("xmpp-othernames.pem"), identities, Policy(), test_trust, NOW)
    assert verdict.findings == ()
    assert [(c.identity.name, c.how) for c in verdict.coverage] == [
        ("contoso.test", "srv-id"),
        ("fabrikam.test", "xmpp-addr"),
        ("sip.contoso.test", "dns-id"),
    ]
    # otherNames never satisfy a SIP identity: SIP peers check DNS names only
    sip = verify_chain(
        pem_chain_der("xmpp-othernames.pem"),
        (Identity("fabrikam.test", IdentityKind.SRV_TARGET),),
        Policy(),
        test_trust,
        NOW,
    )
    assert [f.code for f in sip.findings] == ["san-missing"]


def test_wildcard_covers_one_label_but_not_the_bare_xmpp_domain(test_trust: TrustStore) -> None:
    verdict = verify_chain(
        pem_chain_der("wildcard-cn.pem"),
        (
            Identity("webcon.contoso.test", IdentityKind.EXTRA),
            Identity("sip.contoso.test", IdentityKind.SRV_TARGET),
        ),
        Policy(),
        test_trust,
        NOW,
    )
    assert {c.how for c in verdict.coverage} == {"wildcard"}
    bare = verify_chain(
        pem_chain_der("wildcard-san.pem"),
        (Identity("a.b.contoso.test", IdentityKind.EXTRA),),
        Policy(),
        test_trust,
        NOW,
    )
    assert "san-missing" in {f.code for f in bare.findings}


def test_cn_never_stands_in_for_a_san(test_trust: TrustStore) -> None:
    # cn-not-in-san.pem has CN edge.contoso.test, which is in no SAN
    verdict = verify_chain(
        pem_chain_der("cn-not-in-san.pem"),
        (Identity("edge.contoso.test", IdentityKind.SRV_TARGET),),
        Policy(),
        test_trust,
        NOW,
    )
    assert sorted(f.code for f in verdict.findings) == ["cn-not-in-san", "san-missing"]


def test_garbage_der_is_a_finding_not_a_traceback(test_trust: TrustStore) -> None:
    verdict = verify_chain([b"\x30\x03\x02\x01\x00"], CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert [f.code for f in verdict.findings] == ["certificate-unparseable"]
    assert verdict.status is Status.CRITICAL
    empty = verify_chain([], CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert [f.code for f in empty.findings] == ["no-certificate"]


def test_garbage_intermediate_still_checks_the_leaf(test_trust: TrustStore) -> None:
    leaf = pem_chain_der("serverauth-only.pem")[0]
    verdict = verify_chain([leaf, b"junk"], CONTOSO_IDENTITIES, Policy(), test_trust, NOW)
    assert sorted(f.code for f in verdict.findings) == [
        "certificate-unparseable",
        "chain-incomplete",
        "eku-client-auth-missing",
    ]
