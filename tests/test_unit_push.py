"""Unit tests of Web Push (push/): what deserves a notification, the checks on a subscription,
and one delivery end to end through the real encryption and VAPID signing, into the test push
service's own checks (tests/support/push_service.py), with a private Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from py_vapid import Vapid02
from redis.asyncio import Redis

from opencode_relay.errors import InvalidInput
from opencode_relay.groups import GroupHolders
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.push.notices import Detector, Notice, payload
from opencode_relay.push.notifier import Notifier
from opencode_relay.push.sender import Outcome, PushSender, retry_after
from opencode_relay.push.subscriptions import (
    EndpointRule,
    Subscription,
    Subscriptions,
    check_endpoint,
    check_keys,
)
from opencode_relay.push.vapid import VapidKeys
from opencode_relay.security.access import Access
from opencode_relay.store.keys import Keys
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from opencode_relay.teams import Role, Team, Teams
from tests.support.push_service import Browser, PushService, unb64url
from tests.test_unit_core import session_info

pytestmark = pytest.mark.unit


def event(kind: str, **props: object) -> dict[str, object]:
    return {"directory": "/tmp/x",
            "payload": {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "properties": props}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_and_questions_are_noticed() -> None:
    detector = Detector(idle_seconds=30)
    asked = detector.notice_of(event("permission.asked", id="per_1", sessionID="ses_a",
                                     permission="bash", patterns=["rm -rf secret"],
                                     metadata={}, always=[]))
    assert asked == Notice("permission", "ses_a", "permission:per_1", "Wants to use bash",
                           request_id="per_1")
    for kind in ("question.asked", "question.v2.asked"):
        question = detector.notice_of(event(kind, id="que_1", sessionID="ses_a", questions=[
            {"question": "Which   colour?\n" + "x" * 300, "header": "C", "options": []}]))
        assert question is not None and question.kind == "question"
        assert question.claim == "question:que_1"  # both forms of one question: one claim
        assert question.excerpt.startswith("Which colour? xxx") and len(question.excerpt) == 120


def test_a_finished_turn_is_noticed_once_and_only_after_the_threshold() -> None:
    clock = Clock()
    detector = Detector(idle_seconds=30, clock=clock)
    status = {"type": "busy"}
    assert detector.notice_of(event("session.status", sessionID="ses_a", status=status)) is None
    clock.now += 5
    assert detector.notice_of(event("session.idle", sessionID="ses_a")) is None  # too short
    detector.notice_of(event("session.status", sessionID="ses_a", status=status))
    clock.now += 10
    detector.notice_of(event("session.status", sessionID="ses_a", status={"type": "retry"}))
    clock.now += 65  # the turn started 75 s ago: busy again does not restart it
    done = detector.notice_of(event("session.status", sessionID="ses_a",
                                    status={"type": "idle"}))
    assert done is not None and done.kind == "idle"
    assert done.excerpt == "Finished after 1 min 15 s"
    # opencode says it twice (session.status idle, then session.idle): one notice.
    assert detector.notice_of(event("session.idle", sessionID="ses_a")) is None


def test_errors_are_noticed_but_not_aborts_and_no_finished_turn_after_one() -> None:
    clock = Clock()
    detector = Detector(idle_seconds=0, clock=clock)
    detector.notice_of(event("session.status", sessionID="ses_a", status={"type": "busy"}))
    failed = detector.notice_of(event("session.error", sessionID="ses_a", error={
        "name": "APIError", "data": {"message": "Bad request: model refused", "isRetryable": False,
                                     "responseBody": "sk-secret-body"}}))
    assert failed is not None and failed.kind == "error"
    assert failed.excerpt == "Bad request: model refused"
    assert detector.notice_of(event("session.idle", sessionID="ses_a")) is None
    detector.notice_of(event("session.status", sessionID="ses_a", status={"type": "busy"}))
    assert detector.notice_of(event("session.error", sessionID="ses_a", error={
        "name": "MessageAbortedError", "data": {"message": "Aborted"}})) is None


def test_a_session_the_relay_stops_gets_its_failure_and_no_finished_turn_in_either_order(
        ) -> None:
    """The retry guard aborts a session whose provider is unreachable, then reports the
    failure; opencode may say idle before the abort's answer arrives (seen in a clean-clone
    run: "Finished" came before the error)."""
    detector = Detector(idle_seconds=0, clock=Clock())
    for idle_first in (True, False):
        detector.notice_of(event("session.status", sessionID="ses_a", status={"type": "busy"}))
        detector.stopping("ses_a")
        if idle_first:
            assert detector.notice_of(event("session.idle", sessionID="ses_a")) is None
        assert detector.failure("ses_a", "unreachable").kind == "error"
        if not idle_first:
            assert detector.notice_of(event("session.idle", sessionID="ses_a")) is None
    # The next turn of the same session is told as usual.
    detector.notice_of(event("session.status", sessionID="ses_a", status={"type": "busy"}))
    done = detector.notice_of(event("session.idle", sessionID="ses_a"))
    assert done is not None and done.kind == "idle"


def test_payload_opens_the_watched_session_and_carries_only_a_title_and_excerpt() -> None:
    notice = Notice("permission", "ses_child", "permission:per_1", "Wants to use bash",
                    request_id="per_1")
    body = payload(notice, "A very long session title " * 5, "ses_parent")
    assert body == {"title": "Permission needed: A very long session title A very long session "
                             "title A very…",
                    "body": "Wants to use bash", "url": "/?session=ses_parent",
                    "tag": "permission:per_1", "kind": "permission", "sessionID": "ses_parent"}


KNOWN = EndpointRule(("fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com"))


@pytest.mark.parametrize(("endpoint", "rule", "ok"), [
    ("https://fcm.googleapis.com/fcm/send/abc", KNOWN, True),
    ("https://updates.push.services.mozilla.com/wpush/v2/x", KNOWN, True),
    ("https://WEB.PUSH.APPLE.COM./3/x", KNOWN, True),
    # Not a push service: the relay would POST into its own network for whoever subscribes.
    ("https://10.0.0.5/admin", KNOWN, False),
    ("https://metadata.internal/x", KNOWN, False),
    ("https://evilpush.apple.com.example.net/x", KNOWN, False),
    ("https://notfcm.googleapis.com.evil/x", KNOWN, False),
    ("https://push.example.com/x", EndpointRule(("*",)), True),
    ("http://127.0.0.1:9/push/x", EndpointRule((), allow_loopback_http=True), True),
    ("http://127.0.0.1:9/push/x", KNOWN, False),
    ("http://push.example.com/x", EndpointRule(("*",), allow_loopback_http=True), False),
    ("https://user:pw@fcm.googleapis.com/x", KNOWN, False),
    ("https://fcm.googleapis.com:notaport/x", KNOWN, False),
    ("ftp://fcm.googleapis.com/x", KNOWN, False),
    ("fcm.googleapis.com/x", KNOWN, False),
])
def test_endpoints(endpoint: str, rule: EndpointRule, ok: bool) -> None:
    if ok:
        check_endpoint(endpoint, rule)
    else:
        with pytest.raises(InvalidInput):
            check_endpoint(endpoint, rule)


def test_keys() -> None:
    good = Browser("https://push.example.com/x").to_json()["keys"]
    check_keys(good["p256dh"], good["auth"])
    for p256dh, auth in ((good["p256dh"], good["auth"][:-4]),
                         ("BA" + "A" * 85, good["auth"]),  # 65 bytes, not on the curve
                         (good["p256dh"][:-4], good["auth"]),
                         ("not base64!", good["auth"])):
        with pytest.raises(InvalidInput):
            check_keys(p256dh, auth)


# ----- one delivery through the real protocol -------------------------------------------------
@dataclass
class Rig:
    redis: Redis
    keys: Keys
    store: StateStore
    service: PushService
    subscriptions: Subscriptions
    notifier: Notifier


@pytest.fixture()
def service() -> Iterator[PushService]:
    made = PushService()  # not started: the relay's requests reach it through a transport
    yield made
    made.stop()


@pytest.fixture()
async def rig(redis_server: EmbeddedRedis, service: PushService) -> AsyncIterator[Rig]:
    keys = Keys(f"unit-{uuid.uuid4().hex[:8]}:")
    redis = Redis.from_url(redis_server.url)
    store = StateStore(redis, keys)

    def answer(request: httpx.Request) -> httpx.Response:
        delivery = service._receive(request.url.path, dict(request.headers), request.content)
        service.deliveries.append(delivery)
        return httpx.Response(delivery.status, headers=delivery.reply_headers)

    vapid = VapidKeys(redis, keys)
    service.vapid_key = await vapid.public_key()
    subscriptions = Subscriptions(redis, keys, cap=2)
    sender = PushSender("mailto:ops@example.com", 60, 5, transport=httpx.MockTransport(answer))
    notifier = Notifier(keys, store, Access(redis, keys, enabled=True), vapid, subscriptions,
                        sender, Detector(0), auth_enabled=True, concurrency=2, retries=3,
                        retry_seconds=0.05, retry_max_seconds=2)
    async with Staging(redis) as stage:
        store.put_session(stage, {**session_info("ses_parent"), "title": "Parent work"})
        store.put_session(stage, session_info("ses_child", parent="ses_parent"))
        store.put_session(stage, session_info("ses_bobs"))
        stage.on("ses_parent").set(keys.session_owner("ses_parent"), "alice")
        stage.on("ses_bobs").set(keys.session_owner("ses_bobs"), "bob")
        await stage.commit()
    notifier.start()
    yield Rig(redis, keys, store, service, subscriptions, notifier)
    await notifier.stop()
    await redis.aclose()


async def test_a_sub_agent_error_reaches_the_parents_owner_once(rig: Rig) -> None:
    alice = rig.service.browser("alice")
    await rig.subscriptions.add("alice", alice.endpoint, **alice.to_json()["keys"])
    failure = event("session.error", sessionID="ses_child",
                    error={"name": "UnknownError", "data": {"message": "tool crashed"}})
    rig.notifier.observe(failure)
    rig.notifier.observe(failure)  # the same event again (a new leader): claimed already
    rig.notifier.observe(event("session.error", sessionID="ses_bobs",
                               error={"name": "UnknownError", "data": {"message": "bob's"}}))
    await rig.notifier.stop(timeout=5)
    assert rig.service.problems() == []
    assert rig.service.messages(alice) == [{
        "title": "Error: Parent work", "body": "tool crashed", "url": "/?session=ses_parent",
        "tag": "error:ses_parent", "kind": "error", "sessionID": "ses_parent"}]
    (delivery,) = rig.service.deliveries
    assert delivery.headers["ttl"] == "60" and delivery.headers["urgency"] == "normal"
    assert len(delivery.headers["topic"]) <= 32


async def test_a_team_request_reaches_who_may_answer_it_and_a_finished_turn_the_owner(
        rig: Rig) -> None:
    teams = Teams(rig.redis, rig.keys)
    red = await teams.create("red")
    for principal_id, role in (("alice", "admin"), ("boss", "admin"), ("mia", "member"),
                               ("vera", "viewer"), ("leaving", "admin")):
        await teams.set_member(red, principal_id, role)
    # Half way through a removal: its grant is gone, the member list still names it.
    await rig.redis.hdel(rig.keys.principal_teams("leaving"), red.id)
    async with Staging(rig.redis) as stage:
        rig.store.put_session(stage, {**session_info("ses_red"), "title": "Red work"})
        rig.store.put_session(stage, session_info("ses_red_child", parent="ses_red"))
        stage.on("ses_red").set(rig.keys.session_owner("ses_red"), "alice")
        stage.on("ses_red").set(rig.keys.session_team("ses_red"), red.id)
        await stage.commit()
    people = ("alice", "boss", "mia", "vera", "leaving", "bob")
    browsers = {who: rig.service.browser(who) for who in people}
    for who, browser in browsers.items():
        await rig.subscriptions.add(who, browser.endpoint, **browser.to_json()["keys"])
    # A sub-agent's permission (the team is its parent's), a question, then the turn's end.
    rig.notifier.observe(event("permission.asked", id="per_red", sessionID="ses_red_child",
                               permission="bash", patterns=[], metadata={}, always=[]))
    rig.notifier.observe(event("question.asked", id="que_red", sessionID="ses_red", questions=[
        {"question": "Which colour?", "header": "C", "options": []}]))
    rig.notifier.observe(event("session.status", sessionID="ses_red", status={"type": "busy"}))
    rig.notifier.observe(event("session.idle", sessionID="ses_red"))
    rig.notifier.observe(event("session.error", sessionID="ses_red",
                               error={"name": "UnknownError", "data": {"message": "broke"}}))
    await rig.notifier.stop(timeout=30)  # sends all (returns once done); a loaded machine is slow
    assert rig.service.problems() == []
    # Sent by several workers at once: the order they arrive in is not the order queued.
    told = {who: sorted(m["tag"] for m in rig.service.messages(browsers[who])) for who in people}
    assert told == {"alice": sorted(["permission:per_red", "question:que_red", "idle:ses_red",
                                     "error:ses_red"]),  # the owner (and an admin): each once
                    "boss": ["permission:per_red", "question:que_red"],
                    "mia": [], "vera": [], "leaving": [], "bob": []}
    assert rig.service.messages(browsers["boss"])[0]["url"] == "/?session=ses_red"


# ----- a team's requests and the holders of its identity-provider group ----------------------
async def _team_session(rig: Rig, sid: str, group: str, group_role: Role) -> Team:
    """A team whose `group` holders have `group_role`, and a session of Alice's made for it."""
    team = await Teams(rig.redis, rig.keys).create(f"team-{sid}", group=group,
                                                   group_role=group_role)
    async with Staging(rig.redis) as stage:
        rig.store.put_session(stage, {**session_info(sid), "title": f"Work of {team.name}"})
        stage.on(sid).set(rig.keys.session_owner(sid), "alice")
        stage.on(sid).set(rig.keys.session_team(sid), team.id)
        await stage.commit()
    return team


async def _sign_in(rig: Rig, principal_id: str, *groups: str, login: str = "",
                   seconds: float = 3600) -> str:
    """What a single sign-on records (security/sso.py): the groups the provider named, for
    as long as the login lasts. Returns the login's digest."""
    login = login or f"login-{uuid.uuid4().hex}"
    await GroupHolders(rig.redis, rig.keys).record(principal_id, groups, login,
                                                   time.time() + seconds)
    return login


async def _subscribed(rig: Rig, *people: str) -> dict[str, Browser]:
    browsers = {who: rig.service.browser(who) for who in people}
    for who, browser in browsers.items():
        await rig.subscriptions.add(who, browser.endpoint, **browser.to_json()["keys"])
    return browsers


async def _ask(rig: Rig, sid: str, request_id: str) -> Notice:
    """A permission request of the session, delivered (recipients, claim, sends) at once."""
    notice = Notice("permission", sid, f"permission:{request_id}", "Wants to use bash",
                    request_id=request_id)
    await rig.notifier.deliver(notice)
    return notice


def _told(rig: Rig, browsers: dict[str, Browser]) -> dict[str, list[str]]:
    assert rig.service.problems() == []
    return {who: sorted(m["tag"] for m in rig.service.messages(browser))
            for who, browser in browsers.items()}


async def test_a_holder_of_the_teams_admin_group_is_told_of_its_requests_once(
        rig: Rig) -> None:
    await _team_session(rig, "ses_green", "green-admins", "admin")
    await _sign_in(rig, "gina", "green-admins", "elsewhere")
    await _sign_in(rig, "gina", "elsewhere", "green-admins")  # a second browser: still one
    await _sign_in(rig, "gone", "green-admins", seconds=0.5)
    await _sign_in(rig, "other", "green-admins-and-more", "green")  # not the group's name
    browsers = await _subscribed(rig, "alice", "gina", "gone", "other")
    await asyncio.sleep(0.6)  # gone's login has ended (its entry is still in the set)
    await _ask(rig, "ses_green", "per_green")
    assert _told(rig, browsers) == {"alice": ["permission:per_green"],
                                    "gina": ["permission:per_green"], "gone": [], "other": []}


async def test_a_named_member_who_also_holds_the_group_is_told_once(rig: Rig) -> None:
    """Named an admin and holding the admin group: once. Named a member (who may not answer)
    and holding the admin group: the stronger role, once."""
    team = await _team_session(rig, "ses_both", "both-admins", "admin")
    teams = Teams(rig.redis, rig.keys)
    await teams.set_member(team, "dana", "admin")
    await teams.set_member(team, "milo", "member")
    await teams.set_member(team, "alice", "admin")  # the owner, named and holding it too
    for who in ("dana", "milo", "alice"):
        await _sign_in(rig, who, "both-admins")
    browsers = await _subscribed(rig, "alice", "dana", "milo")
    notice = await _ask(rig, "ses_both", "per_both")
    assert sorted(await rig.notifier.recipients(notice)) == ["alice", "dana", "milo"]
    assert _told(rig, browsers) == {who: ["permission:per_both"] for who in browsers}


async def test_holders_of_a_group_whose_role_may_not_answer_are_not_told(rig: Rig) -> None:
    await _team_session(rig, "ses_admins", "admins-group", "admin")
    await _team_session(rig, "ses_members", "members-group", "member")
    await _team_session(rig, "ses_viewers", "viewers-group", "viewer")
    await _sign_in(rig, "mel", "admins-group", "members-group", "viewers-group")
    await _sign_in(rig, "max", "members-group", "viewers-group")
    browsers = await _subscribed(rig, "mel", "max")
    for sid in ("ses_admins", "ses_members", "ses_viewers"):
        await _ask(rig, sid, f"per_{sid}")
    assert _told(rig, browsers) == {"mel": ["permission:per_ses_admins"], "max": []}


async def test_a_holder_who_lost_the_group_at_the_next_sign_in_is_no_longer_told(
        rig: Rig) -> None:
    await _team_session(rig, "ses_lost", "lost-admins", "admin")
    browsers = await _subscribed(rig, "lena")
    older = await _sign_in(rig, "lena", "lost-admins")
    await _ask(rig, "ses_lost", "per_1")
    await _sign_in(rig, "lena", "somewhere-else")  # the provider no longer names the group
    await _ask(rig, "ses_lost", "per_2")
    newest = await _sign_in(rig, "lena", "lost-admins")  # named again
    await _ask(rig, "ses_lost", "per_3")
    groups = GroupHolders(rig.redis, rig.keys)
    await groups.signed_out("lena", older)  # an older login ends: the newest one's record stands
    await _ask(rig, "ses_lost", "per_4")
    await groups.signed_out("lena", newest)  # the login that recorded it ends
    await _ask(rig, "ses_lost", "per_5")
    assert _told(rig, browsers) == {"lena": ["permission:per_1", "permission:per_3",
                                             "permission:per_4"]}


async def test_a_session_the_relay_stopped_is_an_error(rig: Rig) -> None:
    alice = rig.service.browser("alice")
    await rig.subscriptions.add("alice", alice.endpoint, **alice.to_json()["keys"])
    rig.notifier.observe(event("session.status", sessionID="ses_parent", status={"type": "busy"}))
    rig.notifier.failed("ses_parent", "The model provider 'down' could not be used: " + "x" * 200)
    rig.notifier.observe(event("session.error", sessionID="ses_parent",
                               error={"name": "MessageAbortedError", "data": {"message": "a"}}))
    rig.notifier.observe(event("session.idle", sessionID="ses_parent"))
    await rig.notifier.stop(timeout=5)
    (only,) = rig.service.messages(alice)
    assert only["kind"] == "error" and len(only["body"]) == 120
    assert only["body"].startswith("The model provider 'down' could not be used")


async def test_gone_and_capped_subscriptions_are_dropped(rig: Rig) -> None:
    first, second, third = (rig.service.browser(n) for n in ("one", "two", "three"))
    for browser in (first, second, third):  # the cap is 2: the oldest goes
        await rig.subscriptions.add("alice", browser.endpoint, **browser.to_json()["keys"])
    stored = {s.endpoint for s in await rig.subscriptions.of("alice")}
    assert stored == {second.endpoint, third.endpoint}
    rig.service.answers[second.endpoint.rsplit("/", 1)[1]] = 410
    rig.notifier.observe(event("permission.asked", id="per_x", sessionID="ses_child",
                               permission="edit", patterns=[], metadata={}, always=[]))
    await rig.notifier.stop(timeout=5)
    assert [m["kind"] for m in rig.service.messages(third)] == ["permission"]
    assert [s.endpoint for s in await rig.subscriptions.of("alice")] == [third.endpoint]
    assert rig.notifier.counts.sent == 1 and rig.notifier.counts.expired == 1
    # A browser signing in as someone else moves to them.
    await rig.subscriptions.add("bob", third.endpoint, **third.to_json()["keys"])
    assert await rig.subscriptions.of("alice") == []
    assert not await rig.subscriptions.remove("alice", third.endpoint)
    assert await rig.subscriptions.remove("bob", third.endpoint)


async def test_keys_are_shared_and_rotation_drops_subscriptions(rig: Rig) -> None:
    other_replica = VapidKeys(rig.redis, rig.keys)
    public = await other_replica.public_key()
    assert public == rig.service.vapid_key and len(unb64url(public)) == 65
    stored = await rig.redis.get(rig.keys.push_vapid)
    assert stored is not None and len(unb64url(stored.decode())) == 32
    browser = rig.service.browser("alice")
    await rig.subscriptions.add("alice", browser.endpoint, **browser.to_json()["keys"])
    rotated = await other_replica.rotate()
    assert rotated != public and await rig.notifier.vapid.public_key() == rotated
    assert await rig.subscriptions.clear_all() == 1
    assert await rig.subscriptions.of("alice") == []
    assert json.dumps(await rig.redis.hgetall(rig.keys.push_endpoints) or {}) == "{}"


# ----- retries: a push service that fails for a moment -----------------------------------------
def asked(request_id: str) -> dict[str, object]:
    return event("permission.asked", id=request_id, sessionID="ses_parent", permission="bash",
                 patterns=[], metadata={}, always=[])


async def test_a_503_is_retried_and_delivered_exactly_once(rig: Rig) -> None:
    alice = rig.service.browser("alice")
    await rig.subscriptions.add("alice", alice.endpoint, **alice.to_json()["keys"])
    rig.service.script(alice, (503, {}), (502, {}))
    rig.notifier.observe(asked("per_r"))
    rig.notifier.observe(asked("per_r"))  # seen twice: still one claim, one notification
    await rig.notifier.stop(timeout=5)
    assert [d.status for d in rig.service.attempts(alice)] == [503, 502, 201]
    assert [m["tag"] for m in rig.service.messages(alice)] == ["permission:per_r"]
    counts = rig.notifier.counts
    assert (counts.sent, counts.retried, counts.gave_up, counts.failed) == (1, 2, 0, 0)


async def test_a_429_waits_for_retry_after(rig: Rig) -> None:
    alice = rig.service.browser("alice")
    await rig.subscriptions.add("alice", alice.endpoint, **alice.to_json()["keys"])
    rig.service.script(alice, (429, {"Retry-After": "1"}))
    rig.notifier.observe(asked("per_slow"))
    await rig.notifier.stop(timeout=5)
    first, second = rig.service.attempts(alice)
    assert (first.status, second.status) == (429, 201)
    assert second.received - first.received >= 1.0  # not the 0.05 s backoff
    assert len(rig.service.messages(alice)) == 1 and rig.notifier.counts.retried == 1


async def test_a_push_service_that_stays_down_is_given_up_without_delaying_others(
        rig: Rig) -> None:
    rig.notifier.retries, rig.notifier.retry_seconds = 2, 0.6  # retries 0.3-0.6 s, 0.6-1.2 s
    down, up = rig.service.browser("down"), rig.service.browser("up")
    for browser in (down, up):
        await rig.subscriptions.add("alice", browser.endpoint, **browser.to_json()["keys"])
    rig.service.answers[down.endpoint.rsplit("/", 1)[1]] = 503
    for request_id in ("per_1", "per_2", "per_3"):  # more than the 2 send slots
        rig.notifier.observe(asked(request_id))
    await rig.notifier.stop(timeout=5)
    failing = rig.service.attempts(down)
    assert [d.status for d in failing] == [503] * 9  # 3 notifications x (1 + 2 retries)
    assert len(rig.service.messages(up)) == 3
    first_retry = sorted(d.received for d in failing)[3]
    # Every notification reached the working browser before the first retry was even due.
    assert max(d.received for d in rig.service.attempts(up)) < first_retry
    counts = rig.notifier.counts
    assert (counts.sent, counts.retried, counts.gave_up) == (3, 6, 3)


async def test_gone_and_refused_are_not_retried(rig: Rig) -> None:
    gone, vapid_refused = rig.service.browser("gone"), rig.service.browser("refused")
    for browser in (gone, vapid_refused):
        await rig.subscriptions.add("alice", browser.endpoint, **browser.to_json()["keys"])
    rig.service.script(gone, (410, {}))
    rig.service.script(vapid_refused, (403, {}))
    rig.notifier.observe(asked("per_g"))
    await rig.notifier.stop(timeout=5)
    assert len(rig.service.attempts(gone)) == 1 and len(rig.service.attempts(vapid_refused)) == 1
    assert [s.endpoint for s in await rig.subscriptions.of("alice")] == [vapid_refused.endpoint]
    counts = rig.notifier.counts
    assert (counts.expired, counts.failed, counts.retried, counts.sent) == (1, 1, 0, 0)


async def test_stopping_ends_the_retries_still_waiting(rig: Rig) -> None:
    rig.notifier.retry_seconds = 30
    alice = rig.service.browser("alice")
    await rig.subscriptions.add("alice", alice.endpoint, **alice.to_json()["keys"])
    rig.service.script(alice, (500, {}))
    rig.notifier.observe(asked("per_stop"))
    started = time.monotonic()
    await rig.notifier.stop(timeout=0.5)
    assert time.monotonic() - started < 2
    assert [d.status for d in rig.service.attempts(alice)] == [500]
    assert rig.notifier.counts.retried == 1 and not rig.notifier._waiting


async def test_an_unreachable_push_service_is_worth_a_retry() -> None:
    sender = PushSender("mailto:ops@example.com", 60, 2)
    keys = Browser("http://127.0.0.1:9/push/closed").to_json()["keys"]
    sub = Subscription("psub_x", "http://127.0.0.1:9/push/closed", keys["p256dh"], keys["auth"],
                       time.time())  # the discard port: nothing listens there
    vapid = Vapid02()
    vapid.generate_keys()
    try:
        result = await sender.send(sub, b"{}", vapid)
    finally:
        await sender.aclose()
    assert result.outcome is Outcome.RETRY and result.reason == "ConnectError"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0  # past
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("") is None


# ----- the routes, in-process -------------------------------------------------------------------
async def test_routes_in_process(redis_server: EmbeddedRedis) -> None:
    from tests.support.fake_opencode import FakeOpencode
    from tests.test_api_inprocess import relay_client, relay_settings

    browser = Browser("https://fcm.googleapis.com/fcm/send/abc")
    settings = relay_settings(redis_server.url)
    async with relay_client(settings, FakeOpencode()) as http:
        key = (await http.get("/api/push/key")).json()["publicKey"]
        assert len(unb64url(key)) == 65
        made = await http.post("/api/push/subscriptions", json=browser.to_json())
        assert made.status_code == 200, made.text
        loopback = {**browser.to_json(), "endpoint": "http://127.0.0.1:1/push/x"}
        refused = await http.post("/api/push/subscriptions", json=loopback)
        assert refused.status_code == 400
        assert "RELAY_PUSH_ALLOW_LOOPBACK_HTTP" in refused.json()["error"]["message"]
        inside = {**browser.to_json(), "endpoint": "https://192.168.1.1/router/admin"}
        refused = await http.post("/api/push/subscriptions", json=inside)
        assert refused.status_code == 400
        assert "RELAY_PUSH_SERVICES" in refused.json()["error"]["message"]
        gone = await http.request("DELETE", "/api/push/subscriptions",
                                  json={"endpoint": browser.endpoint})
        assert gone.json() == {"removed": True}
        # The private key never leaves Redis: not in any answer.
        async with Redis.from_url(redis_server.url) as redis:
            private = await redis.get(Keys(settings.key_prefix).push_vapid)
        assert private is not None and private.decode() not in made.text + key
    off = relay_settings(redis_server.url, push=False)
    async with relay_client(off, FakeOpencode()) as http:
        disabled = await http.get("/api/push/key")
        assert disabled.status_code == 404
        assert disabled.json()["error"]["code"] == "push_disabled"
