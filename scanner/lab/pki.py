"""The lab's certificates: one small PKI, made on first use in the user's cache directory.

Theory of this module
---------------------
An installed fedscan (a wheel, pipx, a distribution package) has no source checkout, so the lab
cannot read ``test-certs/``; that corpus stays where it is, for the tests of the verifier. The
lab makes its own PKI instead — a root, an issuing CA, and the leaves of :data:`LAB_CERTS` —
rather than shipping one as package data, because:

* a CA private key inside a published wheel is everyone's key: anybody could mint certificates
  that chain to a root some user once trusted "just for the lab". A root made on this machine
  is trusted by nothing but the lab's own scans (``--ca-file``, which the lab prints);
* the certificates never expire under the user: the healthy ones are valid until 2040-01-01
  (a fixed date the tests can compare; ten years from the day they are made once 2040 is less
  than a year away), and the set is made again 30 days before that (or when a file is missing);
* adding a lab certificate is one line of data, not a regenerated, committed file set.

Where: ``$XDG_CACHE_HOME/fedscan/lab-<digest>/`` (default ``~/.cache/fedscan``), the digest
covering :data:`LAB_CERTS` and :data:`FORMAT`, so a changed spec makes a new set and never
serves a stale one. Generation takes about a second, once. It is atomic and safe when several
processes start at once: each writes a private temporary directory beside the final one and
renames it into place; whoever loses the race discards its own and uses the winner's. A
``manifest.json``, written last, lists every file and the earliest expiry of the certificates
meant to be valid.

Files (the names the lab's worlds use as :attr:`scanner.lab.zones.Listener.cert`): for each
stem ``S`` of :data:`LAB_CERTS`, ``S.pem`` (leaf, then the issuing CA) and ``S.key`` (PKCS#8);
``root.pem``/``.key``, ``intermediate.pem``/``.key`` and ``ca-bundle.pem`` (the root: what a
scan of the lab passes as ``--ca-file``); ``client.pem``/``.key`` is a client certificate
(clientAuth only) for ``--client-cert`` against the lab.

Adding a lab certificate
------------------------
Add one entry to :data:`LAB_CERTS`, e.g.::

    "lab/contoso-partner": LabLeaf(("sip.partner.test", "partner.test"), "Partner Test"),

and refer to it as ``Listener(..., cert="lab/contoso-partner")`` in a world of
:mod:`scanner.lab.zones`. :class:`LabLeaf` says what differs from a healthy leaf (EKUs, fixed dates
such as ``EXPIRED``, no CRL distribution point, another CN). The next lab run makes the new set (the digest
changed); nothing is committed. Every certificate is built by :mod:`scanner.lab.certfactory`,
the lab's one certificate factory; other code that needs certificates of its own at run time
(the hostile and scale worlds, the partners) signs them with :meth:`LabPki.issuer` and the same
factory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from scanner.lab.certfactory import (
    CLIENT,
    EXPIRED,
    SERVER,
    Issuer,
    cross_sign,
    key_pem,
    leaf_builder,
    make_ca,
    new_key,
    serial_of,
    utc,
)
from scanner.lab.der import pem_of, resign

#: Bump when the way files are made changes (not for a new LAB_CERTS entry: the digest sees it).
FORMAT: Final = 2
RENEW_BEFORE: Final = dt.timedelta(days=30)  # make a new set when a healthy one is this close

CONTOSO_EDGE_SAN: Final = (
    "sip.contoso.test",
    "webcon.contoso.test",
    "contoso.test",
    "sip.fabrikam.test",
    "fabrikam.test",
)

#: Peer-controlled text no renderer may execute: HTML/script, both quotes, a backslash, a
#: newline, an ANSI colour, an OSC title change and a bell, a Markdown link and a table pipe.
HOSTILE_TEXT: Final = (
    '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'
    "\"quoted\" 'single' back\\slash | [md](javascript:alert(1)) *bold*\n"
    "second line \x1b[31mRED\x1b[0m \x1b]0;owned\x07 \x1b]8;;http://evil.test/\x1b\\link\x1b]8;;\x1b\\"
)
#: A subject CN (at most 64 characters) with the same ingredients.
HOSTILE_CN: Final = '<script>alert("cn")</script>\'\\\n\x1b[31mred\x1b]0;t\x07.test'
#: A SAN DNS name (IA5String: ASCII only, but nothing stops markup or control characters).
HOSTILE_DNS_NAME: Final = '<b>x</b>"\x1b[2J.hostile-strings.test'


@dataclass(frozen=True)
class LabLeaf:
    """A leaf issued by the lab's issuing CA: healthy unless a field says otherwise."""

    dns: tuple[str, ...]  # subjectAltName DNS names, in order
    org: str
    eku: tuple[str, ...] = (SERVER, CLIENT)
    # fixed dates (e.g. EXPIRED), kept as they are; None: valid from before today until 2040
    # (or ten years on, once 2040 is less than a year away)
    valid: tuple[dt.datetime, dt.datetime] | None = None
    crl: bool = True  # carries a CRL distribution point
    cn: str | None = None  # default: the first DNS name
    # public chains as really served (issue 11): the issuing CA (a name of LAB_CAS), more
    # certificates the server sends after it, a CA certificate used as a leaf, a fixed serial
    # (zero and negative made by DER surgery), a notAfter written as this GeneralizedTime text
    issuer: str = "intermediate"
    extra: tuple[str, ...] = ()
    ca: bool = False
    serial: int | None = None
    not_after_text: str | None = None


#: Every certificate of the lab, by stem (see "Adding a lab certificate" above).
LAB_CERTS: Final[Mapping[str, LabLeaf]] = {
    # the healthy consolidated Edge of contoso.test + fabrikam.test
    "edge": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test"),
    "client": LabLeaf(("fedscan-client.test",), "Fedscan Client Test", eku=(CLIENT,)),
    "lab/northwind": LabLeaf(("sip.northwind.test",), "Northwind Test"),
    "lab/tailspin": LabLeaf(("sip.tailspin.test", "tailspin.test"), "Tailspin Test", eku=(SERVER,)),
    "lab/litware": LabLeaf(("sip.litware.test", "litware.test"), "Litware Test", valid=EXPIRED),
    "lab/adatum": LabLeaf(("sip.adatum.test", "adatum.test"), "Adatum Test"),
    "lab/adatum-stale": LabLeaf(("sip.adatum.test", "adatum.test"), "Adatum Test", valid=EXPIRED),
    "lab/wingtip": LabLeaf(("sip.wingtip-hosting.test", "wingtip.test"), "Wingtip Hosting Test"),
    "lab/fineartschool": LabLeaf(("sip.fineartschool.test", "fineartschool.test"), "Fine Art School Test"),
    "lab/proseware": LabLeaf(("sip.proseware.test", "proseware.test"), "Proseware Test"),
    "lab/fourthcoffee": LabLeaf(("sip.fourthcoffee.test", "fourthcoffee.test"), "Fourth Coffee Test"),
    # variants of the contoso Edge, for worlds that break one thing of it (readiness tests)
    "lab/edge-missing-xmpp": LabLeaf(
        tuple(n for n in CONTOSO_EDGE_SAN if n != "contoso.test"), "Contoso Test"
    ),
    # the certificate "edge" replaced: same names, its own key (the DANE lab's stale TLSA names it)
    "lab/edge-previous": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test"),
    "lab/edge-no-crl": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test", crl=False),
    # the Edge renewed with a certificate that ends 20 days after the tests' time (2030-01-01)
    "lab/edge-expires-soon": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test", valid=(utc(2029), utc(2030, 1, 21))),
    # public chains as they are really served (issue 11): each breaks one rule of the verifier
    "lab/relecloud": LabLeaf(
        ("sip.relecloud.test", "relecloud.test"), "Relecloud Test", issuer="server-only-ca"
    ),
    "lab/woodgrove": LabLeaf(
        ("sip.woodgrove.test", "woodgrove.test"), "Woodgrove Test", extra=("legacy-cross-sign",)
    ),
    "lab/treyresearch": LabLeaf(
        ("sip.treyresearch.test", "treyresearch.test"), "Trey Research Test", issuer="sha1-ca"
    ),
    "lab/lucerne": LabLeaf(("sip.lucerne.test", "lucerne.test"), "Lucerne Publishing Test", ca=True),
    "lab/cohovineyard": LabLeaf(
        ("sip.cohovineyard.test", "cohovineyard.test"),
        "Coho Vineyard Test",
        valid=(utc(2026), utc(2030)),
        not_after_text="20291231235959.25Z",  # 0.75 s before the tests' time
    ),
    "lab/alpineskihouse": LabLeaf(
        ("sip.alpineskihouse.test", "alpineskihouse.test"), "Alpine Ski House Test", serial=0
    ),
    # partners that judge *our* certificate (scanner/lab/partners.py), and our Edge's
    # certificate broken the two ways a partner's TLS stack refuses it by itself
    "lab/adventureworks": LabLeaf(("sip.adventureworks.test", "adventureworks.test"), "Adventure Works Test"),
    "lab/wideworldimporters": LabLeaf(
        ("sip.wideworldimporters.test", "wideworldimporters.test"), "Wide World Importers Test"
    ),
    "lab/blueyonder": LabLeaf(("sip.blueyonder.test", "blueyonder.test"), "Blue Yonder Test"),
    "lab/humongous": LabLeaf(("sip.humongous.test", "humongous.test"), "Humongous Insurance Test"),
    "lab/margiestravel": LabLeaf(("sip.margiestravel.test", "margiestravel.test"), "Margie Test"),
    "lab/edge-expired": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test", valid=EXPIRED),
    "lab/edge-serverauth-only": LabLeaf(CONTOSO_EDGE_SAN, "Contoso Test", eku=(SERVER,)),
    # a peer whose subject and SAN carry markup, quotes, newlines and terminal escapes: every
    # renderer must show them as text (tests/test_hostile_strings.py)
    "lab/hostile-strings": LabLeaf(
        ("sip.hostile-strings.test", "hostile-strings.test", HOSTILE_DNS_NAME),
        HOSTILE_TEXT,
        cn=HOSTILE_CN,
    ),
}


class LabPkiError(Exception):
    """The lab's certificates could not be made or read; the message names the path and why."""


# --- the set on disk --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabPki:
    """A complete set of lab certificates in ``dir`` (see the module docstring for the files)."""

    dir: Path

    def chain(self, stem: str) -> Path:
        """``stem.pem``; an absolute stem (certificates made elsewhere) is used as it is."""
        return self.dir / f"{stem}.pem"

    def key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca-bundle.pem"

    @property
    def client_cert(self) -> Path:
        return self.chain("client")

    @property
    def client_key(self) -> Path:
        return self.key("client")

    def issuer(self, stem: str = "intermediate") -> Issuer:
        """The issuing CA (or ``"root"``) with its key, to sign certificates made at run time."""
        cert = x509.load_pem_x509_certificate(self.chain(stem).read_bytes())
        key = serialization.load_pem_private_key(self.key(stem).read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return Issuer(cert, key)


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/fedscan`` (an absolute XDG_CACHE_HOME only, as the spec says)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "fedscan"


def spec_digest() -> str:
    specs = sorted((stem, astuple(leaf)) for stem, leaf in LAB_CERTS.items())
    text = json.dumps([FORMAT, specs], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_LOCK = threading.Lock()


def lab_pki(now: dt.datetime | None = None) -> LabPki:
    """The lab's certificates, made first if missing, incomplete or about to expire.

    Raises :class:`LabPkiError` naming the directory and the reason when they can be neither
    read nor made (e.g. a read-only home: set XDG_CACHE_HOME to a writable directory).
    """
    now = now or dt.datetime.now(dt.UTC)
    with _LOCK:
        return _ensure(cache_home() / f"lab-{spec_digest()}", now)


def _usable(final: Path, now: dt.datetime) -> bool:
    try:
        manifest = json.loads((final / "manifest.json").read_text())
        valid_until = dt.datetime.fromisoformat(manifest["valid_until"])
        files = [final / name for name in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return valid_until - RENEW_BEFORE > now and all(f.is_file() for f in files)


def _ensure(final: Path, now: dt.datetime) -> LabPki:
    if _usable(final, now):
        return LabPki(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # incomplete or expiring: move it aside (another process may race us)
            stale = final.with_name(f".stale-{final.name}-{os.getpid()}-{threading.get_ident()}")
            with contextlib.suppress(FileNotFoundError):
                final.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            _generate(tmp, now)
            try:
                tmp.rename(final)
            except OSError:  # another process finished first: use its set
                if not _usable(final, now):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        where = exc.filename or final
        raise LabPkiError(
            f"cannot make the lab's certificates in {where}: {exc.strerror or exc} "
            "(set XDG_CACHE_HOME to a writable directory)"
        ) from None
    return LabPki(final)


def _generate(out: Path, now: dt.datetime) -> None:
    out.chmod(0o700)
    # fixed while it can be (tests compare it), ten years on once 2040 is less than a year away
    healthy_until = utc(2040) if now + dt.timedelta(days=366) < utc(2040) else now + dt.timedelta(days=3653)
    root = make_ca("Fedscan Lab Root CA", healthy_until + dt.timedelta(days=3653 * 3))
    inter = make_ca("Fedscan Lab Issuing CA", healthy_until + dt.timedelta(days=3653 * 2), root)
    files: dict[str, bytes] = {
        "root.pem": root.pem,
        "root.key": key_pem(root.key),
        "intermediate.pem": inter.pem,
        "intermediate.key": key_pem(inter.key),
        "ca-bundle.pem": root.pem,
    }
    valid_until = inter.cert.not_valid_after_utc
    # the CAs of public chains as really served (LabLeaf.issuer, LabLeaf.extra)
    ca_until = healthy_until + dt.timedelta(days=3653 * 2)
    legacy = make_ca("Fedscan Lab Legacy Root CA", ca_until)
    issuers = {
        "intermediate": inter,
        "server-only-ca": make_ca("Fedscan Lab Server-Only CA", ca_until, root, eku=(SERVER,)),
        "sha1-ca": make_ca("Fedscan Lab SHA-1 CA", ca_until, root, sha1=True),
    }
    cross = cross_sign(root, legacy, EXPIRED[1])
    extras = {"legacy-cross-sign": cross.public_bytes(serialization.Encoding.PEM)}
    for stem, spec in LAB_CERTS.items():
        key = new_key()
        fixed = spec.valid is not None
        not_before, not_after = spec.valid or (min(utc(2026), now - dt.timedelta(days=1)), healthy_until)
        issuer = issuers[spec.issuer]
        cert = leaf_builder(
            spec.dns, key.public_key(), issuer.cert, serial=serial_of(stem), not_before=not_before,
            not_after=not_after, org=spec.org, cn=spec.cn, eku=spec.eku, crl=spec.crl, ca=spec.ca,
        ).sign(issuer.key, hashes.SHA256())
        if spec.serial is not None or spec.not_after_text is not None:
            assert isinstance(issuer.key, rsa.RSAPrivateKey)
            leaf_pem = pem_of(resign(cert, issuer.key, serial=spec.serial, not_after=spec.not_after_text))
        else:
            leaf_pem = cert.public_bytes(serialization.Encoding.PEM)
        if not fixed:
            valid_until = min(valid_until, not_after)
        files[f"{stem}.key"] = key_pem(key)  # the key first: a chain never lacks its key
        files[f"{stem}.pem"] = leaf_pem + issuer.pem + b"".join(extras[e] for e in spec.extra)
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    manifest = {"format": FORMAT, "valid_until": valid_until.isoformat(), "files": sorted(files)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
