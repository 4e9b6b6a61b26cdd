"""EOFFICE_TURN_URLS / EOFFICE_TURN_SECRET: the sites get coturn with per-session TURN REST credentials, the
server's own peer connections do not (unless EOFFICE_TURN_SFU=1), and the secret is only ever on the server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from meetings.sfu.registry import MediaRegistry, turn_servers_from_env

URLS = "turn:turn.quangninh.gov.vn:3478?transport=udp, turn:turn.quangninh.gov.vn:3478?transport=tcp," \
       "turns:turn.quangninh.gov.vn:5349?transport=tcp"
SECRET = "bí-mật-coturn"


def test_the_sites_get_turn_with_their_own_credentials_and_the_server_does_not() -> None:
    reg = MediaRegistry.from_env({"EOFFICE_TURN_URLS": URLS, "EOFFICE_TURN_SECRET": SECRET,
                                  "EOFFICE_ICE_SERVERS": json.dumps([{"urls": "stun:stun.quangninh.gov.vn"}])})
    stun, turn = reg.client_ice_servers("site:7")
    assert stun == {"urls": ["stun:stun.quangninh.gov.vn"]}
    assert turn["urls"] == [u.strip() for u in URLS.split(",")]
    expiry, who = turn["username"].split(":", 1)
    assert who == "site:7" and int(expiry) > time.time() + 11 * 3600
    digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()
    assert SECRET not in json.dumps(reg.client_ice_servers("user:3"), ensure_ascii=False)
    room = reg.acquire(1)
    assert [s.urls for s in room.sfu.ice_servers] == [["stun:stun.quangninh.gov.vn"]], "the SFU needs no relay"

    sfu_too = MediaRegistry.from_env({"EOFFICE_TURN_URLS": URLS, "EOFFICE_TURN_SECRET": SECRET,
                                      "EOFFICE_TURN_SFU": "1"})
    (server_turn,) = sfu_too.acquire(1).sfu.ice_servers
    assert server_turn.username.endswith(":sfu") and len(sfu_too.client_ice_servers("site:7")) == 1


def test_turn_settings_are_checked_at_startup() -> None:
    assert turn_servers_from_env({}) == []
    with pytest.raises(ValueError, match="EOFFICE_TURN_SECRET"):
        turn_servers_from_env({"EOFFICE_TURN_URLS": URLS})
    with pytest.raises(ValueError, match="turn: or turns:"):
        turn_servers_from_env({"EOFFICE_TURN_URLS": "stun:x:3478", "EOFFICE_TURN_SECRET": SECRET})
