"""DANE renewal checks: will the TLSA published now match a certificate not yet installed?

Pure (Core), built on :mod:`scanner.dane`. The usual plan for a renewal with a new key is
"3 1 1 then rotate": publish the new key's ``3 1 1`` record beside the old one, wait two TTLs
(caches), install the certificate, then remove the old record. ``fedscan cert NEW.pem --dane
DOMAIN`` and ``readiness --cert`` call :func:`renewal_findings` for each TLSA RRset published
now; a CSR is judged by its key, so the record can go out before the CA has issued anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509

from scanner.dane import DaneState, RecordVerdict, assess, judge_records
from scanner.findings import Finding, finding
from scanner.tlsa import (
    Security,
    TlsaAnswer,
    TlsaRecord,
    association,
    parse_chain,
    spki_der,
    tlsa_for,
)


@dataclass(frozen=True)
class RenewalCheck:
    """Will the TLSA records published now still match once the new chain is installed?"""

    name: str
    published: tuple[RecordVerdict, ...]  # judged against the NEW chain
    publish: tuple[TlsaRecord, ...] = field(default=())  # what to add before the switch
    security: Security = Security.SECURE

    @property
    def ok(self) -> bool:
        return any(v.matched for v in self.published)


def renewal_check(
    answer: TlsaAnswer, new_chain: Sequence[bytes], *, pkix_valid: bool
) -> RenewalCheck:
    """Judge the published records against a certificate not yet installed."""
    verdicts = judge_records(answer.records, new_chain, pkix_valid=pkix_valid)
    leaf = parse_chain(new_chain[:1])[0]
    publish: tuple[TlsaRecord, ...] = ()
    if leaf is not None and not any(v.matched for v in verdicts):
        publish = (tlsa_for(leaf),)
    return RenewalCheck(answer.name, verdicts, publish, answer.security)


def renewal_findings(
    answer: TlsaAnswer, label: str, *, chain: Sequence[bytes] = (),
    request: x509.CertificateSigningRequest | None = None, pkix_valid: bool = True,
) -> tuple[Finding, ...]:
    """Will the TLSA published now match ``label`` (a certificate chain not yet installed, or
    a CSR's key) once installed? The usual plan is "3 1 1 then rotate": publish the new key's
    record beside the old, wait two TTLs, install, then remove the old record."""
    if request is not None:
        spki = spki_der(request)
        hit = next((r for r in answer.records if r.problem is None and r.usage in (1, 3)
                    and r.selector == 1 and association(spki, r.mtype) == r.data), None)
        new = tlsa_for(request)
        report = assess(answer, (), pkix_valid=pkix_valid, where=f"{label} for {answer.name}")
        if report.state in (DaneState.ERROR, DaneState.NO_TLSA, DaneState.INSECURE):
            return report.findings
        if hit is not None:
            return (finding("dane-ok", f"{label}: TLSA {hit.acronym} at {answer.name} already names "
                            "this key: the certificate can be installed as soon as it is issued",
                            name=answer.name, record=hit.text, matched="request key"),)
        return (_renewal_mismatch(answer, label, new),)
    report = assess(answer, chain, pkix_valid=pkix_valid, where=f"{label} for {answer.name}")
    if report.state is not DaneState.MISMATCH:
        return report.findings
    leaf = parse_chain(chain[:1])[0]
    if leaf is None:
        return report.findings
    kept = [f for f in report.findings if f.code != "dane-mismatch"]
    return (*kept, _renewal_mismatch(answer, label, tlsa_for(leaf)))


def _renewal_mismatch(answer: TlsaAnswer, label: str, new: TlsaRecord) -> Finding:
    published = ", ".join(f"{r.short} ({r.acronym})" for r in answer.records)
    return finding(
        "dane-mismatch",
        f"{label}: the TLSA published at {answer.name} ({published}) will not match this key: "
        f"DANE peers would refuse it once installed. Publish '{answer.name}. IN TLSA {new.text}' "
        "beside the current record now, wait two TTLs, install, then remove the old record",
        name=answer.name, published=[r.text for r in answer.records], publish=new.text,
    )
