"""A certificate (or CSR) as the report carries it: frozen, typed, and its JSON both ways.

Theory of this module
---------------------
* A certificate is read once (:func:`scanner.certinfo.cert_info`) and summarised once, here:
  what a report keeps of it once the chain is gone. Every reader of a report (metrics, Nagios,
  history, readiness, the table, the HTML page) reads these fields — a ``datetime``, the
  subject's CNs, the SAN entries — never a dict key or a re-parsed string.
* ``to_json`` is the report schema (``schema_version`` 1), key order included: a field may be
  added to the schema, never renamed or retyped. ``from_json`` is the one way back from a
  saved report, and ``from_json(x.to_json()) == x`` for every summary fedscan writes.
* Times are kept as the report states them: UTC, to the second (``scanner.isotime``). A
  certificate's fractional-second notAfter is judged exactly by the verifier; the summary
  holds what the JSON says, so a summary read back from a file equals the one written.
* The subject's CNs are not in the JSON (schema 1 stays as it is); read back from a file they
  come from the subject's RFC 4514 text through ``cryptography``'s own parser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from scanner.isotime import iso, parse_iso


def to_the_second(t: dt.datetime) -> dt.datetime:
    """``t`` in UTC without its fraction of a second: the time a report states."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True, kw_only=True)
class RequestSummary:
    """What a CSR asks for, in the report's words (the ``request`` of ``fedscan cert``)."""

    subject: str
    dns_names: tuple[str, ...]
    srv_names: tuple[str, ...]
    xmpp_addrs: tuple[str, ...]
    eku: tuple[str, ...] | None  # "serverAuth", "clientAuth" or a dotted OID; None: no extension
    key: str  # "RSA 2048", "EC secp256r1"
    signature: str  # "sha256WithRSAEncryption", "RSASSA-PSS"
    # the subject's CNs when built from the certificate itself; None (read back from a report,
    # where they are not in the JSON): parsed from ``subject`` when first asked for
    subject_cns: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def common_names(self) -> tuple[str, ...]:
        """The subject's CNs. Parsing RFC 4514 text costs ~45 us, and a census page reads
        20,000 summaries back without ever asking: so only on demand."""
        return self.subject_cns if self.subject_cns is not None else common_names_of(self.subject)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name presented in the SAN: DNS names, SRV-IDs, XMPP addresses."""
        return (*self.dns_names, *self.srv_names, *self.xmpp_addrs)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, **self._request_json()}

    def _request_json(self) -> dict[str, Any]:
        return {
            "dns_names": list(self.dns_names),
            "srv_names": list(self.srv_names),
            "xmpp_addrs": list(self.xmpp_addrs),
            "eku": None if self.eku is None else list(self.eku),
            "key": self.key,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestSummary:
        """``ValueError`` for anything that is not a request summary."""
        return cls(**_request_fields(data))


@dataclass(frozen=True, kw_only=True)
class CertSummary(RequestSummary):
    """A served or loaded certificate as the report carries it (leaf and chain alike)."""

    issuer: str
    serial: str  # hex, as in the JSON
    sha256: str  # hex SHA-256 of the DER
    not_before: dt.datetime  # UTC, to the second (see the theory above)
    not_after: dt.datetime
    crl_distribution_points: tuple[str, ...]
    days_left: int | None = None  # whole days from the evaluation time (None: no time given)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            **self._request_json(),
            "crl_distribution_points": list(self.crl_distribution_points),
        }
        if self.days_left is not None:
            out["days_left"] = self.days_left
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CertSummary:
        """``ValueError`` for anything that is not a certificate summary of the schema."""
        try:
            days = data.get("days_left")
            return cls(
                **_request_fields(data),
                issuer=_text(data["issuer"]),
                serial=_text(data["serial"]),
                sha256=_text(data["sha256"]),
                not_before=parse_iso(_text(data["not_before"])),
                not_after=parse_iso(_text(data["not_after"])),
                crl_distribution_points=_texts(data.get("crl_distribution_points", [])),
                days_left=None if days is None else _int(days),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a certificate summary ({type(exc).__name__}: {exc})") from None


def _request_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        subject = _text(data["subject"])
        eku = data.get("eku")
        return {
            "subject": subject,
            "dns_names": _texts(data.get("dns_names", [])),
            "srv_names": _texts(data.get("srv_names", [])),
            "xmpp_addrs": _texts(data.get("xmpp_addrs", [])),
            "eku": None if eku is None else _texts(eku),
            "key": _text(data.get("key", "")),
            "signature": _text(data.get("signature", "")),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a certificate summary ({type(exc).__name__}: {exc})") from None


def common_names_of(subject: str) -> tuple[str, ...]:
    """The CNs of an RFC 4514 subject (as :func:`scanner.certinfo.name_text` wrote it); none
    when the text does not parse (``<undecodable name>``)."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return ()
    return tuple(str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    for v in value:  # a loop, not a generator: a census page reads 100,000 of these lists
        if not isinstance(v, str):
            raise TypeError(f"expected text, got {type(v).__name__}")
    return tuple(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    return value
