"""Web Push: VAPID keys, subscriptions, and the notifications sent for ingested events."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..config import Settings
from ..security.access import Access
from ..store.keys import Keys
from ..store.state import StateStore
from .notices import Detector
from .notifier import Notifier
from .sender import PushSender
from .subscriptions import EndpointRule, Subscriptions
from .vapid import VapidKeys


@dataclass
class Push:
    vapid: VapidKeys
    subscriptions: Subscriptions
    notifier: Notifier
    endpoints: EndpointRule

    async def start(self) -> None:
        """Makes the VAPID key pair on the first start (any replica; the first one wins) and
        starts the send workers. With Redis away the keys are made on first use instead."""
        try:
            await self.vapid.current()
        except (RedisError, OSError) as exc:
            logging.getLogger("opencode_relay.push").warning(
                "VAPID keys not read at start (made on first use): %s", exc)
        self.notifier.start()


def build_push(settings: Settings, redis: Redis, keys: Keys, store: StateStore, access: Access,
               transport: httpx.AsyncBaseTransport | None = None) -> Push:
    vapid = VapidKeys(redis, keys)
    subscriptions = Subscriptions(redis, keys, settings.push_subscriptions_per_principal)
    sender = PushSender(settings.push_subject, settings.push_ttl_seconds,
                        settings.push_timeout_seconds, transport)
    notifier = Notifier(keys, store, access, vapid, subscriptions, sender,
                        Detector(settings.push_idle_seconds), auth_enabled=settings.auth_enabled,
                        concurrency=settings.push_concurrency,
                        queue_size=settings.push_queue_size, retries=settings.push_retries,
                        retry_seconds=settings.push_retry_seconds,
                        retry_max_seconds=settings.push_retry_max_seconds)
    endpoints = EndpointRule(settings.push_service_list, settings.push_allow_loopback_http)
    return Push(vapid, subscriptions, notifier, endpoints)
