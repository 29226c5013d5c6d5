// @ts-check
// State of the open session: messages and parts keyed by id, kept in id order.
// Views subscribe to fine-grained changes so a delta touches only its own part.
import * as E from './events.js';

/** @typedef {import('./types.js').RelayEvent} RelayEvent */
/** @typedef {import('./types.js').SessionInfo} SessionInfo */
/** @typedef {import('./types.js').SessionStatus} SessionStatus */
/** @typedef {import('./types.js').MessageInfo} MessageInfo */
/** @typedef {import('./types.js').MessageEntry} MessageEntry */
/** @typedef {import('./types.js').StoredMessage} StoredMessage */
/** @typedef {import('./types.js').Part} Part */
/** @typedef {import('./types.js').Todo} Todo */
/** @typedef {import('./types.js').FileDiff} FileDiff */
/** @typedef {import('./types.js').PermissionRequest} PermissionRequest */
/** @typedef {import('./types.js').QuestionRequest} QuestionRequest */
/** @typedef {import('./types.js').StoreChange} StoreChange */
/** @typedef {(change: StoreChange, store: SessionStore) => void} StoreListener */

/** @param {string} a @param {string} b */
const byId = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Inserts id into the sorted list unless it is there already. @param {string[]} list @param {string} id */
function insertSorted(list, id) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < id) lo = mid + 1; else hi = mid;
  }
  if (list[lo] !== id) list.splice(lo, 0, id);
  return lo;
}

export class SessionStore {
  /** @param {string} sessionID */
  constructor(sessionID) {
    this.sessionID = sessionID;
    /** @type {SessionInfo | null} */
    this.session = null;
    /** Set once `session.deleted` names this session. */
    this.deleted = false;
    /** @type {Map<string, MessageEntry>} */
    this.messages = new Map();
    /** @type {string[]} message ids, oldest first */
    this.order = [];
    /** @type {SessionStatus} */
    this.status = { type: 'idle' };
    /** @type {Todo[]} */
    this.todos = [];
    /** @type {FileDiff[]} */
    this.diff = [];
    /** @type {Map<string, PermissionRequest>} */
    this.permissions = new Map();
    /** @type {Map<string, QuestionRequest>} */
    this.questions = new Map();
    /** @type {Set<StoreListener>} */
    this.listeners = new Set();
  }

  /** Subscribes to changes; returns the unsubscribe function. @param {StoreListener} fn */
  on(fn) { this.listeners.add(fn); return () => { this.listeners.delete(fn); }; }

  /** @param {StoreChange} change */
  emit(change) { for (const fn of this.listeners) fn(change, this); }

  /** Replaces the transcript with a snapshot (no change is emitted). @param {StoredMessage[]} messages */
  load(messages) {
    this.messages.clear();
    this.order = [];
    for (const { info, parts } of messages) {
      /** @type {MessageEntry} */
      const entry = { info, parts: new Map(), partOrder: [] };
      for (const part of parts || []) {
        entry.parts.set(part.id, part);
        entry.partOrder.push(part.id);
      }
      entry.partOrder.sort(byId);
      this.messages.set(info.id, entry);
      this.order.push(info.id);
    }
    this.order.sort(byId);
  }

  /** @param {MessageInfo} info */
  upsertMessage(info) {
    const entry = this.messages.get(info.id);
    const isNew = !entry;
    if (entry) {
      entry.info = info;
    } else {
      this.messages.set(info.id, { info, parts: new Map(), partOrder: [] });
      insertSorted(this.order, info.id);
    }
    this.emit({ type: 'message', id: info.id, isNew });
  }

  /** @param {string} id */
  removeMessage(id) {
    if (!this.messages.delete(id)) return;
    this.order = this.order.filter((x) => x !== id);
    this.emit({ type: 'message-removed', id });
  }

  /** @param {string} messageID @param {string} role @returns {MessageEntry} */
  ensureMessage(messageID, role = 'assistant') {
    if (!this.messages.has(messageID)) {
      // A part can arrive before its message: hold a stub until message.updated comes.
      this.upsertMessage({ id: messageID, sessionID: this.sessionID, role, time: {}, stub: true });
    }
    return /** @type {MessageEntry} */ (this.messages.get(messageID));
  }

  /** @param {Part} part */
  upsertPart(part) {
    const entry = this.ensureMessage(part.messageID);
    const isNew = !entry.parts.has(part.id);
    entry.parts.set(part.id, part);
    if (isNew) insertSorted(entry.partOrder, part.id);
    this.emit({ type: 'part', messageID: part.messageID, id: part.id, isNew });
  }

  /** @param {{messageID: string, partID: string, field: string, delta: string}} delta */
  applyDelta({ messageID, partID, field, delta }) {
    const entry = this.ensureMessage(messageID);
    let part = entry.parts.get(partID);
    if (!part) {
      // Delta before its part.updated: start a text part; the full part replaces it later.
      /** @type {Part} */
      part = { id: partID, messageID, sessionID: this.sessionID, type: 'text', text: '' };
      entry.parts.set(partID, part);
      insertSorted(entry.partOrder, partID);
      part[field] = (part[field] || '') + delta;
      this.emit({ type: 'part', messageID, id: partID, isNew: true });
      return;
    }
    part[field] = (typeof part[field] === 'string' ? part[field] : '') + delta;
    this.emit({ type: 'delta', messageID, id: partID, field });
  }

  /** @param {string} messageID @param {string} partID */
  removePart(messageID, partID) {
    const entry = this.messages.get(messageID);
    if (!entry || !entry.parts.delete(partID)) return;
    entry.partOrder = entry.partOrder.filter((x) => x !== partID);
    this.emit({ type: 'part-removed', messageID, id: partID });
  }

  /** @param {SessionStatus | null | undefined} status */
  setStatus(status) { this.status = status || { type: 'idle' }; this.emit({ type: 'status' }); }
  /** @param {Todo[] | null | undefined} todos */
  setTodos(todos) { this.todos = todos || []; this.emit({ type: 'todos' }); }
  /** Files may have changed on disk (the relay's `relay.files.changed` notice). */
  filesChanged() { this.emit({ type: 'files' }); }

  /** @param {FileDiff[] | null | undefined} diff */
  setDiff(diff) { this.diff = diff || []; this.emit({ type: 'diff' }); }
  /** @param {SessionInfo | null} session */
  setSession(session) { this.session = session; this.emit({ type: 'session' }); }
  markDeleted() { this.deleted = true; this.emit({ type: 'deleted' }); }

  /** @param {PermissionRequest} req */
  addPermission(req) { this.permissions.set(req.id, req); this.emit({ type: 'requests' }); }
  /** @param {string} id */
  removePermission(id) { if (this.permissions.delete(id)) this.emit({ type: 'requests' }); }
  /** @param {QuestionRequest} req */
  addQuestion(req) { this.questions.set(req.id, req); this.emit({ type: 'requests' }); }
  /** @param {string} id */
  removeQuestion(id) { if (this.questions.delete(id)) this.emit({ type: 'requests' }); }

  /** The requests of a `GET …/requests` answer. @param {{permissions?: PermissionRequest[], questions?: QuestionRequest[]}} requests */
  addRequests(requests) {
    for (const r of requests.permissions || []) this.addPermission(r);
    for (const q of requests.questions || []) this.addQuestion(q);
  }

  /** The newest assistant message after the last user message, if any. */
  lastAssistant() {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const entry = /** @type {MessageEntry} */ (this.messages.get(this.order[i]));
      if (entry.info.role === 'assistant') return entry;
      if (entry.info.role === 'user') return null;
    }
    return null;
  }

  /**
   * Applies one event of this session's stream; true if its type is one the store keeps
   * (events.STATEFUL), even when the event concerns another session and changes nothing.
   * @param {RelayEvent} event
   */
  apply(event) {
    const p = event.properties || {};
    /** @param {string | undefined} sid */
    const own = (sid) => sid === this.sessionID;
    switch (event.type) {
      case E.SESSION_UPDATED:
      case E.SESSION_CREATED:
        if (p.info && own(p.info.id)) this.setSession(p.info);
        return true;
      case E.SESSION_DELETED:
        if (p.info && own(p.info.id)) this.markDeleted();
        return true;
      case E.SESSION_STATUS:
        if (own(p.sessionID)) this.setStatus(p.status);
        return true;
      case E.SESSION_IDLE:
        if (own(p.sessionID)) this.setStatus({ type: 'idle' });
        return true;
      case E.MESSAGE_UPDATED:
        if (p.info && own(p.info.sessionID)) this.upsertMessage(p.info);
        return true;
      case E.MESSAGE_REMOVED:
        if (own(p.sessionID)) this.removeMessage(p.messageID);
        return true;
      case E.PART_UPDATED:
        if (p.part && own(p.part.sessionID)) this.upsertPart(p.part);
        return true;
      case E.PART_DELTA:
        if (own(p.sessionID)) this.applyDelta(/** @type {any} */ (p));
        return true;
      case E.PART_REMOVED:
        if (own(p.sessionID)) this.removePart(p.messageID, p.partID);
        return true;
      case E.TODOS:
        if (own(p.sessionID)) this.setTodos(p.todos);
        return true;
      case E.SESSION_DIFF:
        if (own(p.sessionID)) this.setDiff(p.diff);
        return true;
      // Requests of sub-agent sessions are shown here too.
      case E.PERMISSION_ASKED:
        this.addPermission(/** @type {PermissionRequest} */ (p));
        return true;
      case E.PERMISSION_REPLIED:
        this.removePermission(p.requestID);
        return true;
      case E.QUESTION_ASKED:
      case E.QUESTION_V2_ASKED:
        this.addQuestion(/** @type {QuestionRequest} */ (p));
        return true;
      case E.QUESTION_REPLIED:
      case E.QUESTION_REJECTED:
      case E.QUESTION_V2_REPLIED:
      case E.QUESTION_V2_REJECTED:
        this.removeQuestion(p.requestID);
        return true;
      default:
        return false;
    }
  }
}
