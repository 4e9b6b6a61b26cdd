"""Contract of the voting API: polls, votes (also paper ballots and roll calls), voting rights."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from web.contract.core import Body, Int, Ok, OptInt, Out, Text, require


class Poll(Out):
    """A poll: settings, progress, the result when visible, and (one poll) my rights to vote."""

    id: int
    meeting_id: int
    title: str
    method: str
    state: str
    state_label: str
    options: list[Any]
    secret: bool


class PollList(Out):
    polls: list[Poll]
    controller: bool
    server_time: str


class PollView(Poll):
    server_time: str | None = None


class Voters(Out):
    voters: list[dict[str, Any]]
    not_voted: list[dict[str, Any]]


class Receipts(Ok):
    receipts: list[dict[str, Any]]


class VoteReceipt(Ok):
    """Stored: the vote's receipt."""

    message: str


class Rights(Out):
    rights: list[dict[str, Any]]


class PollCreate(Body):
    """A draft poll (see the operation for the values each setting takes)."""

    model_config = ConfigDict(json_schema_extra=require("meeting_id", "title"))
    meeting_id: OptInt = None
    title: Text = ""
    description: Text = ""
    method: Text = ""
    options: list[Any] | None = None
    max_choices: OptInt = None
    seats: OptInt = None
    allow_abstain: bool | None = None
    secret: bool | None = None
    allow_change: bool | None = None
    visibility: Text = ""
    majority: Text = ""
    base: Text = ""
    tie_rule: Text = ""
    quorum_rule: Text = ""
    proxy_cap: OptInt = None
    weighted: bool | None = None
    duration_seconds: OptInt = None
    item_id: OptInt = None


class PollAction(Body):
    """open {duration_seconds} | cancel {reason} | countdown {seconds} | rerun {options, title}; close and
    publish take no body."""

    duration_seconds: OptInt = None
    reason: Text = ""
    seconds: OptInt = None
    options: list[Any] | None = None
    title: Text = ""


class RollCallVote(Body):
    participant_id: OptInt = None
    choice: Any = None


class RollCall(Body):
    model_config = ConfigDict(json_schema_extra=require("votes"))
    votes: list[RollCallVote] | None = None


class PaperBallots(Body):
    model_config = ConfigDict(json_schema_extra=require("participant_ids", "choices"))
    participant_ids: list[Any] | None = None
    choices: list[Any] | None = None


class Cast(Body):
    """``choice``: an option key (or keys, a ranking, as the poll's method takes); ``participant_id`` picks
    a proxy I hold."""

    model_config = ConfigDict(json_schema_extra=require("choice"))
    choice: Any = None
    participant_id: OptInt = None


class GrantProxy(Body):
    grantor_id: Int
    holder_id: Int
    note: Text = ""


class SetWeight(Body):
    weight: Int
