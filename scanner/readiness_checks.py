"""The readiness report's certificate table: each entry the Lync/SfB plan asks for, judged.

Theory of this module
---------------------
* The plan (:func:`scanner.plan.certificate_plan`) lists what our Edge certificate must hold;
  each entry becomes one :class:`Requirement` whose :class:`State` is read from the typed
  certificate summaries (:class:`scanner.certsummary.CertSummary`, or a CSR's
  :class:`~scanner.certsummary.RequestSummary`) and the findings the verifier gave them. No
  state is derived from prose: a state is an enum, the entry an :class:`Item`, and the
  severity of a missing entry the worst status of the findings behind it.
* Several certificates (pool nodes serving different ones) are judged together: an entry is
  as bad as its worst certificate, and says which certificates it is about.
* Pure: no I/O, no rendering. :mod:`scanner.readiness` builds the report from these rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from scanner.certsummary import CertSummary, RequestSummary
from scanner.findings import Finding, Status, worst
from scanner.isotime import iso
from scanner.plan import CertificatePlan
from scanner.verify import Coverage


class State(StrEnum):
    """What the evidence says of one entry (the value is the word the report prints)."""

    PRESENT = "present"
    MISSING = "missing"
    UNKNOWN = "unknown"  # no certificate was retrieved
    NA = "n/a"  # cannot apply yet (a CSR has no dates, no issuer, no CRL distribution point)
    NOT_CHECKED = "not checked"  # cannot be known from what fedscan sees; never blocks a go-live


class Item(StrEnum):
    """The entries of the certificate table (the value is the row's label)."""

    SUBJECT_CN = "Subject CN"
    SAN = "SAN"
    EKU = "EKU"
    KEY = "Key"
    SIGNATURE = "Signature"
    CRL = "CRL distribution point"
    VALIDITY = "Validity"
    CHAIN = "Trusted chain"

    @property
    def is_name_or_usage(self) -> bool:
        """A name or usage the certificate must hold: missing, it "lacks an entry" (a request
        to reissue), where the others are properties of the key, dates or chain."""
        return self in (Item.SUBJECT_CN, Item.SAN, Item.EKU)


@dataclass(frozen=True)
class Requirement:
    item: Item
    required: str  # the name or value the plan requires
    why: str
    state: State
    detail: str = ""
    # when missing: how bad (the severity of the finding behind it, e.g. a missing CRL
    # distribution point is a warning) and the words the verdict uses for it
    status: Status = Status.CRITICAL
    lacks: str = ""

    @property
    def verdict_status(self) -> Status:
        """What this entry does to the report's status: a missing entry its own status,
        an unknown one UNKNOWN; present, n/a and not checked are OK."""
        if self.state is State.MISSING:
            return self.status
        return Status.UNKNOWN if self.state is State.UNKNOWN else Status.OK

    @property
    def state_words(self) -> str:
        """"missing", or "missing (warning)" when the finding behind it is only a warning."""
        if self.state is State.MISSING and self.status is not Status.CRITICAL:
            return f"{self.state} ({self.status.name.lower()})"
        return str(self.state)


@dataclass(frozen=True)
class Evidence:
    """One certificate (or CSR) the requirements are judged on."""

    label: str
    cert: CertSummary | RequestSummary
    coverage: tuple[Coverage, ...]
    codes: frozenset[str]
    statuses: Mapping[str, Status] | None = None  # the worst status of each finding code


def worst_by_code(findings: Iterable[Finding]) -> dict[str, Status]:
    out: dict[str, Status] = {}
    for f in findings:
        out[f.code] = worst([out.get(f.code, Status.OK), f.status])
    return out


Verdict = tuple[State, str]  # one certificate's state for an entry, and the detail to show


def requirements(
    plan: CertificatePlan, evidence: Sequence[Evidence], client_auth_required: bool
) -> list[Requirement]:
    out: list[Requirement] = []

    def row(item: Item, required: str, why: str, verdicts: Iterable[Verdict],
            codes: Sequence[str] = (), lacks: str = "") -> None:
        """``codes``: the findings that make this entry missing; their worst status among the
        certificates judged is the entry's (CRITICAL when none says otherwise)."""
        got = list(verdicts)
        if not got:
            out.append(Requirement(item, required, why, State.UNKNOWN, "no certificate was retrieved"))
            return
        seen = [ev.statuses[c] for ev in evidence for c in codes if ev.statuses and c in ev.statuses]
        status = worst(seen) if seen else Status.CRITICAL
        states = [s for s, _ in got]
        for state in (State.MISSING, State.UNKNOWN, State.NA, State.PRESENT):
            if state in states:
                details = [d for s, d in got if s is state and d]
                if len(set(states)) > 1:
                    # endpoints serve different certificates: say which ones this row is about
                    which = [ev.label for ev, s in zip(evidence, states, strict=True) if s is state]
                    details.append(f"{len(which)} of {len(got)} certificates: {', '.join(which)}")
                out.append(Requirement(item, required, why, state, "; ".join(dict.fromkeys(details)),
                                       status, lacks or required))
                return

    row(Item.SUBJECT_CN, plan.subject, "Access Edge FQDN",
        (_subject_state(ev, plan.subject) for ev in evidence))
    for entry in plan.sans:
        row(Item.SAN, entry.name, entry.reason, (_san_state(ev, entry.name) for ev in evidence))
    row(Item.EKU, "serverAuth", "peers refuse a TLS server without it",
        (_eku_state(ev, "serverAuth") for ev in evidence), ("eku-server-auth-missing",))
    row(Item.EKU, "clientAuth",
        "federation is mutual TLS" if client_auth_required else "advised (client_auth = optional)",
        (_eku_state(ev, "clientAuth") for ev in evidence), ("eku-client-auth-missing",))
    key, _, exportable = plan.key.partition(", ")
    row(Item.KEY, key, "Lync/SfB and older peers",
        (_code_state(ev, ("weak-key",), ev.cert.key) for ev in evidence), ("weak-key",), "a strong key")
    if exportable:
        # neither a served certificate nor a CSR shows how its private key was stored
        out.append(Requirement(Item.KEY, exportable, "every node of a pool installs the same key",
                               State.NOT_CHECKED, "a certificate does not show it: check the key's "
                               "export policy where the request was made"))
    row(Item.SIGNATURE, plan.signature, "Lync/SfB do not support RSASSA-PSS",
        (_code_state(ev, ("weak-signature", "pss-signature"), ev.cert.signature) for ev in evidence),
        ("weak-signature", "pss-signature"), "a supported signature")
    row(Item.CRL, "required", "Lync/SfB check revocation",
        (_crl_state(ev) for ev in evidence), ("no-crl-distribution-point",), "no CRL distribution point")
    row(Item.VALIDITY, "valid now, beyond the warning threshold", "an expired certificate breaks federation",
        (_validity_state(ev) for ev in evidence), ("expired", "not-yet-valid", "expires-soon"),
        "a valid date range")
    row(Item.CHAIN, "chain to a public root, intermediates served", "peers must build the path",
        (_chain_state(ev) for ev in evidence), ("chain-untrusted", "chain-incomplete", "self-signed"),
        "a trusted chain")
    return out


def _subject_state(ev: Evidence, subject: str) -> Verdict:
    if any(cn.lower() == subject.lower() for cn in ev.cert.common_names):
        return State.PRESENT, ""
    return State.MISSING, f"subject is {ev.cert.subject or '(empty)'}"


def _san_state(ev: Evidence, name: str) -> Verdict:
    for c in ev.coverage:
        if c.identity.name == name:
            if c.covered_by is None:
                return State.MISSING, ""
            if c.how == "wildcard":
                return State.MISSING, f"only the wildcard {c.covered_by} (not accepted by Lync/SfB)"
            return State.PRESENT, "" if c.how == "dns-id" else f"as {c.how}"
    dns_names = [n.lower() for n in ev.cert.dns_names]
    return (State.PRESENT, "") if name.lower() in dns_names else (State.MISSING, "")


def _eku_state(ev: Evidence, usage: str) -> Verdict:
    eku = ev.cert.eku
    if eku is None:
        return State.PRESENT, "no EKU extension: any purpose"
    return (State.PRESENT, "") if usage in eku else (State.MISSING, "EKU is " + (", ".join(eku) or "empty"))


def _code_state(ev: Evidence, codes: Sequence[str], value: str) -> Verdict:
    hit = [c for c in codes if c in ev.codes]
    return (State.MISSING, f"{value} ({', '.join(hit)})") if hit else (State.PRESENT, value)


def _crl_state(ev: Evidence) -> Verdict:
    if not isinstance(ev.cert, CertSummary):
        return State.NA, "added by the CA when it issues the certificate"
    urls = ev.cert.crl_distribution_points
    return (State.PRESENT, ", ".join(urls)) if urls else (State.MISSING, "")


def _validity_state(ev: Evidence) -> Verdict:
    if not isinstance(ev.cert, CertSummary):
        return State.NA, "set by the CA"
    until = f"notAfter {iso(ev.cert.not_after)} ({ev.cert.days_left} days left)"
    bad = [c for c in ("expired", "not-yet-valid", "expires-soon") if c in ev.codes]
    return (State.MISSING, f"{until}: {', '.join(bad)}") if bad else (State.PRESENT, until)


def _chain_state(ev: Evidence) -> Verdict:
    if not isinstance(ev.cert, CertSummary):
        return State.NA, "install the CA's intermediates with the certificate"
    bad = [c for c in ("chain-untrusted", "chain-incomplete", "self-signed") if c in ev.codes]
    return (State.MISSING, ", ".join(bad)) if bad else (State.PRESENT, f"issuer {ev.cert.issuer}")
