"""DANE: judging TLSA records against a served chain (pure: no DNS, no sockets, no clock).

Theory of this module
---------------------
A DANE-validating federation peer (RFC 7673: Prosody, ejabberd, Postfix-style SIP gateways)
looks up ``_<port>._tcp.<SRV target>`` TLSA and authenticates the server by it instead of, or
besides, the Web PKI. This module answers, from plain data, the question an administrator has:
"would such a peer accept what this endpoint serves?". The Edge (:mod:`scanner.dane_dns`)
asks DNS; this module never does. What a record is, and the digests it is matched by, live in
:mod:`scanner.tlsa` (shared with the DNS side, the planner and the lab); this module holds
the verdicts: per record, per endpoint, and the findings they give.

The rules it keeps (RFC 6698, RFC 7671 operational rules, RFC 7218 acronyms):

* A record is *usable* only with a known usage (0-3), selector (0-1) and matching type (0-2),
  and a digest of the right length (32 bytes SHA2-256, 64 bytes SHA2-512). Unusable records
  are skipped by peers, never fatal: ``dane-partial`` says which, and why.
* Digest algorithm agility (RFC 7671 section 9): for each (usage, selector) a peer uses only
  the strongest digest published (SHA2-512 over SHA2-256); full data (0) always counts.
  Records with a weaker digest are reported as "ignored", which is what a peer does.
* DANE-EE(3) matches the leaf alone; names and dates are then irrelevant (RFC 7671 5.1).
  DANE-TA(2) matches an issuer in the *served* chain, which must be linked to the leaf by
  signatures (RFC 7671 5.2: the server must send its trust anchor). PKIX-EE(1)/PKIX-TA(0)
  match like 3/2 but also need the Web PKI path to validate (``pkix_valid``); PKIX-TA may
  also match a root of the validated path (``path``) that the server does not send.
* Only a DNSSEC-secure TLSA RRset binds peers. Insecure TLSA is ignored by them
  (``dane-insecure``); a SERVFAIL from a validating resolver is "could not check"
  (``dns-error``), never a pass. Without a resolver the user declares validating, DANE is
  "not checked": the AD bit of an arbitrary resolver proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from scanner.findings import Finding, finding
from scanner.tlsa import (
    Security,
    TlsaAnswer,
    TlsaRecord,
    parse_chain,
    record_matches,
    tlsa_for,
)

_STRENGTH = {1: 1, 2: 2}  # matching types ordered for digest agility; Full(0) is not ranked


class DaneState(StrEnum):
    NOT_CHECKED = "not-checked"  # no validating resolver declared
    NO_TLSA = "no-tlsa"  # nothing published (DANE not in use)
    INSECURE = "insecure"  # TLSA published, not DNSSEC-secure: peers ignore it
    ERROR = "error"  # the lookup failed: could not check
    MATCH = "match"
    MISMATCH = "mismatch"  # secure TLSA, nothing usable matches: DANE peers refuse
    UNUSABLE = "unusable"  # secure TLSA, no usable record: peers fall back to PKIX
    NO_CHAIN = "no-chain"  # secure TLSA, but no certificate was served to judge


@dataclass(frozen=True)
class RecordVerdict:
    record: TlsaRecord
    usable: bool
    matched: str | None = None  # "leaf", "certificate 2 of the served chain", ...
    note: str | None = None  # why unusable, or why ignored

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {"record": r.text, "usage": r.usage, "selector": r.selector,
                "matching_type": r.mtype, "description": r.acronym, "usable": self.usable,
                "matched": self.matched, "note": self.note}


@dataclass(frozen=True)
class DaneReport:
    """The DANE verdict on one endpoint: a state, findings, and the JSON ``dane`` object."""

    state: DaneState
    findings: tuple[Finding, ...] = ()
    answer: TlsaAnswer | None = None
    records: tuple[RecordVerdict, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        a = self.answer
        return {
            "status": str(self.state),
            "checked": self.state is not DaneState.NOT_CHECKED,
            "tlsa_name": a.name if a else None,
            "dnssec": str(a.security) if a else None,
            "srv_name": a.srv_name if a else None,
            "srv_dnssec": str(a.srv_security) if a and a.srv_security else None,
            "resolver": a.resolver if a else None,
            "records": [r.to_json() for r in self.records],
            "reason": self.reason or None,
        }

    @property
    def summary(self) -> str:
        """One line for the table and the readiness report."""
        a = self.answer
        if self.state is DaneState.NOT_CHECKED:
            return f"not checked ({self.reason})"
        assert a is not None
        matched = [r for r in self.records if r.matched]
        return {
            DaneState.NO_TLSA: f"no TLSA at {a.name} (DANE not in use)",
            DaneState.INSECURE: f"TLSA at {a.name} is not DNSSEC-secure: peers ignore it",
            DaneState.ERROR: f"TLSA lookup {a.name} failed: {self.reason}",
            DaneState.MATCH: "ok: " + (f"{matched[0].record.acronym} matches the {matched[0].matched}"
                                       if matched else "matched"),
            DaneState.MISMATCH: f"MISMATCH: no TLSA record at {a.name} matches the served chain",
            DaneState.UNUSABLE: f"no usable TLSA record at {a.name}: peers fall back to PKIX",
            DaneState.NO_CHAIN: f"TLSA at {a.name} is secure; no certificate served to judge",
        }[self.state]


NOT_CHECKED_REASON = "no validating resolver declared: give --dnssec-resolver"


def not_checked(reason: str = NOT_CHECKED_REASON) -> DaneReport:
    return DaneReport(DaneState.NOT_CHECKED, reason=reason)


# --------------------------------------------------------------------------- matching


def _linked_depth(certs: Sequence[x509.Certificate | None]) -> int:
    """How many served certificates form a signature-linked path from the leaf (leaf = 1)."""
    depth = 1 if certs and certs[0] is not None else 0
    while depth < len(certs):
        child, parent = certs[depth - 1], certs[depth]
        if child is None or parent is None:
            break
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):  # not its issuer: the link ends
            break
        depth += 1
    return depth


def _place(index: int) -> str:
    return "leaf certificate" if index == 0 else f"issuer certificate {index} of the served chain"


def judge_records(
    records: Iterable[TlsaRecord],
    chain: Sequence[bytes],
    *,
    pkix_valid: bool,
    path: Sequence[bytes] = (),
) -> tuple[RecordVerdict, ...]:
    """Each record's verdict against the served ``chain`` (leaf first, DER).

    ``path`` is the validated PKIX path (DER, leaf first) when it goes beyond what was served
    (a root from the trust store): PKIX-TA(0) may name that root.
    """
    records = list(dict.fromkeys(records))
    certs = parse_chain(chain)
    linked = _linked_depth(certs)
    strongest: dict[tuple[int, int], int] = {}
    for r in records:
        if r.problem is None and r.mtype in _STRENGTH:
            key = (r.usage, r.selector)
            strongest[key] = max(strongest.get(key, 0), _STRENGTH[r.mtype])
    out: list[RecordVerdict] = []
    for r in records:
        if r.problem is not None:
            out.append(RecordVerdict(r, False, note=r.problem))
            continue
        if r.mtype in _STRENGTH and _STRENGTH[r.mtype] < strongest[(r.usage, r.selector)]:
            out.append(RecordVerdict(r, True, note="ignored: a stronger digest is published for "
                                     "the same usage and selector (RFC 7671 section 9)"))
            continue
        out.append(RecordVerdict(r, True, _match(r, chain, certs, linked, pkix_valid, path),
                                 _pkix_note(r, pkix_valid)))
    return tuple(out)


def _pkix_note(r: TlsaRecord, pkix_valid: bool) -> str | None:
    if r.usage in (0, 1) and not pkix_valid:
        return "PKIX usages also need a valid Web PKI path, and this chain does not validate"
    return None


def _match(
    r: TlsaRecord, chain: Sequence[bytes], certs: Sequence[x509.Certificate | None],
    linked: int, pkix_valid: bool, path: Sequence[bytes],
) -> str | None:
    if not chain:
        return None
    if r.usage in (1, 3):
        ok = record_matches(r, chain[0], certs[0])
        return _place(0) if ok and (r.usage == 3 or pkix_valid) else None
    for index in range(1, linked):
        if record_matches(r, chain[index], certs[index]):
            return _place(index) if r.usage == 2 or pkix_valid else None
    if r.usage == 0 and pkix_valid:
        for index, der in enumerate(path[1:], 1):
            if der not in chain and record_matches(r, der, parse_chain([der])[0]):
                return f"trust anchor of the validated path (certificate {index + 1}, not served)"
    return None


# --------------------------------------------------------------------------- the verdict


def assess(
    answer: TlsaAnswer | None,
    chain: Sequence[bytes],
    *,
    pkix_valid: bool,
    path: Sequence[bytes] = (),
    where: str = "",
) -> DaneReport:
    """The DANE report of one endpoint. ``answer`` None means no validating resolver."""
    if answer is None:
        return not_checked()
    where = where or answer.name
    if answer.security in (Security.BOGUS, Security.ERROR):
        reason = answer.reason or "no answer"
        dns = finding("dns-error", f"DNS lookup {answer.name} TLSA failed: {reason}",
                      name=answer.name, rdtype="TLSA", reason=reason, resolver=answer.resolver)
        return DaneReport(DaneState.ERROR, (dns,), answer, reason=reason)
    if not answer.records:
        return DaneReport(DaneState.NO_TLSA, (), answer)
    verdicts = judge_records(answer.records, chain, pkix_valid=pkix_valid, path=path)
    if answer.security is not Security.SECURE or answer.srv_security is Security.INSECURE:
        return DaneReport(DaneState.INSECURE, (_insecure(answer, where),), answer, verdicts)
    findings = list(_partial(answer, verdicts, where))
    matched = [v for v in verdicts if v.matched]
    if not [v for v in verdicts if v.usable and not (v.note or "").startswith("ignored")]:
        return DaneReport(DaneState.UNUSABLE, tuple(findings), answer, verdicts)
    if not chain:
        return DaneReport(DaneState.NO_CHAIN, tuple(findings), answer, verdicts)
    if matched:
        first = matched[0]
        findings.append(finding(
            "dane-ok",
            f"{where}: TLSA {first.record.acronym} matches the {first.matched} (DNSSEC secure)",
            name=answer.name, record=first.record.text, matched=first.matched,
        ))
        return DaneReport(DaneState.MATCH, tuple(findings), answer, verdicts)
    findings.append(_mismatch(answer, verdicts, chain, where))
    return DaneReport(DaneState.MISMATCH, tuple(findings), answer, verdicts)


def _insecure(answer: TlsaAnswer, where: str) -> Finding:
    if answer.srv_security is Security.INSECURE:
        why = (f"the SRV answer {answer.srv_name} is not DNSSEC-secure, so peers do not use "
               f"TLSA at its target (RFC 7673)")
    else:
        why = f"the TLSA RRset {answer.name} is not DNSSEC-secure (unsigned zone or no chain of trust)"
    return finding("dane-insecure", f"{where}: TLSA is published but {why}: DANE peers ignore it",
                   name=answer.name, dnssec=str(answer.security), srv_name=answer.srv_name,
                   srv_dnssec=str(answer.srv_security) if answer.srv_security else None)


def _partial(answer: TlsaAnswer, verdicts: Sequence[RecordVerdict], where: str) -> list[Finding]:
    bad = [v for v in verdicts if not v.usable]
    if not bad:
        return []
    listed = "; ".join(f"{v.record.short} ({v.note})" for v in bad)
    return [finding(
        "dane-partial",
        f"{where}: {len(bad)} of {len(verdicts)} TLSA records are unusable and skipped by peers: "
        f"{listed}",
        name=answer.name, unusable=[{"record": v.record.text, "problem": v.note} for v in bad],
    )]


def _mismatch(
    answer: TlsaAnswer, verdicts: Sequence[RecordVerdict], chain: Sequence[bytes], where: str
) -> Finding:
    published = ", ".join(f"{v.record.short} ({v.record.acronym})" for v in verdicts if v.usable)
    leaf = parse_chain(chain[:1])[0]
    current = tlsa_for(leaf).text if leaf is not None else None
    hint = f"; the served key is {current}" if current else ""
    return finding(
        "dane-mismatch",
        f"{where}: no DNSSEC-secure TLSA record at {answer.name} matches the served chain "
        f"(published: {published}){hint}: DANE-validating peers refuse the connection",
        name=answer.name, published=[v.record.text for v in verdicts], served=current,
    )
