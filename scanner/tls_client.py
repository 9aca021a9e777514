"""The one TLS client configuration fedscan speaks with, and the certificate it may present.

Theory of this module
---------------------
* Capture, don't judge. The client accepts anything (no verification, TLS 1.0 and
  ``@SECLEVEL=0`` allowed) so that a broken or legacy server still shows its chain; the
  verifier judges the chain later.
* Contexts are built once. One per (ALPN, client certificate) serves a whole scan, with the
  message callback (:mod:`scanner.tls_compat`) that routes each connection's messages to its
  own :class:`scanner.tlswire.WireLog`.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from scanner.srv import SERVICES
from scanner.tls_compat import MessageDispatch, install_msg_callback

XMPPS_ALPN: Final = "xmpp-server"


@dataclass(frozen=True)
class ClientCredentials:
    """The certificate we present. ``pem`` (key, leaf and intermediates, decrypted) is set when
    it came from a PFX or one PEM file (``--as-edge``); the files are then only its origin."""

    cert_file: Path
    key_file: Path
    pem: bytes | None = field(default=None, repr=False)

    def load_into(self, ctx: ssl.SSLContext) -> None:
        if self.pem is None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
            return
        # OpenSSL loads keys from files only: a private directory, for the time of one call.
        with tempfile.TemporaryDirectory(prefix="fedscan-") as tmp:
            path = Path(tmp) / "identity.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(self.pem)
            ctx.load_cert_chain(path)



@functools.lru_cache(maxsize=16)
def _shared_context(alpn: bool, credentials: ClientCredentials | None
                    ) -> tuple[ssl.SSLContext, MessageDispatch]:
    """Contexts are costly to build (~0.15 ms each) and identical for every endpoint of a
    kind, so one per (ALPN, client certificate) serves the whole scan."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSv1 is deprecated: that is exactly why we probe for it
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if alpn:
        ctx.set_alpn_protocols([XMPPS_ALPN])
    if credentials is not None:
        credentials.load_into(ctx)
    dispatch = MessageDispatch()
    install_msg_callback(ctx, dispatch)
    return ctx, dispatch


def client_context(service: str, credentials: ClientCredentials | None
                   ) -> tuple[ssl.SSLContext, MessageDispatch]:
    """A TLS client that accepts any certificate and any version down to TLS 1.0.

    Raises OSError / ssl.SSLError / ValueError for our own problems (e.g. the client
    certificate cannot be loaded); :func:`handshake` turns these into ``scan-error``.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return _shared_context(service == "xmpps-server", credentials)
