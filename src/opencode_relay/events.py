"""Every event type the relay knows, in one place (the web UI's list is web/src/events.js;
tests/test_event_types.py checks that the two agree).

opencode's own types, as `GET /global/event` sends them, and the relay's notices (`relay.*`).
An event type not listed here is still logged and streamed; it just changes no stored state.
"""

from __future__ import annotations

# Transport chatter: never logged (the relay sends its own heartbeats).
NOT_LOGGED = frozenset({"server.heartbeat", "server.connected"})

# opencode's file events name a file and (on the global stream) a directory, never a session;
# the relay tells the sessions busy in that directory with RELAY_FILES_CHANGED.
FILE_EDITED = "file.edited"
FILE_WATCHER_UPDATED = "file.watcher.updated"
FILE_EVENTS = frozenset({FILE_EDITED, FILE_WATCHER_UPDATED})

# opencode's record of a durable event: `{"type": "sync", "syncEvent": {id, type, seq,
# aggregateID, data}}`, sent right after the event itself (same id); `seq` counts the session's
# durable events (ingest/durable.py records it and replays what was missed).
SYNC = "sync"

# Logged on the global stream only, never routed to a session's stream even if they name one.
NOISE = frozenset({"plugin.added", SYNC, "catalog.updated", "reference.updated",
                   "integration.updated", "lsp.updated", "lsp.client.diagnostics",
                   *FILE_EVENTS})

# Events that change what is stored for a session; the ingestor has a handler for each, and the
# UI's session store applies each one to the open session.
SESSION_INFO = frozenset({"session.created", "session.updated"})
SESSION_DELETED = "session.deleted"
SESSION_STATUS_CHANGED = "session.status"
SESSION_IDLE = "session.idle"
SESSION_STATUS = frozenset({SESSION_STATUS_CHANGED, SESSION_IDLE})
SESSION_DIFF = "session.diff"
TODOS = "todo.updated"
MESSAGE_UPDATED = "message.updated"
MESSAGE_REMOVED = "message.removed"
PART_UPDATED = "message.part.updated"
PART_DELTA = "message.part.delta"
PART_REMOVED = "message.part.removed"
# Permission and question requests; opencode 1.18 sends questions as `question.*` and as
# `question.v2.*` depending on the tool that asks.
REQUEST_ASKED = frozenset({"permission.asked", "question.asked", "question.v2.asked"})
REQUEST_DONE = frozenset({"permission.replied", "question.replied", "question.rejected",
                          "question.v2.replied", "question.v2.rejected"})

# The types opencode keeps in a session's durable history (`POST /sync/history`), each followed
# by its SYNC record on the live stream. Deltas, statuses, diffs, todos and requests are not kept.
DURABLE = frozenset({*SESSION_INFO, SESSION_DELETED, MESSAGE_UPDATED, MESSAGE_REMOVED,
                     PART_UPDATED, PART_REMOVED})

STATEFUL = frozenset({*SESSION_INFO, SESSION_DELETED, *SESSION_STATUS, SESSION_DIFF, TODOS,
                      MESSAGE_UPDATED, MESSAGE_REMOVED, PART_UPDATED, PART_DELTA, PART_REMOVED,
                      *REQUEST_ASKED, *REQUEST_DONE})

# Shown to the person watching, stored only in the log.
SESSION_ERROR = "session.error"

# The relay's own notices.
RELAY_SESSION_CREATED = "relay.session.created"  # the creator now owns the session
RELAY_SESSION_SYNCED = "relay.session.synced"    # re-read from opencode: refetch it
RELAY_RESET = "relay.reset"                      # the log no longer reaches back: refetch all
RELAY_SHUTDOWN = "relay.shutdown"                # this replica stops: reconnect
RELAY_SESSION_FAILED = "relay.session.failed"    # a provider failed; the relay stopped retries
RELAY_FILES_CHANGED = "relay.files.changed"      # files changed where the session works
RELAY_NOTICES = frozenset({RELAY_SESSION_CREATED, RELAY_SESSION_SYNCED, RELAY_RESET,
                           RELAY_SHUTDOWN, RELAY_SESSION_FAILED, RELAY_FILES_CHANGED})
