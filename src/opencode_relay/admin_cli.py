"""`opencode-relay token …`, `team …`, `prune`, `push rotate-keys`, `audit` and
`search reindex`: operator commands on Redis.

Token and team changes are audited with principal "cli" (audit.py)."""

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
from .errors import InvalidInput, RelayError
from .launch.embedded import EmbeddedRedis
from .security.tokens import TOKEN_ID, TokenStore
from .store import connect
from .store.keys import Keys
from .teams import ROLES, Team, Teams, check_role
from .workspace import Workspace

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
        redis = await connect.connect(settings, url)
        try:
            yield redis
        finally:
            await connect.close(redis)
    finally:
        if started is not None:
            started.stop()


@asynccontextmanager
async def _audited(settings: Settings) -> AsyncIterator[tuple[Redis, Keys, audit.AuditLog]]:
    """Redis, its key names and the audit log, for a command that records what it changes."""
    async with _redis(settings) as redis:
        keys = Keys(settings.key_prefix)
        yield redis, keys, audit.AuditLog(redis, keys, settings.audit_max_entries)


async def _token(args: argparse.Namespace) -> int:
    async with _audited(Settings()) as (redis, keys, log):
        tokens = TokenStore(redis, keys)
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


_NONE = "-"  # `team set-upstream|set-root NAME -`: unbind


async def _team(args: argparse.Namespace) -> int:
    settings = Settings()
    async with _audited(settings) as (redis, keys, log):
        teams = Teams(redis, keys)
        try:
            if args.action == "list":
                chosen = [await teams.named(args.name)] if args.name else await teams.all()
                for team in chosen:
                    await _print_team(teams, team)
                return 0
            if args.action == "create":
                team = await teams.create(
                    args.name, args.group,
                    check_role(args.group_role) if args.group_role else None)
                await log.record("team.create", principal=audit.CLI, target=team.id,
                                 team=team.name, detail={"group": team.group,
                                                         "group_role": team.group_role})
                print(f"created team {team.name!r} ({team.id})", file=sys.stderr)
                return 0
            team = await teams.named(args.name)
            if args.action == "delete":
                await teams.delete(team)
                await log.record("team.delete", principal=audit.CLI, target=team.id,
                                 team=team.name)
                print(f"deleted team {team.name!r}; its sessions stay their owners'",
                      file=sys.stderr)
            elif args.action == "add":
                role = check_role(args.role)
                await teams.set_member(team, args.principal, role)
                await log.record("team.member.set", principal=audit.CLI, target=args.principal,
                                 team=team.name, detail={"role": role})
                print(f"{args.principal} is a {role} of team {team.name!r}", file=sys.stderr)
            elif args.action == "remove":
                removed = await teams.remove_member(team, args.principal)
                await log.record("team.member.remove", principal=audit.CLI,
                                 target=args.principal, team=team.name,
                                 outcome="ok" if removed else "refused")
                if not removed:
                    print(f"{args.principal} is not a member of team {team.name!r}",
                          file=sys.stderr)
                    return 1
                print(f"removed {args.principal} from team {team.name!r}", file=sys.stderr)
            elif args.action == "set-upstream":
                upstream = None if args.upstream == _NONE else args.upstream
                names = [name for name, _url in settings.opencode_servers]
                if upstream is not None and upstream not in names:
                    raise InvalidInput(f"no opencode server named {upstream!r}; this relay's "
                                       f"are {', '.join(names)} (OPENCODE_SERVER_URL)")
                await teams.update(team, upstream=upstream)
                await log.record("team.upstream.set", principal=audit.CLI, target=team.id,
                                 team=team.name, detail={"upstream": upstream})
                print(f"team {team.name!r} runs its new sessions on "
                      f"{upstream or 'any opencode server'}", file=sys.stderr)
            elif args.action == "set-root":
                root = None if args.path == _NONE else Workspace.open(
                    settings.workspace_root_list, settings.data_dir,
                    settings.default_directory).check(args.path)
                await teams.update(team, root=root)
                await log.record("team.root.set", principal=audit.CLI, target=team.id,
                                 team=team.name, detail={"root": root})
                print(f"team {team.name!r} starts its new sessions under "
                      f"{root or 'any workspace root'}", file=sys.stderr)
        except RelayError as exc:
            print(exc.message, file=sys.stderr)
            return 2
    return 0


async def _print_team(teams: Teams, team: Team) -> None:
    group = f"group {team.group!r} as {team.group_role}" if team.group else "no group"
    print(f"{team.name}\t{team.id}\t{group}\tupstream {team.upstream or '-'}\t"
          f"root {team.root or '-'}")
    for principal, role in sorted((await teams.members(team)).items()):
        print(f"  {principal}\t{role}")
    for principal in await teams.group_holders(team):
        print(f"  {principal}\t{team.group_role}\tholds group {team.group!r}")


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
            principal=args.principal, action=args.action, session=args.session, team=args.team,
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

    team = commands.add_parser("team", help="teams: members and their roles, and where a "
                                             "team's sessions run")
    team_actions = team.add_subparsers(dest="action", required=True)
    made = team_actions.add_parser("create", help="a new team")
    made.add_argument("name")
    made.add_argument("--group", default=None,
                      help="holders of this identity-provider group (OIDC logins) are members")
    made.add_argument("--group-role", default=None, choices=ROLES,
                      help="the group's holders' role (default member)")
    team_actions.add_parser("delete", help="delete a team (its sessions stay their owners')") \
        .add_argument("name")
    add = team_actions.add_parser("add", help="add a member, or change its role")
    add.add_argument("name")
    add.add_argument("principal", help="a principal's id (`token list`: tok_…)")
    add.add_argument("role", choices=ROLES)
    remove = team_actions.add_parser("remove", help="remove a member")
    remove.add_argument("name")
    remove.add_argument("principal")
    listed = team_actions.add_parser("list", help="every team (or one) with its members")
    listed.add_argument("name", nargs="?", default=None)
    bind = team_actions.add_parser("set-upstream", help="the opencode server (its name in "
                                   "OPENCODE_SERVER_URL) the team's new sessions run on; "
                                   f"'{_NONE}': any")
    bind.add_argument("name")
    bind.add_argument("upstream")
    root = team_actions.add_parser("set-root", help="the folder (a workspace root or one under "
                                   "it) the team's new sessions must lie under; "
                                   f"'{_NONE}': any root")
    root.add_argument("name")
    root.add_argument("path")
    team.set_defaults(handler=lambda a: sys.exit(asyncio.run(_team(a))))

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
    audited.add_argument("--team", default=None, help="a team's name")
    audited.add_argument("--limit", type=int, default=1000, help="at most this many (newest)")
    audited.add_argument("--json", action="store_true", help="one JSON object per line")
    audited.set_defaults(handler=lambda a: sys.exit(asyncio.run(_audit(a))))

    search = commands.add_parser("search", help="search across sessions: manage the index")
    search_actions = search.add_subparsers(dest="action", required=True)
    search_actions.add_parser("reindex", help="index every session Redis holds again (those "
                                              "stored before search was on, or while it was off)")
    search.set_defaults(handler=lambda a: sys.exit(asyncio.run(_search(a))))
