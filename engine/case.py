"""The case record: everything the engine knows about one dispute, as a small immutable value.

Cases are plain records, not one `transitions.Machine` each: one compiled machine per workflow
version is shared by every case (building a Machine costs ~90 µs; a record costs nothing).
They are NamedTuples rather than frozen dataclasses because the core copies them several times
per event and `_replace` is four times cheaper than `dataclasses.replace`.
SLA timers live *inside* the record, so whatever restores a case (a changelog, a SQLite row)
restores its deadlines with it; the timer heap of a partition is only an index over records.
"""

from __future__ import annotations

import sys
from datetime import datetime, tzinfo
from typing import Any, Literal, NamedTuple

from schemas.events import CaseEvent, Scalar

MAX_REMEMBERED_EVENT_IDS = 256
"""Per case; upstream retries arrive within minutes, a case sees tens of events in its life."""

TimerKind = Literal["warning", "deadline"]


class SlaClock(NamedTuple):
    """The time limit of the state the case is in."""

    deadline: datetime
    warning_at: datetime
    warned: bool = False
    breached: bool = False
    paused_at: datetime | None = None
    extensions: int = 0
    data_missing: bool = False
    party: bool = False
    """The party's window (`owner: party`): its lapse is no breach by the organ."""


class Timer(NamedTuple):
    """A pending timer. `timer_id` is deterministic, so a replay fires the same id."""

    due: datetime
    case_id: str
    kind: TimerKind
    timer_id: str


class Checkpoint(NamedTuple):
    """One input of a case within its workflow's correction horizon, with the case as it was
    just before it: a late event re-derives the case from the first checkpoint after its own
    instant (engine/correction.py)."""

    at: datetime
    """When the input took effect: the event's `occurred_at` (the case's clock, if it was
    behind), or the due instant of the timer that fired."""
    before: Case | None
    """The case just before the input (without its own checkpoints); None: it opened the case."""
    produced: tuple[str, ...]
    """The types of the live records it made, `seq` before.seq + 1 onwards."""
    event: CaseEvent | None = None
    """The event; None: a timer fired (a re-derivation fires timers anew)."""
    origin: str = ""
    refused: bool = False
    """The event was refused (its dead letter is written): a re-derivation tries it again."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": _iso(self.at),
            "before": None if self.before is None else self.before.to_dict(),
            "produced": list(self.produced),
        }
        if self.event is not None:
            out["event"] = self.event.model_dump(mode="json")
            out["origin"] = self.origin
            out["refused"] = self.refused
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        event = data.get("event")
        before = data["before"]
        return cls(
            at=_timestamp(data["at"]),
            before=None if before is None else Case.from_dict(before),
            produced=tuple(sys.intern(t) for t in data["produced"]),
            event=None if event is None else CaseEvent.model_validate(event),
            origin=str(data.get("origin", "")),
            refused=bool(data.get("refused", False)),
        )


class Case(NamedTuple):
    """One dispute. `tier` is the rung the case last stood on: a tier-less state (an agreement
    waiting for judicial confirmation) keeps it, so `resolved_tier` names where it was settled."""

    case_id: str
    workflow: str
    version: int
    state: str
    tier: str | None
    seq: int
    clock: datetime
    opened_at: datetime
    entered_at: datetime
    entered_seq: int
    """`seq` of the record that entered the state: makes timer ids unique per stay."""
    escalations: int = 0
    breaches: int = 0
    closed: bool = False
    attrs: dict[str, Scalar] = {}  # noqa: RUF012 - never mutated; a new case gets its own dict
    sla: SlaClock | None = None
    seen: tuple[str, ...] = ()
    marks: tuple[tuple[str, datetime], ...] = ()
    """When the case last entered each state the workflow counts a limit from (`from: STATE`);
    only those states, so most cases carry none."""
    history: tuple[Checkpoint, ...] = ()
    """Its inputs within the workflow's correction horizon (none without one)."""

    def entered(self, state: str) -> datetime | None:
        """The last entry into `state`, if the workflow marks it."""
        return next((at for name, at in self.marks if name == state), None)

    def marked(self, state: str, at: datetime) -> Case:
        return self._replace(marks=(*((n, t) for n, t in self.marks if n != state), (state, at)))

    def timers(self) -> tuple[Timer, ...]:
        """Pending timers: none when closed, paused or already breached."""
        sla = self.sla
        if sla is None or self.closed or sla.paused_at is not None or sla.breached:
            return ()
        prefix = f"{self.case_id}/{self.entered_seq}"
        deadline = Timer(sla.deadline, self.case_id, "deadline", f"{prefix}/deadline")
        if sla.warned or sla.warning_at >= sla.deadline:
            return (deadline,)
        return (Timer(sla.warning_at, self.case_id, "warning", f"{prefix}/warning"), deadline)

    def next_due(self) -> datetime | None:
        """`timers()[0].due`, without building the timers: the replay asks after every input,
        and their ids (two f-strings) are wanted only when one fires."""
        sla = self.sla
        if sla is None or self.closed or sla.paused_at is not None or sla.breached:
            return None
        if sla.warned or sla.warning_at >= sla.deadline:
            return sla.deadline
        return sla.warning_at

    def remember(self, event_id: str) -> Case:
        return self._replace(seen=(*self.seen, event_id)[-MAX_REMEMBERED_EVENT_IDS:])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (for the changelog and the SQLite store)."""
        out: dict[str, Any] = {
            "case_id": self.case_id,
            "workflow": self.workflow,
            "version": self.version,
            "state": self.state,
            "tier": self.tier,
            "seq": self.seq,
            "clock": _iso(self.clock),
            "opened_at": _iso(self.opened_at),
            "entered_at": _iso(self.entered_at),
            "entered_seq": self.entered_seq,
            "escalations": self.escalations,
            "breaches": self.breaches,
            "closed": self.closed,
            "attrs": dict(self.attrs),
            "sla": None,
            "seen": list(self.seen),
        }
        if self.marks:  # absent rather than empty: older snapshots read the same
            out["marks"] = [[name, _iso(at)] for name, at in self.marks]
        if self.history:
            out["history"] = [checkpoint.to_dict() for checkpoint in self.history]
        if self.sla is not None:
            s = self.sla
            out["sla"] = {
                "deadline": _iso(s.deadline),
                "warning_at": _iso(s.warning_at),
                "warned": s.warned,
                "breached": s.breached,
                "paused_at": _iso(s.paused_at) if s.paused_at else None,
                "extensions": s.extensions,
                "data_missing": s.data_missing,
            }
            if s.party:  # absent rather than false: older snapshots read the same
                out["sla"]["party"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        sla = data.get("sla")
        ts = _timestamp
        tier = data["tier"]
        return cls(
            case_id=data["case_id"],
            workflow=sys.intern(data["workflow"]),
            version=int(data["version"]),
            state=sys.intern(data["state"]),
            tier=None if tier is None else sys.intern(tier),
            seq=int(data["seq"]),
            clock=ts(data["clock"]),
            opened_at=ts(data["opened_at"]),
            entered_at=ts(data["entered_at"]),
            entered_seq=int(data["entered_seq"]),
            escalations=int(data["escalations"]),
            breaches=int(data["breaches"]),
            closed=bool(data["closed"]),
            attrs={sys.intern(k): _shared(v) for k, v in data["attrs"].items()},
            seen=tuple(data["seen"]),
            marks=tuple((sys.intern(n), ts(at)) for n, at in data.get("marks", ())),
            history=tuple(Checkpoint.from_dict(c) for c in data.get("history", ())),
            sla=None
            if sla is None
            else SlaClock(
                deadline=ts(sla["deadline"]),
                warning_at=ts(sla["warning_at"]),
                warned=bool(sla["warned"]),
                breached=bool(sla["breached"]),
                paused_at=ts(sla["paused_at"]) if sla["paused_at"] else None,
                extensions=int(sla["extensions"]),
                data_missing=bool(sla["data_missing"]),
                party=bool(sla.get("party", False)),
            ),
        )


# A restore decodes a million snapshots: without these, every case would hold its own copies of
# the workflow, state and tier names, attribute keys and values, and five UTC-offset objects
# (about 700 bytes of a case's 1.6 KB). Cases built by the engine share them already.
_ZONES: dict[tzinfo, tzinfo] = {}
SHARED_VALUE_MAX = 64
"""Attribute strings up to this length are interned (categories, districts); longer ones are
free text, kept as they are."""


ISO_MEMO_ENTRIES = 4096
"""Texts `_iso` remembers; when full it forgets them all (bounded memory, no LRU upkeep)."""
_ISO: dict[tuple[datetime, tzinfo | None, int], str] = {}


def _iso(at: datetime) -> str:
    """`at.isoformat()`, remembered: a snapshot writes five instants (~11k instructions each),
    and most come back from the case's last snapshot or from other cases (its opening, the
    stay's entry, deadlines shared by the day). Keyed by value, zone object and fold: equal
    datetimes with the same `tzinfo` and `fold` have the same fields, hence the same text."""
    key = (at, at.tzinfo, at.fold)
    text = _ISO.get(key)
    if text is None:
        if len(_ISO) >= ISO_MEMO_ENTRIES:
            _ISO.clear()
        text = _ISO[key] = at.isoformat()
    return text


def _timestamp(text: str) -> datetime:
    """`datetime.fromisoformat`, with one shared tzinfo object per UTC offset."""
    at = datetime.fromisoformat(text)
    zone = at.tzinfo
    if zone is None:
        return at
    shared = _ZONES.setdefault(zone, zone)
    return at if shared is zone else at.replace(tzinfo=shared)


def _shared(value: Any) -> Any:
    if isinstance(value, str) and len(value) <= SHARED_VALUE_MAX:
        return sys.intern(value)
    return value
