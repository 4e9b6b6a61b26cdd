"""Contract of the notifications API: the user's own notifications, marking them read, preferences."""

from __future__ import annotations

from web.contract.core import Body, Out, Text


class Notification(Out):
    """One notification: a Vietnamese sentence and the page it is about."""

    id: int
    kind: str
    text: str
    link: str
    created_at: str
    read_at: str | None


class NotificationList(Out):
    """Newest first; `next_before`: the `before` of the next page (null on the last one)."""

    notifications: list[Notification]
    unread: int
    total: int
    next_before: int | None


class Unread(Out):
    unread: int


class MarkedAll(Out):
    marked: int
    unread: int


class KindPref(Out):
    kind: str
    label: str
    in_app: bool
    email: bool
    push: bool


class Preferences(Out):
    """Per kind: shown in the app, sent by e-mail, sent by Web Push to your subscribed browsers; quiet hours for
    e-mail (HH:MM local, equal: none); `push_enabled`: whether this server sends Web Push at all."""

    kinds: list[KindPref]
    quiet_start: str
    quiet_end: str
    email: str
    push_enabled: bool
    push_subscriptions: int


class PreferencesChange(Body):
    """`kinds`: {kind: {"in_app": bool, "email": bool, "push": bool}} for the kinds to change; `quiet_start`,
    `quiet_end`: HH:MM."""

    kinds: dict[str, dict[str, bool]] = {}
    quiet_start: Text = ""
    quiet_end: Text = ""


class PushKey(Out):
    """Web Push on this server: `enabled`, and the VAPID public key browsers subscribe with (base64url)."""

    enabled: bool
    public_key: str


class PushKeys(Body):
    p256dh: Text
    auth: Text


class PushSubscribe(Body):
    """A browser's `PushSubscription.toJSON()`: the push service's `endpoint` and the `keys` to encrypt for."""

    endpoint: Text
    keys: PushKeys


class PushUnsubscribe(Body):
    endpoint: Text


class PushSubscribed(Out):
    ok: bool
    subscriptions: int
