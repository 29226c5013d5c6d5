"""`opencode-relay serve`: the relay, plus an embedded Redis and opencode where none is given."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .admin_cli import REDIS_URL_FILE, add_commands
from .config import Settings
from .hosts import is_loopback
from .launch.embedded import EmbeddedOpencode, EmbeddedRedis
from .logs import setup_logging
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


def serve(args: argparse.Namespace) -> None:
    # Imported here: the operator commands (token, prune) start faster without the web stack.
    import uvicorn

    from .app import create_app
    from .shutdown import RelayServer

    settings = Settings()
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
        if not settings.redis_url:
            redis = EmbeddedRedis(settings.data_dir / "redis").start()
            started.append(redis)
            settings.redis_url = redis.url
            url_file.write_text(redis.url)  # lets `token`/`prune` reach it while we run
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
    settings = Settings()
    password = settings.opencode_password
    setup_logging(getattr(args, "log_level", "warning"), settings.log_format,
                  secrets=[password.get_secret_value()] if password else [])
    args.handler(args)


if __name__ == "__main__":
    main()
