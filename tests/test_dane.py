"""The pure DANE judge: TLSA records against served chains (RFC 6698, 7671, 7218)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from scanner.dane import DaneState, assess
from scanner.dane_renewal import renewal_check
from scanner.tlsa import Security, TlsaAnswer, TlsaRecord, tlsa_for, tlsa_owner
from tests.conftest import CERTS, pem_chain_der

EDGE = pem_chain_der("edge.pem")  # leaf, intermediate
OTHER = pem_chain_der("ecdsa-p256.pem")  # another key under the same intermediate
NAME = "_5061._tcp.sip.contoso.test"


def _spki_sha256(der: bytes) -> bytes:
    cert = x509.load_der_x509_certificate(der)
    return hashlib.sha256(
        cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def rec(usage: int, selector: int, mtype: int, der: bytes) -> TlsaRecord:
    cert = x509.load_der_x509_certificate(der)
    return tlsa_for(cert, usage=usage, selector=selector, mtype=mtype)


def secure(*records: TlsaRecord, srv: Security | None = Security.SECURE) -> TlsaAnswer:
    return TlsaAnswer(NAME, Security.SECURE, records, "_sipfederationtls._tcp.contoso.test", srv)


def codes(report_findings: object) -> list[str]:
    return [f.code for f in report_findings]  # type: ignore[attr-defined]


def test_acronyms_follow_rfc_7218() -> None:
    assert TlsaRecord(3, 1, 1, b"x" * 32).acronym == "DANE-EE(3) SPKI(1) SHA2-256(1)"
    assert TlsaRecord(2, 0, 2, b"x" * 64).acronym == "DANE-TA(2) Cert(0) SHA2-512(2)"
    assert TlsaRecord(0, 0, 0, b"x").acronym == "PKIX-TA(0) Cert(0) Full(0)"
    assert TlsaRecord(9, 1, 1, b"x" * 32).acronym == "unknown(9) SPKI(1) SHA2-256(1)"


def test_parse_and_text_round_trip() -> None:
    record = TlsaRecord.parse("3 1 1 " + "ab" * 16 + " " + "cd" * 16)
    assert record == TlsaRecord(3, 1, 1, bytes.fromhex("ab" * 16 + "cd" * 16))
    assert TlsaRecord.parse(record.text) == record
    with pytest.raises(ValueError, match="not hex"):
        TlsaRecord.parse("3 1 1 zz")
    with pytest.raises(ValueError, match="expected"):
        TlsaRecord.parse("3 1")


def test_3_1_1_is_sha256_of_the_leaf_spki() -> None:
    assert rec(3, 1, 1, EDGE[0]).data == _spki_sha256(EDGE[0])


@pytest.mark.parametrize("selector", [0, 1])
@pytest.mark.parametrize("mtype", [0, 1, 2])
def test_dane_ee_matches_leaf_in_every_selector_and_matching_type(selector: int, mtype: int) -> None:
    report = assess(secure(rec(3, selector, mtype, EDGE[0])), EDGE, pkix_valid=False)
    assert report.state is DaneState.MATCH
    assert codes(report.findings) == ["dane-ok"]
    assert "matches the leaf certificate" in report.findings[0].message


def test_dane_ee_ignores_pkix_failure_but_pkix_ee_needs_it() -> None:
    assert assess(secure(rec(3, 1, 1, EDGE[0])), EDGE, pkix_valid=False).state is DaneState.MATCH
    report = assess(secure(rec(1, 1, 1, EDGE[0])), EDGE, pkix_valid=False)
    assert report.state is DaneState.MISMATCH
    assert "Web PKI" in (report.records[0].note or "")
    assert assess(secure(rec(1, 1, 1, EDGE[0])), EDGE, pkix_valid=True).state is DaneState.MATCH


def test_dane_ta_matches_the_served_intermediate() -> None:
    report = assess(secure(rec(2, 0, 1, EDGE[1])), EDGE, pkix_valid=False)
    assert report.state is DaneState.MATCH
    assert report.records[0].matched == "issuer certificate 1 of the served chain"
    # the intermediate is not served: a DANE-TA peer cannot build the path
    assert assess(secure(rec(2, 0, 1, EDGE[1])), EDGE[:1], pkix_valid=False).state is DaneState.MISMATCH


def test_dane_ta_naming_the_leaf_does_not_match() -> None:
    assert assess(secure(rec(2, 1, 1, EDGE[0])), EDGE, pkix_valid=False).state is DaneState.MISMATCH


def test_dane_ta_needs_a_signature_link_to_the_leaf() -> None:
    # a served "issuer" that did not sign the leaf is no trust anchor for it
    stray = pem_chain_der("root.pem")[0]
    chain = [EDGE[0], stray]
    assert assess(secure(rec(2, 0, 1, stray)), chain, pkix_valid=False).state is DaneState.MISMATCH


def test_pkix_ta_may_name_the_root_of_the_validated_path() -> None:
    root = pem_chain_der("root.pem")[0]
    record = rec(0, 0, 1, root)
    path = [*EDGE, root]
    assert assess(secure(record), EDGE, pkix_valid=True, path=path).state is DaneState.MATCH
    assert assess(secure(record), EDGE, pkix_valid=False, path=path).state is DaneState.MISMATCH


def test_key_change_is_a_critical_mismatch_naming_the_served_key() -> None:
    stale = rec(3, 1, 1, OTHER[0])
    report = assess(secure(stale), EDGE, pkix_valid=True, where="sip.contoso.test:5061")
    assert report.state is DaneState.MISMATCH
    [f] = report.findings
    assert f.code == "dane-mismatch" and f.severity == "critical"
    assert f.details["served"] == rec(3, 1, 1, EDGE[0]).text
    assert f.details["published"] == [stale.text]
    assert "DANE-EE(3) SPKI(1) SHA2-256(1)" in f.message
    assert f.message.startswith("sip.contoso.test:5061: ")


def test_one_matching_record_among_stale_ones_is_ok() -> None:
    report = assess(secure(rec(3, 1, 1, OTHER[0]), rec(3, 1, 1, EDGE[0])), EDGE, pkix_valid=True)
    assert report.state is DaneState.MATCH
    assert [r.matched for r in report.records] == [None, "leaf certificate"]


def test_unusable_records_are_partial_and_skipped() -> None:
    good = rec(3, 1, 1, EDGE[0])
    bad_usage = TlsaRecord(4, 1, 1, good.data)
    short = TlsaRecord(3, 1, 1, good.data[:20])
    bad_mtype = TlsaRecord(3, 1, 7, good.data)
    report = assess(secure(good, bad_usage, short, bad_mtype), EDGE, pkix_valid=True)
    assert report.state is DaneState.MATCH
    assert codes(report.findings) == ["dane-partial", "dane-ok"]
    partial = report.findings[0]
    assert partial.severity == "warning"
    assert [u["problem"] for u in partial.details["unusable"]] == [
        "unknown certificate usage 4", "SHA2-256 data is 20 bytes, not 32", "unknown matching type 7",
    ]


def test_only_unusable_records_mean_peers_fall_back_to_pkix() -> None:
    report = assess(secure(TlsaRecord(5, 1, 1, b"\0" * 32)), EDGE, pkix_valid=True)
    assert report.state is DaneState.UNUSABLE
    assert codes(report.findings) == ["dane-partial"]


def test_digest_agility_uses_the_strongest_digest_only() -> None:
    # SHA2-256 matches, SHA2-512 for the same usage/selector names another key: peers that
    # implement RFC 7671 section 9 use only the SHA2-512 record, and refuse
    records = (rec(3, 1, 1, EDGE[0]), rec(3, 1, 2, OTHER[0]))
    report = assess(secure(*records), EDGE, pkix_valid=True)
    assert report.state is DaneState.MISMATCH
    assert (report.records[0].note or "").startswith("ignored: a stronger digest")


def test_insecure_tlsa_is_ignored_by_peers() -> None:
    answer = TlsaAnswer(NAME, Security.INSECURE, (rec(3, 1, 1, OTHER[0]),))
    report = assess(answer, EDGE, pkix_valid=True)
    assert report.state is DaneState.INSECURE
    [f] = report.findings
    assert f.code == "dane-insecure" and "peers ignore it" in f.message
    assert "not DNSSEC-secure" in f.message


def test_secure_tlsa_behind_an_insecure_srv_is_ignored_too() -> None:
    report = assess(secure(rec(3, 1, 1, EDGE[0]), srv=Security.INSECURE), EDGE, pkix_valid=True)
    assert report.state is DaneState.INSECURE
    assert "RFC 7673" in report.findings[0].message


def test_bogus_answer_is_dns_error_never_ok() -> None:
    answer = TlsaAnswer(NAME, Security.BOGUS, reason="SERVFAIL from the validating resolver")
    report = assess(answer, EDGE, pkix_valid=True)
    assert report.state is DaneState.ERROR
    assert [(f.code, f.severity) for f in report.findings] == [("dns-error", "unknown")]


def test_no_tlsa_and_no_resolver() -> None:
    assert assess(TlsaAnswer(NAME, Security.SECURE), EDGE, pkix_valid=True).state is DaneState.NO_TLSA
    report = assess(None, EDGE, pkix_valid=True)
    assert report.state is DaneState.NOT_CHECKED
    assert report.findings == ()
    assert report.to_json()["checked"] is False
    assert "--dnssec-resolver" in report.summary


def test_json_object_describes_each_record() -> None:
    report = assess(secure(rec(3, 1, 1, EDGE[0])), EDGE, pkix_valid=True)
    data = report.to_json()
    assert data["status"] == "match" and data["dnssec"] == "secure" and data["srv_dnssec"] == "secure"
    assert data["records"][0]["description"] == "DANE-EE(3) SPKI(1) SHA2-256(1)"
    assert data["records"][0]["matched"] == "leaf certificate"


def test_hostile_chain_bytes_do_not_raise() -> None:
    report = assess(secure(rec(3, 1, 1, EDGE[0]), rec(2, 0, 1, EDGE[1])), [b"junk", b"\x30\x00"],
                    pkix_valid=False)
    assert report.state is DaneState.MISMATCH


def test_renewal_same_key_keeps_matching_new_key_needs_a_record_first() -> None:
    published = secure(rec(3, 1, 1, EDGE[0]))
    same_key = renewal_check(published, EDGE, pkix_valid=True)
    assert same_key.ok and same_key.publish == ()
    new_key = renewal_check(published, OTHER, pkix_valid=True)
    assert not new_key.ok
    assert new_key.publish == (rec(3, 1, 1, OTHER[0]),)
    # a DANE-TA record of the issuing intermediate survives a new key from the same CA
    assert renewal_check(secure(rec(2, 0, 1, EDGE[1])), OTHER, pkix_valid=True).ok


def test_a_csr_gives_the_3_1_1_record_of_its_key() -> None:
    csr = x509.load_pem_x509_csr((CERTS / "edge.csr").read_bytes())
    record = tlsa_for(csr)
    assert record.usage == 3 and record.selector == 1 and record.mtype == 1
    with pytest.raises(ValueError, match="selector 1"):
        tlsa_for(csr, selector=0)


def test_owner_name() -> None:
    assert tlsa_owner(5269, "xmpp.contoso.test.") == "_5269._tcp.xmpp.contoso.test"


def _plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    import json

    from scanner.cli import run

    assert run(["plan", *args, "--format", "json"]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    return doc


def test_plan_dane_prints_3_1_1_for_each_port_and_2_0_1_of_the_issuer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _plan_json(capsys, "--sip-domain", "contoso.test", "--dane", str(CERTS / "edge.pem"))
    entries = doc["dane"]
    assert isinstance(entries, list)
    leaf = rec(3, 1, 1, EDGE[0]).text
    issuer = rec(2, 0, 1, EDGE[1]).text
    assert [(e["name"], e["record"]) for e in entries] == [
        ("_5061._tcp.sip.contoso.test", leaf), ("_5269._tcp.sip.contoso.test", leaf),
        ("_5061._tcp.sip.contoso.test", issuer), ("_5269._tcp.sip.contoso.test", issuer),
    ]
    assert entries[0]["zone_line"] == f"_5061._tcp.sip.contoso.test. IN TLSA {leaf}"


def test_plan_dane_from_a_csr_needs_no_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _plan_json(capsys, "--dane", str(CERTS / "edge.csr"))
    csr = x509.load_pem_x509_csr((CERTS / "edge.csr").read_bytes())
    assert doc["plan"] is None
    assert doc["dane"] == [{
        "name": "_<port>._tcp.<SRV target>", "record": tlsa_for(csr).text,
        "description": "DANE-EE(3) SPKI(1) SHA2-256(1)",
        "zone_line": f"_<port>._tcp.<SRV target>. IN TLSA {tlsa_for(csr).text}",
        "why": "this key on each federation SRV target and port (recommended; RFC 7671)",
    }]


def test_a_scan_passes_the_validated_path_so_pkix_ta_of_an_unsent_root_matches() -> None:
    """End to end through the Judge: the server sends leaf + intermediate, the PKIX-TA(0)
    record names the root from the trust store; that is a match, never a false critical."""
    import datetime as dt

    from scanner.deployment import Deployment
    from scanner.handshake import HandshakeResult
    from scanner.judge import Judge
    from scanner.srv import Endpoint
    from scanner.trust import load_ca_file
    from scanner.verify import Policy, Verifier

    root = pem_chain_der("root.pem")[0]
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    verifier = Verifier(load_ca_file(CERTS / "ca-bundle.pem"), at, Policy())
    judge = Judge(deployment=Deployment(), verifier=verifier)
    shake = HandshakeResult(chain=tuple(EDGE), tls=None, failure=None, timings={"total": 0.1})
    endpoint = Endpoint("contoso.test", "sip-federation", "sip.contoso.test", 5061, "192.0.2.1", 0, 0, None)
    result = judge.endpoint(endpoint, shake, secure(rec(0, 0, 1, root)))
    assert result.dane is not None and result.dane.state is DaneState.MATCH
    assert [f.code for f in result.findings if f.code.startswith("dane")] == ["dane-ok"]
    stale = judge.endpoint(endpoint, shake, secure(rec(0, 0, 1, pem_chain_der("untrusted-root.pem")[0])))
    assert [f.code for f in stale.findings if f.code.startswith("dane")] == ["dane-mismatch"]
