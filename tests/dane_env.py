"""Shared by the DANE end-to-end tests: a validating resolver (Debian's unbound) for a lab.

A missing unbound is a visible skip on a developer's machine, and a failure in CI as root,
where ``.ci/run`` installs it: a DANE test that silently never runs proves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scanner.lab.run import LabInfo
from scanner.lab.unbound import UNBOUND, UnboundError, validating_resolver


def require_unbound() -> None:
    if UNBOUND is not None:
        return
    message = "the unbound binary is not installed (.ci/run installs Debian's unbound)"
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        pytest.fail(message + ", and this is CI as root, where it must be")
    pytest.skip(message)


@contextmanager
def unbound_for(lab: LabInfo, workdir: Path) -> Iterator[str]:
    """unbound with a stub zone per lab zone and the lab's DNSKEYs as trust anchors;
    yields ``HOST:PORT`` for ``--dnssec-resolver``."""
    require_unbound()
    host, _, port = lab.nameserver.rpartition(":")
    stubs = [(zone, host, int(port)) for zone in lab.zones]
    try:
        with validating_resolver(workdir, stubs, lab.trust_anchors) as (address, bound):
            yield f"{address}:{bound}"
    except UnboundError as exc:
        pytest.fail(str(exc))
