"""Run every benchmark: ``make bench`` (or ``python -m bench [NAME ...]``).

Each ``bench/bench_*.py`` runs in its own process so one cannot warm or slow another. The header
prints the date and machine so the figures can be pasted into docs/benchmarks.md as they are.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    print(f"# anju benchmarks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {_machine()}", flush=True)
    failed = 0
    for name in names:
        module = name if name.startswith("bench_") else f"bench_{name}"
        print(f"\n## {module}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{module}"])
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
