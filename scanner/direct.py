"""``--endpoint SERVICE=HOST:PORT``: one endpoint named by the user, scanned without SRV lookups.

For an Edge before its SRV records are published, one pool node by address, or an internal
interface. The endpoint is judged exactly as a discovered one: a SIP endpoint against the
name peers would ask for (``--sni``, else HOST), an XMPP endpoint against its XMPP domain
(``--sni``, else HOST). Pure parsing; the scan resolves HOST when it is a name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scanner.names import to_a_label
from scanner.srv import SERVICES


@dataclass(frozen=True)
class DirectEndpoint:
    service: str
    host: str  # an A-label name or an IP address literal (no brackets)
    port: int
    sni: str | None = None

    @property
    def is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def name(self) -> str:
        """The name asked for in TLS (SNI) and judged against the certificate."""
        return self.sni or self.host


def parse_endpoint(text: str, sni: str | None = None) -> DirectEndpoint:
    """``sip-federation=sip.contoso.com:5061``, ``xmpp-server=[2001:db8::1]:5269``; raises
    ``ValueError`` with one line fit for a CLI."""
    service, sep, where = text.partition("=")
    service = service.strip()
    if not sep or not where:
        raise ValueError(f"--endpoint {text!r}: expected SERVICE=HOST:PORT")
    if service not in SERVICES:
        raise ValueError(f"--endpoint {text!r}: unknown service {service!r} "
                         f"(choose from {', '.join(SERVICES)})")
    if where.startswith("["):
        host, close, rest = where[1:].partition("]")
        port_text = rest[1:] if close and rest.startswith(":") else ""
    else:
        host, _, port_text = where.rpartition(":")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"--endpoint {text!r}: expected HOST:PORT with a port 1-65535 "
                         "(IPv6 in brackets)")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = to_a_label(host)
        if host.replace(".", "").isdigit():
            raise ValueError(f"--endpoint {text!r}: {host!r} is not a valid address") from None
    name = to_a_label(sni) if sni else None
    endpoint = DirectEndpoint(service, host, int(port_text), name)
    if endpoint.is_address and name is None:
        raise ValueError(f"--endpoint {text!r}: HOST is an address; give --sni NAME, the name "
                         "partners ask for (the SRV target for SIP, the XMPP domain for XMPP)")
    return endpoint
