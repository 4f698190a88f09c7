"""What the console calls things: Chinese first, English after ("逾期 Overdue"), for the county's
supervisors and for the engineers who run the service beside them.

Rung names are the workflows' own (`tiers:` in the YAML): the glossary below only adds the
Chinese word for the rung names the shipped workflows use, for display; a rung it does not know
is shown by its name alone, so a new workflow needs no change here.

`describe` reads one history record as the case page shows it: which kind of mark on the
timeline, what label, what detail. It reads records as plain JSON by `type`, as the fold does,
so a record type this checkout does not know is still listed (kind `other`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from consumers.view.fold import instant

WORDS = {
    "backlog": "待办总览 Backlog",
    "open": "在办 Open",
    "closed": "已办结 Closed",
    "overdue": "逾期 Overdue",
    "at_risk": "临期 At risk",
    "paused": "暂停 Paused",
    "forecast": "超期预测 Breach forecast",
    "ladder": "层级漏斗 The ladder",
    "case": "案件 Case",
    "timeline": "时间线 Timeline",
    "records": "记录 Records",
    "search": "搜索 Search",
    "workflow": "流程 Workflow",
    "tier": "层级 Rung",
    "state": "状态 State",
    "status": "办理状态 Status",
    "deadline": "时限 Deadline",
    "left": "剩余 Time left",
    "opened_at": "立案 Opened",
    "entered_at": "进入本状态 In state since",
    "warning_at": "预警时间 Warning at",
    "extensions": "延期次数 Extensions",
    "escalations": "升级次数 Escalations",
    "breaches": "超时次数 Breaches",
    "outcome": "结果 Outcome",
    "resolved_tier": "化解层级 Resolved at",
    "on_time": "按时 On time",
    "closed_at": "办结时间 Closed at",
    "version": "版本 Version",
    "ticket": "工单号 Ticket",
    "attributes": "案件属性 Attributes",
    "limit": "时限窗口 Limit",
    "now": "现在 Now",
    "scope": "可见范围 Scope",
    "everything": "全部 Everything",
    "none": "无 None",
    "more": "更多 More",
    "all": "全部 All",
    "not_found": "未找到 Not found",
    "refresh": "每 30 秒自动刷新 Refreshes every 30 s",
    "no_tier": "无层级 No rung",
    "yes": "是 Yes",
    "no": "否 No",
    "retracted": "已撤回 Retracted",
    "cause": "起因 Caused by",
    "seq": "序号 Seq",
    "time": "时间 Time",
    "type": "类型 Type",
    "detail": "详情 Detail",
    "cases": "件 cases",
    "hours": "小时 hours",
}

RUNG_NAMES = {
    "grid": "网格", "center": "矛调中心", "court": "法院诉前调解",
    "street": "街道", "district": "区级", "city": "市级",
    "township": "乡镇", "county": "县级", "province": "省级",
}  # fmt: skip

OUTCOMES = {
    "resolved": "化解 resolved", "confirmed": "司法确认 confirmed",
    "withdrawn": "撤回 withdrawn", "litigation": "诉讼 litigation", "referred": "移交 referred",
}  # fmt: skip

WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

KINDS = {
    "opened": "立案 Opened",
    "transition": "流转 Transition",
    "escalation": "升级 Escalation",
    "migrated": "版本迁移 Migrated",
    "warning": "预警 Warning",
    "breach": "超时 Breach",
    "lapse": "当事人逾期 Party's window lapsed",
    "paused": "暂停 Paused",
    "resumed": "恢复 Resumed",
    "extended": "延期 Extended",
    "sla": "时限变更 Limit changed",
    "closed": "办结 Closed",
    "retraction": "撤回记录 Retraction",
    "other": "其他 Other",
}


def rung(tier: str | None) -> str:
    """`网格 grid`; a rung without Chinese name as is; no rung as such."""
    if tier is None:
        return WORDS["no_tier"]
    chinese = RUNG_NAMES.get(tier)
    return f"{chinese} {tier}" if chinese else tier


def outcome(name: str | None) -> str:
    return "" if name is None else OUTCOMES.get(name, name)


def duration(seconds: float) -> str:
    """`2天3小时 2 d 3 h`, `5小时 5 h`, `40分钟 40 min`: how long, to the unit that matters."""
    minutes = int(abs(seconds) // 60)
    days, hours = divmod(minutes // 60, 24)
    if days:
        return f"{days}天{hours}小时 {days} d {hours} h" if hours else f"{days}天 {days} d"
    if hours:
        return f"{hours}小时 {hours} h"
    return f"{minutes % 60}分钟 {minutes % 60} min"


def time_left(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return ""
    left = (deadline - now).total_seconds()
    if left <= 0:
        return f"逾期 {duration(left)} over"
    return f"剩 {duration(left)} left"


@dataclass(frozen=True)
class Described:
    kind: str
    label: str
    detail: str
    from_state: str | None = None
    to_state: str | None = None
    tier: str | None = None
    deadline: datetime | None = None


def describe(record: Mapping[str, Any], ladder: Sequence[str] | None, zone: ZoneInfo) -> Described:
    """The kind, label and detail of one case record as the case page shows it."""
    kind = _kind(record, ladder)
    sla = record.get("sla")
    deadline_text = (sla or {}).get("deadline") or record.get("deadline")
    deadline = instant(deadline_text) if deadline_text else None
    parts: list[str] = []
    if record.get("trigger"):
        parts.append(str(record["trigger"]))
    if kind == "closed":
        parts.append(outcome(record.get("outcome")))
        parts.append(
            f"{WORDS['on_time']}: {WORDS['yes'] if record.get('on_time') else WORDS['no']}"
        )
    if kind == "retraction":
        parts.append(f"#{record.get('retracted_seq')} {record.get('retracted_type', '')}")
    if kind in ("breach", "lapse", "warning") and record.get("state"):
        parts.append(str(record["state"]))
    if deadline is not None and kind not in ("closed", "retraction"):
        parts.append(f"{WORDS['deadline']} {deadline.astimezone(zone):%Y-%m-%d %H:%M}")
    if sla and sla.get("extensions"):
        parts.append(f"{WORDS['extensions']} {sla['extensions']}")
    return Described(
        kind=kind,
        label=KINDS[kind],
        detail=" · ".join(p for p in parts if p),
        from_state=record.get("from_state"),
        to_state=record.get("to_state"),
        tier=record.get("to_tier"),
        deadline=deadline,
    )


def _kind(record: Mapping[str, Any], ladder: Sequence[str] | None) -> str:
    kind = record.get("type")
    if kind == "case.transitioned":
        if record.get("from_state") is None:
            return "opened"
        return "escalation" if climbed(ladder, record.get("from_tier"),
                                       record.get("to_tier")) else "transition"  # fmt: skip
    if kind == "sla.changed":
        action = record.get("action")
        return action if action in ("paused", "resumed", "extended") else "sla"
    if kind == "sla.breached":
        return "lapse" if record.get("owner", "organ") != "organ" else "breach"
    simple = {"case.migrated": "migrated", "sla.warning": "warning", "case.closed": "closed",
              "record.retracted": "retraction"}  # fmt: skip
    return simple.get(str(kind), "other")


def climbed(ladder: Sequence[str] | None, from_tier: str | None, to_tier: str | None) -> bool:
    """Up the ladder (any change of rung when the ladder is not known): the fold's rule."""
    if from_tier is None or to_tier is None or from_tier == to_tier:
        return False
    if ladder is None or from_tier not in ladder or to_tier not in ladder:
        return True
    return ladder.index(to_tier) > ladder.index(from_tier)
