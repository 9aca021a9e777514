"""DANE lookups: TLSA (and the SRV answer's DNSSEC status) from a resolver the user trusts.

Theory of this module
---------------------
The Edge of :mod:`scanner.dane`: it asks, the Core judges. The rules it keeps:

* The AD bit means something only from a resolver the administrator declares validating
  (``--dnssec-resolver``, as Postfix's ``smtp_dns_support_level = dnssec`` and Exim's
  ``dns_dnssec_ok`` do): it is never read from the resolver the scan discovers with. Queries
  carry DO (``want_dnssec``) and AD (RFC 6840 5.7) and go to that one resolver, UDP with TCP
  fallback on truncation.
* SERVFAIL from a validating resolver is what a bogus signature looks like from outside:
  ``Security.BOGUS``, which the judge turns into ``dns-error`` (UNKNOWN), never a pass.
  A timeout, a REFUSED or a malformed answer is ``Security.ERROR``, "could not ask".
* RFC 7673: the TLSA name is ``_<port>._tcp.<SRV target>``; TLSA binds peers only when the SRV
  answer is secure too, so the SRV question is asked again here and its AD bit kept. With no
  SRV record (the XMPP fallback to ``<domain>:5269``) there is no SRV to be secure.
* Each question is asked once per scan (pool nodes share a target, one Edge serves several
  domains); concurrent askers wait for the first answer. Lookups never raise.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import trio

from scanner.discovery import SingleFlight
from scanner.srv import SERVICES, Endpoint, srv_name
from scanner.tlsa import Security, TlsaAnswer, TlsaRecord, tlsa_owner

DEFAULT_TIMEOUT = 5.0
EDNS_PAYLOAD = 1232


class _Reply:
    """One answer from the validating resolver: its security and the rdata texts asked for."""

    def __init__(self, security: Security, rcode: int = 0, texts: tuple[str, ...] = (),
                 reason: str = "") -> None:
        self.security = security
        self.rcode = rcode
        self.texts = texts
        self.reason = reason


class DaneResolver:
    """Asks one validating resolver; caches every (name, type) for the scan's lifetime."""

    def __init__(self, address: tuple[str, int], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host, self.port = address
        self.timeout = timeout
        self._flights: SingleFlight[tuple[str, str], _Reply] = SingleFlight()  # once per scan

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def answer_for(self, endpoint: Endpoint) -> TlsaAnswer:
        """The TLSA answer for an endpoint found by discovery (RFC 7673)."""
        spec = SERVICES[endpoint.service]
        srv_owner = srv_name(endpoint.domain, spec)
        srv = await self.ask(srv_owner, "SRV")
        has_srv = bool(srv.texts) or srv.security in (Security.BOGUS, Security.ERROR)
        name = tlsa_owner(endpoint.port, endpoint.target)
        return await self.tlsa(name, srv_owner if has_srv else None,
                               srv.security if has_srv else None)

    async def tlsa(self, name: str, srv_owner: str | None = None,
                   srv_security: Security | None = None) -> TlsaAnswer:
        reply = await self.ask(name, "TLSA")
        if srv_security in (Security.BOGUS, Security.ERROR):  # the SRV itself failed validation
            srv = await self.ask(srv_owner or "", "SRV")
            return TlsaAnswer(name, srv_security, (), srv_owner, srv_security, self.label,
                              f"SRV {srv_owner}: {srv.reason}")
        records: list[TlsaRecord] = []
        for text in reply.texts:
            try:
                records.append(TlsaRecord.parse(text))
            except ValueError:
                continue  # dnspython already parsed it from wire; cannot happen in practice
        records.sort(key=lambda r: (r.usage, r.selector, r.mtype, r.data))  # DNS order is arbitrary
        return TlsaAnswer(name, reply.security, tuple(records), srv_owner, srv_security,
                          self.label, reply.reason)

    async def ask(self, name: str, rdtype: str) -> _Reply:
        name = name.lower().rstrip(".")
        return await self._flights.get((name, rdtype), lambda: self._query(name, rdtype))

    async def _query(self, name: str, rdtype_text: str) -> _Reply:
        rdtype = dns.rdatatype.from_text(rdtype_text)
        try:
            query = dns.message.make_query(dns.name.from_text(name), rdtype, want_dnssec=True,
                                           payload=EDNS_PAYLOAD)
        except dns.exception.DNSException as exc:
            return _Reply(Security.ERROR, reason=f"{type(exc).__name__}: {exc}")
        query.flags |= dns.flags.AD
        try:
            with trio.fail_after(self.timeout):
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, self.host, timeout=self.timeout, port=self.port
                )
        except (trio.TooSlowError, dns.exception.Timeout):
            return _Reply(Security.ERROR, reason=f"no answer from {self.label} within {self.timeout:g} s")
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            return _Reply(Security.ERROR, reason=f"{type(exc).__name__}: {exc}")
        rcode = response.rcode()
        if rcode == dns.rcode.SERVFAIL:
            return _Reply(Security.BOGUS, rcode, reason=(
                f"SERVFAIL from the validating resolver {self.label} (bogus DNSSEC signatures, "
                "or the zone could not be validated)"))
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return _Reply(Security.ERROR, rcode,
                          reason=f"{dns.rcode.to_text(rcode)} from {self.label}")
        security = Security.SECURE if response.flags & dns.flags.AD else Security.INSECURE
        texts = tuple(rd.to_text() for rrset in response.answer if rrset.rdtype == rdtype
                      for rd in rrset)
        return _Reply(security, rcode, texts)


async def published_tlsa(
    resolver: DaneResolver, domains: Sequence[str], services: Sequence[str]
) -> list[TlsaAnswer]:
    """The TLSA answers of every SRV target of ``domains`` (and the XMPP fallback), for a
    renewal check: everything is asked of the validating resolver, SRV included."""
    names: dict[str, TlsaAnswer] = {}

    async def one(domain: str, service: str) -> None:
        spec = SERVICES[service]
        owner = srv_name(domain, spec)
        srv = await resolver.ask(owner, "SRV")
        targets: list[tuple[int, str]] = []
        for text in srv.texts:
            fields = text.split()
            if fields[3] != ".":
                targets.append((int(fields[2]), fields[3].rstrip(".").lower()))
        if not srv.texts and srv.security not in (Security.BOGUS, Security.ERROR):
            if spec.fallback_port is not None:
                names.setdefault(tlsa_owner(spec.fallback_port, domain),
                                 await resolver.tlsa(tlsa_owner(spec.fallback_port, domain)))
            return
        for srv_port, target in targets:
            name = tlsa_owner(srv_port, target)
            names.setdefault(name, await resolver.tlsa(name, owner, srv.security))

    async with trio.open_nursery() as nursery:
        for domain in domains:
            for service in services:
                nursery.start_soon(one, domain, service)
    return [names[n] for n in sorted(names)]
