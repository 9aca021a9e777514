"""The typed certificate summary: exactly the schema's JSON (key order included), read back
by one ``from_json``, and the typed fields consumers read instead of re-parsing text."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from scanner.certinfo import cert_info
from scanner.certload import exact_in, load_pem_certificates, load_pem_with_der
from scanner.certsummary import CertSummary, RequestSummary, common_names_of
from scanner.offline import check_file
from scanner.trust import load_ca_file
from scanner.verify import Policy, Verifier
from tests.conftest import CERTS, NOW

#: the certificate keys of schema_version 1, in the order the report writes them
CERT_KEYS = ["subject", "issuer", "serial", "sha256", "not_before", "not_after", "dns_names", "srv_names",
             "xmpp_addrs", "eku", "key", "signature", "crl_distribution_points", "days_left"]


def edge_summary(now: dt.datetime | None = NOW) -> CertSummary:
    cert, *_ = load_pem_certificates((CERTS / "edge.pem").read_bytes())
    return cert_info(cert).summary(now)


def test_the_json_is_the_schema_in_its_order() -> None:
    data = edge_summary().to_json()
    assert list(data) == CERT_KEYS
    assert data["not_after"] == "2040-01-01T00:00:00Z"
    assert data["eku"] == ["serverAuth", "clientAuth"]
    assert data["days_left"] == 3652
    assert list(edge_summary(None).to_json()) == CERT_KEYS[:-1]  # no time, no days_left


def test_typed_fields_need_no_parsing() -> None:
    s = edge_summary()
    assert s.not_after == dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    assert s.common_names == ("sip.contoso.test",)
    assert "sip.contoso.test" in s.dns_names


def test_from_json_reads_back_what_to_json_wrote() -> None:
    s = edge_summary()
    assert CertSummary.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert CertSummary.from_json(edge_summary(None).to_json()).days_left is None


def test_a_fractional_second_notafter_is_kept_to_the_second_as_the_report_states() -> None:
    (cert, der), *_ = load_pem_with_der((CERTS / "fractional-notafter.pem").read_bytes())
    info = cert_info(cert, exact_in(der))  # the copy cryptography loads, and what it really says
    s = info.summary(NOW)
    assert info.not_after.microsecond != 0  # the verifier judges the exact time
    assert s.not_after == info.not_after.replace(microsecond=0)
    assert CertSummary.from_json(s.to_json()) == s


def test_a_request_summary_has_the_request_schema() -> None:
    verifier = Verifier(load_ca_file(CERTS / "ca-bundle.pem"), NOW, Policy())
    (check,) = check_file(CERTS / "csr-missing-xmpp.csr", [], verifier, lambda: None)
    assert isinstance(check.summary, RequestSummary) and not isinstance(check.summary, CertSummary)
    data = check.to_json()["request"]
    assert list(data) == ["subject", "dns_names", "srv_names", "xmpp_addrs", "eku", "key", "signature"]
    assert RequestSummary.from_json(data) == check.summary


@pytest.mark.parametrize("damage", [
    {"not_after": "yesterday"}, {"not_after": None}, {"dns_names": "sip.contoso.test"},
    {"days_left": "3652"}, {"subject": 7},
])
def test_a_damaged_summary_is_a_value_error(damage: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CertSummary.from_json({**edge_summary().to_json(), **damage})


def test_cns_of_a_subject_read_back_from_a_file() -> None:
    assert common_names_of("CN=sip.contoso.test,O=Contoso\\, Inc.") == ("sip.contoso.test",)
    assert common_names_of("CN=a.test+CN=b.test,O=x") == ("a.test", "b.test")
    assert common_names_of("<undecodable name>") == ()
