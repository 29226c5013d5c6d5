// @ts-check
// Which events deserve a notification, and what it says (web/test/notifications.test.js).
// The relay's Web Push sends the same four kinds with the same tags, so when the page shows one
// itself (tab open but hidden) and the push arrives too, the second replaces the first.
import * as E from './events.js';

/** @typedef {import('./types.js').RelayEvent} RelayEvent */
/** @typedef {'permission' | 'question' | 'idle' | 'error'} NoticeKind */
/**
 * What a notification shows and where its click leads: the push payload's shape.
 * @typedef {{kind: NoticeKind, title: string, body: string, tag: string, sessionID: string, url: string}} Notice
 */
/**
 * What describe() needs to know about sessions: the listed session (null for one the list does
 * not show, such as a sub-agent's), and the plain words of an error.
 * @typedef {{
 *   session: (id: string) => {title?: string, parentID?: string} | null,
 *   errorText: (error: any) => string,
 * }} NoticeContext
 */

/** The page that shows a session (main.js routes `/?session=<id>`). @param {string} sessionID */
export function sessionUrl(sessionID) {
  return `/?session=${encodeURIComponent(sessionID)}`;
}

/**
 * The tag of a notice: one per request (permission, question), one per session (idle, error),
 * so a newer notice of the same thing replaces the older one. The push backend uses the same.
 * @param {NoticeKind} kind @param {string} id the request's id (permission, question) or the session's
 */
export function noticeTag(kind, id) {
  return `relay:${kind}:${id}`;
}

/** @param {unknown} text @param {number} max */
function clip(text, max) {
  const s = String(text || '').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
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
  const session = ctx.session(sessionID);
  const name = clip((session && session.title) || 'A session', 60);
  /** @param {NoticeKind} kind @param {string} id @param {string} title @param {string} body @returns {Notice} */
  const notice = (kind, id, title, body) => ({
    kind, title, body: clip(body, 180), tag: noticeTag(kind, id), sessionID, url: sessionUrl(sessionID),
  });
  switch (event.type) {
    case E.PERMISSION_ASKED: {
      const what = [p.permission, ...(Array.isArray(p.patterns) ? p.patterns : [])].filter(Boolean).join(' ');
      return notice('permission', String(p.id || sessionID), 'Permission needed',
        `${name}: the agent asks to use ${what || 'a tool'}`);
    }
    case E.QUESTION_ASKED:
    case E.QUESTION_V2_ASKED: {
      const first = Array.isArray(p.questions) && p.questions[0] ? p.questions[0].question : '';
      return notice('question', String(p.id || sessionID), 'Question from the agent',
        `${name}: ${first || 'the agent asks you something'}`);
    }
    case E.SESSION_IDLE:
      // Sub-agents go idle inside their parent's turn: only a listed, top-level session's end counts.
      if (!session || session.parentID) return null;
      return notice('idle', sessionID, 'Agent finished', `${name} is waiting for you.`);
    case E.SESSION_ERROR: {
      const err = p.error || {};
      if (err.name === 'MessageAbortedError') return null; // stopped on purpose
      return notice('error', sessionID, 'The agent hit an error', `${name}: ${ctx.errorText(err)}`);
    }
    case E.RELAY_SESSION_FAILED:
      return notice('error', sessionID, 'The agent hit an error', `${name}: ${p.message || 'a model provider failed'}`);
    default:
      return null;
  }
}
