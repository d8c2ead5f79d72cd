"""Instructions per invocation under callgrind: the Monitor's cost without the noise of a shared machine.

    python benchmarks/instructions.py              # needs valgrind (Debian: apt-get install valgrind)
    python benchmarks/instructions.py -n 300       # invocations counted per variant (default 300)

On a shared VM the wall-clock ratios of overhead.py move by a few percent from one run to the next, as much as the
differences they are meant to show. Valgrind's callgrind counts the instructions the interpreter executes, which are
the same on every run. Each variant runs in two processes: the warm-up alone, and the warm-up plus N invocations of
the reference chain; the difference over N is its cost per invocation. Instructions are not time (cache misses,
locks and system calls cost more than their count), so read these next to the interleaved timing, not instead of it.
Variants with background threads (the judge, LangChain's tracer) are left out: thread scheduling would make their
counts vary.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("bare chain", "no-op handler", "Monitor (INFO filtered)", "Monitor (JSON logs)")
_COLLECTED = re.compile(r"Collected : (\d+)")


def handlers(variant: str) -> list[Any]:
    """The callbacks of one variant, built as overhead.py builds them."""
    from benchmarks.overhead import NoopHandler, json_logger, quiet_monitor

    if variant == "bare chain":
        return []
    if variant == "no-op handler":
        return [NoopHandler()]
    if variant == "Monitor (INFO filtered)":
        return [quiet_monitor()]
    return [quiet_monitor(json_logger(open(os.devnull, "w")))]  # open for the whole child process


def child(variant: str, invocations: int) -> None:
    """What runs under valgrind: warm-up, then `invocations` invocations."""
    sys.path.insert(0, str(ROOT))
    from langchain_llmmonitor.demo.app import QUESTIONS, DemoChatModel, build_chain

    chain = build_chain(DemoChatModel(seed=1))
    config = {"callbacks": handlers(variant)}
    for question in QUESTIONS[:20]:
        chain.invoke(question, config=config)
    for i in range(invocations):
        chain.invoke(QUESTIONS[i % len(QUESTIONS)], config=config)


def instructions(variant: str, invocations: int) -> int:
    """Instructions callgrind collected for one child process."""
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={os.devnull}",
        sys.executable,
        __file__,
        "--child",
        variant,
        str(invocations),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind failed for {variant!r} ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--invocations", type=int, default=300)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    runs = [(variant, n) for variant in VARIANTS for n in (0, args.invocations)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(runs, pool.map(lambda run: instructions(*run), runs), strict=True))
    per_invocation = {v: (counts[v, args.invocations] - counts[v, 0]) / args.invocations for v in VARIANTS}
    bare, noop = per_invocation["bare chain"], per_invocation["no-op handler"]
    print(
        f"instructions per invocation of the reference chain (callgrind, {args.invocations} invocations, PYTHONHASHSEED=0)"
    )
    print(f"{'variant':<28}{'instructions':>14}{'vs bare':>10}{'vs no-op':>10}")
    for variant, count in per_invocation.items():
        print(f"{variant:<28}{count:>14,.0f}{count / bare:>9.3f}x{count / noop:>9.3f}x")


if __name__ == "__main__":
    main()
