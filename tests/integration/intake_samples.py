"""Realistic native messages of each intake channel, full of personal data on purpose.

Every name, phone and ID number here is invented; tests check that none of them reaches a
canonical event, an output record or a log line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.channel_checks import load_channels

CHANNELS = load_channels(Path(__file__).resolve().parents[2] / "workflows")
"""The shipped channel files, compiled (as `fengqiao run` loads them)."""

NAMES = ["王建国", "李秀英", "张伟", "陈静", "刘洋", "赵敏"]
PHONES = ["13812345678", "13987654321", "15011112222", "18633334444"]
ID_NUMBERS = ["330681198001011234", "33068119851231567X"]
SECRETS = NAMES + PHONES + ID_NUMBERS


def person(n: int) -> dict[str, str]:
    return {"name": NAMES[n % len(NAMES)], "phone": PHONES[n % len(PHONES)],
            "id_number": ID_NUMBERS[n % len(ID_NUMBERS)]}  # fmt: skip


SAMPLES: dict[str, list[dict[str, Any]]] = {
    "hotline-12345": [
        {"kind": "work_order", "message_id": "HL-M-1", "ticket_no": "20250924-0031",
         "received_at": "2025-09-24 09:40:00", "urgency": "general",
         "category": "housing_repair", "district_code": "D03", "street_code": "S0307",
         "content": f"{NAMES[0]}（电话{PHONES[0]}）反映屋顶漏水，身份证{ID_NUMBERS[0]}",
         "caller": person(0)},
        {"kind": "order_update", "message_id": "HL-M-2", "ticket_no": "20250924-0031",
         "at": "2025-09-25T15:20:00+08:00", "action": "returned", "handler_code": "S0307",
         "note": f"联系人{NAMES[1]} {PHONES[1]}"},
        {"kind": "order_update", "message_id": "HL-M-3", "ticket_no": "20250924-0031",
         "at": "2025-09-26T10:05:00+08:00", "action": "dispatched", "handler_code": "HMO-3"},
    ],
    "grid": [
        {"kind": "patrol_report", "message_id": "GR-M-1", "report_no": "ZJ-2026-0001",
         "officer_id": "G07", "grid_code": "FQ-03-12", "reported_at": "2026-02-05 10:00:00",
         "category": "neighbour", "risk": "yellow",
         "description": f"{NAMES[2]}家的狗咬死了{NAMES[3]}家的鸡，双方打架，电话{PHONES[2]}",
         "parties": [person(2), person(3)]},
        {"kind": "patrol_report", "message_id": "GR-M-2", "report_no": "ZJ-2026-0002",
         "officer_id": "G07", "grid_code": "FQ-03-12", "reported_at": "2026-02-06 16:00:00",
         "category": "parking", "resolved_on_spot": True, "parties": [person(4)]},
    ],
    "online": [
        {"kind": "submission", "message_id": "ON-M-1", "submission_id": "WSFQ-88001",
         "submitted_at": "2026-03-02T20:15:00+08:00", "via": "mini_program",
         "category": "property", "district_code": "D01",
         "description": f"物业纠纷，联系{NAMES[4]} {PHONES[3]}", "applicant": person(4)},
    ],
    "petition": [
        {"kind": "registration", "message_id": "XF-M-1", "petition_no": "XF-2025-0008",
         "received_at": "2025-10-13T09:00:00+08:00", "form": "visit", "petitioner_count": 28,
         "matter": "wage_arrears", "petitioners": [person(0), person(1), person(5)],
         "content": f"代表{NAMES[5]}，身份证{ID_NUMBERS[1]}"},
        {"kind": "decision", "message_id": "XF-M-2", "petition_no": "XF-2025-0008",
         "at": "2025-10-15T09:00:00+08:00", "decision": "routed"},
    ],
    "police": [
        {"kind": "transfer", "message_id": "110-M-1", "incident_no": "110-20260110-77",
         "station_code": "PS-FQ", "received_at": "2026-01-10T22:30:00+08:00",
         "category": "neighbour", "summary": f"{NAMES[1]}与{NAMES[2]}因噪音争吵",
         "parties": [person(1), person(2)]},
    ],
    "court": [
        {"kind": "diversion", "message_id": "CT-M-1", "filing_no": "2026-0681-SQ-1",
         "court_code": "ZJ0681",
         "filed_at": "2026-03-02T09:00:00+08:00", "category": "debt", "parties_consent": True,
         "parties": [person(3), person(5)]},
    ],
}  # fmt: skip

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "hotline-12345": ({**SAMPLES["hotline-12345"][0], "message_id": "HL-BAD",
                       "urgency": "whenever"}, "$.urgency"),
    "grid": ({**SAMPLES["grid"][0], "message_id": "GR-BAD", "reported_at": "yesterday"},
             "$.reported_at"),
    "online": ({**SAMPLES["online"][0], "message_id": "ON-BAD", "district_code": None},
               "$.district_code"),
    "petition": ({**SAMPLES["petition"][0], "message_id": "XF-BAD", "petitioner_count": 0},
                 "$.petitioner_count"),
    "police": ({**SAMPLES["police"][0], "message_id": "110-BAD", "category": "Not A Code"},
               "$.category"),
    "court": ({**SAMPLES["court"][0], "message_id": "CT-BAD", "parties_consent": False},
              "$.parties_consent"),
}  # fmt: skip


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()
