"""What `fengqiao bench kafka` and `bench scale` share: a broker, the engine as a process, the
committed progress of a consumer group, CPU and memory readings, percentiles, tables.

The machine is shared and noisy, so every figure is printed next to a baseline measured in the
same run; CPU readings (`/proc`) say which process the time went to.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.kafka.admin import admin_client
from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings, kafka_client_config, load_settings
from consumers.synthetic import synthetic_stream

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KAFKA = ROOT / "deploy" / "local" / "kafka"
BOOTSTRAP_ENV = ("FENGQIAO_BOOTSTRAP_SERVERS", "FENGQIAO_KAFKA_BOOTSTRAP_SERVERS")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    pid: int | None
    """The broker JVM when we started it (for its CPU time), else None."""


@contextmanager
def broker() -> Iterator[Broker]:
    """The broker named in FENGQIAO_(KAFKA_)BOOTSTRAP_SERVERS, else a fresh local one that is
    stopped and deleted afterwards."""
    for name in BOOTSTRAP_ENV:
        if os.environ.get(name, "").strip():
            yield Broker(os.environ[name].strip(), None)
            return
    state = tempfile.mkdtemp(prefix="fengqiao-bench-kafka-")
    env = {**os.environ, "FENGQIAO_PYTHON": sys.executable}
    start = [str(LOCAL_KAFKA), "start", "--dir", state]
    proc = subprocess.run(  # noqa: S603 - the project's own script
        start, capture_output=True, text=True, env=env, timeout=900, check=False
    )
    found = re.search(r"^bootstrap=(\S+)$", proc.stdout, re.MULTILINE)
    try:
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"deploy/local/kafka start failed:\n{proc.stderr[-2000:]}")
        print(f"broker: started {found.group(1)} ({state})", file=sys.stderr)
        pid = int(Path(state, "kafka.pid").read_text(encoding="utf-8"))
        yield Broker(found.group(1), pid)
    finally:
        stop = [str(LOCAL_KAFKA), "stop", "--dir", state, "--clean"]
        subprocess.run(stop, capture_output=True, env=env, timeout=120, check=False)  # noqa: S603


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(encoding="utf-8"))

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),  # noqa: TID251 - a report's date
        "nproc": os.cpu_count(),
        "cpu": model.group(1).strip() if model else "unknown",
        "ram_gib": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "load_avg_1m": os.getloadavg()[0],
        "python": sys.version.split()[0],
        "kafka_python": version("kafka-python"),
        "crc32c": "C (crc32c package)" if find_spec("crc32c") else "pure Python",
    }


def rss_bytes() -> int:
    """Resident memory of this process (VmRSS)."""
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


class CpuMeter:
    """CPU seconds used by some processes, and how busy the whole machine was, between
    `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._start: tuple[float, dict[str, float], tuple[int, int]] = (0.0, {}, (0, 0))

    def start(self) -> None:
        self._start = (time.monotonic(), self._procs(), _machine_ticks())

    def stop(self) -> dict[str, float]:
        began, procs, (busy0, total0) = self._start
        wall = max(time.monotonic() - began, 1e-9)
        now = self._procs()
        busy1, total1 = _machine_ticks()
        out = {f"cpu_{name}_cores": round((now[name] - procs.get(name, 0.0)) / wall, 2)
               for name in now}  # fmt: skip
        out["cpu_machine_busy"] = round((busy1 - busy0) / max(total1 - total0, 1), 2)
        return out

    def _procs(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1]
            except OSError:
                continue
            parts = fields.split()
            out[name] = (int(parts[11]) + int(parts[12])) / TICKS  # utime + stime
        return out


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text(encoding="utf-8").split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max (nearest rank) of `samples`, in their unit, rounded."""
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": round(rank(0.50), 1), "p95": round(rank(0.95), 1),
            "p99": round(rank(0.99), 1), "max": round(ordered[-1], 1)}  # fmt: skip


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(out: str | None, figures: dict[str, Any]) -> None:
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {out}")


def child_env() -> dict[str, str]:
    """This environment, with the project importable from any working directory."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bench_settings(bootstrap: str, prefix: str, partitions: int, **extra: object) -> Settings:
    """Settings with topics, group and transactional ids of their own; the topics are created."""
    settings = load_settings({
        "bootstrap_servers": bootstrap, "partitions": partitions,
        "topic_case_events": f"{prefix}.case-events", "topic_transitions": f"{prefix}.transitions",
        "topic_case_state": f"{prefix}.case-state", "topic_dead_letter": f"{prefix}.dead-letter",
        "intake_topic_prefix": f"{prefix}.intake.", "group_id": f"{prefix}.group",
        "transactional_id_prefix": f"{prefix}.tx", "instance_id": "a", **extra,
    })  # fmt: skip
    create_topics(settings)
    return settings


def unique(prefix: str) -> str:
    return f"bench.{prefix}.{os.getpid()}.{time.monotonic_ns() % 10**9}"


class StageProcess:
    """A stage as a child process configured like `fengqiao run` (FENGQIAO_* from `settings`,
    + `env`): `engine` is `fengqiao run --role engine`, `passthrough` the bench's baseline."""

    def __init__(
        self, kind: str, settings: Settings, workdir: Path, profile: Path | None = None,
        args: tuple[str, ...] = (), **env: str,
    ) -> None:  # fmt: skip
        """`profile`: run the stage under cProfile, writing its stats there on exit; `args`:
        the command line after the module."""
        self.kind = kind
        self.port = free_port()
        values = {
            "BOOTSTRAP_SERVERS": settings.bootstrap_servers, "PARTITIONS": settings.partitions,
            "TOPIC_CASE_EVENTS": settings.topic_case_events,
            "TOPIC_TRANSITIONS": settings.topic_transitions,
            "TOPIC_CASE_STATE": settings.topic_case_state,
            "TOPIC_DEAD_LETTER": settings.topic_dead_letter,
            "INTAKE_TOPIC_PREFIX": settings.intake_topic_prefix, "GROUP_ID": settings.group_id,
            "TRANSACTIONAL_ID_PREFIX": settings.transactional_id_prefix,
            "WORKFLOWS": settings.workflows, "STORE": settings.store, "CLOCK": settings.clock,
            "ROLE": "engine", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": self.port,
            "INSTANCE_ID": settings.instance_id, **env,
        }  # fmt: skip
        child = {k: v for k, v in child_env().items() if not k.startswith("FENGQIAO_")}
        child.update({f"FENGQIAO_{k}": str(v) for k, v in values.items()})
        main = "consumers.cli.main run" if kind == "engine" else "consumers.bench.passthrough"
        module = [*main.split(), *args]
        if profile is not None:
            module = ["cProfile", "-o", str(profile), "-m", *module]
        self.log = workdir / f"{kind}-{self.port}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", *module],
                env=child, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Until its partitions are assigned (and restored): the engine's /readyz answers 200,
        the pass-through logs `ready`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited ({self.proc.returncode}); see {self.log}")
            if self._ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} not ready after {timeout_s}s; see {self.log}")

    def owned_partitions(self) -> int:
        """Partitions the engine holds now, from its log (restored minus revoked)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return text.count('"partition.restored"') - text.count('"partition.revoked"')

    def _ready(self) -> bool:
        if self.kind != "engine":
            return "passthrough.ready" in self.log.read_text(encoding="utf-8", errors="replace")
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> int:
        """SIGTERM: finish the batch, commit, leave the group (exit 0). Any other end is shown
        with the tail of the stage's log, whose folder is deleted after the run."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code != 0:
            print(f"{self.kind} exited {code}; its log ends:\n{self.tail()}", file=sys.stderr)
        return code

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def stream(events: int) -> list[bytes]:
    """`events` canonical events of the realistic mix (`bench core`'s synthetic stream)."""
    cases = events // 3 + 1  # about three events per case
    while len(lines := synthetic_stream(cases)) < events:
        cases += cases // 20 + 1
    return lines[:events]


def produce(settings: Settings, lines: list[bytes]) -> None:
    """All of `lines` to case-events, keyed by case_id, as fast as the client goes."""
    producer = KafkaProducer(**kafka_client_config(settings), linger_ms=20, batch_size=262_144)
    for line in lines:
        producer.send(settings.topic_case_events, key=json.loads(line)["case_id"].encode(),
                      value=line)  # fmt: skip
    producer.flush()
    producer.close()


def committed(admin: Any, group: str, topic: str) -> int:
    """Input records a consumer group has committed on `topic` (sum over its partitions)."""
    try:
        offsets = admin.list_group_offsets(group)[group]
    except KafkaError:  # e.g. UnstableOffsetCommit while a transaction is open: ask again
        return -1
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)


def watch_throughput(
    settings: Settings,
    total: int,
    stages: Sequence[StageProcess],
    meter: CpuMeter,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Events/s of the stages' group draining `total` records of case-events: from the first
    commit seen to the last (start-up, restore and the group join are left out), with CPU use
    over that window. Raises, with the end of each stage's log, if a stage dies or the group
    stops short of `total` within `timeout_s`."""
    with admin_client(settings) as admin:
        deadline = time.monotonic() + timeout_s
        first: tuple[float, int] | None = None
        done = 0
        while time.monotonic() < deadline and all(s.proc.poll() is None for s in stages):
            done = max(done, committed(admin, settings.group_id, settings.topic_case_events))
            now = time.monotonic()
            if first is None and done > 0:
                first = (now, done)
                meter.start()
            if done >= total:
                break
            time.sleep(0.05)
        cpu = meter.stop() if first else {}
    if first is None or done < total:
        logs = "".join(f"\n--- {s.log.name}:\n{s.tail()}" for s in stages)
        raise RuntimeError(f"group {settings.group_id} committed {done} of {total}{logs}")
    events = total - first[1]  # 0: all was done before the first look (a backlog too small)
    seconds = max(now - first[0], 1e-9)
    return {"events": events, "seconds": round(seconds, 2),
            "events_per_s": round(events / seconds) if events else None, **cpu}  # fmt: skip
