"""Response bodies, for the OpenAPI document only: routes still send what they build.

Many routes write stored JSON bytes straight out (sessions.raw_json), so these models are
declared with `responses=` and never validate or re-encode anything at run time. Objects that
come from opencode name the fields the relay and its UI rely on and allow any others.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..ids import MESSAGE_ID, SESSION_ID


class _Open(BaseModel):
    """An object from opencode: the named fields, plus whatever else opencode sends."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    """An object the relay builds itself: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


# ----- errors ------------------------------------------------------------------------------
class ErrorDetail(_Closed):
    code: str = Field(examples=["not_found", "bad_request", "invalid_request"])
    message: str


class ErrorBody(_Closed):
    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad input the schema cannot say: a malformed id or event id, an unknown agent, model "
         "or opencode server, or a request opencode refused",
    401: "No valid API token or login (only with RELAY_AUTH on)",
    403: "Not allowed: a cookie-authenticated write from another origin, or an admin's action "
         "(the audit log, provider keys) by someone else",
    404: "No such session, message or pending request, or not the caller's",
    409: "The session is busy: opencode refuses this until the agent has finished (or is "
         "stopped)",
    413: "The request body is larger than RELAY_MAX_BODY_BYTES, or an attached file is larger "
         "than RELAY_MAX_ATTACHMENT_BYTES",
    415: "An attached file is not an image, a PDF or text",
    422: "The request does not match this document's schema",
    429: "Too many prompts or open event streams for this caller; see Retry-After",
    502: "opencode or Redis answered with an error",
    503: "The relay is starting, or opencode or Redis cannot be reached",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses, each with the error body."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
            for status in statuses}


def ok(model: Any, status: int = 200, description: str = "Success",
       links: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    response: dict[str, Any] = {"model": model, "description": description}
    if links:
        response["links"] = links
    return {status: response}


def links(parameter: str, value: str, *operations: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI links: where a value in this response (a JSON pointer) is a path parameter of
    other operations, given as (method, path) pairs."""
    def pointer(path: str) -> str:
        return "#/paths/" + path.replace("~", "~0").replace("/", "~1")
    def name(method: str, path: str) -> str:  # link names are limited to [A-Za-z0-9._-]
        return re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_")
    return {name(method, path): {"operationRef": f"{pointer(path)}/{method.lower()}",
                                 "parameters": {parameter: f"$response.body#{value}"}}
            for method, path in operations}


_SESSION_OPERATIONS = [
    ("get", "/api/sessions/{sid}"), ("patch", "/api/sessions/{sid}"),
    ("delete", "/api/sessions/{sid}"), ("get", "/api/sessions/{sid}/messages"),
    ("post", "/api/sessions/{sid}/messages"), ("post", "/api/sessions/{sid}/prompt"),
    ("post", "/api/sessions/{sid}/abort"), ("get", "/api/sessions/{sid}/status"),
    ("get", "/api/sessions/{sid}/diff"), ("get", "/api/sessions/{sid}/todos"),
    ("get", "/api/sessions/{sid}/children"), ("get", "/api/sessions/{sid}/requests"),
    ("get", "/api/sessions/{sid}/events"), ("post", "/api/sessions/{sid}/command"),
    ("get", "/api/sessions/{sid}/files"), ("post", "/api/sessions/{sid}/revert"),
    ("post", "/api/sessions/{sid}/unrevert"), ("post", "/api/sessions/{sid}/fork"),
    ("post", "/api/sessions/{sid}/summarize"), ("get", "/api/sessions/{sid}/changes"),
    ("get", "/api/sessions/{sid}/changes/diff")]
# A created session's id, and an answer's message id, are what the other routes take.
SESSION_LINKS = links("sid", "/id", *_SESSION_OPERATIONS)
MESSAGE_LINKS = links("mid", "/info/id", ("get", "/api/messages/{mid}/parts"))


# Any route: a method its path does not take (405), and so on. Declaring it also keeps FastAPI
# from documenting its own 422 body, which the error handlers never send.
OTHER_CLIENT_ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {
    "model": ErrorBody, "description": "Any other client error, e.g. 405 for a method the path "
                                       "does not take"}}
# Every route behind the gate (all of /api but login and logout) may answer these.
GATED = {**errors(401, 413, 502, 503), **OTHER_CLIENT_ERRORS}


# ----- sessions ----------------------------------------------------------------------------
class Times(_Open):
    created: float
    updated: float | None = None


class Session(_Open):
    id: str = Field(pattern=SESSION_ID)
    title: str
    directory: str
    parentID: str | None = Field(default=None, pattern=SESSION_ID)
    time: Times


class SessionList(_Closed):
    sessions: list[Session]


class ListedSessions(SessionList):
    teams: dict[str, str] = Field(
        description="Session id -> the name of its team, for each listed session made for one "
                    "(a sub-agent's is its parent's); sessions of no team are not named")


class CacheTokens(_Closed):
    read: int
    write: int


class Tokens(_Closed):
    input: int
    output: int
    reasoning: int
    cache: CacheTokens


class ModelChoice(_Closed):
    providerID: str
    modelID: str


class ContextUse(_Closed):
    used: int | None = Field(description="Tokens in the context after the newest answer")
    limit: int | None = Field(description="The model's context window, when opencode says")
    percent: float | None


class Usage(_Closed):
    tokens: Tokens = Field(description="Summed over the session's assistant messages")
    cost: float
    messages: int = Field(description="Assistant messages counted")
    model: ModelChoice | None = Field(description="The model of the newest assistant message")
    context: ContextUse


class SessionAccess(_Closed):
    team: str | None = Field(description="The session's team (its name), if it has one")
    role: Literal["viewer", "member", "admin"] | None = Field(
        description="The caller's role in that team, when the team is what lets it in")
    right: Literal["read", "drive", "manage"] = Field(
        description="read: view only; drive: also prompt, abort, undo, fork, commands, "
                    "terminal; manage: also answer requests, rename, delete, share")


class OneSession(_Closed):
    session: Session
    usage: Usage | None = Field(default=None, description="Only on GET /api/sessions/{sid}")
    access: SessionAccess | None = Field(default=None,
                                         description="Only on GET /api/sessions/{sid}")


class Deleted(_Closed):
    deleted: Literal[True]


class Aborted(_Closed):
    aborted: Literal[True]


class Accepted(_Closed):
    accepted: Literal[True]


class Done(_Closed):
    ok: Literal[True]


# ----- messages ----------------------------------------------------------------------------
class MessageInfo(_Open):
    id: str = Field(pattern=MESSAGE_ID)
    sessionID: str = Field(pattern=SESSION_ID)
    role: Literal["user", "assistant"]


class Part(_Open):
    id: str
    sessionID: str = Field(pattern=SESSION_ID)
    messageID: str = Field(pattern=MESSAGE_ID)
    type: str


class Message(_Closed):
    info: MessageInfo
    parts: list[Part]


class Transcript(_Closed):
    messages: list[Message]
    cursor: str = Field(pattern=r"^\d+-\d+$",
                        description="The event id these messages reflect: resume events after it")


class PartList(_Closed):
    parts: list[Part]


class SessionStatus(_Open):
    type: str = Field(examples=["idle", "busy", "retry"])


class StatusBody(_Closed):
    status: SessionStatus


class DiffBody(_Closed):
    diff: list[dict[str, Any]]


class TodosBody(_Closed):
    todos: list[dict[str, Any]]


class PendingRequest(_Open):
    id: str
    sessionID: str = Field(pattern=SESSION_ID)


class PendingRequests(_Closed):
    permissions: list[PendingRequest]
    questions: list[PendingRequest]


# ----- pickers and health ------------------------------------------------------------------
class Agent(_Open):
    name: str


class Agents(_Closed):
    agents: list[Agent]


class Provider(_Open):
    id: str
    models: dict[str, Any]


class Providers(_Closed):
    providers: list[Provider]
    default: dict[str, str] = Field(description="The default model id of each provider")


class Check(_Open):
    ok: bool
    error: str | None = None


class UpstreamHealth(Check):
    name: str
    events: str = Field(examples=["connected", "connecting", "standby"])


class Upstreams(_Closed):
    upstreams: list[UpstreamHealth]


class Health(_Closed):
    status: Literal["ok", "unavailable"]
    opencode: UpstreamHealth
    upstreams: list[UpstreamHealth]
    redis: Check


# ----- composer ----------------------------------------------------------------------------
class Command(_Open):
    name: str
    description: str | None = None
    source: str | None = Field(default=None, examples=["command", "mcp", "skill"])


class Commands(_Closed):
    commands: list[Command]


class Files(_Closed):
    directory: str | None = Field(description="The session's directory: the files are in it")
    files: list[str] = Field(description="Paths relative to `directory`")


# ----- changes on disk ---------------------------------------------------------------------
class ChangedFile(_Closed):
    path: str = Field(description="Relative to the session's directory (absolute outside it)")
    status: Literal["added", "modified", "deleted"]
    additions: int = Field(ge=0)
    deletions: int = Field(ge=0)


class ChangedFileDiff(ChangedFile):
    patch: str = Field(description="Unified diff (empty when none was recorded)")


class Changes(_Closed):
    source: Literal["git", "tools"] = Field(
        description="`git`: the working tree against HEAD; `tools`: not a git repository, so "
                    "the files the session's tool calls wrote, edited or deleted")
    branch: str | None = Field(description="The checked-out branch (git only)")
    files: list[ChangedFile]


# ----- files (tree and viewer) -------------------------------------------------------------
class FileNode(_Closed):
    name: str
    path: str = Field(description="Relative to the session's directory")
    type: Literal["file", "directory"]
    ignored: bool = Field(description="Ignored by git (.gitignore)")


class Folder(_Closed):
    directory: str | None = Field(description="The session's directory")
    path: str = Field(description="The folder listed, relative to `directory` ('' for itself)")
    entries: list[FileNode] = Field(description="Folders first, then files, by name")


class FileView(_Closed):
    path: str
    type: Literal["text", "image", "binary", "too_large"] = Field(
        description="`image` and `text` carry `content`; `binary` (not an image) and "
                    "`too_large` (over `limit` bytes) carry none")
    size: int = Field(description="Bytes")
    limit: int = Field(description="The largest file shown (RELAY_MAX_VIEW_BYTES)")
    mime: str | None = None
    content: str | None = Field(default=None, description="Text, or base64 for an image")
    encoding: Literal["base64"] | None = None


# ----- login -------------------------------------------------------------------------------
class PrincipalInfo(_Closed):
    id: str
    name: str
    admin: bool
    terminal: bool = Field(description="May open terminals (admins, and tokens created with "
                                       "`--terminal`)")


class Identity(_Closed):
    principal: PrincipalInfo
    auth: bool = Field(description="Whether the relay runs with RELAY_AUTH on")


class LoginOptions(_Closed):
    """How a browser may sign in: an API token always (with auth on), single sign-on when set."""

    auth: bool = Field(description="Whether the relay runs with RELAY_AUTH on")
    sso: bool = Field(description="Single sign-on (OpenID Connect) is offered: the browser "
                                  "navigates to /sso/login")


# ----- terminals ---------------------------------------------------------------------------
class TerminalInfo(_Open):
    """opencode's PTY: connect to it at `/api/terminals/{id}/connect` (WebSocket)."""

    id: str = Field(examples=["pty_215e59cb7001toKF73IqAsdkeC"])
    title: str
    command: str
    args: list[str]
    cwd: str
    status: str = Field(description="running or exited")
    pid: int


# ----- event streams -----------------------------------------------------------------------
# An event's `id:` is its position in the relay's log; send it back to resume after it.
EVENT_ID_PATTERN = r"^\s*\d{1,20}-\d{1,20}\s*$"
RESUME_PATTERN = r"^(?:\s*\d{1,20}-\d{1,20}\s*)?$"  # empty: from now on, as if not given
_EVENT = {  # one event of the stream, in Open API 3.2's `itemSchema` form
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"type": "object", "required": ["type"],
                                   "properties": {"type": {"type": "string"},
                                                  "properties": {"type": "object"}}}},
        "id": {"type": "string", "pattern": EVENT_ID_PATTERN},
        "event": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
# For a route declared with `response_class=StreamingResponse`: having no media type of its own,
# it leaves the 200 to this, and its errors to JSON.
EVENT_STREAM: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-sent events: opencode's and the relay's own, JSON objects with "
                   "a `type` (most with `properties`), each with an `id:` to resume after "
                   "(Last-Event-ID or ?after=); "
                   "the stream does not end",
    "content": {"text/event-stream": {"itemSchema": _EVENT}}}}


# ----- projects ----------------------------------------------------------------------------
class Project(_Closed):
    directory: str = Field(description="Absolute, symlinks resolved")
    name: str = Field(description="opencode's name for the project, else the folder's name")
    root: bool = Field(description="A workspace root itself")
    id: str | None = Field(description="opencode's project id, when opencode knows the folder")
    vcs: str | None = Field(description="opencode's version control kind (`git`), if any")
    sessions: int = Field(description="The caller's sessions in this folder (admins: all)")
    allowed: bool = Field(description="A new session may start here (under a root, exists)")
    sources: list[Literal["root", "default", "opencode", "sessions", "team"]]
    teams: list[str] = Field(default_factory=list,
                             description="The caller's teams whose workspace root this is")


class Projects(_Closed):
    roots: list[str] = Field(description="RELAY_WORKSPACE_ROOTS, resolved")
    default: str = Field(description="The directory of a session created without one")
    projects: list[Project]


# ----- teams -------------------------------------------------------------------------------
TeamRole = Literal["viewer", "member", "admin"]


class TeamInfo(_Closed):
    id: str
    name: str
    role: TeamRole | None = Field(description="The caller's role (relay admins: `admin` where "
                                              "they hold none)")
    group: str | None = Field(description="Holders of this identity-provider group are members")
    groupRole: TeamRole | None = Field(description="…with this role")
    upstream: str | None = Field(description="The opencode server its sessions run on")
    root: str | None = Field(description="The folder its sessions' directories lie under")


class TeamList(_Closed):
    teams: list[TeamInfo]


class TeamMember(_Closed):
    principal: str
    role: TeamRole


class TeamDetail(_Closed):
    team: TeamInfo
    members: list[TeamMember] = Field(description="Explicit members (not the group's holders)")
    groupHolders: list[TeamMember] = Field(
        description="The holders of the team's identity-provider group as their last single "
                    "sign-on said, while that login lasts, with the group's role (empty for a "
                    "team without a group); someone named and holding the group is in both")


# ----- Web Push ----------------------------------------------------------------------------
class PushKey(_Closed):
    publicKey: str = Field(description="The VAPID public key (uncompressed P-256, base64url): "
                                       "the `applicationServerKey` to subscribe with")


class PushSubscribed(_Closed):
    id: str


class PushUnsubscribed(_Closed):
    removed: bool = Field(description="False when this principal had no such subscription")


# ----- audit log ----------------------------------------------------------------------------
class AuditEntry(_Closed):
    id: str = Field(description="The stream id: epoch milliseconds and a sequence number")
    time: str = Field(description="ISO 8601, UTC")
    principal: str | None = Field(description="The token id that acted; 'cli' for operator "
                                              "commands; null for a refused login")
    team: str | None = Field(description="Always null until teams exist")
    action: str = Field(examples=["session.create", "auth.login", "permission.reply"])
    target: str | None = Field(description="What was acted on: a session, permission, "
                                           "question, terminal or token id")
    session: str | None = Field(description="The session the action concerns, if any")
    request_id: str | None = Field(description="The request's X-Request-ID")
    outcome: Literal["ok", "refused", "failed"] = Field(
        description="ok (2xx), refused (4xx) or failed (5xx)")
    status: int | None = Field(description="The HTTP status (null for operator commands)")
    detail: dict[str, Any] = Field(description="Small facts, never secrets or user text: "
                                               "e.g. a prompt's length in characters")


class AuditPage(_Closed):
    entries: list[AuditEntry] = Field(description="Newest first")
    next: str | None = Field(description="Pass as `after` for older entries; null when no "
                                         "older entry matches")


# ----- share links and export (shares.py, export.py) ---------------------------------------
class ShareInfo(_Closed):
    id: str = Field(pattern=r"^shr_[0-9a-f]{16}$")
    sessionID: str = Field(pattern=SESSION_ID)
    createdAt: int = Field(description="Milliseconds since the epoch")
    expiresAt: int | None = Field(description="Milliseconds since the epoch; null: until "
                                              "revoked")
    createdBy: str = Field(description="The principal that made it")


class ShareCreated(ShareInfo):
    token: str = Field(description="The link's secret: shown this once, stored only hashed")
    path: str = Field(description="The read-only page: /share/<token>")
    url: str = Field(description="`path` on the relay's address as this request reached it")


class ShareList(_Closed):
    shares: list[ShareInfo]


class Revoked(_Closed):
    revoked: Literal[True]


class SessionExport(_Closed):
    """`format=json`: the stored objects, unchanged."""

    session: Session
    messages: list[Message]


class SearchResult(_Closed):
    sessionID: str
    title: str
    messageID: str | None = Field(description="the matching message; null when the title "
                                  "matched")
    partID: str | None
    snippet: str = Field(description="plain text around the match (not HTML)")
    ranges: list[list[int]] = Field(description="[start, end) of each match in `snippet`, in "
                                    "Unicode code points")
    time: int = Field(description="ms: the part's time (or the session's last update)")


class SearchResults(_Closed):
    results: list[SearchResult]
    next: str | None = Field(description="`after` for the next page; null at the end")
