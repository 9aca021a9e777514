"""Run the lab on a background thread (its own trio loop), for tests and the demo.

The scan under test then runs exactly as a user runs it — its own ``trio.run`` in the main
thread, or a subprocess — against real sockets on loopback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from scanner.lab.run import DEFAULT_NET, LabInfo, run_lab
from scanner.lab.zones import LabWorld


@contextmanager
def lab_in_thread(net: str = DEFAULT_NET, world: LabWorld | None = None) -> Iterator[LabInfo]:
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        stop = trio.Event()
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = stop
        async with trio.open_nursery() as nursery:
            box["info"] = await nursery.start(
                lambda task_status: run_lab(net=net, world=world, task_status=task_status)
            )
            ready.set()
            await stop.wait()
            nursery.cancel_scope.cancel()

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # surfaced to the caller below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=thread_main, name="fedscan-lab", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("the lab did not start within 60 s")
    if "error" in box:
        raise RuntimeError(f"the lab failed to start: {box['error']!r}")
    info = box["info"]
    assert isinstance(info, LabInfo)
    try:
        yield info
    finally:
        stop = box["stop"]
        assert isinstance(stop, trio.Event)
        token = box["token"]
        assert isinstance(token, trio.lowlevel.TrioToken)
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(10)
