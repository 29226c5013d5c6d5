// @ts-check
// Every event type the UI knows, in one place. It mirrors src/opencode_relay/events.py:
// tests/test_event_types.py checks that STATEFUL and RELAY_NOTICES are the same sets there.

// Events that change what is stored for a session; SessionStore.apply handles each one.
export const SESSION_CREATED = 'session.created';
export const SESSION_UPDATED = 'session.updated';
export const SESSION_DELETED = 'session.deleted';
export const SESSION_STATUS = 'session.status';
export const SESSION_IDLE = 'session.idle';
export const SESSION_DIFF = 'session.diff';
export const TODOS = 'todo.updated';
export const MESSAGE_UPDATED = 'message.updated';
export const MESSAGE_REMOVED = 'message.removed';
export const PART_UPDATED = 'message.part.updated';
export const PART_DELTA = 'message.part.delta';
export const PART_REMOVED = 'message.part.removed';
// Permission and question requests; opencode sends questions as `question.*` and as
// `question.v2.*` (same shape) depending on the tool that asks.
export const PERMISSION_ASKED = 'permission.asked';
export const PERMISSION_REPLIED = 'permission.replied';
export const QUESTION_ASKED = 'question.asked';
export const QUESTION_REPLIED = 'question.replied';
export const QUESTION_REJECTED = 'question.rejected';
export const QUESTION_V2_ASKED = 'question.v2.asked';
export const QUESTION_V2_REPLIED = 'question.v2.replied';
export const QUESTION_V2_REJECTED = 'question.v2.rejected';

export const SESSION_INFO = new Set([SESSION_CREATED, SESSION_UPDATED]);
export const REQUEST_ASKED = new Set([PERMISSION_ASKED, QUESTION_ASKED, QUESTION_V2_ASKED]);
export const REQUEST_DONE = new Set([PERMISSION_REPLIED, QUESTION_REPLIED, QUESTION_REJECTED,
  QUESTION_V2_REPLIED, QUESTION_V2_REJECTED]);

export const STATEFUL = new Set([...SESSION_INFO, SESSION_DELETED, SESSION_STATUS, SESSION_IDLE,
  SESSION_DIFF, TODOS, MESSAGE_UPDATED, MESSAGE_REMOVED, PART_UPDATED, PART_DELTA, PART_REMOVED,
  ...REQUEST_ASKED, ...REQUEST_DONE]);

// Shown to the person watching (a banner), never stored.
export const SESSION_ERROR = 'session.error';

// The relay's own notices. Their types all start with RELAY_PREFIX.
export const RELAY_PREFIX = 'relay.';
export const RELAY_SESSION_CREATED = 'relay.session.created'; // the creator now owns the session
export const RELAY_SESSION_SYNCED = 'relay.session.synced'; // re-read from opencode: refetch it
export const RELAY_RESET = 'relay.reset'; // the log no longer reaches back: refetch all
export const RELAY_SHUTDOWN = 'relay.shutdown'; // this replica stops: reconnect
// A model provider could not be used; the relay stopped opencode's retries ({sessionID, provider, message}).
export const RELAY_SESSION_FAILED = 'relay.session.failed';
// Files changed in the directory where the session works, while it works ({sessionID, files, more}).
export const RELAY_FILES_CHANGED = 'relay.files.changed';
export const RELAY_NOTICES = new Set([RELAY_SESSION_CREATED, RELAY_SESSION_SYNCED, RELAY_RESET,
  RELAY_SHUTDOWN, RELAY_SESSION_FAILED, RELAY_FILES_CHANGED]);
