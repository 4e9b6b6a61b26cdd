"""Polls in the meeting room: named and secret ballots, proxies and weights, the life cycle
draft -> open (optionally with a countdown) -> closed -> published, cancel and re-run.

Rules that need no I/O live in ``meetings.voting_rules``; this package stores and checks, in modules:
``views`` (what people see, loading with access checks), ``rights`` (weights, proxies, eligibility),
``lifecycle`` (create, open, countdown, close and count, publish, cancel), ``cast`` (the one tablet cast
path ``cast_votes``, roll call, paper ballots), ``sealing`` (secret ballots' per-poll keys, sealing,
``scrub``), ``export`` (CSV, the minutes' text) and ``live`` (what the background runner reads).
The tables are in ``meetings.schema``. Import from ``meetings.voting`` (its ``__all__``), not from the
modules.

Integrity
    A cast is one transaction: ``UPDATE meeting_polls SET votes_cast = votes_cast + 1 WHERE
    state = 'open' AND (closes_at IS NULL OR closes_at > now)`` takes the poll's row lock (so a
    cast and the close are ordered: a cast waiting behind the close finds the poll closed and is
    refused, and the counter is exact and monotonic), then the voter's "has voted" row is claimed
    with ``UPDATE ... WHERE voted_at IS NULL`` (unique per poll and seat: one vote per voter and
    per proxy, a concurrent duplicate finds nothing to claim and gets ``Conflict``), then the
    ballot is inserted and the audit entry written. The HTTP answer is sent after the commit, so
    an acknowledged vote is durable; a crashed process loses only unacknowledged ones. Under the
    same lock a cast checks that the meeting is in progress: ending a meeting closes and counts
    its open poll in the ending transaction (``close_for_meeting_end``, reason ``meeting_end``,
    audited like every close), so a cast waiting behind it finds the poll closed.

Secret ballots
    ``meeting_poll_ballots`` has no column that could name a voter or a time: a random UUID
    (not an autoincrement, which would order ballots by time), the poll, the choice and the
    weight. On SQLite the table is WITHOUT ROWID, so rows sit in the order of their random keys.
    Who has voted is in ``meeting_poll_voters`` (unique per poll and seat); for named polls that
    row also holds the ballot id, for secret polls it never does.

    That is not enough on PostgreSQL while the poll is open: the has-voted UPDATE and the ballot
    INSERT are one transaction (they must be: a vote is acknowledged after one commit), so the
    system column ``xmin`` of a voter's row equals the ``xmin`` of the ballot written with it, and
    ``ctid`` (physical position) orders ballots by arrival, as ``voted_at`` orders voters. Any role
    with SELECT could run ``... JOIN meeting_poll_ballots b ON b.xmin = v.xmin`` and read each
    voter's choice. So while a secret poll is open its ballots are *sealed*: the stored choice is
    ``{"sealed": base64(nonce || AES-256-GCM(choice padded to a length fixed per poll))}``, with a
    fresh random nonce per ballot and the poll id as associated data, under a random key of the
    poll's own (``voting.sealing``), created when it opens and stored only wrapped (AES-GCM)
    under a key derived from the application's secret, which is not in the database nor, by
    default, in the data directory (``EOFFICE_SECRET_KEY`` or the key directory, ``storage.keys``).
    The wrapped key is in the database so a restarted process (even after ``kill -9``) goes on.
    The xmin join or the ctid order still pair a voter with *a row*, but the row says nothing: two
    "yes" ballots differ, every ballot of a poll has the same length, and the choice is unreadable
    without the key. When a secret poll closes (or is cancelled) the closing transaction unseals the
    ballots, counts them, deletes them and writes them back in plaintext, in a random order, with new
    ids (so their ids, ctid and xmin are the closing transaction's and say nothing about when each
    was cast), then overwrites the poll's key row with zeros and deletes it: from then on nothing
    opens a sealed ballot, wherever a copy of it survives. After the commit ``scrub`` makes the
    storage forget the old versions: PostgreSQL vacuums the dead sealed ballots and key row; SQLite
    (where ``secure_delete`` is on for every connection, so deleted rows and freed pages are zeroed
    in the file) checkpoints the write-ahead log into the file and truncates it, so the log no longer
    keeps the sealed ballots in commit order next to the voters' rows, nor the wrapped key.
    ``tests/meetings/test_voting_raw_files.py`` reads the raw files after a close to check this.

    Cost: sealing is about 9 µs of CPU per vote and unsealing 5 µs per ballot at the close (2,000
    ballots: 10 ms), against 0.5-0.9 ms of server CPU per vote in ``bench/voting.py``.
    Weighed and rejected: re-touching a random sample of k other ballots per batch only blurs the
    join into k+1 candidates for the newest batch, an earlier voter's ballot may keep its own xmin,
    and ctid/xmin order still follow arrival; re-touching every ballot of the poll per batch is
    O(N) per batch and O(N²) row versions per poll (measured at 2,000 ballots in batches of 4:
    17-20 ms per batch instead of 1.4-4.3 ms), and an UPDATE keeps a row in its page (HOT), so ctid
    order still follows arrival; per-option counter rows instead of ballots cannot serve ranked
    methods and a counter row still changes in the voter's transaction unless every counter is
    rewritten each batch. Re-touching voter rows does not help while ballots keep their arrival
    order (``voted_at`` order against ballot order).

    Residual risk, honestly: (1) someone who holds *both* the application's secret and read
    access to the database while the poll is open (in practice the server's operator) can unwrap
    the poll's key and link; so can someone who copies the sealed rows with their xmin (or the
    SQLite write-ahead log) while the poll is open and obtains the secret *before the close*: once
    the poll's key row is destroyed, the secret alone opens nothing. (2) Bytes the database freed
    may stay on the storage device below the file system (SSD wear levelling, file-system journals,
    snapshots, backups taken while the poll was open). On PostgreSQL the vacuumed key row's bytes
    may stay in the page until reused, and the write-ahead log segments (and a WAL archive, if one
    is kept) hold the wrapped key and the sealed ballots until recycled: whoever has those *and* the
    secret can still link, so the secret must be kept apart from database backups (SQLite: the file
    is zeroed and the log truncated, see above).
    ``scrub`` runs after a close and at start-up; if a reader kept the SQLite log busy it tries again
    at the next one. (3) Anyone watching the has-voted rows live learns who voted when (the chair
    sees that too), never what. (4) Weighted secret polls reveal the weight of each ballot after the
    close, which identifies a voter whose weight is unique; with one voter, or a unanimous result,
    the count itself tells. (5) If the secret changes while a secret poll is open its key cannot be
    unwrapped: casting and closing refuse with a clear message (the chair cancels and re-runs). A
    process that did not register the secret (a script with its own ``Database``) wraps with a key of
    its own process, and only that process can close such a poll. Polls opened before per-poll keys
    existed are sealed with a key derived from the secret itself until they close. (6) Paper ballots
    entered one seat at a time are known to whoever enters them, as a single paper is to a teller
    (``record_paper_ballots``).

Paper ballots
    In a secret poll, people without a tablet vote on paper (``record_paper_ballots``): the chair
    or secretary records which seats put a paper in the box (their has-voted rows, method
    "paper") and enters the papers' choices as one batch, as many as the seats, shuffled and
    sealed like any secret ballot, with an audit entry naming the seats and the number of papers,
    never a choice. A named poll uses the roll call instead (each vote stays with its voter).

Vote changes
    A poll may allow changing one's vote until it closes: for named polls the ballot is updated
    in place (and the audit log keeps each change). Secret polls cannot allow it: changing a
    ballot needs something linking it to its voter (a receipt), and a receipt lets a voter prove
    their vote to someone who bought or coerced it. ``voting_rules.make_spec`` refuses the
    combination.

Eligibility is fixed when the poll opens (``meeting_poll_voters``): voting members checked in at
that moment, and the proxies they hold (``meeting_voting_rights``, capped by the poll). A member
who arrives later votes in the next poll, or the chair re-runs this one.

Events (``meeting:{id}``): ``poll.changed`` [poll_id, state, poll{public view}] on every state
change; ``poll.progress`` [poll_id, cast, eligible, cast_weight, eligible_weight, tally?] coalesced
by ``meetings.polls_live`` at most every 100 ms while votes arrive (never one per vote: a hall of
tablets would receive N² messages). The chair's list of who has not voted (``voters_view``, named
polls) is refetched on those progress events rather than pushed per vote.

Confidential items
    A poll on a confidential agenda item (``item_id`` naming one) is seen, and voted on, only by those
    who may see the item (``agenda.item_viewers``: the people listed on it, their approved
    substitutes, the chair, secretary and organiser). On the room topic its ``poll.changed`` carries a
    redacted view (``restricted_view``: ids, state and counts, no title, description, options or
    result) and its progress no tally; the full view goes to the item's own topic
    (``meeting:{id}:item:{item_id}``), whose subscribers may see the item. The poll list shows others
    the redacted view; the detail, CSV export and a cast answer 403 (``storage.errors.Denied``, audited
    as ``poll.denied``; a refused cast as ``poll.vote.refused`` with reason ``confidential``). When the
    poll opens, the seats whose voter may not see the item get no right (they are not counted as
    eligible); the check is made again at every cast, because access may shrink while the poll is open.

Throughput: ``polls_live.CastBatcher`` runs the casts that arrive together in one transaction
(``cast_votes``: the poll's row locked first, then one SELECT of the voters' rights, one UPDATE of
their has-voted rows, one INSERT of the ballots, one UPDATE of the counters and one batched audit
append, ``audit.record_many``), and answers them all after the one commit (group commit: one write
lock and one fsync for many votes). A refused cast (already voted, not eligible, malformed, a
logged-out WebSocket) gets its own error and leaves the others alone, and is audited
(``poll.vote.refused``: who, the seat when known, a reason code, never the choice). Eligibility needs no cache:
it is fixed when the poll opens (``meeting_poll_voters``), and the one SELECT per batch that reads it
is the same one that reads who has voted, under the lock.
"""

from __future__ import annotations

from meetings.voting.cast import CastRequest, PollExpired, Receipt, cast_votes, record_paper_ballots, record_roll_call
from meetings.voting.export import choice_label, export_csv, poll_results_for_meeting, unpublished_results
from meetings.voting.lifecycle import (
    MAX_DURATION,
    cancel_poll,
    close_expired,
    close_for_meeting_end,
    close_poll,
    create_poll,
    open_poll,
    publish_poll,
    rerun_poll,
    set_countdown,
)
from meetings.voting.live import counts, next_deadline, open_poll_ids
from meetings.voting.rights import grant_proxy, revoke_proxy, rights_view, set_weight
from meetings.voting.sealing import new_ballot_id, scrub, seal, sealed_size, sealer, unseal, use_ballot_key
from meetings.voting.views import (
    RESTRICTED_TITLE,
    PollCtx,
    get_poll,
    list_polls,
    live_tally,
    my_rights,
    progress_data,
    public_view,
    restricted_view,
    results_visible,
    seat_names,
    viewers_of,
    voters_view,
)

__all__ = [
    "MAX_DURATION",
    "RESTRICTED_TITLE",
    "CastRequest",
    "PollCtx",
    "PollExpired",
    "Receipt",
    "cancel_poll",
    "cast_votes",
    "choice_label",
    "close_expired",
    "close_for_meeting_end",
    "close_poll",
    "counts",
    "create_poll",
    "export_csv",
    "get_poll",
    "grant_proxy",
    "list_polls",
    "live_tally",
    "my_rights",
    "new_ballot_id",
    "next_deadline",
    "open_poll",
    "open_poll_ids",
    "poll_results_for_meeting",
    "progress_data",
    "public_view",
    "publish_poll",
    "record_paper_ballots",
    "record_roll_call",
    "rerun_poll",
    "restricted_view",
    "results_visible",
    "revoke_proxy",
    "rights_view",
    "scrub",
    "seal",
    "sealed_size",
    "sealer",
    "seat_names",
    "set_countdown",
    "set_weight",
    "unpublished_results",
    "unseal",
    "use_ballot_key",
    "viewers_of",
    "voters_view",
]
