"""`opencode-relay token …`, `prune`, `push rotate-keys`, `audit` and `search reindex`:
operator commands on Redis.

Token changes are audited with principal "cli" (audit.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from redis.asyncio import Redis

from . import audit
from .config import Settings
from .errors import RelayError
from .launch.embedded import EmbeddedRedis
from .security.tokens import TOKEN_ID, TokenStore
from .store import connect
from .store.keys import Keys

REDIS_URL_FILE = "redis.url"  # written by `serve` while it runs an embedded Redis


@asynccontextmanager
async def _redis(settings: Settings) -> AsyncIterator[Redis]:
    url = settings.redis_url
    started = None
    if not url and not settings.redis_sentinels:
        shared = settings.data_dir / REDIS_URL_FILE
        if shared.is_file():
            url = shared.read_text().strip()
        else:  # no relay running: open its embedded Redis ourselves
            started = EmbeddedRedis(settings.data_dir / "redis").start()
            url = started.url
    try:
        await connect.check(settings, url, timeout_seconds=0)  # else one line, not a traceback
        redis = connect.redis_client(settings, url)
        try:
            yield redis
        finally:
            await connect.close(redis)
    finally:
        if started is not None:
            started.stop()


async def _token(args: argparse.Namespace) -> int:
    settings = Settings()
    async with _redis(settings) as redis:
        keys = Keys(settings.key_prefix)
        tokens = TokenStore(redis, keys)
        log = audit.AuditLog(redis, keys, settings.audit_max_entries)
        if args.action == "create":
            info, secret = await tokens.create(args.name, args.admin, args.terminal)
            await log.record("token.create", principal=audit.CLI, target=info.id,
                             detail={"name": info.name, "admin": info.admin,
                                     "terminal": info.terminal})
            grant = ", may open terminals" if info.terminal else ""
            print(f"created {info.id} ({'admin' if info.admin else 'user'} {info.name!r}{grant})",
                  file=sys.stderr)
            print("the token is shown only now; store it safely:", file=sys.stderr)
            print(secret)
        elif args.action == "list":
            for info in await tokens.list():
                state = (f"revoked {time.strftime('%Y-%m-%d %H:%M', time.localtime(info.revoked))}"
                         if info.revoked else "active")
                created = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created))
                role = "admin" if info.admin else "user+terminal" if info.terminal else "user"
                print(f"{info.id}\t{info.name}\t{role}\t"
                      f"created {created}\t{state}")
        elif args.action == "revoke":
            revoked = await tokens.revoke(args.id)
            # Only a well-formed id is recorded: never a secret pasted in by mistake.
            await log.record("token.revoke", principal=audit.CLI,
                             target=args.id if TOKEN_ID.match(args.id) else None,
                             outcome="ok" if revoked else "refused")
            if not revoked:
                print(f"no token {args.id!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}", file=sys.stderr)
    return 0


async def _prune(args: argparse.Namespace) -> int:
    from .retention import Retention  # imported here: only this command needs it
    settings = Settings()
    if args.idle_seconds is not None:
        settings.session_idle_seconds = args.idle_seconds
    async with _redis(settings) as redis:
        report = await Retention.for_settings(redis, settings).prune(dry_run=args.dry_run)
    print(json.dumps(report.as_dict(args.dry_run), indent=2))
    return 0


async def _push(args: argparse.Namespace) -> int:
    from .push.subscriptions import Subscriptions
    from .push.vapid import VapidKeys
    settings = Settings()
    async with _redis(settings) as redis:
        keys = Keys(settings.key_prefix)
        public = await VapidKeys(redis, keys).rotate()
        dropped = await Subscriptions(redis, keys, settings.push_subscriptions_per_principal) \
            .clear_all()
    # Subscriptions are bound to the key they were made with: every browser subscribes again
    # (the UI does when it sees GET /api/push/key change).
    print(f"new VAPID key pair; {dropped} subscription(s) dropped (browsers subscribe again)",
          file=sys.stderr)
    print(public)
    return 0


async def _audit(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        query = audit.AuditQuery(
            since_ms=audit.parse_when(args.since, name="--since"),
            until_ms=audit.parse_when(args.until, name="--until") if args.until else None,
            principal=args.principal, action=args.action, session=args.session,
            limit=min(args.limit, 1000))
    except RelayError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    found: list[dict[str, object]] = []
    async with _redis(settings) as redis:
        log = audit.AuditLog(redis, Keys(settings.key_prefix), settings.audit_max_entries)
        while len(found) < args.limit:
            page = await log.page(query)
            found.extend(page.entries)
            if page.next is None:
                break
            query = replace(query, after=page.next, limit=min(args.limit - len(found), 1000))
    for entry in reversed(found[:args.limit]):  # oldest first, like a log
        if args.json:
            print(json.dumps(entry))
        else:
            print("\t".join(str(entry.get(k) if entry.get(k) is not None else "-") for k in (
                "time", "principal", "action", "target", "outcome", "status", "request_id")))
    return 0


async def _search(args: argparse.Namespace) -> int:
    from .search.index import SearchIndex
    from .search.reindex import reindex
    from .store.state import StateStore
    settings = Settings()
    if not settings.search:
        print("search is turned off (RELAY_SEARCH=false): nothing to index", file=sys.stderr)
        return 1
    async with _redis(settings) as redis:
        keys = Keys(settings.key_prefix)
        index = SearchIndex(redis, keys)
        sessions, parts = await reindex(StateStore(redis, keys, index), index)
    print(f"indexed {sessions} session(s), {parts} text part(s)", file=sys.stderr)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="create, list or revoke API tokens")
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new token (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="may see every session")
    create.add_argument("--terminal", action="store_true",
                        help="may open terminals: a shell on the opencode machine "
                             "(admins always may)")
    actions.add_parser("list", help="every token, without secrets")
    revoke = actions.add_parser("revoke", help="revoke a token and its browser logins")
    revoke.add_argument("id")
    token.set_defaults(handler=lambda a: sys.exit(asyncio.run(_token(a))))

    prune = commands.add_parser("prune", help="remove idle sessions and old events from Redis")
    prune.add_argument("--dry-run", action="store_true", help="only show what would go")
    prune.add_argument("--idle-seconds", type=float, default=None,
                       help="override RELAY_SESSION_IDLE_SECONDS")
    prune.set_defaults(handler=lambda a: sys.exit(asyncio.run(_prune(a))))

    push = commands.add_parser("push", help="Web Push: manage the VAPID key pair")
    push_actions = push.add_subparsers(dest="action", required=True)
    push_actions.add_parser("rotate-keys", help="a new VAPID key pair (prints its public key); "
                                                "every subscription is dropped")
    push.set_defaults(handler=lambda a: sys.exit(asyncio.run(_push(a))))

    audited = commands.add_parser("audit", help="who changed what: the audit log, oldest first")
    audited.add_argument("--since", default="1d",
                         help="a duration back from now (90s, 15m, 1h, 7d, 2w), an ISO 8601 "
                              "time or epoch ms (default 1d)")
    audited.add_argument("--until", default=None, help="as --since")
    audited.add_argument("--action", default=None,
                         help="an action (session.create) or a family ending in '.' (session.)")
    audited.add_argument("--principal", default=None, help="a token id, or 'cli'")
    audited.add_argument("--session", default=None, help="a session id")
    audited.add_argument("--limit", type=int, default=1000, help="at most this many (newest)")
    audited.add_argument("--json", action="store_true", help="one JSON object per line")
    audited.set_defaults(handler=lambda a: sys.exit(asyncio.run(_audit(a))))

    search = commands.add_parser("search", help="search across sessions: manage the index")
    search_actions = search.add_subparsers(dest="action", required=True)
    search_actions.add_parser("reindex", help="index every session Redis holds again (those "
                                              "stored before search was on, or while it was off)")
    search.set_defaults(handler=lambda a: sys.exit(asyncio.run(_search(a))))
