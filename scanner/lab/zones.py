"""The lab's world: which domains exist, what DNS says about them, what each listener serves.

Pure data. Each lab domain is one federation situation an administrator meets in real life;
``expect`` says what a scan of it must find (the end-to-end tests assert exactly this, and
``fedscan lab`` prints it). Addresses live in 127.0.0.0/8 under a configurable /24 so that two
labs can run side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scanner.findings import Status

if TYPE_CHECKING:
    from scanner.lab.listeners import Behaviour

@dataclass(frozen=True)
class Listener:
    """One TCP listener. ``port`` 0 = ephemeral (SRV records carry the bound port)."""

    key: str  # name used to refer to its bound port in records
    kind: str  # "sip" | "xmpp" | "xmpps"
    host: int  # last octet in the lab's /24; 256 and up: further /24s (run.lab_address)
    cert: str  # a stem of scanner.lab.pki.LAB_CERTS (or an absolute path), without ".pem"
    xmpp_domains: tuple[str, ...] = ()
    port: int = 0
    same_port_as: str | None = None  # pool nodes share one SRV record, hence one port


@dataclass(frozen=True)
class Srv:
    name: str  # owner, e.g. "_sipfederationtls._tcp.contoso.test"
    target: str  # FQDN or "."
    listener: str | None  # key of the listener whose port the record carries
    port: int = 0  # used when listener is None


@dataclass(frozen=True)
class LabDomain:
    domain: str
    story: str
    status: Status  # the overall status a partner-view scan must report
    codes: tuple[str, ...]  # the finding codes it must report (sorted, with repeats)


@dataclass(frozen=True)
class LabWorld:
    listeners: tuple[Listener, ...]
    srv: tuple[Srv, ...]
    hosts: dict[str, tuple[int, ...]]  # FQDN -> last octets of its A records
    domains: tuple[LabDomain, ...]
    ipv6_hosts: frozenset[str] = field(default_factory=frozenset)  # also AAAA ::1
    dns_behaviours: Mapping[str, str] = field(default_factory=dict)  # owner -> "timeout", ...
    # what the hostile and scale worlds add: how a listener misbehaves (by key), listeners
    # whose port is bound but never listens (refused), listeners the kernel accepts for but
    # nobody ever reads (silent: costs the lab nothing, however many), and extra DNS data
    # whose rdata may say "port-of:KEY" for that listener's bound port
    behaviours: Mapping[str, Behaviour] = field(default_factory=dict)
    refused: frozenset[str] = field(default_factory=frozenset)
    silent: frozenset[str] = field(default_factory=frozenset)  # accept TCP, never answer
    records: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    dns_delay: float = 0.0  # seconds every DNS answer is held back (a resolver's RTT)
    # DNSSEC (the DANE world): zones to sign, owners whose signatures are broken on purpose;
    # owners may say "port-of:KEY" too, and TLSA rdata "tlsa-of:CERT:INDEX" (see lab/dane.py)
    signed: tuple[str, ...] = ()
    bogus: tuple[str, ...] = ()


PORT_OF = "port-of:"


# The lab's own consolidated Edge, declared as `fedscan scan` options: every endpoint of
# contoso.test and fabrikam.test must cover all of these namespaces.
OWN_EDGE_DOMAINS = ("contoso.test", "fabrikam.test")
OWN_EDGE_ARGS = (
    "--sip-domain",
    "contoso.test",
    "--sip-domain",
    "fabrikam.test",
    "--xmpp-domain",
    "contoso.test",
    "--xmpp-domain",
    "fabrikam.test",
    "--extra-san",
    "webcon.contoso.test",
)

SIP = "_sipfederationtls._tcp."
XMPP = "_xmpp-server._tcp."
XMPPS = "_xmpps-server._tcp."


def default_world() -> LabWorld:
    edge = "edge"
    listeners = (
        # the healthy consolidated Edge of contoso.test + fabrikam.test (one certificate)
        Listener("edge-sip", "sip", 10, edge),
        Listener("edge-xmpp", "xmpp", 10, edge, ("contoso.test", "fabrikam.test")),
        Listener("edge-xmpps", "xmpps", 10, edge),
        Listener("northwind-sip", "sip", 11, "lab/northwind"),
        Listener("northwind-xmpp", "xmpp", 11, "lab/northwind", ("northwind.test",)),
        Listener("tailspin-sip", "sip", 12, "lab/tailspin"),
        Listener("tailspin-xmpp", "xmpp", 12, "lab/tailspin", ("tailspin.test",)),
        Listener("litware-sip", "sip", 13, "lab/litware"),
        Listener("litware-xmpp", "xmpp", 13, "lab/litware", ("litware.test",)),
        # a two-node pool: node .14 current, node .15 still on last year's certificate
        Listener("adatum-sip", "sip", 14, "lab/adatum"),
        Listener("adatum-sip-stale", "sip", 15, "lab/adatum-stale", same_port_as="adatum-sip"),
        Listener("wingtip-sip", "sip", 16, "lab/wingtip"),
        Listener("wingtip-xmpp", "xmpp", 16, "lab/wingtip", ("wingtip.test",)),
        Listener("fineartschool-xmpp", "xmpp", 17, "lab/fineartschool", ("fineartschool.test",)),
        Listener("proseware-sip", "sip", 18, "lab/proseware"),
        Listener("fourthcoffee-sip", "sip", 19, "lab/fourthcoffee"),
        Listener("fourthcoffee-xmpp", "xmpp", 20, "lab/fourthcoffee", ("fourthcoffee.test",), 5269),
    )
    srv = (
        Srv(SIP + "contoso.test", "sip.contoso.test", "edge-sip"),
        Srv(XMPP + "contoso.test", "sip.contoso.test", "edge-xmpp"),
        Srv(XMPPS + "contoso.test", "sip.contoso.test", "edge-xmpps"),
        Srv(SIP + "fabrikam.test", "sip.fabrikam.test", "edge-sip"),
        Srv(XMPP + "fabrikam.test", "sip.fabrikam.test", "edge-xmpp"),
        Srv(SIP + "northwind.test", "sip.northwind.test", "northwind-sip"),
        Srv(XMPP + "northwind.test", "sip.northwind.test", "northwind-xmpp"),
        Srv(SIP + "tailspin.test", "sip.tailspin.test", "tailspin-sip"),
        Srv(XMPP + "tailspin.test", "sip.tailspin.test", "tailspin-xmpp"),
        Srv(SIP + "litware.test", "sip.litware.test", "litware-sip"),
        Srv(XMPP + "litware.test", "sip.litware.test", "litware-xmpp"),
        Srv(SIP + "adatum.test", "sip.adatum.test", "adatum-sip"),
        Srv(XMPP + "adatum.test", ".", None),
        Srv(SIP + "wingtip.test", "sip.wingtip-hosting.test", "wingtip-sip"),
        Srv(XMPP + "wingtip.test", "sip.wingtip-hosting.test", "wingtip-xmpp"),
        Srv(XMPP + "fineartschool.test", "sip.fineartschool.test", "fineartschool-xmpp"),
        Srv(SIP + "proseware.test", "sip.proseware.test", "proseware-sip"),
        Srv(XMPP + "proseware.test", ".", None),
        Srv(SIP + "fourthcoffee.test", "sip.fourthcoffee.test", "fourthcoffee-sip"),
        Srv(SIP + "m365.test", "sipfed.online.lync.com", None, 5061),
    )
    hosts = {
        "sip.contoso.test": (10,),
        "sip.fabrikam.test": (10,),
        "sip.northwind.test": (11,),
        "sip.tailspin.test": (12,),
        "sip.litware.test": (13,),
        "sip.adatum.test": (14, 15),
        "sip.wingtip-hosting.test": (16,),
        "sip.fineartschool.test": (17,),
        "sip.proseware.test": (18,),
        "sip.fourthcoffee.test": (19,),
        "fourthcoffee.test": (20,),
    }
    ok, crit = Status.OK, Status.CRITICAL
    domains = (
        LabDomain("contoso.test", "healthy consolidated Edge (SIP, XMPP, XMPPS)", ok, ()),
        LabDomain("fabrikam.test", "second SIP/XMPP domain on the same Edge", ok, ("srv-missing",)),
        LabDomain(
            "northwind.test",
            "XMPP namespace missing from the certificate",
            crit,
            ("san-missing", "srv-missing"),
        ),
        LabDomain(
            "tailspin.test",
            "serverAuth-only certificate (a routine renewal)",
            crit,
            ("eku-client-auth-missing", "eku-client-auth-missing", "srv-missing"),
        ),
        LabDomain("litware.test", "expired certificate", crit, ("expired", "expired", "srv-missing")),
        LabDomain(
            "adatum.test",
            "two-node pool, one node on a stale certificate",
            crit,
            ("expired", "pool-certificate-mismatch", "srv-missing", "srv-service-disabled"),
        ),
        LabDomain(
            "wingtip.test",
            "SIP SRV target outside the SIP domain",
            crit,
            ("srv-missing", "srv-target-outside-domain"),
        ),
        LabDomain("fineartschool.test", "no SIP federation SRV record", crit, ("srv-missing", "srv-missing")),
        LabDomain(
            "proseware.test",
            "XMPP switched off with a '.' SRV target",
            ok,
            ("srv-missing", "srv-service-disabled"),
        ),
        LabDomain(
            "fourthcoffee.test",
            "no XMPP SRV: peers fall back to the domain on 5269",
            ok,
            ("srv-fallback", "srv-missing"),
        ),
        LabDomain(
            "m365.test",
            "federation hosted in Microsoft 365",
            ok,
            ("hosted-microsoft-365", "srv-fallback", "srv-missing"),
        ),
    )
    # partners judging *our* certificate (acceptance scans, scanner/lab/partners.py)
    from scanner.lab.partners import (
        partner_behaviours,
        partner_hosts,
        partner_listeners,
        partner_srv,
    )

    hosts.update(partner_hosts())
    # blackhole.test is not a lab domain to scan: its SRV queries are never answered (tests of
    # interruption and DNS deadlines use it)
    silent = {SIP + "blackhole.test": "timeout"}
    # the partners are served but not among the domains a partner-view scan of the lab covers:
    # they are about *our* certificate, and `fedscan lab` lists them in a section of their own
    return LabWorld((*listeners, *partner_listeners()), (*srv, *partner_srv()), hosts,
                    domains, frozenset({"sip.contoso.test"}), silent,
                    behaviours=partner_behaviours())


#: The world of public chains as they are really served (issue 11), by lab domain name and
#: host octet: one SIP listener each (XMPP switched off with '.'), each certificate breaking
#: one rule of the verifier. Its own world, so that the default lab's stories and counts stay.
REAL_CHAINS: Mapping[str, int] = {
    "relecloud": 21,
    "woodgrove": 22,
    "treyresearch": 23,
    "lucerne": 24,
    "cohovineyard": 25,
    "alpineskihouse": 26,
}
REAL_CHAINS_NET = "127.77.12"


def real_chains_world() -> LabWorld:
    stories = {
        "relecloud": ("leaf with both EKUs under a serverAuth-only intermediate",
                      Status.CRITICAL, ("chain-client-auth-not-permitted",)),
        "woodgrove": ("valid chain plus an expired cross-signed root still served",
                      Status.WARNING, ("chain-unused-expired",)),
        "treyresearch": ("intermediate signed with SHA-1", Status.CRITICAL, ("weak-signature",)),
        "lucerne": ("a CA certificate served as the leaf", Status.CRITICAL, ("leaf-is-ca",)),
        "cohovineyard": ("notAfter with fractional seconds, 0.75 s past at the tests' time",
                         Status.CRITICAL, ("expired", "validity-fractional-seconds")),
        "alpineskihouse": ("leaf with serial number 0", Status.OK, ("serial-not-positive",)),
    }
    off = ("srv-missing", "srv-service-disabled")
    return LabWorld(
        listeners=tuple(Listener(f"{n}-sip", "sip", host, f"lab/{n}") for n, host in REAL_CHAINS.items()),
        srv=(
            *(Srv(SIP + f"{n}.test", f"sip.{n}.test", f"{n}-sip") for n in REAL_CHAINS),
            *(Srv(XMPP + f"{n}.test", ".", None) for n in REAL_CHAINS),
        ),
        hosts={f"sip.{n}.test": (host,) for n, host in REAL_CHAINS.items()},
        domains=tuple(
            LabDomain(f"{n}.test", story, status, tuple(sorted((*codes, *off))))
            for n, (story, status, codes) in stories.items()
        ),
    )
