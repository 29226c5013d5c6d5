"""Turns ingested events into Web Push notifications, off the ingest path.

An ingest observer (`observe`, called by the replica that ingests, after each batch is in Redis)
asks the Detector whether an event needs a notification and queues it; that is all it does on
the ingest path. Workers (at most `concurrency` sends at once) then claim the notification in
Redis (SET NX per event: exactly one send even if ingest leadership moves and an event is seen
twice), find the session's owner (a sub-agent's is its parent's), and post it to each of the
owner's browsers. A push service's 404/410 drops that subscription.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from ..security.access import Access
from ..security.principal import LOCAL
from ..store.keys import Keys
from ..store.state import StateStore
from .notices import JSON, Detector, Notice, encode, payload, topic
from .sender import Outcome, PushSender
from .subscriptions import Subscription, Subscriptions
from .vapid import VapidKeys

logger = logging.getLogger("opencode_relay.push")

_CLAIM_SECONDS = 86400  # far longer than a change of ingest leadership takes
_MAX_DEPTH = 16


@dataclass
class PushCounts:
    """What the notifier did (for /metrics and the log)."""

    queued: int = 0
    dropped: int = 0   # the queue was full
    sent: int = 0
    failed: int = 0
    expired: int = 0   # subscriptions dropped on 404/410


class Notifier:
    def __init__(self, keys: Keys, store: StateStore, access: Access, vapid: VapidKeys,
                 subscriptions: Subscriptions, sender: PushSender, detector: Detector, *,
                 auth_enabled: bool, concurrency: int = 8, queue_size: int = 1000) -> None:
        self.keys = keys
        self.store = store
        self.access = access
        self.vapid = vapid
        self.subscriptions = subscriptions
        self.sender = sender
        self.detector = detector
        self.auth_enabled = auth_enabled
        self.concurrency = concurrency
        self.counts = PushCounts()
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
        self._sends = asyncio.Semaphore(concurrency)
        self._workers: list[asyncio.Task[None]] = []

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

    def failed(self, sid: str, message: str) -> None:
        """The relay stopped a session (ingest/retry_guard.py: its provider is unreachable);
        opencode then reports only an abort, which is not notified by itself."""
        self._enqueue(self.detector.failure(sid, message))

    # ----- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def stop(self, timeout: float = 3.0) -> None:
        """Sends what is queued (for up to `timeout`), then stops."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            logger.warning("push: %d notification(s) not sent before stopping",
                           self._queue.qsize())
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
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
        owner = await self.access.owner_of(notice.session_id)
        if owner is None and not self.auth_enabled:
            owner = LOCAL.id  # with auth off everyone is the local principal
        if owner is None:
            return  # nobody owns it (made outside the relay): admins see it, nobody subscribed
        subs = await self.subscriptions.of(owner)
        now = time.time()
        for sub in [s for s in subs if s.expires is not None and s.expires < now]:
            await self.subscriptions.drop(owner, sub.id)  # the browser said it would lapse
            subs.remove(sub)
        if not subs:
            return
        if not await self.store.redis.set(self.keys.push_sent(notice.claim), "1", nx=True,
                                          ex=_CLAIM_SECONDS):
            return  # another replica (or an earlier leader) sent this one
        info = await self.store.get_session(root)
        body = payload(notice, (info or {}).get("title"), root)
        data, vapid = encode(body), await self.vapid.current()
        urgent = notice.kind in ("permission", "question")

        async def one(sub: Subscription) -> None:
            async with self._sends:
                outcome, reason = await self.sender.send(sub, data, vapid, urgent=urgent,
                                                         topic=topic(body["tag"]))
            if outcome is Outcome.SENT:
                self.counts.sent += 1
            elif outcome is Outcome.GONE:
                self.counts.expired += 1
                await self.subscriptions.drop(owner, sub.id)
                logger.info("push: %s answered %s; subscription %s dropped", sub.origin, reason,
                            sub.id)
            else:
                self.counts.failed += 1
                logger.warning("push: %s refused a %s notification: %s", sub.origin,
                               notice.kind, reason)

        await asyncio.gather(*(one(sub) for sub in subs))

    async def _root_of(self, sid: str) -> str:
        current = sid
        for _ in range(_MAX_DEPTH):
            parent = (await self.store.parent_ids([current])).get(current)
            if not parent:
                return current
            current = parent
        return current
