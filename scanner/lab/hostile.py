"""The hostile lab world: one lab domain per misbehaving peer, and what a scan must say of it.

Theory of this module
---------------------
A scanner talks to servers it does not control. Every misbehaviour fedscan promises to survive
is a :class:`~scanner.lab.listeners.Behaviour` (:mod:`scanner.lab.behaviours`, bytes from
:mod:`scanner.lab.wire`, certificates from :mod:`scanner.lab.hostile_pki`); here each
:class:`Case` puts one behind its own lab domain, so a real ``fedscan scan`` (DNS, connect,
negotiate, handshake, verify) reaches it and the tests assert the finding it earns.

The world is data: a :class:`~scanner.lab.zones.LabWorld` whose listeners carry behaviours,
with extra DNS records, DNS misbehaviours and refusing ports, served by
:func:`scanner.lab.run.run_lab` like every other lab world. The scale variant is in
:mod:`scanner.lab.hostile_scale`.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from scanner.findings import CODES, Severity, Status, worst
from scanner.lab.behaviours import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    HTTP_RESPONSE,
    INVALID_XML,
    NO_STARTTLS,
    OPTIONAL_STARTTLS,
    SIP_RESPONSE,
    SSH_BANNER,
    CloseOnAccept,
    Drip,
    DropWithoutClientCert,
    EndlessFeatures,
    FakeTls12Certificate,
    Features,
    InjectAfterProceed,
    RefuseStartTls,
    ResetMidHandshake,
    Scripted,
    SilentOnAccept,
    TlsSettings,
    stream_error_reply,
    xmpp_header,
)
from scanner.lab.hostile_pki import HostilePki, hostile_pki, malformed_der
from scanner.lab.listeners import (
    DEFAULT_BEHAVIOUR,
    Behaviour,
)
from scanner.lab.wire import HANDSHAKE_FAILURE_ALERT, WARNING_THEN_GARBAGE, server_hello_tls12, tls_record
from scanner.lab.zones import PORT_OF, SIP, XMPP, XMPPS, LabDomain, LabWorld, Listener, Srv
from scanner.xmpp import TLS_NS

HOSTILE_NET: Final = "127.77.60"
HOSTILE_SUFFIX: Final = "hostile.test"
SRV_FLOOD: Final = 500


# --- the hostile world -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile lab domain: what misbehaves, where, and what a scan must say."""

    label: str  # the domain is <label>.hostile.test
    kind: str  # "sip" | "xmpp" | "xmpps" | "dns"
    story: str
    codes: tuple[str, ...]  # the misbehaving endpoint's finding codes (DNS: the service's)
    behaviour: Behaviour = DEFAULT_BEHAVIOUR
    cert: str = "healthy"  # a HostilePki field: "healthy" | "long_chain" | "big"
    refused: bool = False

    @property
    def domain(self) -> str:
        return f"{self.label}.{HOSTILE_SUFFIX}"


def hostile_cases(pki: HostilePki | None = None) -> tuple[Case, ...]:
    """Every misbehaviour of issue 6, one lab domain each."""
    bad_der = malformed_der(pki.healthy_der) if pki else b"\x30\x00"
    drip_tls = tls_record(22, server_hello_tls12())
    return (
        # TCP
        Case("refused", "sip", "nothing listens on the published port", ("connect-refused",),
             refused=True),
        Case("close", "sip", "accepts, then closes without a byte", ("tls-handshake-failed",),
             CloseOnAccept()),
        Case("close-xmpp", "xmpp", "accepts the s2s connection, then closes",
             ("protocol-error",), CloseOnAccept()),
        Case("silent", "sip", "accepts, then never answers", ("handshake-timeout",),
             SilentOnAccept()),
        Case("reset", "sip", "resets the connection in the middle of the ServerHello",
             ("tls-handshake-failed",), ResetMidHandshake()),
        Case("drip", "sip", "a ServerHello at one byte per second", ("handshake-timeout",),
             Drip(drip_tls)),
        Case("drip-xmpp", "xmpp", "an XMPP stream header at one byte per second",
             ("handshake-timeout",), Drip(xmpp_header())),
        # TLS
        Case("garbage", "sip", "random bytes instead of a ServerHello", ("tls-handshake-failed",),
             Scripted(hashlib.sha512(b"garbage").digest() * 4)),
        Case("plaintext-sip", "sip", "plaintext SIP on the TLS port", ("tls-handshake-failed",),
             Scripted(SIP_RESPONSE)),
        Case("plaintext-http", "sip", "an HTTP server on the TLS port", ("tls-handshake-failed",),
             Scripted(HTTP_RESPONSE)),
        Case("alert", "sip", "answers the ClientHello with a handshake_failure alert",
             ("tls-handshake-failed",), Scripted(HANDSHAKE_FAILURE_ALERT)),
        Case("mutual-tls", "sip", "demands a client certificate (mutual TLS)",
             ("client-certificate-required",), TlsSettings(require_client_cert=True)),
        Case("mutual-tls-drop", "sip", "requires a client certificate, says so by closing (no alert)",
             ("client-certificate-required",), DropWithoutClientCert()),
        Case("mutual-tls-reset", "sip", "requires a client certificate, says so by resetting",
             ("client-certificate-required",), DropWithoutClientCert(reset=True)),
        Case("long-chain", "sip", "serves a chain of 100 certificates", ("chain-untrusted",),
             cert="long_chain"),
        Case("big-cert", "sip", "serves a certificate of over 1 MB", ("tls-handshake-failed",),
             cert="big"),
        Case("bad-der", "sip", "serves a certificate that is not valid DER",
             ("certificate-unparseable", "tls-handshake-failed"), FakeTls12Certificate([bad_der])),
        Case("unknown-name", "sip", "has no certificate for the name asked (SNI): unrecognized_name",
             ("tls-name-unrecognized",), TlsSettings(reject_sni=True)),
        Case("unknown-name-xmpp", "xmpp", "after STARTTLS, unrecognized_name for the XMPP domain",
             ("tls-name-unrecognized",), TlsSettings(reject_sni=True)),
        Case("warning-alert", "sip", "a warning-level unrecognized_name, then garbage",
             ("tls-handshake-failed",), Scripted(WARNING_THEN_GARBAGE)),
        Case("tls10", "sip", "speaks TLS 1.0 only", ("tls-legacy-only",),
             TlsSettings(maximum=ssl.TLSVersion.TLSv1)),
        Case("garbage-xmpps", "xmpps", "garbage on the XEP-0368 direct TLS port",
             ("tls-handshake-failed",), Scripted(b"\x00" * 64)),
        # XMPP
        Case("no-starttls", "xmpp", "stream features without STARTTLS", ("starttls-not-offered",),
             Features(NO_STARTTLS)),
        Case("starttls-optional", "xmpp", "offers STARTTLS without <required/>",
             ("starttls-optional",), Features(OPTIONAL_STARTTLS)),
        Case("starttls-failure", "xmpp", "answers <starttls/> with <failure/>",
             ("starttls-refused",), RefuseStartTls()),
        Case("host-unknown", "xmpp", "does not serve the domain: <host-unknown/>",
             ("stream-error",), Scripted(stream_error_reply("host-unknown", "not served here"))),
        Case("policy-violation", "xmpp", "closes the stream with <policy-violation/>",
             ("stream-error",), Scripted(stream_error_reply("policy-violation", "go away"))),
        Case("no-features", "xmpp", "sends its stream header but never any features",
             ("handshake-timeout",), Scripted(xmpp_header())),
        Case("unterminated", "xmpp", "starts <stream:features> and never finishes it",
             ("handshake-timeout",), Features(b"<stream:features><starttls xmlns='" + TLS_NS.encode()
                                              + b"'>")),
        Case("oversized", "xmpp", "stream features that never end (over the 64 KiB cap)",
             ("protocol-error",), EndlessFeatures()),
        Case("laughs", "xmpp", "a billion-laughs entity bomb", ("protocol-error",),
             Scripted(BILLION_LAUGHS)),
        Case("xxe", "xmpp", "an external entity (file:///etc/passwd)", ("protocol-error",),
             Scripted(EXTERNAL_ENTITY)),
        Case("bad-xml", "xmpp", "mismatched tags", ("protocol-error",), Scripted(INVALID_XML)),
        Case("ssh", "xmpp", "an SSH server on the XMPP port", ("protocol-error",),
             Scripted(SSH_BANNER)),
        Case("inject", "xmpp", "plaintext injected after <proceed/>", ("protocol-error",),
             InjectAfterProceed()),
        # DNS
        Case("servfail", "dns", "the SIP SRV lookup is answered SERVFAIL", ("dns-error",)),
        Case("dns-timeout", "dns", "the SIP SRV lookup is never answered", ("dns-error",)),
        Case("truncated", "dns", "UDP answers are truncated: the resolver retries over TCP", ()),
        Case("srv-flood", "dns", "500 SRV records for one name", ("srv-records-capped",)),
        Case("cname-loop", "dns", "the SRV name is a CNAME loop", ("dns-error",)),
        Case("no-address", "dns", "the SRV target has no A or AAAA record",
             ("target-unresolvable",)),
        Case("xn--bcher-kva", "dns", "an IDN domain (bücher), asked as U-label, upper case, with dot",
             ()),
    )


HEALTHY_DOMAIN: Final = f"healthy.{HOSTILE_SUFFIX}"
IDN_UNICODE: Final = f"BÜCHER.{HOSTILE_SUFFIX.upper()}."  # what a user may type


def _names(cases: Sequence[Case]) -> list[str]:
    names = [f"sip.{HEALTHY_DOMAIN}", HEALTHY_DOMAIN]
    for case in cases:
        names += [f"sip.{case.domain}", case.domain]
    return names


def hostile_world(net_octet_base: int = 10) -> LabWorld:
    """Each misbehaviour behind its own lab domain, plus a healthy domain to scan alongside.

    SIP and DNS cases publish only the SIP SRV record; XMPP and XMPPS cases publish a healthy
    SIP SRV record (target ``sip.<domain>``) and a hostile XMPP one (target ``xmpp.<domain>``).
    So a default three-service scan reports the misbehaving endpoint's codes plus the
    informational ``srv-*`` notes listed in each ``LabDomain``.
    """
    pki = hostile_pki(_names(hostile_cases()))
    base = net_octet_base
    listeners = [
        Listener("healthy-sip", "sip", base, pki.healthy),
        Listener("healthy-xmpp", "xmpp", base, pki.healthy, (HEALTHY_DOMAIN,)),
    ]
    srv = [Srv(SIP + HEALTHY_DOMAIN, f"sip.{HEALTHY_DOMAIN}", "healthy-sip"),
           Srv(XMPP + HEALTHY_DOMAIN, f"sip.{HEALTHY_DOMAIN}", "healthy-xmpp")]
    hosts: dict[str, tuple[int, ...]] = {f"sip.{HEALTHY_DOMAIN}": (base,)}
    behaviours: dict[str, Behaviour] = {}
    refused: set[str] = set()
    records: dict[tuple[str, str], list[str]] = {}
    dns_behaviours: dict[str, str] = {}
    domains = [LabDomain(HEALTHY_DOMAIN, "a healthy Edge scanned alongside", Status.OK,
                         ("srv-missing",))]
    octet = base
    for case in hostile_cases(pki):
        d, sip_target = case.domain, f"sip.{case.domain}"
        if case.kind == "dns":
            _dns_case(case, sip_target, srv, hosts, records, dns_behaviours, base)
            notes: tuple[str, ...] = ("srv-fallback", "srv-missing")
        else:
            octet += 1
            key = f"{case.label}-{case.kind}"
            listeners.append(Listener(key, case.kind, octet, getattr(pki, case.cert),
                                      (d,) if case.kind == "xmpp" else ()))
            behaviours[key] = case.behaviour
            if case.refused:
                refused.add(key)
            if case.kind == "sip":
                srv.append(Srv(SIP + d, sip_target, key))
                hosts[sip_target] = (octet,)
                notes = ("srv-fallback", "srv-missing")
            else:
                prefix = XMPP if case.kind == "xmpp" else XMPPS
                srv += [Srv(prefix + d, f"xmpp.{d}", key), Srv(SIP + d, sip_target, "healthy-sip")]
                hosts[f"xmpp.{d}"] = (octet,)
                hosts[sip_target] = (base,)
                notes = ("srv-missing",) if case.kind == "xmpp" else ("srv-fallback",)
        codes = tuple(sorted((*case.codes, *notes)))
        domains.append(LabDomain(d, case.story, _status(case.codes), codes))
    return LabWorld(
        tuple(listeners), tuple(srv), hosts, tuple(domains),
        dns_behaviours=dns_behaviours, behaviours=behaviours, refused=frozenset(refused),
        records={k: tuple(v) for k, v in records.items()},
    )


def _status(codes: Sequence[str]) -> Status:
    return worst(_SEVERITY_STATUS[CODES[c].severity] for c in codes)


_SEVERITY_STATUS: Final = {Severity.INFO: Status.OK, Severity.WARNING: Status.WARNING,
                           Severity.UNKNOWN: Status.UNKNOWN, Severity.CRITICAL: Status.CRITICAL}


def _dns_case(case: Case, target: str, srv: list[Srv], hosts: dict[str, tuple[int, ...]],
              records: dict[tuple[str, str], list[str]], behaviours: dict[str, str],
              healthy_octet: int) -> None:
    """DNS data for one DNS case; the SRV target (when there is one) is the healthy Edge."""
    srv_name = SIP + case.domain
    label = case.label
    if label in ("servfail", "dns-timeout"):
        srv.append(Srv(srv_name, target, "healthy-sip"))
        behaviours[srv_name] = "servfail" if label == "servfail" else "timeout"
    elif label == "truncated":
        srv.append(Srv(srv_name, target, "healthy-sip"))
        behaviours[srv_name] = "truncate"
    elif label == "srv-flood":  # distinct rdata (dnspython merges duplicates), one endpoint
        records[(srv_name, "SRV")] = [
            f"{i % 5} {i // 5} {PORT_OF}healthy-sip {target}." for i in range(SRV_FLOOD)
        ]
    elif label == "cname-loop":
        loop = f"loop.{case.domain}"
        records[(srv_name, "CNAME")] = [loop + "."]
        records[(loop, "CNAME")] = [srv_name + "."]
        return
    elif label == "no-address":
        srv.append(Srv(srv_name, target, "healthy-sip"))
        records[(target, "TXT")] = ['"exists, but has no address"']
        return
    else:
        srv.append(Srv(srv_name, target, "healthy-sip"))
    hosts[target] = (healthy_octet,)
