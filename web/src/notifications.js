// @ts-check
// Which events deserve a notification, and what it says (web/test/notifications.test.js).
// The relay's Web Push (push/notices.py) sends the same four kinds with the same tags and words,
// so when the page shows one itself (tab open but hidden) and the push arrives too, the second
// replaces the first instead of doubling it.
import * as E from './events.js';

/** @typedef {import('./types.js').RelayEvent} RelayEvent */
/** @typedef {'permission' | 'question' | 'idle' | 'error'} NoticeKind */
/**
 * What a notification shows and where its click leads: the push payload's shape.
 * @typedef {{kind: NoticeKind, title: string, body: string, tag: string, sessionID: string, url: string}} Notice
 */
/**
 * What describe() needs to know about sessions: a session the list shows (null for others,
 * such as a sub-agent's), the parent of a sub-agent's session when known, and the plain words
 * of an error.
 * @typedef {{
 *   session: (id: string) => {title?: string, parentID?: string} | null,
 *   parentOf: (id: string) => string | null,
 *   errorText: (error: any) => string,
 * }} NoticeContext
 */

const TITLES = { permission: 'Permission needed', question: 'Question', idle: 'Done', error: 'Error' };
const TITLE_CHARS = 60;
const EXCERPT_CHARS = 120;

/** The page that shows a session (main.js routes `/?session=<id>`). @param {string} sessionID */
export function sessionUrl(sessionID) {
  return `/?session=${encodeURIComponent(sessionID)}`;
}

/**
 * The tag of a notice, as the push backend makes it: one per request (permission, question),
 * one per top-level session (idle, error), so a newer notice of the same thing replaces the older.
 * @param {NoticeKind} kind @param {string} id the request's id (permission, question) or the session's
 */
export function noticeTag(kind, id) {
  return `${kind}:${id}`;
}

/** @param {unknown} text @param {number} max */
export function shorten(text, max) {
  const s = String(text || '').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
}

/** The top-level session above `id` (sub-agents' requests show in the session the person watches). @param {string} id @param {NoticeContext} ctx */
function topOf(id, ctx) {
  let top = id;
  for (let depth = 0; depth < 16; depth++) {
    const listed = ctx.session(top);
    const parent = (listed && listed.parentID) || ctx.parentOf(top);
    if (!parent) break;
    top = parent;
  }
  return top;
}

/**
 * The notification an event calls for, or null.
 * @param {RelayEvent} event @param {NoticeContext} ctx
 * @returns {Notice | null}
 */
export function describe(event, ctx) {
  const p = /** @type {Record<string, any>} */ (event.properties || {});
  const sessionID = typeof p.sessionID === 'string' ? p.sessionID : '';
  if (!sessionID) return null;
  const top = topOf(sessionID, ctx);
  const listed = ctx.session(top);
  const name = shorten(listed && listed.title, TITLE_CHARS) || 'opencode session';
  /** @param {NoticeKind} kind @param {string} id @param {string} body @returns {Notice} */
  const notice = (kind, id, body) => ({
    kind, title: `${TITLES[kind]}: ${name}`, body: shorten(body, EXCERPT_CHARS),
    tag: noticeTag(kind, id), sessionID: top, url: sessionUrl(top),
  });
  const requestID = typeof p.id === 'string' ? p.id : '';
  switch (event.type) {
    case E.PERMISSION_ASKED:
      return requestID ? notice('permission', requestID, `Wants to use ${p.permission || 'a tool'}`) : null;
    case E.QUESTION_ASKED:
    case E.QUESTION_V2_ASKED: {
      const first = Array.isArray(p.questions) && p.questions[0] ? p.questions[0].question : '';
      return requestID ? notice('question', requestID, first || 'A question is waiting') : null;
    }
    case E.SESSION_IDLE:
      // Sub-agents go idle inside their parent's turn: only a listed top-level session's end counts.
      if (top !== sessionID || !listed) return null;
      return notice('idle', top, 'Finished');
    case E.SESSION_ERROR: {
      const err = p.error || {};
      if (err.name === 'MessageAbortedError') return null; // stopped on purpose
      return notice('error', top, ctx.errorText(err) || 'The session failed');
    }
    case E.RELAY_SESSION_FAILED:
      return notice('error', top, p.message || 'A model provider failed');
    default:
      return null;
  }
}
