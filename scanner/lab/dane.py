"""The DANE lab: signed zones, TLSA records, and the situations a DANE check must tell apart.

Pure data plus one helper. TLSA rdata in the world names certificates, not digests:
``"3 1 1 tlsa-of:edge:0"`` becomes the SHA2-256 of the SPKI of certificate 0 (the leaf) of
``edge.pem`` when the lab starts, so the records always follow the lab's certificates and
nothing is hard-coded. Owners may carry ``port-of:KEY`` (``_port-of:KEY._tcp.<target>``).

The stories (one lab domain each): a matching DANE-EE and DANE-TA record; a certificate
renewed with a new key while TLSA still names the old one; a record set with unusable
records beside a good one; TLSA in an unsigned zone; a TLSA RRset with a broken signature
(the validator answers SERVFAIL); a signed zone without TLSA; the XMPP no-SRV fallback,
whose TLSA lives at ``_5269._tcp.<domain>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from scanner.findings import Status
from scanner.lab.zones import SIP, XMPP, LabDomain, LabWorld, Listener, Srv
from scanner.tlsa import association, spki_der

TLSA_OF = "tlsa-of:"


def expand_tlsa(text: str, chain: Callable[[str], Path]) -> str:
    """``U S M tlsa-of:CERT:INDEX`` -> ``U S M <hex>`` from the lab certificate ``CERT``
    (``chain`` maps a stem to its PEM file: :meth:`scanner.lab.pki.LabPki.chain`)."""
    words = text.split()
    if len(words) != 4 or not words[3].startswith(TLSA_OF):
        return text
    name, _, index = words[3][len(TLSA_OF):].rpartition(":")
    cert = x509.load_pem_x509_certificates(chain(name).read_bytes())[int(index)]
    selector, mtype = int(words[1]), int(words[2])
    data = spki_der(cert) if selector == 1 else cert.public_bytes(Encoding.DER)
    return " ".join([*words[:3], association(data, mtype).hex()])


def tlsa_owner_of(listener: str, target: str) -> str:
    return f"_port-of:{listener}._tcp.{target}"


def dane_world() -> LabWorld:
    listeners = (
        Listener("contoso-sip", "sip", 10, "edge"),
        Listener("contoso-xmpp", "xmpp", 10, "edge", ("contoso.test",)),
        Listener("fabrikam-sip", "sip", 11, "edge"),
        Listener("fabrikam-xmpp", "xmpp", 11, "edge", ("fabrikam.test",)),
        Listener("northwind-sip", "sip", 12, "lab/northwind"),
        Listener("tailspin-sip", "sip", 13, "lab/tailspin"),
        Listener("proseware-sip", "sip", 14, "lab/proseware"),
        Listener("fourthcoffee-xmpp", "xmpp", 15, "lab/fourthcoffee", ("fourthcoffee.test",), 5269),
        Listener("fourthcoffee-sip", "sip", 16, "lab/fourthcoffee"),
    )
    srv = (
        Srv(SIP + "contoso.test", "sip.contoso.test", "contoso-sip"),
        Srv(XMPP + "contoso.test", "sip.contoso.test", "contoso-xmpp"),
        Srv(SIP + "fabrikam.test", "sip.fabrikam.test", "fabrikam-sip"),
        Srv(XMPP + "fabrikam.test", "sip.fabrikam.test", "fabrikam-xmpp"),
        Srv(SIP + "northwind.test", "sip.northwind.test", "northwind-sip"),
        Srv(SIP + "tailspin.test", "sip.tailspin.test", "tailspin-sip"),
        Srv(SIP + "proseware.test", "sip.proseware.test", "proseware-sip"),
        Srv(SIP + "fourthcoffee.test", "sip.fourthcoffee.test", "fourthcoffee-sip"),
    )
    hosts: dict[str, tuple[int, ...]] = {
        "sip.contoso.test": (10,),
        "sip.fabrikam.test": (11,),
        "sip.northwind.test": (12,),
        "sip.tailspin.test": (13,),
        "sip.proseware.test": (14,),
        "fourthcoffee.test": (15,),
        "sip.fourthcoffee.test": (16,),
    }
    tailspin_tlsa = tlsa_owner_of("tailspin-sip", "sip.tailspin.test")
    records: dict[tuple[str, str], tuple[str, ...]] = {
        (tlsa_owner_of("contoso-sip", "sip.contoso.test"), "TLSA"): ("3 1 1 tlsa-of:edge:0",),
        (tlsa_owner_of("contoso-xmpp", "sip.contoso.test"), "TLSA"): ("2 0 1 tlsa-of:edge:1",),
        # renewed with a new key; the TLSA still names the key of the previous certificate
        (tlsa_owner_of("fabrikam-sip", "sip.fabrikam.test"), "TLSA"): ("3 1 1 tlsa-of:lab/edge-previous:0",),
        (tlsa_owner_of("fabrikam-xmpp", "sip.fabrikam.test"), "TLSA"): (
            "3 1 1 tlsa-of:edge:0",
            "3 1 9 00112233445566778899aabbccddeeff00112233",  # no such matching type
            "7 1 1 tlsa-of:edge:0",  # no such usage
        ),
        (tlsa_owner_of("northwind-sip", "sip.northwind.test"), "TLSA"): ("3 1 1 tlsa-of:lab/northwind:0",),
        (tailspin_tlsa, "TLSA"): ("3 1 1 tlsa-of:lab/tailspin:0",),
        ("_5269._tcp.fourthcoffee.test", "TLSA"): ("3 1 1 tlsa-of:lab/fourthcoffee:0",),
        (tlsa_owner_of("fourthcoffee-sip", "sip.fourthcoffee.test"), "TLSA"): (
            "3 0 2 tlsa-of:lab/fourthcoffee:0",
        ),
    }
    ok, warn, crit = Status.OK, Status.WARNING, Status.CRITICAL
    domains = (
        LabDomain("contoso.test", "DANE-EE (SIP) and DANE-TA (XMPP) records match", ok,
                  ("dane-ok", "dane-ok", "srv-missing")),
        LabDomain("fabrikam.test", "renewed with a new key, TLSA names the old one (SIP); "
                  "unusable records beside a good one (XMPP)", crit,
                  ("dane-mismatch", "dane-ok", "dane-partial", "srv-missing")),
        LabDomain("northwind.test", "TLSA in an unsigned zone: peers ignore it", warn,
                  ("dane-insecure", "srv-fallback", "srv-missing")),
        LabDomain("tailspin.test", "TLSA with a broken signature: the validator says SERVFAIL",
                  crit, ("dns-error", "eku-client-auth-missing", "srv-fallback", "srv-missing")),
        LabDomain("proseware.test", "signed zone, no TLSA: DANE not in use", ok,
                  ("srv-fallback", "srv-missing")),
        LabDomain("fourthcoffee.test", "XMPP without SRV: TLSA at _5269._tcp.<domain>", ok,
                  ("dane-ok", "dane-ok", "srv-fallback", "srv-missing")),
    )
    signed = ("contoso.test", "fabrikam.test", "tailspin.test", "proseware.test", "fourthcoffee.test")
    return LabWorld(listeners, srv, hosts, domains, records=records, signed=signed,
                    bogus=(tailspin_tlsa,))
