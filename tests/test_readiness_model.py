"""The readiness model, pure: typed states and statuses decide the verdict, not words."""

from __future__ import annotations

from scanner.deployment import Deployment
from scanner.findings import Status
from scanner.offline import check_file
from scanner.readiness import blocks_go_live, from_file
from scanner.readiness_checks import Item, Requirement, State
from scanner.trust import load_ca_file
from scanner.verify import Policy, Verifier
from tests.conftest import CERTS, NOW

OWN = Deployment.from_input(["contoso.test", "fabrikam.test"], ["contoso.test", "fabrikam.test"],
                            extra_sans=["webcon.contoso.test"])


def test_critical_and_unknown_block_a_go_live_a_warning_does_not() -> None:
    assert [s for s in Status if blocks_go_live(s)] == [Status.CRITICAL, Status.UNKNOWN]


def test_an_entrys_status_comes_from_its_state_and_the_findings_behind_it() -> None:
    def req(state: State, status: Status = Status.CRITICAL) -> Requirement:
        return Requirement(Item.CRL, "required", "Lync/SfB check revocation", state, status=status)

    assert req(State.MISSING, Status.WARNING).verdict_status is Status.WARNING
    assert req(State.MISSING).verdict_status is Status.CRITICAL
    assert req(State.UNKNOWN).verdict_status is Status.UNKNOWN
    assert [req(s).verdict_status for s in (State.PRESENT, State.NA, State.NOT_CHECKED)] == [Status.OK] * 3
    assert req(State.MISSING, Status.WARNING).state_words == "missing (warning)"
    assert req(State.MISSING).state_words == "missing"
    assert req(State.NOT_CHECKED).state_words == "not checked"


def test_names_and_usages_are_entries_the_certificate_lacks_the_rest_it_needs() -> None:
    assert {i for i in Item if i.is_name_or_usage} == {Item.SUBJECT_CN, Item.SAN, Item.EKU}


def test_a_csr_is_judged_on_what_it_asks_for_and_dates_chain_crl_are_not_applicable() -> None:
    verifier = Verifier(load_ca_file(CERTS / "ca-bundle.pem"), NOW, Policy())
    (check,) = check_file(CERTS / "csr-missing-xmpp.csr", OWN.identities(), verifier, lambda: None)
    r = from_file(check, OWN, "2030-01-01T00:00:00Z")
    states = {(q.item, q.required): q.state for q in r.requirements}
    assert states[(Item.SUBJECT_CN, "sip.contoso.test")] is State.PRESENT
    assert states[(Item.SAN, "contoso.test")] is State.MISSING
    assert states[(Item.EKU, "clientAuth")] is State.MISSING
    assert states[(Item.CRL, "required")] is State.NA
    assert states[(Item.VALIDITY, "valid now, beyond the warning threshold")] is State.NA
    assert (r.status, r.ready) == (Status.CRITICAL, False)
    assert r.dns is None and r.endpoints is None
