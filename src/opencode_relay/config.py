"""Settings, read once from the environment when the app is built."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .store.connect import check_url, parse_sentinels
from .workspace import parse_roots


class Settings(BaseSettings):
    """opencode and Redis keep the plan's variable names;
    everything of the relay's own is RELAY_*."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore", populate_by_name=True)

    opencode_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENCODE_SERVER_URL", "opencode_url"))
    opencode_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENCODE_SERVER_PASSWORD", "opencode_password"))
    default_directory: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENCODE_DEFAULT_DIRECTORY", "default_directory"))
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    # Redis through Sentinel, instead of REDIS_URL (store/connect.py): the Sentinels
    # (`host:port,…`) and the name of the primary they watch; the primary's and the Sentinels'
    # passwords, if they have any.
    redis_sentinels: str | None = None
    redis_master: str | None = None
    redis_password: SecretStr | None = None
    redis_sentinel_password: SecretStr | None = None
    # `serve` waits this long for Redis at start, then exits saying what to fix (0: one try).
    redis_start_timeout_seconds: float = Field(default=30.0, ge=0)
    # After each ingest commit, WAIT until this many replicas have it (0: do not wait), for at
    # most redis_wait_timeout_ms; see README "Scaling out".
    redis_wait_replicas: int = Field(default=0, ge=0)
    redis_wait_timeout_ms: int = Field(default=500, ge=1)

    # Redis Cluster: None detects it (`INFO cluster`), true forces the cluster client, false the
    # single-node one (store/connect.py).
    redis_cluster: bool | None = None
    key_prefix: str = "ocr:"
    # Event logs are Redis Streams capped (approximately) at these lengths.
    log_max_events: int = 200_000
    session_log_max_events: int = 50_000
    client_queue_size: int = 2_000
    heartbeat_seconds: float = 15.0
    reconnect_initial_seconds: float = 0.25
    reconnect_max_seconds: float = 15.0
    upstream_timeout_seconds: float = 30.0
    # How long a prompt sent through POST .../messages may run before the relay gives up waiting.
    prompt_timeout_seconds: float = 3600.0
    ingest: bool = True
    # opencode retries a provider it cannot reach for about a minute; the relay aborts the
    # prompt after this many retries and tells the session why (0 = let opencode retry).
    provider_retry_limit: int = Field(default=1, ge=0)
    # The embedded opencode's HOME (its config, auth and data live under it); default
    # <data_dir>/opencode-home. Only used when the relay starts opencode itself.
    opencode_home: Path | None = None
    data_dir: Path = Path("var")
    # Folders (':'-separated, absolute) under which a new session's directory must lie; default
    # <data_dir>/workspace, created on first run (workspace.py).
    workspace_roots: str | None = None

    # Security (see security/). Unset (None): off for callers on this machine, and every other
    # caller is refused, however the app is started; `serve` turns it on for a public --host.
    auth: bool | None = None
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    cookie_secure: bool = True
    login_ttl_seconds: float = 12 * 3600
    # Single sign-on with OpenID Connect (security/oidc.py, security/sso.py): on when the issuer
    # and the client id are set (and RELAY_AUTH is on). The redirect URI registered at the
    # provider is <public URL>/sso/callback; the public URL is RELAY_PUBLIC_URL, or else the one
    # the browser used.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None  # unset: a public client (PKCE only)
    oidc_scopes: str = "openid profile email"
    oidc_groups_claim: str = "groups"  # the ID token's (or userinfo's) claim naming groups
    oidc_admin_group: str | None = None  # members of this group are admins (unset: none are)
    oidc_login_seconds: float = Field(default=600.0, gt=0)  # a sign-in must finish within this
    public_url: str | None = None  # the relay's address as browsers see it (https://relay.example)
    # Limits (per principal, shared by replicas through Redis; 0 = no limit).
    prompts_per_minute: int = 30
    streams_per_principal: int = 20
    stream_slot_ttl_seconds: float = 30.0  # a dead replica's stream slots free after this
    max_body_bytes: int = 10 * 1024 * 1024
    max_attachment_bytes: int = 5 * 1024 * 1024  # one file of a prompt (a data: URL, decoded)
    max_view_bytes: int = Field(default=2 * 1024 * 1024, ge=1)  # the file viewer shows no more
    # Terminals (a shell on the opencode machine, for principals granted `terminal`): the
    # largest input frame, input frames per second, and how often an open terminal re-checks
    # that its login or token still holds.
    terminal_max_input_bytes: int = Field(default=64 * 1024, ge=1)
    terminal_inputs_per_second: int = Field(default=200, ge=1)
    terminal_recheck_seconds: float = Field(default=5.0, gt=0)
    # Retention: idle sessions leave Redis; event logs also lose entries older than this
    # (0 = never).
    session_idle_seconds: float = 30 * 86400
    log_max_age_seconds: float = 7 * 86400
    prune_interval_seconds: float = 600.0
    # The audit log (audit.py): capped (approximately) at this many entries, and entries older
    # than this leave it at each retention pass (0 = never).
    audit_max_entries: int = Field(default=200_000, ge=1)
    audit_max_age_seconds: float = 90 * 86400
    # Entries without a principal (refused logins: anyone can make them) kept per minute, all
    # replicas together, so nobody can push the real history out past the cap.
    audit_anonymous_per_minute: int = Field(default=60, ge=0)
    log_format: str = "json"  # or "text"
    # Search across sessions (search/): index titles and text at ingest; off = no index, and
    # GET /api/search answers that search is off.
    search: bool = True
    # Web Push (push/): notifications to the browsers a person subscribed.
    push: bool = True
    push_subject: str = "mailto:opencode-relay@localhost"  # the VAPID `sub` (mailto: or https:)
    push_idle_seconds: float = Field(default=30.0, ge=0)  # a turn this long or longer: notify
    push_subscriptions_per_principal: int = Field(default=10, ge=1)
    push_concurrency: int = Field(default=8, ge=1)  # sends in flight per relay
    push_queue_size: int = Field(default=1000, ge=1)  # notifications waiting to be sent
    push_ttl_seconds: int = Field(default=3600, ge=0)  # how long a push service keeps one
    push_timeout_seconds: float = 10.0
    # A push answered 429/5xx, timed out or could not connect: tried again this many more times,
    # after push_retry_seconds, doubling (with jitter), or the service's Retry-After, up to the cap.
    push_retries: int = Field(default=3, ge=0)
    push_retry_seconds: float = Field(default=1.0, gt=0)
    push_retry_max_seconds: float = Field(default=60.0, gt=0)
    # The push services browsers subscribe at (hosts, or the domains they end in; "*" = any
    # https host): Chrome/Edge (FCM), Firefox (Mozilla autopush), Edge on Windows (WNS), Safari.
    push_services: str = ("fcm.googleapis.com,push.services.mozilla.com,notify.windows.com,"
                          "push.apple.com")
    # Allow http:// endpoints on this machine (a push service for tests); https:// otherwise.
    push_allow_loopback_http: bool = False

    @field_validator("key_prefix")
    @classmethod
    def _prefix_has_no_braces(cls, value: str) -> str:
        if "{" in value or "}" in value:
            raise ValueError("RELAY_KEY_PREFIX must not contain '{' or '}' "
                             "(they mark Redis hash tags)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_parses(cls, value: str | None) -> str | None:
        return check_url(value) if value else value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_parse(cls, value: str | None) -> str | None:
        if value:
            parse_sentinels(value)
        return value or None

    @model_validator(mode="after")
    def _one_way_to_redis(self) -> Settings:
        if self.redis_sentinels and not self.redis_master:
            raise ValueError("RELAY_REDIS_SENTINELS needs RELAY_REDIS_MASTER, the name of the "
                             "primary the Sentinels watch")
        if self.redis_master and not self.redis_sentinels:
            raise ValueError("RELAY_REDIS_MASTER needs RELAY_REDIS_SENTINELS (host:port,…)")
        if self.redis_sentinels and self.redis_url:
            raise ValueError("set either REDIS_URL or RELAY_REDIS_SENTINELS, not both")
        if self.redis_sentinels and self.redis_cluster:
            raise ValueError("RELAY_REDIS_CLUSTER=true needs REDIS_URL naming a cluster node, "
                             "not RELAY_REDIS_SENTINELS")
        if self.redis_cluster and self.redis_wait_replicas:
            raise ValueError("RELAY_REDIS_WAIT_REPLICAS applies to one Redis or a Sentinel-"
                             "managed primary, not to a Redis Cluster: set it to 0")
        return self

    @field_validator("push_subject")
    @classmethod
    def _push_subject_is_contact(cls, value: str) -> str:
        if not value.startswith(("mailto:", "https://")):
            raise ValueError("RELAY_PUSH_SUBJECT must be a mailto: or https: URL (RFC 8292)")
        return value

    @field_validator("oidc_issuer", "public_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes_ask_for_openid(cls, value: str) -> str:
        if "openid" not in value.split():
            raise ValueError("RELAY_OIDC_SCOPES must include 'openid'")
        return value

    @model_validator(mode="after")
    def _oidc_is_whole(self) -> Settings:
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            raise ValueError("RELAY_OIDC_ISSUER and RELAY_OIDC_CLIENT_ID are set together "
                             "(single sign-on needs both)")
        return self

    @property
    def auth_enabled(self) -> bool:
        return self.auth is True

    @property
    def loopback_only(self) -> bool:
        """Auth was not configured: only callers on this machine are served (fails closed)."""
        return self.auth is None

    @property
    def push_service_list(self) -> tuple[str, ...]:
        return tuple(h.strip().lower().rstrip(".") for h in self.push_services.split(",")
                     if h.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("workspace_roots")
    @classmethod
    def _roots_parse(cls, value: str | None) -> str | None:
        if value:
            parse_roots(value)
        return value

    @property
    def workspace_root_list(self) -> list[str] | None:
        """The configured roots, or None for the default one."""
        return parse_roots(self.workspace_roots) if self.workspace_roots else None

    @field_validator("opencode_url")
    @classmethod
    def _servers_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_servers(value)
        return value

    @property
    def opencode_servers(self) -> list[tuple[str, str]]:
        """(name, url) of every opencode server the relay fronts; the first is the default."""
        return parse_servers(self.opencode_url or "http://127.0.0.1:4096")


_SERVER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_servers(value: str) -> list[tuple[str, str]]:
    """`url`, `url1,url2` (named opencode-1, opencode-2) or `name=url,name2=url2`."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ValueError("OPENCODE_SERVER_URL names no server")
    servers: list[tuple[str, str]] = []
    for index, entry in enumerate(entries, 1):
        name, sep, url = entry.partition("=")
        if not sep or "://" in name:
            name, url = ("default" if len(entries) == 1 else f"opencode-{index}"), entry
        name, url = name.strip(), url.strip().rstrip("/")
        if not _SERVER_NAME.match(name):
            raise ValueError(f"opencode server name {name!r} must be letters, digits, '_.-'")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"opencode server URL {url!r} must start with http:// or https://")
        servers.append((name, url))
    if len({name for name, _url in servers}) != len(servers):
        raise ValueError("opencode server names must be unique")
    return servers
