"""Judging rules (scanner.judge) that need no network: identities, pools, safety nets."""

from __future__ import annotations

import pytest

from scanner.deployment import Deployment
from scanner.findings import Finding
from scanner.handshake import HandshakeResult
from scanner.judge import Judge, identities_for, pool_findings
from scanner.names import IdentityKind
from scanner.results import EndpointResult, TlsInfo
from scanner.srv import Endpoint
from scanner.trust import load_ca_file
from scanner.verify import Policy, Verifier
from tests.conftest import CERTS, NOW, cert_summary


def endpoint(service: str, address: str = "192.0.2.1", target: str = "sip.contoso.test") -> Endpoint:
    xmpp = "contoso.test" if service.startswith("xmpp") else None
    return Endpoint("contoso.test", service, target, 5061, address, 0, 0, xmpp)


def test_sip_endpoint_is_judged_on_its_srv_target_and_xmpp_on_its_domain() -> None:
    (sip,) = identities_for(endpoint("sip-federation"), Deployment())
    assert (sip.name, sip.kind) == ("sip.contoso.test", IdentityKind.SRV_TARGET)
    (xmpp,) = identities_for(endpoint("xmpp-server"), Deployment())
    assert (xmpp.name, xmpp.kind) == ("contoso.test", IdentityKind.XMPP_DOMAIN)


def test_a_declared_deployment_adds_every_namespace_once() -> None:
    dep = Deployment.from_input(["contoso.test", "fabrikam.test"], ["contoso.test"])
    names = [i.name for i in identities_for(endpoint("sip-federation"), dep)]
    assert names == ["sip.contoso.test", "sip.fabrikam.test", "contoso.test"]


def result(address: str, sha: str) -> EndpointResult:
    tls = TlsInfo("TLSv1.3", "x", None, True, False)
    return EndpointResult(endpoint("sip-federation", address), (), tls, cert_summary(sha256=sha), (), (), {})


def test_pool_mismatch_only_when_nodes_of_one_target_differ() -> None:
    assert pool_findings([result("192.0.2.1", "aa"), result("192.0.2.2", "aa")]) == []
    (f,) = pool_findings([result("192.0.2.1", "aa"), result("192.0.2.2", "bb")])
    assert isinstance(f, Finding)
    assert (f.code, f.details["certificates"]) == (
        "pool-certificate-mismatch",
        {"192.0.2.1": "aa", "192.0.2.2": "bb"},
    )


def test_a_verifier_bug_costs_one_endpoint_not_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net in Judge: an exception out of the Verifier is a scan-error for that endpoint."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Verifier, "verify", broken)
    verifier = Verifier(load_ca_file(CERTS / "ca-bundle.pem"), NOW, Policy())
    judge = Judge(deployment=Deployment(), verifier=verifier)
    shake = HandshakeResult(chain=(b"x",), tls=None, failure=None, timings={"total": 0.1})
    result = judge.endpoint(endpoint("sip-federation"), shake)
    assert [(f.code, f.severity.value) for f in result.findings] == [("scan-error", "unknown")]
    assert "boom" in result.findings[0].message
    assert result.status.name == "UNKNOWN"
