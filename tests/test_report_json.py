"""Reading a saved report back: one ``from_json`` per type, the inverse of its ``to_json``."""

from __future__ import annotations

import json

import pytest

from scanner.findings import Finding, Severity, Status, finding
from scanner.results import TlsInfo, read_findings


def test_a_finding_reads_back_as_written() -> None:
    f = finding("expired", "the certificate expired on 2021-01-01", not_after="2021-01-01T00:00:00Z")
    back = Finding.from_json(json.loads(json.dumps(f.to_json())))
    assert back.to_json() == f.to_json()
    assert (back.code, back.severity, back.status) == ("expired", Severity.CRITICAL, Status.CRITICAL)


def test_a_code_this_version_does_not_know_is_kept() -> None:
    back = Finding.from_json({"code": "from-the-future", "severity": "warning", "message": "m"})
    assert (back.code, back.status) == ("from-the-future", Status.WARNING)


@pytest.mark.parametrize("damaged", [
    {"code": "expired", "severity": "fatal", "message": "m", "details": {}},
    {"code": "expired", "severity": "critical", "details": {}},
    {"code": 7, "severity": "critical", "message": "m"},
    {"code": "expired", "severity": "critical", "message": "m", "details": []},
    "expired",
])
def test_a_damaged_finding_is_a_value_error_and_reads_as_unknown_never_better(damaged: object) -> None:
    with pytest.raises(ValueError):
        Finding.from_json(damaged)
    (read,) = read_findings([damaged])
    assert read.status is Status.UNKNOWN


def test_tls_reads_back_as_written() -> None:
    tls = TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", None, True, False)
    assert TlsInfo.from_json(json.loads(json.dumps(tls.to_json()))) == tls
    assert list(tls.to_json()) == ["version", "cipher", "alpn", "client_certificate_requested",
                                   "client_certificate_sent"]
    with pytest.raises(ValueError):
        TlsInfo.from_json(None)
    with pytest.raises(ValueError):
        TlsInfo.from_json({**tls.to_json(), "client_certificate_sent": "no"})


def test_tls_read_back_without_the_client_certificate_fields() -> None:
    """A report written by hand or by another tool may give only version and cipher: the page
    and the merge still show the version (absent client-certificate fields mean not seen)."""
    tls = TlsInfo.from_json({"version": "TLSv1.2", "cipher": "ECDHE-RSA-AES128-GCM-SHA256"})
    assert tls == TlsInfo("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", None, False, False)
    with pytest.raises(ValueError):
        TlsInfo.from_json({"version": "TLSv1.2"})  # no cipher: not a tls object
