"""Turns ingested events into Web Push notifications, off the ingest path.

An ingest observer (`observe`, called by the replica that ingests, after each batch is in Redis)
asks the Detector whether an event needs a notification and queues it; that is all it does on
the ingest path. Workers (at most `concurrency` sends at once) then claim the notification in
Redis (SET NX per event: exactly one send even if ingest leadership moves and an event is seen
twice), find who is told (`recipients`: for a permission or question request everyone who may
answer it, the owner and the team's admins, named or holding the team's group with the admin
role as of their last sign-in (groups.py); otherwise the owner; a sub-agent's are its
parent's), and post it to each of their browsers. A push service's 404/410 drops that
subscription.

A send that may work a little later (429, 5xx, a timeout, no connection) is retried, up to
`retries` more times, after an exponential backoff with jitter, or after the push service's
`Retry-After` (capped at `retry_max_seconds`). A retry is the same notification to the same
subscription under the same claim; it waits in its own task, not in a worker or a send slot, so
nothing else waits behind it. Stopping the relay ends the retries still waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from py_vapid import Vapid02
from redis.exceptions import RedisError

from ..security.access import ANSWERING, Access
from ..security.principal import LOCAL
from ..store.keys import Keys
from ..store.state import StateStore
from .notices import JSON, Detector, Notice, encode, payload, topic
from .sender import Outcome, PushSender, Result
from .subscriptions import Subscription, Subscriptions
from .vapid import VapidKeys

logger = logging.getLogger("opencode_relay.push")

_CLAIM_SECONDS = 86400  # far longer than a change of ingest leadership takes
_MAX_DEPTH = 16
_REQUESTS = frozenset({"permission", "question"})  # notices someone must act on


@dataclass
class PushCounts:
    """What the notifier did (for /metrics and the log)."""

    queued: int = 0
    dropped: int = 0   # the queue was full
    sent: int = 0
    failed: int = 0
    expired: int = 0   # subscriptions dropped on 404/410
    retried: int = 0   # sends tried again after a 429/5xx/timeout
    gave_up: int = 0   # sends still failing that way after the last retry


@dataclass(frozen=True)
class _Send:
    """One notification to one subscription: what a retry sends again."""

    notice: Notice
    principal_id: str  # whose subscription it is
    sub: Subscription
    data: bytes
    vapid: Vapid02
    urgent: bool
    topic: str


class Notifier:
    def __init__(self, keys: Keys, store: StateStore, access: Access, vapid: VapidKeys,
                 subscriptions: Subscriptions, sender: PushSender, detector: Detector, *,
                 auth_enabled: bool, concurrency: int = 8, queue_size: int = 1000,
                 retries: int = 3, retry_seconds: float = 1.0,
                 retry_max_seconds: float = 60.0) -> None:
        self.keys = keys
        self.store = store
        self.access = access
        self.vapid = vapid
        self.subscriptions = subscriptions
        self.sender = sender
        self.detector = detector
        self.auth_enabled = auth_enabled
        self.concurrency = concurrency
        self.retries = retries
        self.retry_seconds = retry_seconds
        self.retry_max_seconds = retry_max_seconds
        self.max_waiting = queue_size  # retries waiting at once; past it a send gives up
        self.counts = PushCounts()
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
        self._sends = asyncio.Semaphore(concurrency)
        self._workers: list[asyncio.Task[None]] = []
        self._waiting: set[asyncio.Task[None]] = set()  # retries sleeping until they are due

    # ----- on the ingest path: decide and queue, never wait ------------------------------
    def observe(self, event: JSON) -> None:
        notice = self.detector.notice_of(event)
        if notice is not None:
            self._enqueue(notice)

    def _enqueue(self, notice: Notice) -> None:
        try:
            self._queue.put_nowait(notice)
            self.counts.queued += 1
        except asyncio.QueueFull:
            self.counts.dropped += 1
            logger.warning("push queue full; a %s notification for %s was dropped",
                           notice.kind, notice.session_id)

    def stopping(self, sid: str) -> None:
        """The relay is about to stop a session (ingest/retry_guard.py): its turn's end is not
        notified; `failed` follows once it is stopped."""
        self.detector.stopping(sid)

    def failed(self, sid: str, message: str) -> None:
        """The relay stopped a session (ingest/retry_guard.py: its provider is unreachable);
        opencode then reports only an abort, which is not notified by itself."""
        self._enqueue(self.detector.failure(sid, message))

    # ----- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def stop(self, timeout: float = 3.0) -> None:
        """Sends what is queued, and the retries that come due, for up to `timeout`; then
        stops (the retries still waiting are abandoned and logged)."""
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            logger.warning("push: %d notification(s) not sent before stopping",
                           self._queue.qsize())
        while self._waiting and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._waiting), timeout=left)  # a retry may add the next
        if self._waiting:
            logger.warning("push: %d retried send(s) abandoned on stopping", len(self._waiting))
        tasks = [*self._workers, *self._waiting]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._waiting.clear()
        await self.sender.aclose()

    async def _work(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self.deliver(notice)
            except RedisError as exc:
                logger.warning("push: redis unavailable, %s notification for %s not sent: %s",
                               notice.kind, notice.session_id, exc)
            except Exception:  # a bug must not stop the workers
                logger.exception("push: delivering a %s notification failed", notice.kind)
            finally:
                self._queue.task_done()

    # ----- one notification --------------------------------------------------------------
    async def deliver(self, notice: Notice) -> None:
        root = await self._root_of(notice.session_id)
        if notice.kind == "idle" and root != notice.session_id:
            return  # a sub-agent's turn ends inside its parent's: the parent's end is the news
        targets = [(principal_id, sub) for principal_id in await self.recipients(notice)
                   for sub in await self._live_subscriptions(principal_id)]
        if not targets:
            return
        if not await self.store.redis.set(self.keys.push_sent(notice.claim), "1", nx=True,
                                          ex=_CLAIM_SECONDS):
            return  # another replica (or an earlier leader) sent this one
        info = await self.store.get_session(root)
        body = payload(notice, (info or {}).get("title"), root)
        data, vapid = encode(body), await self.vapid.current()
        urgent = notice.kind in _REQUESTS
        await asyncio.gather(*(
            self._attempt(_Send(notice, principal_id, sub, data, vapid, urgent,
                                topic(body["tag"])), 0)
            for principal_id, sub in targets))

    async def recipients(self, notice: Notice) -> list[str]:
        """Who is told, each once: a request (permission, question) goes to everyone who may
        answer it (the owner and the team's admins, named or through the team's group,
        security/access.py `named_holders`), a finished turn or a failure to the owner only (a
        sub-agent's owner is its parent's)."""
        if notice.kind in _REQUESTS:
            named = await self.access.named_holders(notice.session_id, ANSWERING)
        else:
            owner = await self.access.owner_of(notice.session_id)
            named = [owner] if owner else []
        if not named and not self.auth_enabled:
            return [LOCAL.id]  # with auth off everyone is the local principal
        return named  # none: made outside the relay; admins see it, nobody subscribed

    async def _live_subscriptions(self, principal_id: str) -> list[Subscription]:
        """The principal's subscriptions, without (and dropping) those past their expiry."""
        subs = await self.subscriptions.of(principal_id)
        now = time.time()
        for sub in [s for s in subs if s.expires is not None and s.expires < now]:
            await self.subscriptions.drop(principal_id, sub.id)  # the browser said it lapses
            subs.remove(sub)
        return subs

    async def _attempt(self, send: _Send, attempt: int) -> None:
        """Sends once (attempt 0 is the first try) and acts on the answer."""
        async with self._sends:
            result = await self.sender.send(send.sub, send.data, send.vapid, urgent=send.urgent,
                                            topic=send.topic)
        sub, kind = send.sub, send.notice.kind
        if result.outcome is Outcome.SENT:
            self.counts.sent += 1
        elif result.outcome is Outcome.GONE:
            self.counts.expired += 1
            await self.subscriptions.drop(send.principal_id, sub.id)
            logger.info("push: %s answered %s; subscription %s dropped", sub.origin,
                        result.reason, sub.id)
        elif result.outcome is Outcome.FAILED:
            self.counts.failed += 1
            logger.warning("push: %s refused a %s notification for subscription %s, not "
                           "retried: %s", sub.origin, kind, sub.id, result.reason)
        elif attempt < self.retries and len(self._waiting) < self.max_waiting:
            delay = self.delay(attempt, result)
            self.counts.retried += 1
            logger.info("push: %s answered %s to a %s notification; retry %d/%d in %.1f s",
                        sub.origin, result.reason, kind, attempt + 1, self.retries, delay)
            task = asyncio.create_task(self._retry(send, attempt + 1, delay))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)
        else:
            self.counts.gave_up += 1
            logger.warning("push: %s answered %s to a %s notification for subscription %s; "
                           "gave up after %d attempt(s)", sub.origin, result.reason, kind,
                           sub.id, attempt + 1)

    def delay(self, attempt: int, result: Result) -> float:
        """Seconds before retry `attempt + 1`: the push service's Retry-After if it gave one,
        else an exponential backoff with jitter (half fixed, half random); at most the cap."""
        if result.retry_after is not None:
            return min(result.retry_after, self.retry_max_seconds)
        backoff = min(self.retry_seconds * 2.0 ** attempt, self.retry_max_seconds)
        return backoff / 2 + random.uniform(0, backoff / 2)

    async def _retry(self, send: _Send, attempt: int, delay: float) -> None:
        await asyncio.sleep(delay)  # holds neither a worker nor a send slot
        try:
            await self._attempt(send, attempt)
        except RedisError as exc:  # dropping a gone subscription needs Redis
            logger.warning("push: redis unavailable while retrying a send: %s", exc)
        except Exception:  # a bug must not go unseen in a detached task
            logger.exception("push: retrying a %s notification failed", send.notice.kind)

    async def _root_of(self, sid: str) -> str:
        current = sid
        for _ in range(_MAX_DEPTH):
            parent = (await self.store.parent_ids([current])).get(current)
            if not parent:
                return current
            current = parent
        return current
