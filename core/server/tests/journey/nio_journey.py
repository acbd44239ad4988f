#!/usr/bin/env python3
"""A real Matrix client's journey against a homeserver, with matrix-nio.

Usage: python nio_journey.py HOMESERVER_URL

Two users, alice and bob (random suffixes), register (alice through the full
user-interactive flow: 401 with a session, then m.login.dummy with that
session; bob with m.login.dummy straight away, as nio's `register` does), log
in again with m.login.password on second client objects (which do the rest),
and call whoami. Alice creates a private_chat room with a name and a topic and
invites bob; bob sees the invite in /sync, joins, and both sync. Alice sends
30 text messages and bob 1, and each sees the other's through incremental
long-polling /sync. Bob paginates the room backwards with /messages (10 per
page, following `end`) down to m.room.create and checks every event is there
once, in order. Alice changes the topic and bob sees it; bob leaves, alice
sees the leave and joined_members no longer lists bob; everyone logs out and
the old tokens stop working.

Every step is printed. The first failure prints the step, what was expected
and what the server answered (HTTP status, errcode, body), and exits 1.
Exit 0 means the whole journey passed; 2 is a usage error.

Needs only matrix-nio (see requirements.txt; no E2E extras) and uses only the
Client-Server API endpoints named above. CI runs it from
core/server/tests/nio_journey.rs against the built tessera binary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    BadEvent,
    ErrorResponse,
    InviteMemberEvent,
    InviteNameEvent,
    JoinedMembersResponse,
    JoinResponse,
    LoginResponse,
    LogoutResponse,
    PowerLevelsEvent,
    RegisterResponse,
    RoomCreateEvent,
    RoomCreateResponse,
    RoomGuestAccessEvent,
    RoomHistoryVisibilityEvent,
    RoomInviteResponse,
    RoomJoinRulesEvent,
    RoomLeaveResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomNameEvent,
    RoomPreset,
    RoomPutStateResponse,
    RoomSendResponse,
    RoomTopicEvent,
    SyncResponse,
    UnknownBadEvent,
    WhoamiError,
    WhoamiResponse,
)
from nio.api import Api
from nio.responses import RegisterInteractiveResponse

ALICE_MESSAGES = 30
PAGE_LIMIT = 10
WAIT_SECONDS = 10.0  # how long to wait, per expectation, for /sync to deliver
JOURNEY_SECONDS = 120.0  # hard limit on the whole run, so CI never hangs
ROOM_NAME = "nio journey"
ROOM_TOPIC = "where the journey starts"
NEW_TOPIC = "where the journey ends"


class JourneyFailure(Exception):
    pass


class Journey:
    def __init__(self, homeserver: str) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.started = time.monotonic()
        self.step_name = "start"
        self.steps = 0
        self.clients: list[AsyncClient] = []

    # --- reporting ------------------------------------------------------

    def step(self, name: str) -> None:
        self.steps += 1
        self.step_name = name
        print(f"[{time.monotonic() - self.started:6.2f}s] step {self.steps}: {name}", flush=True)

    def note(self, text: str) -> None:
        print(f"          {text}", flush=True)

    def fail(self, text: str) -> JourneyFailure:
        return JourneyFailure(text)

    async def describe(self, resp: Any) -> str:
        """What the server answered, for a failure message."""
        parts = [type(resp).__name__]
        if isinstance(resp, ErrorResponse):
            parts.append(f"errcode={resp.status_code!r} error={resp.message!r}")
        transport = getattr(resp, "transport_response", None)
        if transport is not None:
            parts.append(f"HTTP {transport.status} on {transport.method} {transport.url.path}")
            try:
                body = await transport.text()
            except Exception as e:  # noqa: BLE001 - best effort only
                body = f"<body unreadable: {e!r}>"
            if len(body) > 1500:
                body = body[:1500] + "...<cut>"
            parts.append(f"body={body}")
            if 200 <= transport.status < 300 and isinstance(resp, ErrorResponse):
                parts.append(
                    "(a 2xx answer that nio could not accept: the body does not match "
                    "the response schema nio validates for this endpoint)"
                )
        return " ".join(parts)

    async def expect(self, resp: Any, cls: type, what: str) -> Any:
        if not isinstance(resp, cls):
            raise self.fail(f"{what}: expected {cls.__name__}, got {await self.describe(resp)}")
        return resp

    def check(self, cond: bool, text: str) -> None:
        if not cond:
            raise self.fail(text)

    # --- helpers ----------------------------------------------------------

    def client(self, user: str = "") -> AsyncClient:
        config = AsyncClientConfig(
            max_limit_exceeded=0,  # a 429 is a failure here, not a reason to sleep
            max_timeouts=0,  # a connection error or time-out is a failure too
            request_timeout=15,
            store_sync_tokens=False,
            encryption_enabled=False,
        )
        c = AsyncClient(self.homeserver, user, config=config)
        self.clients.append(c)
        return c

    async def sync_once(self, c: AsyncClient, who: str, timeout_ms: int) -> SyncResponse:
        resp = await c.sync(timeout=timeout_ms, since=c.next_batch)
        await self.expect(resp, SyncResponse, f"{who}'s /sync")
        self.check(bool(resp.next_batch), f"{who}'s /sync answered an empty next_batch")
        return resp

    async def sync_until(self, c: AsyncClient, who: str, what: str, seen, first: asyncio.Task | None = None):
        """Long-polls /sync (with since, timeout) until `seen(resp)` is true,
        for at most WAIT_SECONDS. `first` is an already started /sync."""
        deadline = time.monotonic() + WAIT_SECONDS
        syncs = 0
        while True:
            if first is not None:
                resp = await first
                await self.expect(resp, SyncResponse, f"{who}'s /sync")
                first = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self.fail(f"{who} did not see {what} through /sync within {WAIT_SECONDS:.0f} s ({syncs} syncs)")
                resp = await self.sync_once(c, who, max(1, int(min(remaining, 5.0) * 1000)))
            syncs += 1
            if seen(resp):
                return resp
            if time.monotonic() > deadline:
                raise self.fail(f"{who} did not see {what} through /sync within {WAIT_SECONDS:.0f} s ({syncs} syncs)")

    def start_sync(self, c: AsyncClient, timeout_ms: int = 10000) -> asyncio.Task:
        return asyncio.ensure_future(c.sync(timeout=timeout_ms, since=c.next_batch))

    @staticmethod
    def room_events(resp: SyncResponse, room_id: str, section: str = "join") -> list:
        rooms = getattr(resp.rooms, section)
        info = rooms.get(room_id)
        if info is None:
            return []
        return list(info.state) + list(info.timeline.events)

    def no_bad_events(self, events: list, where: str) -> None:
        for ev in events:
            if isinstance(ev, (BadEvent, UnknownBadEvent)):
                raise self.fail(f"{where}: nio rejected a malformed event: {json.dumps(ev.source)[:800]}")

    # --- the journey ------------------------------------------------------

    async def register_alice(self, localpart: str, password: str) -> AsyncClient:
        """The full UIA flow a client like Element does: first POST /register
        without auth -> 401 with flows and a session; then m.login.dummy with
        that session."""
        c = self.client()
        body = {"username": localpart, "password": password, "initial_device_display_name": "nio journey register"}
        transport = await c.send(
            "POST", Api._build_path(["register"]), json.dumps(body), {"Content-Type": "application/json"}
        )
        raw = await c.parse_body(transport)
        self.check(
            transport.status == 401,
            f"POST /register without auth: expected HTTP 401 with UIA flows, got HTTP {transport.status} body={raw}",
        )
        flows = RegisterInteractiveResponse.from_dict(raw)
        if not isinstance(flows, RegisterInteractiveResponse):
            raise self.fail(f"POST /register without auth: 401 body is not a UIA answer nio accepts (needs flows[].stages, params, session): {raw}")
        stages = [s for flow in raw.get("flows", []) for s in flow.get("stages", [])]
        dummy_flow = [f["stages"] for f in raw["flows"] if f.get("stages") == ["m.login.dummy"]]
        self.check(bool(dummy_flow), f"POST /register: no flow with stages [m.login.dummy] among {raw['flows']}")
        self.note(f"401 flows={raw['flows']} session={flows.session!r} (stages seen: {stages})")
        resp = await c.register(localpart, password, device_name="nio journey register", session_token=flows.session)
        await self.expect(resp, RegisterResponse, "POST /register with m.login.dummy and the session")
        return c

    async def register_bob(self, localpart: str, password: str) -> AsyncClient:
        """nio's plain `register`: m.login.dummy straight away, no session."""
        c = self.client()
        resp = await c.register(localpart, password, device_name="nio journey register")
        await self.expect(resp, RegisterResponse, "POST /register with m.login.dummy (no session)")
        return c

    async def run(self) -> None:
        suffix = secrets.token_hex(4)
        alice_local, bob_local = f"nio-alice-{suffix}", f"nio-bob-{suffix}"
        alice_pw, bob_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)

        # --- accounts -------------------------------------------------------
        self.step(f"alice registers as {alice_local} (UIA: 401 + session, then m.login.dummy)")
        alice_reg = await self.register_alice(alice_local, alice_pw)
        alice_id = alice_reg.user_id
        self.check(alice_id.startswith(f"@{alice_local}:"), f"registered user_id {alice_id!r} is not @{alice_local}:<server>")
        server_name = alice_id.split(":", 1)[1]
        self.note(f"user_id={alice_id} device_id={alice_reg.device_id}")

        self.step(f"bob registers as {bob_local} (m.login.dummy, no session)")
        bob_reg = await self.register_bob(bob_local, bob_pw)
        bob_id = bob_reg.user_id
        self.check(bob_id == f"@{bob_local}:{server_name}", f"registered user_id {bob_id!r} is not @{bob_local}:{server_name}")
        self.note(f"user_id={bob_id} device_id={bob_reg.device_id}")

        self.step("alice logs in with m.login.password (identifier m.id.user, localpart)")
        alice = self.client(alice_local)
        resp = await alice.login(alice_pw, device_name="nio journey login")
        await self.expect(resp, LoginResponse, "alice's POST /login")
        self.check(resp.user_id == alice_id, f"login answered user_id {resp.user_id!r}, registration {alice_id!r}")
        self.check(resp.device_id != alice_reg.device_id, "login without device_id reused the registration's device_id")
        self.check(resp.access_token != alice_reg.access_token, "login answered the registration's access_token")

        self.step("bob logs in with m.login.password (identifier m.id.user, full user ID)")
        bob = self.client(bob_id)
        resp = await bob.login(bob_pw, device_name="nio journey login")
        await self.expect(resp, LoginResponse, "bob's POST /login")
        self.check(resp.user_id == bob_id, f"login answered user_id {resp.user_id!r}, registration {bob_id!r}")
        self.check(resp.device_id != bob_reg.device_id, "login without device_id reused the registration's device_id")

        self.step("whoami on all four tokens")
        for who, c in (("alice (register)", alice_reg), ("bob (register)", bob_reg), ("alice", alice), ("bob", bob)):
            device = c.device_id
            resp = await c.whoami()
            await self.expect(resp, WhoamiResponse, f"{who}'s GET /account/whoami")
            self.check(resp.user_id == c.user_id, f"{who}: whoami user_id {resp.user_id!r}, expected {c.user_id!r}")
            self.check(resp.device_id == device, f"{who}: whoami device_id {resp.device_id!r}, expected {device!r}")

        self.step("wrong password is refused with 403 M_FORBIDDEN")
        intruder = self.client(alice_local)
        resp = await intruder.login("not-" + alice_pw)
        self.check(
            isinstance(resp, ErrorResponse) and resp.status_code == "M_FORBIDDEN",
            f"POST /login with a wrong password: expected M_FORBIDDEN, got {await self.describe(resp)}",
        )
        self.check(resp.transport_response.status == 403, f"wrong password: expected HTTP 403, got {await self.describe(resp)}")

        # Initial syncs, so that later ones are incremental.
        self.step("alice and bob do their initial /sync")
        await self.sync_once(alice, "alice", 0)
        await self.sync_once(bob, "bob", 0)

        # --- room -----------------------------------------------------------
        self.step("alice creates a room (name, topic, preset private_chat)")
        resp = await alice.room_create(name=ROOM_NAME, topic=ROOM_TOPIC, preset=RoomPreset.private_chat)
        await self.expect(resp, RoomCreateResponse, "POST /createRoom")
        room_id = resp.room_id
        self.check(room_id.startswith("!"), f"room_id {room_id!r} does not start with '!'")
        self.note(f"room_id={room_id}")

        self.step("alice invites bob")
        resp = await alice.room_invite(room_id, bob_id)
        await self.expect(resp, RoomInviteResponse, "POST /rooms/{roomId}/invite (nio wants exactly {})")

        self.step("bob sees the invite through /sync")

        def invited(r: SyncResponse) -> bool:
            return room_id in r.rooms.invite

        resp = await self.sync_until(bob, "bob", "the invite in rooms.invite", invited)
        invite_state = resp.rooms.invite[room_id].invite_state
        self.check(
            any(isinstance(e, InviteMemberEvent) and e.state_key == bob_id and e.membership == "invite" for e in invite_state),
            f"rooms.invite[{room_id}].invite_state lacks bob's m.room.member invite event: {[getattr(e, 'source', e) for e in invite_state]}",
        )
        self.check(
            any(isinstance(e, InviteNameEvent) and e.name == ROOM_NAME for e in invite_state),
            f"rooms.invite[{room_id}].invite_state lacks the m.room.name event: {[getattr(e, 'source', e) for e in invite_state]}",
        )
        self.check(bob.invited_rooms[room_id].name == ROOM_NAME, "nio's invited room has no name")
        self.note(f"invite_state types: {sorted(e.source.get('type', '?') for e in invite_state)}")

        self.step("bob joins")
        resp = await bob.join(room_id)
        await self.expect(resp, JoinResponse, "POST /join/{roomIdOrAlias}")
        self.check(resp.room_id == room_id, f"join answered room_id {resp.room_id!r}, expected {room_id!r}")

        self.step("bob's /sync has the room in rooms.join with its full state")

        def bob_joined(r: SyncResponse) -> bool:
            return any(
                isinstance(e, RoomMemberEvent) and e.state_key == bob_id and e.membership == "join"
                for e in self.room_events(r, room_id)
            )

        resp = await self.sync_until(bob, "bob", "his own join in rooms.join", bob_joined)
        self.no_bad_events(self.room_events(resp, room_id), "bob's /sync after joining")
        room = bob.rooms.get(room_id)
        self.check(room is not None, "nio has no joined room after bob's sync")
        self.check(room.name == ROOM_NAME, f"bob's room name is {room.name!r} (m.room.name missing from the joined room's state?)")
        self.check(room.topic == ROOM_TOPIC, f"bob's room topic is {room.topic!r} (m.room.topic missing from the joined room's state?)")
        self.check(
            set(room.users) == {alice_id, bob_id},
            f"bob's room members are {sorted(room.users)} (m.room.member state missing?)",
        )
        self.check(room_id not in bob.invited_rooms, "bob's room is still listed as invited")

        self.step("alice's /sync shows bob's join")

        def alice_sees_join(r: SyncResponse) -> bool:
            return any(
                isinstance(e, RoomMemberEvent) and e.state_key == bob_id and e.membership == "join"
                for e in self.room_events(r, room_id)
            )

        await self.sync_until(alice, "alice", "bob's join", alice_sees_join)
        room = alice.rooms[room_id]
        self.check(room.name == ROOM_NAME and room.topic == ROOM_TOPIC, f"alice's room: name {room.name!r} topic {room.topic!r}")
        self.check(set(room.users) == {alice_id, bob_id}, f"alice's room members are {sorted(room.users)}")

        # --- messages -------------------------------------------------------
        self.step(f"alice sends {ALICE_MESSAGES} messages; bob long-polls /sync for each")
        alice_bodies = [f"alice message {i:02d} {suffix}" for i in range(1, ALICE_MESSAGES + 1)]
        alice_event_ids: list[str] = []
        bob_seen: dict[str, int] = {}

        for body in alice_bodies:
            pending = self.start_sync(bob)  # usually parked before the send, so the send must wake it
            await asyncio.sleep(0)
            resp = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
            await self.expect(resp, RoomSendResponse, f"PUT /rooms/{{roomId}}/send/m.room.message ({body!r})")
            event_id = resp.event_id
            self.check(event_id.startswith("$"), f"event_id {event_id!r} does not start with '$'")
            self.check(event_id not in alice_event_ids, f"two sends answered the same event_id {event_id!r}")
            alice_event_ids.append(event_id)

            def bob_has(r: SyncResponse, event_id=event_id, body=body) -> bool:
                events = self.room_events(r, room_id)
                self.no_bad_events(events, "bob's incremental /sync")
                for e in r.rooms.join.get(room_id).timeline.events if room_id in r.rooms.join else []:
                    if e.event_id in bob_seen:
                        raise self.fail(f"incremental /sync delivered {e.event_id} a second time (since token not honoured?)")
                    bob_seen[e.event_id] = 1
                    if e.event_id == event_id:
                        if not (isinstance(e, RoomMessageText) and e.body == body and e.sender == alice_id):
                            raise self.fail(f"bob got {event_id} as {e.source}, expected m.text {body!r} from {alice_id}")
                return event_id in bob_seen

            await self.sync_until(bob, "bob", f"alice's message {body!r} ({event_id})", bob_has, first=pending)
        self.check(
            all(e in bob_seen for e in alice_event_ids),
            f"bob missed alice's messages {[e for e in alice_event_ids if e not in bob_seen]}",
        )

        self.step("bob sends 1 message; alice long-polls /sync until she sees it")
        bob_body = f"bob message {suffix}"
        # Alice has not synced since bob's join: her first sync catches up on her own 30.
        await self.sync_once(alice, "alice", 0)
        pending = self.start_sync(alice)
        await asyncio.sleep(0)
        resp = await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": bob_body})
        await self.expect(resp, RoomSendResponse, "bob's PUT /rooms/{roomId}/send/m.room.message")
        bob_event_id = resp.event_id

        def alice_has(r: SyncResponse) -> bool:
            events = self.room_events(r, room_id)
            self.no_bad_events(events, "alice's incremental /sync")
            for e in events:
                if e.event_id == bob_event_id:
                    if not (isinstance(e, RoomMessageText) and e.body == bob_body and e.sender == bob_id):
                        raise self.fail(f"alice got {bob_event_id} as {e.source}, expected m.text {bob_body!r} from {bob_id}")
                    return True
            return False

        await self.sync_until(alice, "alice", f"bob's message ({bob_event_id})", alice_has, first=pending)

        # --- history --------------------------------------------------------
        self.step(f"bob paginates history backwards with /messages (limit {PAGE_LIMIT}, following end)")
        newest_first: list = []
        token = None
        pages = 0
        while True:
            pages += 1
            self.check(pages <= 30, "more than 30 pages of /messages for a room of ~45 events: pagination does not end")
            resp = await bob.room_messages(room_id, start=token, limit=PAGE_LIMIT)
            await self.expect(resp, RoomMessagesResponse, f"GET /rooms/{{roomId}}/messages page {pages} (from={token!r})")
            self.check(len(resp.chunk) <= PAGE_LIMIT, f"page {pages} has {len(resp.chunk)} events, over limit={PAGE_LIMIT}")
            self.no_bad_events(resp.chunk, f"/messages page {pages}")
            newest_first.extend(resp.chunk)
            if not resp.end or not resp.chunk:
                break
            self.check(resp.end != token, f"page {pages} answered end == from ({token!r}): pagination would loop")
            token = resp.end
        events = list(reversed(newest_first))
        self.note(f"{len(events)} events over {pages} pages")

        ids = [e.event_id for e in events]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        self.check(not dupes, f"/messages returned these events more than once: {dupes}")
        summary = [
            (e.source.get("type"), e.source.get("state_key"), (e.source.get("content") or {}).get("membership"))
            for e in events
        ]

        def index(pred, what: str) -> int:
            for i, e in enumerate(events):
                if pred(e):
                    return i
            raise self.fail(f"/messages history lacks {what}; got (type, state_key, membership): {summary}")

        i_create = index(lambda e: isinstance(e, RoomCreateEvent), "m.room.create")
        i_alice = index(lambda e: isinstance(e, RoomMemberEvent) and e.state_key == alice_id and e.membership == "join", "alice's join")
        i_power = index(lambda e: isinstance(e, PowerLevelsEvent), "m.room.power_levels")
        i_rules = index(lambda e: isinstance(e, RoomJoinRulesEvent) and e.join_rule == "invite", "m.room.join_rules invite (preset private_chat)")
        i_hist = index(
            lambda e: isinstance(e, RoomHistoryVisibilityEvent) and e.history_visibility == "shared",
            "m.room.history_visibility shared (preset private_chat)",
        )
        i_guest = index(
            lambda e: isinstance(e, RoomGuestAccessEvent) and e.guest_access == "can_join",
            "m.room.guest_access can_join (preset private_chat)",
        )
        i_name = index(lambda e: isinstance(e, RoomNameEvent) and e.name == ROOM_NAME, "m.room.name")
        i_topic = index(lambda e: isinstance(e, RoomTopicEvent) and e.topic == ROOM_TOPIC, "m.room.topic")
        i_invite = index(lambda e: isinstance(e, RoomMemberEvent) and e.state_key == bob_id and e.membership == "invite", "bob's invite")
        i_join = index(lambda e: isinstance(e, RoomMemberEvent) and e.state_key == bob_id and e.membership == "join", "bob's join")
        order = [
            ("m.room.create", i_create),
            ("alice's join", i_alice),
            ("m.room.power_levels", i_power),
            ("preset events (join_rules, history_visibility, guest_access)", max(i_rules, i_hist, i_guest)),
            ("m.room.name", i_name),
            ("m.room.topic", i_topic),
            ("bob's invite", i_invite),
            ("bob's join", i_join),
        ]
        self.check(i_create == 0, f"m.room.create is event {i_create}, not the first: pagination stopped early or misordered: {summary}")
        self.check(i_alice == 1 and i_power == 2, f"createRoom order: expected create, creator's join, power_levels first: {summary}")
        self.check(
            min(i_rules, i_hist, i_guest) > i_power,
            f"createRoom order: preset events must follow m.room.power_levels: {summary}",
        )
        for (a, ia), (b, ib) in zip(order, order[1:]):
            self.check(ia < ib, f"history order: {a} (#{ia}) should come before {b} (#{ib}): {summary}")

        messages = [e for e in events if isinstance(e, RoomMessageText)]
        got = [(e.sender, e.body, e.event_id) for e in messages]
        want = [(alice_id, b, i) for b, i in zip(alice_bodies, alice_event_ids)] + [(bob_id, bob_body, bob_event_id)]
        self.check(got == want, f"/messages history has the messages {[(s, b) for s, b, _ in got]}, expected, in order, {[(s, b) for s, b, _ in want]}")
        self.check(events.index(messages[0]) > i_join, "a message comes before bob's join in history")

        # --- state change ---------------------------------------------------
        self.step("alice sets a new topic; bob sees it through /sync")
        pending = self.start_sync(bob)
        await asyncio.sleep(0)
        resp = await alice.room_put_state(room_id, "m.room.topic", {"topic": NEW_TOPIC})
        await self.expect(resp, RoomPutStateResponse, "PUT /rooms/{roomId}/state/m.room.topic")
        topic_event_id = resp.event_id

        def bob_sees_topic(r: SyncResponse) -> bool:
            events = self.room_events(r, room_id)
            self.no_bad_events(events, "bob's incremental /sync")
            return any(isinstance(e, RoomTopicEvent) and e.event_id == topic_event_id and e.topic == NEW_TOPIC for e in events)

        await self.sync_until(bob, "bob", f"the new topic ({topic_event_id})", bob_sees_topic, first=pending)
        self.check(bob.rooms[room_id].topic == NEW_TOPIC, f"bob's room topic is {bob.rooms[room_id].topic!r}")

        # --- leave ----------------------------------------------------------
        self.step("bob leaves; alice sees his leave through /sync")
        pending = self.start_sync(alice)
        await asyncio.sleep(0)
        resp = await bob.room_leave(room_id)
        await self.expect(resp, RoomLeaveResponse, "POST /rooms/{roomId}/leave (nio wants exactly {})")

        def alice_sees_leave(r: SyncResponse) -> bool:
            events = self.room_events(r, room_id)
            self.no_bad_events(events, "alice's incremental /sync")
            return any(
                isinstance(e, RoomMemberEvent) and e.state_key == bob_id and e.membership == "leave" and e.sender == bob_id
                for e in events
            )

        await self.sync_until(alice, "alice", "bob's leave membership", alice_sees_leave, first=pending)
        self.check(bob_id not in alice.rooms[room_id].users, f"alice's room still lists bob: {sorted(alice.rooms[room_id].users)}")

        self.step("alice's joined_members no longer lists bob")
        resp = await alice.joined_members(room_id)
        await self.expect(resp, JoinedMembersResponse, "GET /rooms/{roomId}/joined_members")
        members = sorted(m.user_id for m in resp.members)
        self.check(members == [alice_id], f"joined_members lists {members}, expected only {alice_id}")

        # --- logout ---------------------------------------------------------
        self.step("everyone logs out; the old tokens are refused with 401 M_UNKNOWN_TOKEN")
        for who, c in (("alice", alice), ("bob", bob), ("alice (register)", alice_reg), ("bob (register)", bob_reg)):
            token, user_id = c.access_token, c.user_id
            resp = await c.logout()
            await self.expect(resp, LogoutResponse, f"{who}'s POST /logout (nio wants exactly {{}})")
            probe = self.client()
            probe.restore_login(user_id, "PROBE", token)
            resp = await probe.whoami()
            self.check(
                isinstance(resp, WhoamiError) and resp.status_code == "M_UNKNOWN_TOKEN" and resp.transport_response.status == 401,
                f"{who}: whoami with the logged-out token should be 401 M_UNKNOWN_TOKEN, got {await self.describe(resp)}",
            )

    async def close(self) -> None:
        for c in self.clients:
            try:
                await c.close()
            except Exception:  # noqa: BLE001 - closing only
                pass


async def main(homeserver: str) -> int:
    # nio logs why it rejected a response (e.g. which schema property is
    # missing): keep that, in line with the steps.
    logging.basicConfig(level=logging.WARNING, format="          nio %(levelname)s: %(message)s", stream=sys.stdout)
    journey = Journey(homeserver)
    print(f"matrix-nio journey against {journey.homeserver}", flush=True)
    try:
        await asyncio.wait_for(journey.run(), JOURNEY_SECONDS)
    except JourneyFailure as e:
        print(f"FAIL at step {journey.steps} ({journey.step_name}): {e}", file=sys.stderr, flush=True)
        return 1
    except asyncio.TimeoutError:
        print(f"FAIL at step {journey.steps} ({journey.step_name}): the journey took over {JOURNEY_SECONDS:.0f} s", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - any crash is a failure of the step
        print(f"FAIL at step {journey.steps} ({journey.step_name}): {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        await journey.close()
    print(f"PASS: {journey.steps} steps in {time.monotonic() - journey.started:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].startswith(("http://", "https://")):
        print("usage: python nio_journey.py HOMESERVER_URL   (e.g. http://127.0.0.1:8008)", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
