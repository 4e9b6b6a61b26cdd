"""Every audit action the code records has a Vietnamese name for the audit page."""

from __future__ import annotations

import re
from pathlib import Path

from web.actions import LABELS, action_label

ROOT = Path(__file__).resolve().parents[2]


def test_every_recorded_action_has_a_vietnamese_label() -> None:
    recorded: set[str] = set()
    for path in [*ROOT.joinpath("eoffice").rglob("*.py"), *ROOT.joinpath("meetings").rglob("*.py")]:
        recorded |= set(re.findall(r"audit\.record\(\s*\w+,\s*\w+,\s*\"([a-z_.]+)\"", path.read_text()))
    assert len(recorded) > 40  # the scan itself works
    missing = sorted(a for a in recorded if a not in LABELS)
    assert missing == [], f"add Vietnamese labels in web/actions.py for: {missing}"


def test_unknown_actions_fall_back_to_their_area() -> None:
    assert action_label("poll.vote") == "Bỏ phiếu"
    assert action_label("meeting.something_new") == "Cuộc họp: something_new"
    assert action_label("custom") == "custom"
