"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (default: all, one after another).

Each benchmark is also a script of its own with ``--help``; each prints its figures next to a baseline
measured in the same run and the target it is held to. They take minutes (the large sandbox is seeded
twice), so they are not part of ``make test``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# every bench_*.py here, the seed first (the others reuse what it measured least); no list to keep in step
ORDER = tuple(
    sorted((p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py")), key=lambda n: (n != "seed", n))
)


def main(argv: list[str]) -> int:
    names = argv or list(ORDER)
    unknown = [n for n in names if not (HERE / f"bench_{n}.py").exists()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        if subprocess.call([sys.executable, str(HERE / f"bench_{name}.py")], cwd=HERE.parent) != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
