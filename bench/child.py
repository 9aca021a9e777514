"""``python -m bench.child RUSAGE.json ARGV...``: run ARGV, then write its wall time and rusage.

Why a wrapper: Linux charges a child, at ``exec``, with the peak RSS of the memory it was
forked (or vforked) from, so a tool started straight from the bench process would report the
bench's own peak as its ``ru_maxrss``. Started from this small process, the tool's figure is
its own (anything above this wrapper's ~10 MB).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    out.write_text(json.dumps({
        "wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss,
        "returncode": os.waitstatus_to_exitcode(status),
    }))
    sys.exit(0)


if __name__ == "__main__":
    main()
