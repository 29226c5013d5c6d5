// The session list: newest first, searchable, live through the global event stream.
import { h, clear, timeAgo } from '../dom.js';
import { api } from '../api.js';

const STATUS_LABEL = { busy: 'Working', retry: 'Retrying', idle: 'Idle' };

function shortDir(dir) {
  if (!dir) return '';
  const parts = dir.split('/').filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : dir;
}

export class SessionList {
  constructor(root, { onOpen, onNew, notify }) {
    this.onOpen = onOpen;
    this.notify = notify;
    this.sessions = new Map();
    this.status = new Map();
    this.items = new Map();
    this.activeId = null;
    this.search = '';
    this.loadToken = 0;
    this.idle = Promise.resolve(); // statuses wait for this (the open session loads first)
    this.searchInput = h('input', {
      type: 'search', class: 'search', placeholder: 'Search sessions', testid: 'session-search', 'aria-label': 'Search sessions',
    });
    this.newButton = h('button', { type: 'button', class: 'btn btn-primary btn-block', testid: 'new-session', text: '+ New session' });
    this.list = h('ul', { class: 'session-list', testid: 'session-list', role: 'list' });
    this.empty = h('div', { class: 'list-empty muted', hidden: true });
    clear(root).append(
      h('div', { class: 'sidebar-top' }, this.newButton, this.searchInput),
      h('div', { class: 'session-scroll' }, this.list, this.empty),
    );
    this.newButton.addEventListener('click', () => onNew());
    let timer = null;
    this.searchInput.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.search = this.searchInput.value.trim(); this.load(); }, 200);
    });
    setInterval(() => this.render(true), 60000); // keeps "5 min ago" honest
    this.list.addEventListener('click', (e) => {
      const li = e.target.closest('[data-session-id]');
      if (!li || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.onOpen(li.dataset.sessionId);
    });
  }

  async load() {
    const token = ++this.loadToken;
    let data;
    try {
      data = await api.listSessions({ limit: 200, search: this.search });
    } catch (err) {
      if (token === this.loadToken) this.notify(`Could not load sessions: ${err.message}`);
      return;
    }
    if (token !== this.loadToken) return;
    this.sessions.clear();
    for (const s of data.sessions || []) this.sessions.set(s.id, s);
    this.render();
    this.loadStatuses([...this.sorted()].slice(0, 30));
  }

  async loadStatuses(sessions) {
    await this.idle;
    const queue = sessions.filter((s) => !this.status.has(s.id));
    const worker = async () => {
      while (queue.length) {
        const s = queue.shift();
        try {
          const res = await api.status(s.id);
          if (!this.status.has(s.id)) this.setStatus(s.id, res.status);
        } catch { /* the list still works without it */ }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  matches(s) {
    if (s.parentID) return false; // sub-agent sessions are reached from their task card
    if (!this.search) return true;
    return (s.title || '').toLowerCase().includes(this.search.toLowerCase());
  }

  sorted() {
    return [...this.sessions.values()].filter((s) => this.matches(s)).sort((a, b) => {
      const ta = (a.time && a.time.created) || 0;
      const tb = (b.time && b.time.created) || 0;
      if (ta !== tb) return tb - ta;
      return a.id < b.id ? 1 : -1;
    });
  }

  render(force = false) {
    const sessions = this.sorted();
    const keep = new Set(sessions.map((s) => s.id));
    for (const [id, li] of this.items) if (!keep.has(id)) { li.remove(); this.items.delete(id); }
    let prev = null;
    for (const s of sessions) {
      let li = this.items.get(s.id);
      if (!li) { li = h('li', { testid: 'session-item', 'data-session-id': s.id }); this.items.set(s.id, li); }
      if (force || li.session !== s) this.fill(li, s);
      const want = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== li) this.list.insertBefore(li, want);
      prev = li;
    }
    this.empty.hidden = sessions.length > 0;
    this.empty.textContent = this.search ? 'No session matches.' : 'No sessions yet.';
  }

  fill(li, s) {
    li.session = s; // rows are rebuilt only when their session object changes
    const status = (this.status.get(s.id) || { type: 'idle' }).type;
    li.className = `session-item${s.id === this.activeId ? ' active' : ''}`;
    li.dataset.status = status;
    li.title = s.directory || '';
    clear(li).append(
      h('a', { href: `/?session=${encodeURIComponent(s.id)}`, class: 'session-link' },
        h('div', { class: 'session-row' },
          h('span', { class: `status-dot status-${status}`, title: STATUS_LABEL[status] || status, 'aria-label': STATUS_LABEL[status] || status }),
          h('span', { class: 'session-title', text: s.title || 'Untitled session' })),
        h('div', { class: 'session-meta' },
          h('span', { class: 'session-dir', text: shortDir(s.directory) }),
          h('span', { class: 'session-time', text: timeAgo(s.time && (s.time.updated || s.time.created)) }))));
  }

  upsert(s) {
    if (!s || !s.id) return;
    this.sessions.set(s.id, s);
    this.render();
  }

  remove(id) {
    this.sessions.delete(id);
    this.status.delete(id);
    this.render();
  }

  setStatus(id, status) {
    this.status.set(id, status || { type: 'idle' });
    const li = this.items.get(id);
    const s = this.sessions.get(id);
    if (li && s) this.fill(li, s);
  }

  setActive(id) {
    this.activeId = id;
    for (const [sid, li] of this.items) li.classList.toggle('active', sid === id);
  }

  // Events of the global stream that concern the list.
  apply(event) {
    const p = event.properties || {};
    switch (event.type) {
      case 'session.created':
      case 'relay.session.created':
      case 'session.updated':
        this.upsert(p.info);
        break;
      case 'session.deleted':
        if (p.info) this.remove(p.info.id);
        break;
      case 'session.status':
        this.setStatus(p.sessionID, p.status);
        break;
      case 'session.idle':
        this.setStatus(p.sessionID, { type: 'idle' });
        break;
      default:
    }
  }
}
