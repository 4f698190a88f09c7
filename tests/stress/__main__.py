"""Run a command with CPU burners alongside, optionally many times: the suite under load.

    python -m tests.stress [--burners N] [--repeat K] -- COMMAND...

Why: the hangs and flakes we had (kafka-python's stuck rejoin, a SASL refusal read as "cannot
reach Kafka") showed only on a loaded machine; CI machines are shared and often are. `make
test-stress` runs the integration tests this way; `make stress-bench` runs the Kafka benchmark
smoke test 20 times. Burners are plain busy-looping processes at normal priority, as many as
the machine has cores unless told otherwise; they are killed however the command ends.
Prints one line per run (exit code, seconds) and a summary; exits with the first failing code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

BURN = "while True: pass"


def _burners(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m tests.stress", description=summary)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    burners = _burners(args.burners)
    what = " ".join(command)
    print(f"stress: {args.burners} CPU burners, {args.repeat} run(s) of: {what}", flush=True)
    results: list[tuple[int, float]] = []
    try:
        for run in range(1, args.repeat + 1):
            started = time.monotonic()
            code = subprocess.call(command)
            took = time.monotonic() - started
            results.append((code, took))
            print(f"stress: run {run}/{args.repeat}: exit {code} in {took:.1f} s", flush=True)
    except KeyboardInterrupt:
        print("stress: interrupted", flush=True)
        return 130
    finally:
        for burner in burners:
            burner.send_signal(signal.SIGKILL)
            burner.wait()
    failed = [code for code, _ in results if code != 0]
    slowest = max((took for _, took in results), default=0.0)
    print(f"stress: {len(results) - len(failed)} of {len(results)} passed; slowest {slowest:.1f} s",
          flush=True)  # fmt: skip
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main())
