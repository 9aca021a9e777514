"""What a partner said about *our* certificate: the verdicts of an acceptance scan, pure data.

Theory of this module
---------------------
* Federation is mutual TLS: our Edge is the TLS client toward every partner, and a partner
  can refuse the certificate we present at three levels. TLS (an alert: in TLS 1.2 inside the
  handshake, in TLS 1.3 after our Finished), SIP (an OPTIONS answered 403, often with a
  Microsoft ``ms-diagnostics`` header) and XMPP (SASL EXTERNAL, XEP-0178, refused or not
  offered). :class:`Acceptance` holds each level's observation and the findings they mean.
* Evidence, not guesses. Each level says what it saw (``evidence``): a session ticket, a
  final SIP response, a SASL outcome, silence. Silence is "unknown", never "accepted".
* Pure: the Edge driver (:mod:`scanner.acceptance`) observes, this module words and judges,
  so every rule is a test without a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from scanner.findings import Finding, Severity, finding

# Fatal alerts with which a TLS server refuses the certificate a client presented.
REJECTION_ALERTS: Final = frozenset({
    "bad_certificate", "unsupported_certificate", "certificate_revoked", "certificate_expired",
    "certificate_unknown", "unknown_ca", "access_denied", "certificate_required",
    "handshake_failure",
})
ALERT_MEANINGS: Final = MappingProxyType({
    "unknown_ca": "the partner does not trust our issuing CA, or we did not send the "
                  "intermediate certificate",
    "unsupported_certificate": "often a missing Client Authentication EKU (the partner checks "
                               "that our certificate may be used as a TLS client)",
    "certificate_expired": "our certificate (or one of its CAs) is expired, or not yet valid, "
                           "by the partner's clock",
    "certificate_revoked": "the partner found our certificate revoked (CRL or OCSP)",
    "bad_certificate": "the partner could not verify our certificate (corrupt, bad signature, "
                       "or a name or policy it refuses)",
    "certificate_unknown": "the partner refused our certificate for a reason it does not name "
                           "(SChannel and Java peers often say this for an untrusted CA)",
    "access_denied": "the partner verified our certificate but does not allow it to connect "
                     "(an allow list of partners or CAs)",
    "certificate_required": "the partner did not receive a certificate it would accept",
    "handshake_failure": "the partner refused the handshake after our certificate; it names "
                         "no reason",
})
SIP_REFUSALS: Final = frozenset({401, 403, 407, 480})
SIP_STATUS_MEANINGS: Final = MappingProxyType({
    401: "the partner asks us to authenticate: it does not treat us as a federated peer",
    403: "the partner is not allowed to federate with our domain (not in its allowed list, "
         "or blocked)",
    407: "a proxy asks us to authenticate: we are not treated as a federated peer",
    480: "the partner's federation service is temporarily unavailable for us",
})


def refuses(status: int) -> bool:
    """401/403/407/480 and 5xx: the partner will not take requests from us."""
    return status in SIP_REFUSALS or status >= 500


def alert_name(text: str | None) -> str | None:
    """``unknown_ca`` from an alert name or an OpenSSL reason (``TLSV1_ALERT_UNKNOWN_CA``)."""
    if text is None:
        return None
    lower = text.lower()
    for name in sorted(REJECTION_ALERTS, key=len, reverse=True):
        if lower == name or lower.endswith("alert_" + name):
            return name
    return None


def client_certificate_rejected(alert: str | None, *, in_handshake: bool, version: str | None) -> Finding:
    when = "during the handshake" if in_handshake else "after the handshake"
    if alert is None:
        message = (f"the partner closed the connection {when} in which we presented our "
                   "certificate, without an alert")
        meaning = "the partner ended the connection at once: it most likely refused our certificate"
    else:
        meaning = ALERT_MEANINGS.get(alert, "the partner refused our certificate")
        message = f"the partner rejected our certificate with the TLS alert {alert}: {meaning}"
    return finding("client-certificate-rejected", message, alert=alert, meaning=meaning,
                   phase="handshake" if in_handshake else "after-handshake", tls_version=version)


# --- observations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsVerdict:
    verdict: str  # "accepted" | "rejected" | "unknown"
    evidence: str  # "handshake" (TLS 1.2), "session-ticket", "application-data", "alert", "closed", "silence"
    alert: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "evidence": self.evidence, "alert": self.alert,
                "meaning": ALERT_MEANINGS.get(self.alert) if self.alert else None}


@dataclass(frozen=True)
class SipVerdict:
    from_domain: str
    status: int | None  # the final response, None when none came
    reason: str | None = None
    provisional: tuple[int, ...] = ()
    ms_diagnostics: Mapping[str, Any] | None = None
    error: str | None = None  # the partner broke SIP, or the connection ended

    @property
    def verdict(self) -> str:
        if self.status is None:
            return "unknown"
        # a final answer that is not a refusal (a 404 for the request URI, a 405) still says
        # the partner talks to us: only the refusals below are about who we are
        return "refused" if refuses(self.status) else "accepted"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "from": self.from_domain, "status": self.status,
                "reason": self.reason, "provisional": list(self.provisional),
                "ms_diagnostics": dict(self.ms_diagnostics) if self.ms_diagnostics else None,
                "error": self.error}


@dataclass(frozen=True)
class XmppVerdict:
    from_domain: str
    external_offered: bool | None  # None: no features were read
    dialback_offered: bool | None
    sasl: str | None  # "success" | "failure" | None (not attempted)
    condition: str | None = None  # SASL failure or stream error condition
    text: str | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.sasl == "success":
            return "accepted"
        if self.sasl == "failure" or self.condition is not None or self.external_offered is False:
            return "refused"
        return "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "from": self.from_domain,
                "sasl_external_offered": self.external_offered,
                "dialback_offered": self.dialback_offered, "sasl": self.sasl,
                "condition": self.condition, "text": self.text, "error": self.error}


@dataclass(frozen=True)
class Acceptance:
    """One endpoint's acceptance of our certificate; ``findings`` are what it means."""

    certificate_sha256: str | None
    tls: TlsVerdict | None  # None: TLS was not reached (connect failure, server-side failure)
    sip: SipVerdict | None = None
    xmpp: XmppVerdict | None = None
    findings: tuple[Finding, ...] = field(default=())

    @property
    def verdict(self) -> str:
        """"refused" if any level refused, "accepted" if TLS and the protocol level accepted,
        "not-reached" when TLS was never reached, "unknown" otherwise."""
        if self.tls is None:
            return "not-reached"
        levels = [self.tls.verdict, *(v.verdict for v in (self.sip, self.xmpp) if v is not None)]
        if "rejected" in levels or "refused" in levels:
            return "refused"
        if all(v == "accepted" for v in levels) and (self.sip or self.xmpp):
            return "accepted"
        return "accepted" if levels == ["accepted"] else "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "certificate_sha256": self.certificate_sha256,
            "tls": self.tls.to_json() if self.tls else None,
            "sip": self.sip.to_json() if self.sip else None,
            "xmpp": self.xmpp.to_json() if self.xmpp else None,
        }

    def line(self) -> str:
        """The table's line under the endpoint row."""
        parts = [f"partner's verdict on our certificate: {self.verdict.upper()}"]
        if self.tls is None:
            return parts[0] + " (TLS not reached)"
        tls = f"TLS {self.tls.verdict} ({self.tls.evidence}"
        parts.append(tls + (f" {self.tls.alert})" if self.tls.alert else ")"))
        if self.sip is not None:
            if self.sip.status is not None:
                said = f"{self.sip.status} {self.sip.reason or ''}".rstrip()
                sip = f"SIP OPTIONS as {self.sip.from_domain}: {said}"
                if self.sip.ms_diagnostics and self.sip.ms_diagnostics.get("code") is not None:
                    sip += f" (ms-diagnostics {self.sip.ms_diagnostics['code']})"
            else:
                sip = f"SIP OPTIONS as {self.sip.from_domain}: no answer"
            parts.append(sip)
        if self.xmpp is not None:
            x = self.xmpp
            if x.sasl is not None:
                xmpp = f"SASL EXTERNAL as {x.from_domain}: {x.sasl}"
            elif x.condition is not None:
                xmpp = f"XMPP stream error {x.condition}"
            elif x.external_offered is False:
                xmpp = "SASL EXTERNAL not offered"
            else:
                xmpp = "XMPP: no features"
            if x.dialback_offered:
                xmpp += ", dialback offered"
            parts.append(xmpp)
        return "; ".join(parts)


def not_reached(certificate_sha256: str | None) -> Acceptance:
    return Acceptance(certificate_sha256, None)


# --- judging each level ---------------------------------------------------------------------------


def sip_findings(sip: SipVerdict, target: str) -> list[Finding]:
    if sip.status is None:
        detail = f" ({sip.error})" if sip.error else ""
        return [finding("sip-no-response",
                        f"{target} accepted our TLS connection but sent no final answer to OPTIONS "
                        f"from {sip.from_domain} in time{detail}; some proxies drop OPTIONS, so "
                        "this proves nothing by itself",
                        from_domain=sip.from_domain, provisional=list(sip.provisional), error=sip.error)]
    if refuses(sip.status):
        meaning = SIP_STATUS_MEANINGS.get(sip.status, "the partner's server failed or refused the request")
        diag = sip.ms_diagnostics
        said = ""
        if diag:
            said = (f"; ms-diagnostics {diag.get('code')}"
                    + (f" \"{diag.get('reason')}\"" if diag.get("reason") else "")
                    + (f" from {diag.get('source')}" if diag.get("source") else ""))
        return [finding("sip-options-refused",
                        f"{target} answered OPTIONS from {sip.from_domain} with {sip.status} "
                        f"{sip.reason or ''}".rstrip() + f": {meaning}{said}",
                        Severity.CRITICAL if sip.status == 403 else None,
                        status=sip.status, reason=sip.reason, from_domain=sip.from_domain,
                        meaning=meaning, ms_diagnostics=dict(diag) if diag else None)]
    return []


def xmpp_findings(xmpp: XmppVerdict, domain: str) -> list[Finding]:
    if xmpp.verdict != "refused":
        return []
    if xmpp.sasl == "failure":
        what = f"refused SASL EXTERNAL for {xmpp.from_domain} ({xmpp.condition})"
    elif xmpp.condition is not None:
        what = f"ended the stream from {xmpp.from_domain} with the error {xmpp.condition}"
    else:
        what = f"does not offer SASL EXTERNAL to {xmpp.from_domain}: it does not accept our certificate"
    if xmpp.text:
        what += f": \"{xmpp.text}\""
    if xmpp.dialback_offered:
        tail = "; it offers dialback, so federation may still work, but not through our certificate"
        severity = Severity.WARNING
    else:
        tail = "; it offers no dialback either: federation with it fails"
        severity = Severity.CRITICAL
    return [finding("xmpp-cert-auth-refused", f"{domain} {what}{tail}", severity,
                    condition=xmpp.condition, text=xmpp.text, sasl=xmpp.sasl,
                    sasl_external_offered=xmpp.external_offered,
                    dialback_offered=xmpp.dialback_offered, from_domain=xmpp.from_domain)]
