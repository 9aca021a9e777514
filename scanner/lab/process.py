"""Stopping a real server the lab or a test started (unbound, prosody, kamailio)."""

from __future__ import annotations

import signal
import subprocess

STOP_SECONDS = 10.0


def stop(process: subprocess.Popen[bytes], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM, so the server shuts down cleanly (removes its pidfile); SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=seconds)
