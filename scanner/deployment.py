"""Your own Edge: the namespaces one consolidated certificate must serve.

A Lync / Skype for Business Edge that federates for several SIP domains and publishes XMPP
for some of them presents ONE certificate on every listener; so every listener must cover every
namespace. This module turns the deployment (as typed on the command line or read from the
config file) into the identities the verifier checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scanner.names import Identity, IdentityKind, to_a_label


@dataclass(frozen=True)
class Deployment:
    sip_domains: tuple[str, ...] = ()
    xmpp_domains: tuple[str, ...] = ()
    edge_fqdn: str | None = None
    webconf_fqdn: str | None = None
    extra_sans: tuple[str, ...] = ()

    @classmethod
    def from_input(
        cls,
        sip_domains: Iterable[str] = (),
        xmpp_domains: Iterable[str] = (),
        edge_fqdn: str | None = None,
        webconf_fqdn: str | None = None,
        extra_sans: Iterable[str] = (),
    ) -> Deployment:
        """Normalise user input (U-labels, case, trailing dots); raises InvalidName."""
        return cls(
            _unique(to_a_label(d) for d in sip_domains),
            _unique(to_a_label(d) for d in xmpp_domains),
            to_a_label(edge_fqdn) if edge_fqdn else None,
            to_a_label(webconf_fqdn) if webconf_fqdn else None,
            _unique(to_a_label(d) for d in extra_sans),
        )

    @property
    def declared(self) -> bool:
        return bool(self.sip_domains or self.xmpp_domains or self.extra_sans or self.webconf_fqdn)

    @property
    def access_edge_fqdn(self) -> str | None:
        """The subject name: given, or sip.<first SIP domain> as Microsoft's examples use."""
        if self.edge_fqdn:
            return self.edge_fqdn
        return f"sip.{self.sip_domains[0]}" if self.sip_domains else None

    def identities(self) -> list[Identity]:
        """Every name the consolidated certificate must cover, each with its reason."""
        out: list[Identity] = []
        if self.edge_fqdn:
            out.append(Identity(self.edge_fqdn, IdentityKind.EDGE_FQDN, "Access Edge FQDN"))
        out += [Identity(f"sip.{d}", IdentityKind.SIP_NAMESPACE, f"SIP domain {d}") for d in self.sip_domains]
        if self.webconf_fqdn:
            out.append(Identity(self.webconf_fqdn, IdentityKind.EXTRA, "web conferencing Edge FQDN"))
        out += [Identity(d, IdentityKind.XMPP_DOMAIN, f"XMPP domain {d}") for d in self.xmpp_domains]
        out += [Identity(n, IdentityKind.EXTRA, "extra name") for n in self.extra_sans]
        return _dedupe(out)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _dedupe(identities: list[Identity]) -> list[Identity]:
    seen: dict[str, Identity] = {}
    for ident in identities:
        seen.setdefault(ident.name, ident)
    return list(seen.values())
