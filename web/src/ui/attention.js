// @ts-check
// Which sessions need the person's attention: unread activity (something happened since they
// last looked at the session) and pending requests (a permission or question of the session or of
// one of its sub-agents waits for an answer). Pure bookkeeping; the session list draws it.
//
// "Last looked" is kept per browser in localStorage, per signed-in principal: the session's
// `time.updated` as it was when the person last had it open in a visible tab (or when this browser
// first listed it). Activity seen live on the global stream marks a session unread at once; after
// a reload, a session whose `time.updated` is newer than what was seen counts as unread.
import * as E from '../events.js';

/** @typedef {import('../types.js').RelayEvent} RelayEvent */
/** @typedef {import('../types.js').SessionInfo} SessionInfo */
/** @typedef {Pick<Storage, 'getItem' | 'setItem'>} KeyValue */

/** Events that are activity of the session they name. */
const ACTIVITY = new Set([E.MESSAGE_UPDATED, E.PART_UPDATED, E.PART_DELTA, E.MESSAGE_REMOVED,
  E.PART_REMOVED, E.SESSION_IDLE]);
const MAX_REMEMBERED = 500;

/** The session an event is about, if any. @param {RelayEvent} event @returns {string | undefined} */
export function eventSession(event) {
  const p = event.properties || {};
  if (p.sessionID) return p.sessionID;
  if (p.info && p.info.sessionID) return p.info.sessionID;
  if (p.part && p.part.sessionID) return p.part.sessionID;
  return undefined;
}

export class Attention {
  /**
   * @param {(id: string) => SessionInfo | undefined} lookup the sessions the list knows (for parents)
   * @param {KeyValue | null} storage where "last seen" is kept (null: only in memory)
   * @param {string} [principal] whose "last seen" it is
   */
  constructor(lookup, storage, principal = 'local') {
    this.lookup = lookup;
    this.storage = storage;
    this.key = `relay.seen.${principal}`;
    /** @type {Record<string, number>} session id -> its time.updated when last looked at */
    this.seen = this.read();
    /** @type {Set<string>} */
    this.unread = new Set();
    /** @type {Map<string, Set<string>>} root session id -> pending request ids */
    this.waiting = new Map();
    /** @type {string | null} the session the person is looking at now (open, tab visible) */
    this.looking = null;
  }

  /** @returns {Record<string, number>} */
  read() {
    try {
      const raw = this.storage && this.storage.getItem(this.key);
      const data = raw ? JSON.parse(raw) : {};
      return data && typeof data === 'object' ? data : {};
    } catch { return {}; }
  }

  write() {
    if (!this.storage) return;
    const entries = Object.entries(this.seen).sort((a, b) => b[1] - a[1]).slice(0, MAX_REMEMBERED);
    this.seen = Object.fromEntries(entries);
    try { this.storage.setItem(this.key, JSON.stringify(this.seen)); } catch { /* full or off */ }
  }

  /** The top session (not a sub-agent) of `id`, as far as the list knows. @param {string} id */
  root(id) {
    let sid = id;
    for (let i = 0; i < 20; i++) {
      const s = this.lookup(sid);
      if (!s || !s.parentID) return sid;
      sid = s.parentID;
    }
    return sid;
  }

  /** The person now looks at `id` (null: at none, e.g. the tab is hidden). @param {string | null} id */
  look(id) {
    this.looking = id;
    if (id) this.markSeen(id);
  }

  /** @param {string} id */
  markSeen(id) {
    const s = this.lookup(id);
    const updated = (s && s.time && (s.time.updated || s.time.created)) || 0;
    this.unread.delete(id);
    if ((this.seen[id] || 0) < updated || !(id in this.seen)) {
      this.seen[id] = updated;
      this.write();
    }
  }

  /**
   * Sessions as the list (re)loaded them: unread if changed since seen. A session this browser
   * has not listed before is taken as seen as it is now (its later changes count).
   * @param {Iterable<SessionInfo>} sessions
   */
  loaded(sessions) {
    let added = false;
    for (const s of sessions) {
      const updated = (s.time && (s.time.updated || s.time.created)) || 0;
      if (s.id === this.looking || !(s.id in this.seen)) {
        if (this.seen[s.id] !== updated) { this.seen[s.id] = updated; added = true; }
        this.unread.delete(s.id);
      } else if (updated > this.seen[s.id]) {
        this.unread.add(s.id);
      }
    }
    if (added) this.write();
  }

  /** Pending requests of a session's family, as `GET …/requests` gave them. @param {string} id @param {string[]} requestIds */
  setWaiting(id, requestIds) {
    if (requestIds.length) this.waiting.set(id, new Set(requestIds)); else this.waiting.delete(id);
  }

  /** @param {string} id */
  isUnread(id) { return this.unread.has(id); }

  /** @param {string} id */
  waitingCount(id) { const set = this.waiting.get(id); return set ? set.size : 0; }

  /** @param {string} id */
  forget(id) {
    this.unread.delete(id);
    this.waiting.delete(id);
    if (id in this.seen) { delete this.seen[id]; this.write(); }
  }

  /**
   * Applies an event of the global stream; returns the root session whose marks changed, if any.
   * @param {RelayEvent} event @returns {string | null}
   */
  apply(event) {
    const sid = eventSession(event);
    if (!sid) return null;
    const root = this.root(sid);
    if (E.REQUEST_ASKED.has(event.type)) {
      const id = (event.properties || {}).id;
      if (!id) return null;
      const set = this.waiting.get(root) || new Set();
      set.add(id);
      this.waiting.set(root, set);
      return root;
    }
    if (E.REQUEST_DONE.has(event.type)) {
      const id = (event.properties || {}).requestID;
      const set = this.waiting.get(root);
      if (!set || !set.delete(id)) return null;
      if (!set.size) this.waiting.delete(root);
      return root;
    }
    if (!ACTIVITY.has(event.type)) return null;
    if (root === this.looking) return null;
    if (this.unread.has(root)) return null;
    this.unread.add(root);
    return root;
  }
}
