"""Findings: the one vocabulary every stage of fedscan speaks.

Theory of this module
---------------------
A *finding* is a fact about a certificate, a DNS record or a connection that an administrator
must act on (or should know). Its ``code`` is a public, stable interface: scripts match on it,
monitoring suppresses by it, the README documents it. Codes are therefore registered here, once,
with their default severity, and :func:`finding` refuses an unregistered code, so a typo is a
test failure and never a silently new public name.

Severity and status are different things. Severity belongs to a finding (``info`` does not
affect the outcome). Status belongs to an endpoint, a domain or a run and follows the
monitoring-plugin convention for exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). When
results are combined, CRITICAL outranks UNKNOWN, which outranks WARNING: a definite breakage is
the most useful thing to page on, and "could not check" must not hide behind a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    UNKNOWN = "unknown"
    CRITICAL = "critical"


class Status(IntEnum):
    """Exit codes of the monitoring-plugin convention (Nagios, Icinga, Sensu)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]

    @property
    def label(self) -> str:
        return self.name


_STATUS_RANK = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}
_SEVERITY_STATUS = {
    Severity.INFO: Status.OK,
    Severity.WARNING: Status.WARNING,
    Severity.UNKNOWN: Status.UNKNOWN,
    Severity.CRITICAL: Status.CRITICAL,
}


@dataclass(frozen=True)
class CodeInfo:
    """Documentation of one finding code; the README table is checked against these."""

    code: str
    severity: Severity
    stage: str  # "certificate", "csr", "pfx", "dns", "dane", "connection", "monitoring"
    summary: str
    remedy: str


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def status(self) -> Status:
        return _SEVERITY_STATUS[self.severity]

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "details": dict(self.details),
        }

    @classmethod
    def from_json(cls, data: object) -> Finding:
        """A finding read back from a saved report; ``ValueError`` for anything that is not one.
        The code is not checked against the registry: a newer fedscan may have written it."""
        # ValueError, not TypeError, for every kind of damage: readers of a saved report catch one
        if not isinstance(data, Mapping):
            raise ValueError("not a finding (not an object)")  # noqa: TRY004
        code, message, details = data.get("code"), data.get("message"), data.get("details", {})
        if not isinstance(code, str) or not isinstance(message, str) or not isinstance(details, Mapping):
            raise ValueError(f"not a finding: {data!r:.80}")  # noqa: TRY004
        return cls(code, Severity(str(data.get("severity"))), message, MappingProxyType(dict(details)))


def finding(code: str, message: str, severity: Severity | None = None, **details: Any) -> Finding:
    """Build a finding of a registered code; its default severity unless one is given."""
    info = CODES[code]  # KeyError on an unregistered code is deliberate
    return Finding(code, severity or info.severity, message, MappingProxyType(details))


def worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def status_of(findings: Iterable[Finding]) -> Status:
    return worst(f.status for f in findings)


def worst_finding(findings: Iterable[Finding]) -> Finding | None:
    ranked = sorted(findings, key=lambda f: -_SEVERITY_RANK[f.severity])
    return ranked[0] if ranked else None


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.UNKNOWN: 2, Severity.CRITICAL: 3}


def _codes(*infos: CodeInfo) -> Mapping[str, CodeInfo]:
    return MappingProxyType({i.code: i for i in infos})


C, W, U, INF = Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.INFO

CODES: Mapping[str, CodeInfo] = _codes(
    # --- certificate: names -------------------------------------------------------------
    CodeInfo("san-missing", C, "certificate",
             "A name peers check (or a namespace this Edge serves) is not in the subjectAltName.",
             "Reissue the certificate with the missing name as a DNS SAN (for an XMPP domain a "
             "DNS-ID, SRV-ID or XmppAddr)."),
    CodeInfo("san-extension-missing", C, "certificate",
             "The certificate has no subjectAltName extension; peers ignore the subject CN.",
             "Reissue with every federation name in the SAN, the subject CN repeated there."),
    CodeInfo("cn-not-in-san", W, "certificate",
             "The subject CN is not repeated in the subjectAltName (Lync/SfB expect it there).",
             "Reissue with the subject name also listed as the first SAN."),
    CodeInfo("wildcard-cn", W, "certificate",
             "The subject CN is a wildcard; Lync/SfB do not support one on the Access Edge.",
             "Use the Access Edge FQDN as the subject name."),
    CodeInfo("wildcard-san", W, "certificate",
             "A SAN is a wildcard; Lync/SfB do not support wildcards on the Access Edge, and "
             "wildcards never cover an XMPP domain's bare name.",
             "List every federation FQDN explicitly in the SAN."),
    # --- certificate: key usage ---------------------------------------------------------
    CodeInfo("eku-server-auth-missing", C, "certificate",
             "Extended Key Usage lacks Server Authentication: peers refuse the TLS server.",
             "Reissue from a template with Server Authentication (1.3.6.1.5.5.7.3.1)."),
    CodeInfo("eku-client-auth-missing", C, "certificate",
             "Extended Key Usage lacks Client Authentication: federation is mutual TLS and "
             "XMPP peers reject such certificates (a warning with --client-auth optional).",
             "Reissue with Client Authentication (1.3.6.1.5.5.7.3.2) as well; public CAs are "
             "dropping it, so plan a CA or private PKI that still issues it."),
    CodeInfo("eku-absent", INF, "certificate",
             "No Extended Key Usage extension: any purpose is permitted (RFC 5280 4.2.1.12).",
             "Nothing to do; public CAs always include an EKU, so expect one on renewal."),
    CodeInfo("client-auth-renewal-risk", INF, "certificate",
             "This publicly trusted certificate has Client Authentication today, but public CAs "
             "are removing it (Let's Encrypt since 2026-02-11; Chrome Root Program requires "
             "serverAuth-only from 2027-03-15): the next renewal can silently break federation.",
             "Before renewal, confirm your CA still issues clientAuth, or move federation to a "
             "CA product that does."),
    # --- certificate: validity -------------------------------------------------------------
    CodeInfo("expired", C, "certificate",
             "A certificate of the validated path (the leaf always) is past its notAfter.",
             "Renew and install the certificate (and the current intermediates)."),
    CodeInfo("not-yet-valid", C, "certificate",
             "A certificate of the validated path (the leaf always) is before its notBefore.",
             "Check the server clock, or wait until the certificate's notBefore."),
    CodeInfo("chain-unused-expired", W, "certificate",
             "The server also sends an expired certificate the valid path does not need (an old "
             "cross-sign kept after a CA rollover, a stale intermediate in the bundle): peers "
             "that build their path through it fail.",
             "Remove the expired certificate from the chain the server sends (the certificate "
             "store or PEM bundle); keep only the current intermediates."),
    CodeInfo("expires-soon", W, "certificate",
             "The leaf expires within the warning threshold (critical within the critical one).",
             "Renew now; federation partners see the failure before you do."),
    # --- certificate: chain -----------------------------------------------------------------
    CodeInfo("chain-untrusted", C, "certificate",
             "The chain does not lead to a trusted root (Mozilla's roots unless --ca-file).",
             "Use a certificate from a public CA that federation partners trust."),
    CodeInfo("chain-client-auth-not-permitted", C, "certificate",
             "A CA certificate of the path restricts its EKU without Client Authentication: the "
             "chain is a valid TLS server chain, but peers that check EKU through the chain "
             "(OpenSSL: prosody, ejabberd, kamailio) refuse it as a client certificate, so "
             "mutual-TLS federation fails even when the leaf has clientAuth (a warning with "
             "--client-auth optional).",
             "Get the certificate from a CA hierarchy whose intermediates permit Client "
             "Authentication (public CAs are moving to serverAuth-only hierarchies in 2026; a "
             "private or dedicated federation CA may be needed)."),
    CodeInfo("chain-incomplete", C, "certificate",
             "The server does not send the intermediate(s) that link its certificate to a root.",
             "Install the CA's intermediate certificates on the server so it sends them."),
    CodeInfo("chain-order", W, "certificate",
             "The served chain is out of order (each certificate should be followed by its issuer).",
             "Serve the leaf first, then each issuer in turn."),
    CodeInfo("leaf-is-ca", C, "certificate",
             "The server's certificate is a CA certificate (basicConstraints CA:TRUE or keyUsage "
             "keyCertSign); TLS peers refuse a CA certificate as the end-entity certificate.",
             "Reissue an end-entity certificate (CA:FALSE, no keyCertSign) from the CA."),
    CodeInfo("leaf-profile-violation", W, "certificate",
             "The certificate chains to a trusted root but breaks the web PKI (CA/Browser Forum) "
             "end-entity profile, e.g. no authorityKeyIdentifier or a critical SAN beside a "
             "subject; strict verifiers (rustls/webpki, Python cryptography) refuse it, OpenSSL "
             "and Windows accept it. The reason is given.",
             "Reissue the certificate from a standard TLS server template."),
    CodeInfo("validity-fractional-seconds", W, "certificate",
             "The certificate's validity dates carry fractional seconds (RFC 5280 4.1.2.5.2 "
             "forbids them): OpenSSL and Windows accept it, strict parsers (Go, rustls, Python "
             "cryptography) refuse the whole certificate. fedscan judges its dates at the "
             "exact instant.",
             "Reissue from a CA that encodes whole seconds at the next renewal."),
    CodeInfo("serial-not-positive", INF, "certificate",
             "The certificate's serial number is zero or negative (RFC 5280 4.1.2.2); strict "
             "parsers (Go since 1.23, future Python cryptography) refuse it.",
             "Reissue from a CA that issues positive random serial numbers at the next renewal."),
    CodeInfo("self-signed", C, "certificate", "The certificate is self-signed.",
             "Replace it with a certificate from a public CA."),
    CodeInfo("weak-key", C, "certificate",
             "A key is too weak (RSA under 2048 bits, DSA, or an EC curve under 256 bits).",
             "Reissue with RSA 2048 or larger."),
    CodeInfo("weak-signature", C, "certificate",
             "A certificate of the path (other than a root's own self-signature) is signed with "
             "MD5 or SHA-1: OpenSSL 3 at its default level and current Windows refuse the chain. "
             "(A CSR's SHA-1 signature is a warning.)",
             "Reissue with SHA-256; for an intermediate, install the CA's current SHA-256 one."),
    CodeInfo("pss-signature", C, "certificate",
             "A signature is RSASSA-PSS, which Lync/SfB servers do not support.",
             "Reissue with a PKCS#1 v1.5 SHA-256 signature."),
    CodeInfo("no-crl-distribution-point", W, "certificate",
             "The leaf has no CRL distribution point; Lync/SfB require one to check revocation.",
             "Reissue from a CA that publishes a CRL distribution point."),
    CodeInfo("ecdsa-key", INF, "certificate",
             "The leaf key is ECDSA; older federation peers and some XMPP servers accept RSA only.",
             "Confirm every partner supports ECDSA, or use RSA 2048 for widest interoperability."),
    CodeInfo("no-certificate", C, "certificate", "The endpoint presented no certificate.",
             "Bind a certificate to the federation listener."),
    CodeInfo("certificate-unparseable", C, "certificate",
             "A presented certificate is not valid DER X.509.",
             "Reinstall the certificate from the CA's original files."),
    # --- offline inputs ------------------------------------------------------------------------
    CodeInfo("csr-signature-invalid", C, "csr", "The CSR's self-signature does not verify.",
             "Generate the request again."),
    CodeInfo("pfx-key-missing", C, "pfx", "The PFX holds no private key, so it cannot be installed.",
             "Export the certificate again with its private key."),
    CodeInfo("pfx-key-mismatch", C, "pfx", "The PFX's private key does not belong to its certificate.",
             "Export the matching certificate and key together."),
    # --- DNS discovery -------------------------------------------------------------------------
    CodeInfo("srv-missing", C, "dns",
             "The service's SRV record is not published (critical for SIP federation: partners "
             "cannot discover the domain).",
             "Publish the SRV record shown in the readiness report."),
    CodeInfo("srv-service-disabled", INF, "dns",
             "The SRV record's target is '.': the domain says the service is not offered.",
             "Nothing to do unless you mean to federate over this service."),
    CodeInfo("srv-fallback", INF, "dns",
             "No XMPP server SRV record: peers fall back to the domain itself on port 5269 "
             "(RFC 6120 3.2.2); fedscan scans it there when the domain has an address.",
             "Publish _xmpp-server._tcp if the XMPP service lives elsewhere."),
    CodeInfo("srv-target-outside-domain", C, "dns",
             "The SIP federation SRV target is not <host>.<SIP domain>; Lync/SfB peers refuse it "
             "(top-level suffix match).",
             "Point the SRV at a host inside the SIP domain (e.g. sip.<domain>)."),
    CodeInfo("srv-records-capped", W, "dns",
             "The SRV answer had more records than fedscan scans; the rest were ignored.",
             "Publish a sane number of SRV records."),
    CodeInfo("hosted-microsoft-365", INF, "dns",
             "The domain federates through Microsoft 365 (sipfed.online.lync.com); on-premises "
             "certificate rules do not apply.",
             "Nothing to do on-premises."),
    CodeInfo("target-unresolvable", C, "dns", "An SRV target has no A or AAAA record.",
             "Publish address records for the SRV target."),
    CodeInfo("domain-not-found", C, "dns",
             "The domain does not exist in DNS (NXDOMAIN for its own name): no peer can federate "
             "with it.",
             "Check the spelling (config, --domains-file); publish the domain if it is yours."),
    CodeInfo("nothing-to-scan", U, "dns",
             "None of the services asked for is published for the domain, so nothing was checked "
             "(UNKNOWN, never a silent OK).",
             "Scan the services the domain offers (--service), or publish the SRV records."),
    CodeInfo("dns-error", U, "dns",
             "DNS could not answer (SERVFAIL, timeout, malformed answer): nothing could be checked.",
             "Check the domain's name servers, or --nameserver."),
    CodeInfo("pool-certificate-mismatch", W, "dns",
             "Nodes behind one SRV target present different certificates: part of federation "
             "traffic sees the other one.",
             "Install the same, current certificate on every node of the pool."),
    # --- DANE (TLSA of SRV targets, RFC 6698 / 7671 / 7673) ---------------------------------------
    CodeInfo("dane-mismatch", C, "dane",
             "A DNSSEC-secure TLSA RRset is published for the endpoint and no usable record "
             "matches the served chain: DANE-validating peers refuse the connection (the usual "
             "cause: the certificate was renewed with a new key, the TLSA still names the old).",
             "Publish a TLSA record for the served key (fedscan plan --dane CERT prints it), "
             "wait two TTLs, then remove the stale one; next time publish first, then rotate."),
    CodeInfo("dane-insecure", W, "dane",
             "TLSA is published but the TLSA or SRV answer is not DNSSEC-secure: peers ignore it "
             "and authenticate by the Web PKI alone.",
             "Sign the zone(s) of the SRV record and of its target (and publish the DS), or "
             "remove the TLSA records."),
    CodeInfo("dane-partial", W, "dane",
             "Some TLSA records are unusable (unknown usage, selector or matching type, wrong "
             "digest length) and are skipped by peers.",
             "Fix or remove the records listed; prefer '3 1 1' (DANE-EE SPKI SHA2-256)."),
    CodeInfo("dane-ok", INF, "dane",
             "A DNSSEC-secure TLSA record matches the served chain (the message names which).",
             "Nothing to do; before the next renewal run fedscan cert NEW.pem --dane DOMAIN."),
    # --- connections ---------------------------------------------------------------------------
    CodeInfo("connect-refused", C, "connection", "The published endpoint refused the TCP connection.",
             "Check the service is running and the firewall forwards the port."),
    CodeInfo("connect-timeout", C, "connection",
             "No TCP connection within the deadline (filtered or down).",
             "Check the firewall and that the service listens on the published address."),
    CodeInfo("connect-error", C, "connection", "The TCP connection failed (unreachable, reset).",
             "Check routing and the service."),
    CodeInfo("handshake-timeout", C, "connection",
             "The peer accepted the connection but did not finish the exchange within the deadline.",
             "Check the service; a proxy or IPS may be holding the connection."),
    CodeInfo("tls-handshake-failed", C, "connection", "The TLS handshake failed (the alert is given).",
             "Check the TLS configuration of the listener."),
    CodeInfo("tls-name-unrecognized", C, "connection",
             "The server ended the handshake with the unrecognized_name alert: it has no "
             "certificate for the name fedscan asked for (SNI), which is the name federation "
             "peers ask for (the SRV target for SIP, the XMPP domain for XMPP).",
             "Bind a certificate covering that name to the listener, or make it the "
             "listener's default certificate."),
    CodeInfo("tls-legacy-only", C, "connection",
             "The best TLS version the server negotiates is below TLS 1.2; Microsoft 365 and "
             "current peers refuse it.",
             "Enable TLS 1.2 (and 1.3) on the server."),
    CodeInfo("client-certificate-required", W, "connection",
             "The server demands a client certificate (mutual TLS) and ended the handshake "
             "without one; rescan with --client-cert to see the rest.",
             "Nothing to fix if intended; scan with --client-cert/--client-key."),
    # --- acceptance: the partner's verdict on OUR certificate (--as-edge, --client-cert) ----
    CodeInfo("client-certificate-rejected", C, "acceptance",
             "The partner refused the certificate we presented with a fatal TLS alert (named, "
             "with what it usually means: unknown_ca, unsupported_certificate...), in the TLS "
             "1.2 handshake or right after a TLS 1.3 one.",
             "unknown_ca: send the intermediates and use a CA the partner trusts; "
             "unsupported_certificate: reissue with Client Authentication EKU; "
             "certificate_expired: renew."),
    CodeInfo("sip-options-refused", W, "acceptance",
             "The partner answered our SIP OPTIONS with 401/403/407/480 or 5xx (critical for "
             "403: it does not federate with our domain); ms-diagnostics code, reason and "
             "source are shown when the partner sent them.",
             "Ask the partner to allow our domain (federation allow list), or look the "
             "ms-diagnostics code up."),
    CodeInfo("sip-no-response", W, "acceptance",
             "The partner accepted our TLS connection but gave no final answer to OPTIONS within "
             "the deadline; some proxies drop OPTIONS, so this proves nothing by itself.",
             "Check the partner's logs for our OPTIONS, or test with a real federated message."),
    CodeInfo("xmpp-cert-auth-refused", C, "acceptance",
             "The XMPP partner did not accept our certificate for our domain: SASL EXTERNAL "
             "(XEP-0178) not offered or failed, or a stream error about us (critical without "
             "dialback; a warning when dialback is offered).",
             "Present a certificate from a CA the partner trusts, covering our XMPP domain, with "
             "Client Authentication EKU."),
    CodeInfo("client-certificate-no-client-auth", W, "acceptance",
             "The certificate we present has no Client Authentication EKU: partners that check "
             "the EKU (OpenSSL-based servers, SChannel) will refuse it.",
             "Reissue our Edge certificate with Client Authentication (1.3.6.1.5.5.7.3.2)."),
    CodeInfo("starttls-not-offered", C, "connection",
             "The XMPP server's stream features do not offer STARTTLS.",
             "Enable TLS for server-to-server connections."),
    CodeInfo("starttls-optional", INF, "connection",
             "The XMPP server offers STARTTLS without <required/>: a peer that does not ask for "
             "TLS may federate with it in plaintext (RFC 7590 asks servers to require TLS).",
             "Make TLS mandatory for server-to-server streams."),
    CodeInfo("starttls-refused", C, "connection", "The XMPP server answered <starttls/> with <failure/>.",
             "Check the server's TLS certificate configuration."),
    CodeInfo("stream-error", C, "connection", "The XMPP server closed the stream with an error.",
             "See the condition; host-unknown means the server does not serve this domain."),
    CodeInfo("protocol-error", C, "connection",
             "The peer broke the protocol (malformed, oversized or unexpected data).",
             "Check what listens on the port; it may not be the federation service."),
    CodeInfo("scan-error", U, "connection",
             "fedscan could not check this endpoint (a local problem, e.g. the client certificate).",
             "See the message."),
    # --- monitoring ----------------------------------------------------------------------------
    CodeInfo("suppression-expired", W, "monitoring",
             "A configured suppression has lapsed; the finding it hid is reported again.",
             "Fix the finding, or renew the suppression with a new until-date."),
)
del C, W, U, INF
