"""`opencode-relay serve`: the relay, plus an embedded Redis and opencode where none is given."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from .app import create_app
from .config import Settings
from .launch.embedded import EmbeddedOpencode, EmbeddedRedis


def serve(args: argparse.Namespace) -> None:
    settings = Settings()
    started: list[EmbeddedRedis | EmbeddedOpencode] = []
    try:
        if not settings.redis_url:
            redis = EmbeddedRedis(settings.data_dir / "redis").start()
            started.append(redis)
            settings.redis_url = redis.url
        if not settings.opencode_url:
            directory = Path(settings.default_directory or os.getcwd())
            password = (settings.opencode_password.get_secret_value()
                        if settings.opencode_password else None)
            opencode = EmbeddedOpencode(directory, password=password).start(
                log_path=settings.data_dir / "opencode.log")
            started.append(opencode)
            settings.opencode_url = opencode.url
        uvicorn.run(create_app(settings), host=args.host, port=args.port,
                    log_level=args.log_level, timeout_graceful_shutdown=10)
    finally:
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.handler(args)


if __name__ == "__main__":
    main()
