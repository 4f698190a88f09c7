"""What the intake adapters export: messages by channel, kind and outcome, bytes, lag.

A broken upstream system shows here first: its messages turn `refused`, so the dead-letter alert
(`channel:fengqiao_intake_refused:ratio_10m`) fires for it by name. Counted when the batch
commits, like the engine's counters, so an aborted batch is not counted twice.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.channels import Channel
from engine.intake import Translation


@dataclass(frozen=True)
class IntakeMetrics:
    messages: Counter
    events: Counter
    bytes: Counter
    lag: Gauge

    @classmethod
    def create(
        cls,
        registry: CollectorRegistry | None = None,
        channels: Mapping[str, Channel] | None = None,
    ) -> IntakeMetrics:
        """Every channel's and kind's series exported at 0 from the start, so a rate over them
        and the refused ratio exist before the first message (absent series hide an outage)."""
        r = registry if registry is not None else CollectorRegistry()
        metrics = cls(
            messages=Counter("fengqiao_intake_messages_total",
                             "Native messages consumed by the adapters, by channel, kind and "
                             "outcome (event, refused, ignored); reason: why it was refused.",
                             ["channel", "kind", "outcome", "reason"], registry=r),
            events=Counter("fengqiao_intake_events_total",
                           "Canonical events the adapters emitted, by channel and type.",
                           ["channel", "type"], registry=r),
            bytes=Counter("fengqiao_intake_bytes_total",
                          "Bytes of native messages consumed, by channel.", ["channel"],
                          registry=r),
            lag=Gauge("fengqiao_intake_lag",
                      "Native messages not yet consumed (highwater minus position), by channel.",
                      ["channel"], registry=r),
        )  # fmt: skip
        for name, channel in (channels or {}).items():
            metrics.bytes.labels(name)
            metrics.lag.labels(name).set(0)
            for kind in channel.kinds:
                metrics.messages.labels(name, kind, "event", "")
        return metrics


@dataclass
class BatchTally:
    """What one adapter batch did, published only once its transaction commits."""

    messages: Tally[tuple[str, str, str, str]] = field(default_factory=Tally)
    events: Tally[tuple[str, str]] = field(default_factory=Tally)
    bytes: Tally[str] = field(default_factory=Tally)

    def add(self, channel: str, size: int, result: Translation) -> None:
        self.bytes[channel] += size
        if result.refused is not None:
            outcome, reason = "refused", result.refused.reason
        else:
            outcome, reason = ("event" if result.events else "ignored"), ""
        self.messages[(channel, result.kind, outcome, reason)] += 1
        for event in result.events:
            self.events[(channel, event.type)] += 1

    def publish(self, metrics: IntakeMetrics) -> None:
        for labels, n in self.messages.items():
            metrics.messages.labels(*labels).inc(n)
        for labels2, n in self.events.items():
            metrics.events.labels(*labels2).inc(n)
        for channel, n in self.bytes.items():
            metrics.bytes.labels(channel).inc(n)
