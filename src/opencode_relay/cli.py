"""`opencode-relay serve`: the relay, plus an embedded Redis and opencode where none is given."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import AliasChoices, ValidationError
from pydantic_core import ErrorDetails

from .admin_cli import REDIS_URL_FILE, add_commands
from .config import Settings
from .errors import ConfigurationError
from .hosts import is_loopback
from .launch.embedded import EmbeddedOpencode, EmbeddedRedis
from .logs import setup_logging
from .store import connect
from .workspace import Workspace

logger = logging.getLogger("opencode_relay")


def opencode_home(settings: Settings) -> Path | None:
    """The embedded opencode's own HOME (None: the user's own, as RELAY_OPENCODE_HOME=$HOME asks).

    By default <RELAY_DATA_DIR>/opencode-home, so `make run` neither reads nor writes the user's
    ~/.config/opencode; its config is <home>/config/opencode/opencode.json and the keys set
    through the relay are in <home>/data/opencode/auth.json."""
    home = (settings.opencode_home or settings.data_dir / "opencode-home").expanduser()
    if home.resolve() == Path.home().resolve():
        return None
    return home.resolve()


def load_settings() -> Settings:
    """The settings from the environment, or exit with one line naming the bad one."""
    try:
        return Settings()
    except ValidationError as exc:
        sys.exit(f"opencode-relay: invalid setting: {'; '.join(map(_problem, exc.errors()))}")


def _problem(error: ErrorDetails) -> str:
    """One validation error in words. The relay's own checks name their variable; pydantic's
    (a number out of range…) get it put in front."""
    message = error["msg"]
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    name = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(name)
    if field is not None and not isinstance(field.validation_alias, AliasChoices):
        name = f"RELAY_{name.upper()}"  # else `loc` already holds the variable's own name
    return f"{name}: {message}" if name else message


def serve(args: argparse.Namespace) -> None:
    # Imported here: the operator commands (token, prune) start faster without the web stack.
    import uvicorn

    from .app import create_app
    from .shutdown import RelayServer

    settings = load_settings()
    try:  # the roots exist (the default one is made here) and hold the default directory
        workspace = Workspace.open(settings.workspace_root_list, settings.data_dir,
                                   settings.default_directory)
    except ValueError as exc:
        sys.exit(f"opencode-relay: {exc}")
    if settings.auth is None and not is_loopback(args.host):
        settings.auth = True
    if settings.auth is False and not is_loopback(args.host):
        sys.exit(f"refusing to listen on {args.host} with RELAY_AUTH off: anyone who can reach "
                 "it could drive the agent; turn auth on or bind to 127.0.0.1")
    started: list[EmbeddedRedis | EmbeddedOpencode] = []
    url_file = settings.data_dir / REDIS_URL_FILE
    try:
        if not settings.redis_url and not settings.redis_sentinels:
            redis = EmbeddedRedis(settings.data_dir / "redis").start()
            started.append(redis)
            settings.redis_url = redis.url
            url_file.write_text(redis.url)  # lets `token`/`prune` reach it while we run
        # Before listening: a Redis that is down or misnamed is a clear exit, not a replica
        # that answers 503 forever (after start, Redis going away gives 503s until it is back).
        asyncio.run(connect.check(settings))
        if not settings.opencode_url:
            # In the default directory (under a workspace root), never the current one, which
            # for `make run` is the relay's own source tree.
            directory = Path(workspace.default)
            password = (settings.opencode_password.get_secret_value()
                        if settings.opencode_password else None)
            home = opencode_home(settings)
            opencode = EmbeddedOpencode(directory, home=home, password=password).start(
                log_path=settings.data_dir / "opencode.log")
            logger.info("embedded opencode: config in %s, keys in %s (RELAY_OPENCODE_HOME)",
                        home / "config" / "opencode" if home else "~/.config/opencode",
                        home / "data" / "opencode" if home else "~/.local/share/opencode")
            started.append(opencode)
            settings.opencode_url = opencode.url
        app = create_app(settings)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                timeout_graceful_shutdown=10, log_config=None,
                                access_log=False,  # the gate logs requests, with their id
                                # WebSocket frames (terminal input) well over the relay's own
                                # bound are cut by uvicorn before they are buffered whole.
                                ws_max_size=4 * settings.terminal_max_input_bytes,
                                # Keystrokes and echoes are a few bytes: compressing each frame
                                # costs CPU and latency and saves nothing.
                                ws_per_message_deflate=False)
        RelayServer(config, then_stop=[s.stop for s in reversed(started)]).run()
    except KeyboardInterrupt:  # Ctrl+C: uvicorn stopped cleanly, then re-raised it for us
        raise SystemExit(130) from None
    finally:
        if started and url_file.is_file():
            url_file.unlink()
        for service in reversed(started):
            service.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="opencode-relay")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the relay (HTTP API, SSE, web UI)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--log-level", default="info")
    run.set_defaults(handler=serve)
    add_commands(commands)
    args = parser.parse_args(argv)
    settings = load_settings()
    secrets = [s.get_secret_value() for s in (settings.opencode_password, settings.redis_password,
                                              settings.redis_sentinel_password) if s]
    setup_logging(getattr(args, "log_level", "warning"), settings.log_format, secrets=secrets)
    try:
        args.handler(args)
    except ConfigurationError as exc:  # Redis cannot be used: one line, whatever the command
        sys.exit(f"opencode-relay: {exc}")


if __name__ == "__main__":
    main()
