"""Every audit action the code records has a Vietnamese name for the audit page."""

from __future__ import annotations

import re
from pathlib import Path

from web.actions import LABELS, action_label

ROOT = Path(__file__).resolve().parents[2]


def test_every_recorded_action_has_a_vietnamese_label() -> None:
    recorded: set[str] = set()
    for area in ("eoffice", "meetings", "storage", "web"):
        for path in ROOT.joinpath(area).rglob("*.py"):
            # the action is the third argument; the first two may be expressions (uow, request.state.user)
            recorded |= set(re.findall(r"audit\.record\(\s*[\w.]+,\s*[^,()]+?,\s*\"([a-z0-9_.]+)\"", path.read_text()))
    assert len(recorded) > 100 and "user.2fa.enable" in recorded  # the scan itself works, digits included
    missing = sorted(a for a in recorded if a not in LABELS)
    assert missing == [], f"add Vietnamese labels in web/actions.py for: {missing}"


def test_unknown_actions_fall_back_to_their_area() -> None:
    assert action_label("poll.vote") == "Bỏ phiếu"
    assert action_label("meeting.something_new") == "Cuộc họp: something_new"
    assert action_label("custom") == "custom"
