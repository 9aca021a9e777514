"""DNSSEC for the lab's DNS: signed zones a real validating resolver (unbound) accepts.

Theory of this module
---------------------
DANE is only as testable as the DNSSEC beneath it, so the lab signs for real: each signed apex
gets its own ECDSA P-256 key (algorithm 13, flags 257: one key signs everything, the usual
"CSK"), dnspython's :func:`dns.dnssec.sign_zone` adds the DNSKEY, the NSEC chain and every
RRSIG, and the responder (:mod:`scanner.lab.dns`) serves them to queries with the DO bit.
The resolver under test gets each apex's DNSKEY as its trust anchor (:meth:`trust_anchors`);
names outside every signed apex have no chain of trust and validate as *insecure*.

* Signatures are made with the real clock (an hour back, a day ahead): the validator checks
  them against its own clock. This is the lab, not the Core.
* ``bogus`` names get RRSIGs whose signature bytes are flipped: the validator must answer
  SERVFAIL for them, which is the case fedscan must never report as OK.
* Negative answers carry the SOA and the NSEC records that prove them (RFC 4035 3.1.3): the
  NSEC at the name (NODATA), or the one covering it plus the one covering the wildcard of the
  closest encloser (NXDOMAIN); an empty non-terminal is proven by the covering NSEC.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.dnssec
import dns.dnssectypes
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec

Key = tuple[dns.name.Name, dns.rdatatype.RdataType]
TTL = 300
SOA_TEXT = "ns.{apex} hostmaster.{apex} 1 3600 600 86400 300"


@dataclass(frozen=True)
class Signed:
    """What signing adds to the lab's data: records, signatures, and the NSEC chain."""

    apexes: tuple[dns.name.Name, ...]
    rrsets: Mapping[Key, dns.rrset.RRset]  # every rrset of the signed zones, NSEC and DNSKEY too
    sigs: Mapping[Key, dns.rrset.RRset]  # (owner, covered type) -> RRSIG rrset
    nsec_owners: Mapping[dns.name.Name, tuple[dns.name.Name, ...]]  # apex -> sorted owners
    anchors: tuple[str, ...]

    def apex_of(self, name: dns.name.Name) -> dns.name.Name | None:
        found = [a for a in self.apexes if name.is_subdomain(a)]
        return max(found, key=len) if found else None

    def trust_anchors(self) -> tuple[str, ...]:
        """unbound ``trust-anchor:`` lines: ``"<apex> DNSKEY 257 3 13 <key>"``."""
        return self.anchors

    def signatures(self, rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
        out = []
        for rrset in rrsets:
            sig = self.sigs.get((rrset.name, rrset.rdtype))
            if sig is not None:
                out.append(sig)
        return out

    def denial(self, apex: dns.name.Name, qname: dns.name.Name,
               existing: frozenset[dns.name.Name], nxdomain: bool) -> list[dns.rrset.RRset]:
        """SOA and the NSEC records proving a negative answer, each with its RRSIG."""
        proof: list[dns.rrset.RRset] = []
        soa = self.rrsets.get((apex, dns.rdatatype.SOA))
        if soa is not None:
            proof.append(soa)
        owners = self.nsec_owners[apex]
        names = [qname] if (qname, dns.rdatatype.NSEC) in self.rrsets else []
        if not names:
            names.append(_covering(owners, qname))
        if nxdomain:
            encloser = qname.parent()
            while encloser not in existing and encloser != apex and len(encloser) > 1:
                encloser = encloser.parent()
            names.append(_covering(owners, dns.name.Name((b"*", *encloser.labels))))
        for name in dict.fromkeys(names):
            nsec = self.rrsets.get((name, dns.rdatatype.NSEC))
            if nsec is not None:
                proof.append(nsec)
        return [*proof, *self.signatures(proof)]


def _covering(owners: tuple[dns.name.Name, ...], name: dns.name.Name) -> dns.name.Name:
    """The NSEC owner that precedes ``name`` in canonical order (wrapping to the last)."""
    index = bisect.bisect_right(owners, name) - 1
    return owners[index]


def sign(
    rrsets: Mapping[Key, dns.rrset.RRset],
    apexes: Iterable[str],
    *,
    bogus: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Signed:
    """Sign every rrset under each apex; add SOA and NS at an apex that has none."""
    now = now or dt.datetime.now(dt.UTC)
    apex_names = tuple(dns.name.from_text(a) for a in apexes)
    bogus_names = {dns.name.from_text(b) for b in bogus}
    all_rrsets: dict[Key, dns.rrset.RRset] = {}
    sigs: dict[Key, dns.rrset.RRset] = {}
    owners: dict[dns.name.Name, tuple[dns.name.Name, ...]] = {}
    anchors: list[str] = []
    for apex in apex_names:
        zone = dns.zone.Zone(apex, relativize=False)
        with zone.writer() as txn:
            for (name, _), rrset in rrsets.items():
                if name.is_subdomain(apex):
                    txn.add(rrset)
            if txn.get(apex, dns.rdatatype.SOA) is None:
                txn.add(dns.rrset.from_text(apex, TTL, "IN", "SOA", SOA_TEXT.format(apex=apex)))
            if txn.get(apex, dns.rdatatype.NS) is None:
                txn.add(dns.rrset.from_text(apex, TTL, "IN", "NS", f"ns.{apex}"))
        private = ec.generate_private_key(ec.SECP256R1())
        dnskey = dns.dnssec.make_dnskey(private.public_key(), dns.dnssectypes.Algorithm.ECDSAP256SHA256,
                                        flags=257)
        dns.dnssec.sign_zone(zone, keys=[(private, dnskey)], inception=now - dt.timedelta(hours=1),
                             expiration=now + dt.timedelta(days=1))
        anchors.append(f"{apex} DNSKEY {dnskey.to_text()}")
        nsec: list[dns.name.Name] = []
        for name, rdataset in zone.iterate_rdatasets():
            rrset = dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                if name in bogus_names:
                    rrset = _corrupt(rrset)
                sigs[(name, rdataset.covers)] = rrset
                continue
            all_rrsets[(name, rdataset.rdtype)] = rrset
            if rdataset.rdtype == dns.rdatatype.NSEC:
                nsec.append(name)
        owners[apex] = tuple(sorted(nsec))
    return Signed(apex_names, all_rrsets, sigs, owners, tuple(anchors))


def _corrupt(rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    """The same RRSIGs with one bit of each signature flipped: a validator must call them bogus."""
    out = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
    for rd in rrset:
        assert isinstance(rd, dns.rdtypes.ANY.RRSIG.RRSIG)
        signature = bytearray(rd.signature)
        signature[-1] ^= 0x01
        out.add(rd.replace(signature=bytes(signature)), rrset.ttl)
    return out
