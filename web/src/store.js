// State of the open session: messages and parts keyed by id, kept in id order.
// Views subscribe to fine-grained changes so a delta touches only its own part.

const byId = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

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
  constructor(sessionID) {
    this.sessionID = sessionID;
    this.session = null;
    this.messages = new Map(); // id -> {info, parts: Map, partOrder: []}
    this.order = [];
    this.status = { type: 'idle' };
    this.todos = [];
    this.diff = [];
    this.permissions = new Map();
    this.questions = new Map();
    this.listeners = new Set();
  }

  on(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  emit(change) { for (const fn of this.listeners) fn(change, this); }

  load(messages) {
    this.messages.clear();
    this.order = [];
    for (const { info, parts } of messages) {
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

  upsertMessage(info) {
    let entry = this.messages.get(info.id);
    const isNew = !entry;
    if (isNew) {
      entry = { info, parts: new Map(), partOrder: [] };
      this.messages.set(info.id, entry);
      insertSorted(this.order, info.id);
    } else {
      entry.info = info;
    }
    this.emit({ type: 'message', id: info.id, isNew });
  }

  removeMessage(id) {
    if (!this.messages.delete(id)) return;
    this.order = this.order.filter((x) => x !== id);
    this.emit({ type: 'message-removed', id });
  }

  ensureMessage(messageID, role = 'assistant') {
    if (!this.messages.has(messageID)) {
      // A part can arrive before its message: hold a stub until message.updated comes.
      this.upsertMessage({ id: messageID, sessionID: this.sessionID, role, time: {}, stub: true });
    }
    return this.messages.get(messageID);
  }

  upsertPart(part) {
    const entry = this.ensureMessage(part.messageID);
    const isNew = !entry.parts.has(part.id);
    entry.parts.set(part.id, part);
    if (isNew) insertSorted(entry.partOrder, part.id);
    this.emit({ type: 'part', messageID: part.messageID, id: part.id, isNew });
  }

  applyDelta({ messageID, partID, field, delta }) {
    const entry = this.ensureMessage(messageID);
    let part = entry.parts.get(partID);
    if (!part) {
      // Delta before its part.updated: start a text part; the full part replaces it later.
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

  removePart(messageID, partID) {
    const entry = this.messages.get(messageID);
    if (!entry || !entry.parts.delete(partID)) return;
    entry.partOrder = entry.partOrder.filter((x) => x !== partID);
    this.emit({ type: 'part-removed', messageID, id: partID });
  }

  setStatus(status) { this.status = status || { type: 'idle' }; this.emit({ type: 'status' }); }
  setTodos(todos) { this.todos = todos || []; this.emit({ type: 'todos' }); }
  setDiff(diff) { this.diff = diff || []; this.emit({ type: 'diff' }); }
  setSession(session) { this.session = session; this.emit({ type: 'session' }); }

  addPermission(req) { this.permissions.set(req.id, req); this.emit({ type: 'requests' }); }
  removePermission(id) { if (this.permissions.delete(id)) this.emit({ type: 'requests' }); }
  addQuestion(req) { this.questions.set(req.id, req); this.emit({ type: 'requests' }); }
  removeQuestion(id) { if (this.questions.delete(id)) this.emit({ type: 'requests' }); }

  lastAssistant() {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const entry = this.messages.get(this.order[i]);
      if (entry.info.role === 'assistant') return entry;
      if (entry.info.role === 'user') return null;
    }
    return null;
  }

  // Applies one event of this session's stream. Returns true if it was handled.
  apply(event) {
    const p = event.properties || {};
    const own = (sid) => sid === this.sessionID;
    switch (event.type) {
      case 'session.updated':
      case 'session.created':
        if (p.info && own(p.info.id)) this.setSession(p.info);
        return true;
      case 'session.status':
        if (own(p.sessionID)) this.setStatus(p.status);
        return true;
      case 'session.idle':
        if (own(p.sessionID)) this.setStatus({ type: 'idle' });
        return true;
      case 'message.updated':
        if (p.info && own(p.info.sessionID)) this.upsertMessage(p.info);
        return true;
      case 'message.removed':
        if (own(p.sessionID)) this.removeMessage(p.messageID);
        return true;
      case 'message.part.updated':
        if (p.part && own(p.part.sessionID)) this.upsertPart(p.part);
        return true;
      case 'message.part.delta':
        if (own(p.sessionID)) this.applyDelta(p);
        return true;
      case 'message.part.removed':
        if (own(p.sessionID)) this.removePart(p.messageID, p.partID);
        return true;
      case 'todo.updated':
        if (own(p.sessionID)) this.setTodos(p.todos);
        return true;
      case 'session.diff':
        if (own(p.sessionID)) this.setDiff(p.diff);
        return true;
      // Requests of sub-agent sessions are shown here too.
      case 'permission.asked':
        this.addPermission(p);
        return true;
      case 'permission.replied':
        this.removePermission(p.requestID);
        return true;
      case 'question.asked':
        this.addQuestion(p);
        return true;
      case 'question.replied':
      case 'question.rejected':
        this.removeQuestion(p.requestID);
        return true;
      default:
        return false;
    }
  }
}
