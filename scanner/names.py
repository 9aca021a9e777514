"""Name rules: which reference identity a presented certificate name covers.

Theory of this module (RFC 6125 / RFC 9525, RFC 7622 for XMPP)
----------------------------------------------------------------
* Names are compared as IDNA A-labels, lowercase, without a trailing dot. User input in
  U-labels (``bücher.test``) is converted once, with IDNA 2008 + UTS 46, by :func:`to_a_label`.
* A DNS-ID matches exactly, case-insensitively.
* A wildcard is honoured only as the *whole* left-most label (``*.contoso.test``), matches
  exactly one label, and never the bare parent (``contoso.test``) — nor a partial label
  (``s*.contoso.test``, which would also let a wildcard sit inside an A-label, RFC 6125 7.2),
  nor anything whose wildcard would sit over a public-suffix-like two-label name (``*.test``).
  The label it covers may be an A-label (``*.contoso.test`` covers ``xn--bcher-kva.contoso.test``).
* For XMPP server identities the SRV-ID ``_xmpp-server.<domain>`` (otherName
  1.3.6.1.5.5.7.8.7) and the XmppAddr ``<domain>`` (otherName 1.3.6.1.5.5.7.8.5) also count.
  Neither takes wildcards.
* The subject CN never stands in for a SAN: that rule lives in the verifier, which simply
  never passes the CN here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

import idna


class InvalidName(ValueError):
    """A name that is not a valid DNS host name, with a one-line reason."""


class IdentityKind(StrEnum):
    SRV_TARGET = "srv-target"  # what a SIP peer checks: the SRV target FQDN
    SIP_NAMESPACE = "sip-namespace"  # sip.<SIP domain> on a consolidated Edge
    XMPP_DOMAIN = "xmpp-domain"  # the bare XMPP domain an XMPP peer checks
    EXTRA = "extra"  # web conferencing FQDN and other names the Edge serves
    EDGE_FQDN = "edge-fqdn"  # the Access Edge FQDN (the subject name)


@dataclass(frozen=True, order=True)
class Identity:
    """A name the certificate must cover, and why (shown to the user)."""

    name: str  # A-label, lowercase, no trailing dot
    kind: IdentityKind
    reason: str = ""

    @property
    def xmpp(self) -> bool:
        return self.kind is IdentityKind.XMPP_DOMAIN


@dataclass(frozen=True)
class PresentedNames:
    """The identifiers a certificate (or CSR) presents, already normalised."""

    dns: tuple[str, ...] = ()
    srv: tuple[str, ...] = ()  # SRV-IDs such as "_xmpp-server.contoso.test"
    xmpp_addrs: tuple[str, ...] = ()


XMPP_SERVER_SRV_LABEL = "_xmpp-server"


MAX_NAME_LENGTH = 253
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def to_a_label(text: str) -> str:
    """Normalise a host name a user or a config typed to the A-label DNS is asked about.

    UTS 46 maps what users type (uppercase, full-width forms) before IDNA 2008 validation;
    the stdlib ``idna`` codec is IDNA 2003 and would encode ``ß`` differently. ASCII names
    take a fast path with the same rules: letters, digits and inner hyphens, labels of 1 to
    63 characters, 253 in all. Underscores belong to service labels (``_sip._tls``), never to
    a domain a user federates, and an all-numeric last label is an IP address, not a domain.
    """
    stripped = text.strip()
    name = stripped[:-1] if stripped.endswith(".") else stripped
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidName(f"invalid domain {text!r}: {exc}") from None
    name = name.lower()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"invalid domain {text!r}: longer than {MAX_NAME_LENGTH} characters")
    for label in name.split("."):
        _check_label(text, label)
    if name.rsplit(".", 1)[-1].isdigit():
        raise InvalidName(f"invalid domain {text!r}: looks like an IP address, not a domain")
    return name


def _check_label(text: str, label: str) -> None:
    if not label:
        raise InvalidName(f"invalid domain {text!r}: empty label")
    if len(label) > 63:
        raise InvalidName(f"invalid domain {text!r}: label longer than 63 characters")
    if not _LDH.issuperset(label):
        bad = next(ch for ch in label if ch not in _LDH)
        raise InvalidName(f"invalid domain {text!r}: {bad!r} is not allowed in a host name")
    if label.startswith("-") or label.endswith("-"):
        raise InvalidName(f"invalid domain {text!r}: a label may not start or end with '-'")
    if label.startswith("xn--"):
        try:
            idna.decode(label)
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidName(f"invalid domain {text!r}: bad IDNA label {label!r}: {exc}") from None


def presented_to_a_label(text: str) -> str | None:
    """Normalise a name taken from a certificate; None if it is not a usable host name.

    Certificates carry IA5String dNSNames, so anything non-ASCII is already a CA error; we
    compare what we can and never raise on hostile input.
    """
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or not name.isascii() or ".." in name:
        return None
    return name


def is_wildcard(presented: str) -> bool:
    return "*" in presented


def dns_id_matches(presented: str, reference: str) -> bool:
    """RFC 6125 6.4: exact match, or a whole-left-label wildcard over exactly one label."""
    pres = presented_to_a_label(presented)
    if pres is None:
        return False
    ref = reference.lower().rstrip(".")
    if "*" not in pres:
        return pres == ref
    pres_labels = pres.split(".")
    if pres_labels[0] != "*" or any("*" in label for label in pres_labels[1:]):
        return False  # partial-label and non-left-most wildcards are not honoured
    if len(pres_labels) < 3:
        return False  # "*.test" would span a whole TLD
    ref_labels = ref.split(".")
    if len(ref_labels) != len(pres_labels):
        return False  # one label exactly; never the bare parent
    return ref_labels[1:] == pres_labels[1:]


def srv_id_matches(presented: str, domain: str, service_label: str = XMPP_SERVER_SRV_LABEL) -> bool:
    """An SRV-ID is ``_service.domain``; no wildcards (RFC 6125 6.5.1)."""
    pres = presented_to_a_label(presented)
    if pres is None or "*" in pres:
        return False
    service, _, name = pres.partition(".")
    return service == service_label and name == domain.lower().rstrip(".")


def xmpp_addr_matches(presented: str, domain: str) -> bool:
    """An XmppAddr for a server is the bare domain JID; compare in A-label form."""
    try:
        pres = to_a_label(presented)
    except InvalidName:
        return False
    return pres == domain.lower().rstrip(".")


def covering_name(names: PresentedNames, identity: Identity) -> tuple[str, str] | None:
    """Which presented name covers the identity, and how ("dns-id", "wildcard", "srv-id",
    "xmpp-addr"); None when nothing does."""
    for dns in names.dns:
        if dns_id_matches(dns, identity.name):
            return dns, ("wildcard" if is_wildcard(dns) else "dns-id")
    if identity.xmpp:
        for srv in names.srv:
            if srv_id_matches(srv, identity.name):
                return srv, "srv-id"
        for addr in names.xmpp_addrs:
            if xmpp_addr_matches(addr, identity.name):
                return addr, "xmpp-addr"
    return None


# --- user input: domains and name servers (pure parsing; resolving is discovery's job) ---


def normalize_domain(text: str) -> str:
    """User input to the A-label DNS will be asked about (see :func:`scanner.names.to_a_label`);
    raises ``ValueError`` with one line fit for a CLI."""
    return to_a_label(text)


def parse_nameserver(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` with HOST an IP address; IPv6 with a port needs brackets (``[::1]:53``).

    A bare IPv6 address is never split at its last colon: ``::1:53`` is the address ``::1:53``.
    """
    host, port_text = _split_host_port(text.strip())
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"invalid name server {text!r}: {host!r} is not an IP address") from None
    return str(address), _parse_port(text, port_text)


def check_server_spec(text: str) -> None:
    """``HOST[:PORT]`` where HOST is an IP address or a host name (resolved later, by whoever
    does I/O): the syntax check a config file gets at load time. ``ValueError`` says what is
    wrong in one line."""
    host, port_text = _split_host_port(text.strip())
    _parse_port(text, port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            to_a_label(host)
        except InvalidName:
            raise ValueError(f"invalid name server {text!r}: {host!r} is neither an IP address "
                             "nor a host name") from None


def _split_host_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid name server {text!r}: expected [IPv6]:PORT")
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def _parse_port(text: str, port_text: str | None) -> int:
    if port_text is None:
        return 53
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"invalid name server {text!r}: port must be 1-65535")
    return int(port_text)
