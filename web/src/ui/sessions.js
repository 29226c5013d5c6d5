// @ts-check
// The session list: newest first, searchable, live through the global event stream.
import { h, clear, timeAgo } from '../dom.js';
import { api } from '../api.js';
import * as E from '../events.js';
import { Attention } from './attention.js';
import { SearchResultsView } from './search.js';

/** @typedef {import('../types.js').SessionInfo} SessionInfo */
/** @typedef {import('../types.js').SessionStatus} SessionStatus */
/** @typedef {import('../types.js').RelayEvent} RelayEvent */
/** @typedef {import('./notices.js').Notify} Notify */
/** @typedef {{unread: number, waiting: number}} AttentionMarks other sessions than the open one that are unread, waiting */
/**
 * @typedef {{
 *   onOpen: (id: string, messageID?: string | null, words?: string[]) => void,
 *   onNew: () => void, notify: Notify,
 *   storage?: import('./attention.js').KeyValue | null,
 *   onAttention?: (marks: AttentionMarks) => void,
 * }} SessionListContext
 */

/** @type {Record<string, string>} */
const STATUS_LABEL = { busy: 'Working', retry: 'Retrying', idle: 'Idle' };

/** The last two folders of a path. @param {string | undefined} dir */
function shortDir(dir) {
  if (!dir) return '';
  const parts = dir.split('/').filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : dir;
}

/** The sidebar's list of sessions; it lives as long as the page. */
export class SessionList {
  /** @param {HTMLElement} root @param {SessionListContext} ctx */
  constructor(root, { onOpen, onNew, notify, storage = null, onAttention = () => {} }) {
    this.root = root;
    this.onAttention = onAttention;
    this.onOpen = onOpen;
    this.notify = notify;
    /** @type {Map<string, SessionInfo>} */
    this.sessions = new Map();
    /** @type {Map<string, SessionStatus>} */
    this.status = new Map();
    /** @type {Map<string, string>} session id -> its team's name (a session's team never changes) */
    this.teams = new Map();
    /** @type {Map<string, HTMLLIElement>} */
    this.items = new Map();
    /** @type {WeakMap<HTMLLIElement, SessionInfo>} the session each row was drawn from */
    this.drawn = new WeakMap();
    /** @type {string | null} */
    this.activeId = null;
    this.search = '';
    /** @type {string | null} the project (directory) whose sessions are shown; null: all */
    this.project = null;
    this.loadToken = 0;
    this.idle = Promise.resolve(); // statuses wait for this (the open session loads first)
    this.storage = storage;
    this.attention = new Attention((id) => this.sessions.get(id), storage);
    // The person looks at the open session only while the tab is visible.
    this.onVisibility = () => this.look();
    document.addEventListener('visibilitychange', this.onVisibility);
    this.searchInput = h('input', {
      type: 'search', class: 'search', placeholder: 'Search sessions', testid: 'session-search', 'aria-label': 'Search sessions',
    });
    this.newButton = h('button', { type: 'button', class: 'btn btn-primary btn-block', testid: 'new-session', text: '+ New session' });
    this.list = h('ul', { class: 'session-list', testid: 'session-list', role: 'list' });
    this.empty = h('div', { class: 'list-empty muted', hidden: true });
    const scroll = h('div', { class: 'session-scroll' });
    clear(root).append(h('div', { class: 'sidebar-top' }, this.newButton, this.searchInput), scroll);
    // Titles filter the list below; the words of the messages are searched on the server.
    this.results = new SearchResultsView(scroll, { onOpen, notify });
    scroll.append(this.list, this.empty);
    this.newButton.addEventListener('click', () => onNew());
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    this.searchInput.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.search = this.searchInput.value.trim();
        this.load();
        this.results.query(this.searchInput.value);
      }, 200);
    });
    this.clock = setInterval(() => this.render(true), 60000); // keeps "5 min ago" honest
    this.list.addEventListener('click', (e) => {
      const li = /** @type {HTMLElement | null} */ (e.target instanceof Element ? e.target.closest('[data-session-id]') : null);
      if (!li || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.onOpen(/** @type {string} */ (li.dataset.sessionId));
    });
  }

  destroy() {
    clearInterval(this.clock);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.loadToken++;
    this.results.destroy();
    clear(this.root);
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
    for (const [id, team] of Object.entries(data.teams || {})) this.teams.set(id, team);
    this.attention.loaded(this.sessions.values());
    this.render();
    this.loadStatuses([...this.sorted()].slice(0, 30));
  }

  /** Fetches the statuses the list does not know yet, four at a time. @param {SessionInfo[]} sessions */
  async loadStatuses(sessions) {
    await this.idle;
    const queue = sessions.filter((s) => !this.status.has(s.id));
    const worker = async () => {
      while (queue.length) {
        const s = /** @type {SessionInfo} */ (queue.shift());
        try {
          const res = await api.status(s.id);
          if (!this.status.has(s.id)) this.setStatus(s.id, res.status);
          // A pending request keeps a session busy: only busy ones can be waiting.
          if (res.status && res.status.type !== 'idle') await this.loadWaiting(s.id);
        } catch { /* the list still works without it */ }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  /** Reads the pending requests of a session and its sub-agents. @param {string} id */
  async loadWaiting(id) {
    try {
      const res = await api.requests(id);
      const ids = [...(res.permissions || []), ...(res.questions || [])].map((r) => r.id);
      this.attention.setWaiting(id, ids);
      this.redraw(id);
    } catch { /* the next event brings them */ }
  }

  /** Who is signed in: "last seen" is kept per principal. @param {string} principal */
  setPrincipal(principal) {
    const before = this.attention;
    this.attention = new Attention((id) => this.sessions.get(id), this.storage, principal);
    this.attention.waiting = before.waiting;
    this.attention.unread = before.unread;
    this.attention.loaded(this.sessions.values());
    this.look();
    this.render(true);
  }

  /** Tells the attention marks which session the person looks at now. */
  look() {
    const id = document.visibilityState === 'visible' ? this.activeId : null;
    this.attention.look(id);
    if (id) this.redraw(id);
  }

  /** @param {string} id */
  redraw(id) {
    const li = this.items.get(id);
    const s = this.sessions.get(id);
    if (li && s) this.fill(li, s);
    this.summarize();
  }

  /** Tells the page how many other listed sessions are unread or waiting (the phone's ☰ shows it). */
  summarize() {
    let unread = 0;
    let waiting = 0;
    for (const id of this.items.keys()) {
      if (id === this.activeId) continue;
      if (this.attention.isUnread(id)) unread++;
      if (this.attention.waitingCount(id)) waiting++;
    }
    this.onAttention({ unread, waiting });
  }

  /** @param {SessionInfo} s */
  matches(s) {
    if (s.parentID) return false; // sub-agent sessions are reached from their task card
    if (this.project && s.directory !== this.project) return false;
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

  /** Draws the rows in order, reusing each row; force redraws them all. */
  render(force = false) {
    const sessions = this.sorted();
    const keep = new Set(sessions.map((s) => s.id));
    for (const [id, li] of this.items) if (!keep.has(id)) { li.remove(); this.items.delete(id); }
    /** @type {HTMLLIElement | null} */
    let prev = null;
    for (const s of sessions) {
      let li = this.items.get(s.id);
      if (!li) { li = h('li', { testid: 'session-item', 'data-session-id': s.id }); this.items.set(s.id, li); }
      if (force || this.drawn.get(li) !== s) this.fill(li, s);
      /** @type {ChildNode | null} */
      const want = prev ? prev.nextSibling : this.list.firstChild;
      if (want !== li) this.list.insertBefore(li, want);
      prev = li;
    }
    this.empty.hidden = sessions.length > 0;
    this.summarize();
    this.empty.textContent = this.search ? 'No session matches.'
      : this.project ? 'No sessions in this project yet.' : 'No sessions yet.';
  }

  /** @param {HTMLLIElement} li @param {SessionInfo} s */
  fill(li, s) {
    this.drawn.set(li, s); // rows are rebuilt only when their session object changes
    const status = (this.status.get(s.id) || { type: 'idle' }).type;
    const unread = this.attention.isUnread(s.id);
    const waiting = this.attention.waitingCount(s.id);
    li.className = `session-item${s.id === this.activeId ? ' active' : ''}${unread ? ' unread' : ''}`;
    li.dataset.status = status;
    li.title = s.directory || '';
    const team = this.teams.get(s.id);
    clear(li).append(
      h('a', { href: `/?session=${encodeURIComponent(s.id)}`, class: 'session-link' },
        h('div', { class: 'session-row' },
          h('span', { class: `status-dot status-${status}`, title: STATUS_LABEL[status] || status, 'aria-label': STATUS_LABEL[status] || status }),
          h('span', { class: 'session-title', text: s.title || 'Untitled session' }),
          waiting ? h('span', {
            class: 'session-waiting', testid: 'session-waiting', 'data-count': String(waiting),
            title: waiting === 1 ? 'Waiting for your answer' : `${waiting} requests wait for your answer`,
            text: waiting === 1 ? 'waiting' : `waiting ${waiting}`,
          }) : null,
          unread ? h('span', { class: 'session-unread', testid: 'session-unread', title: 'New activity since you last looked', text: 'new' }) : null),
        h('div', { class: 'session-meta' },
          team ? h('span', { class: 'session-row-team', testid: 'session-row-team', title: `Team ${team}`, text: team }) : null,
          h('span', { class: 'session-dir', text: shortDir(s.directory) }),
          h('span', { class: 'session-time', text: timeAgo(s.time && (s.time.updated || s.time.created)) }))));
  }

  /** Shows only the sessions of one project (its directory), or all with null.
   * @param {string | null} directory */
  setProject(directory) {
    if (directory === this.project) return;
    this.project = directory;
    this.render();
  }

  /** @param {SessionInfo | null | undefined} s */
  upsert(s) {
    if (!s || !s.id) return;
    this.sessions.set(s.id, s);
    if (s.id === this.attention.looking) this.attention.markSeen(s.id);
    this.render();
  }

  /** @param {string} id */
  remove(id) {
    this.sessions.delete(id);
    this.teams.delete(id);
    this.attention.forget(id);
    this.status.delete(id);
    this.render();
  }

  /** @param {string} id @param {SessionStatus | null | undefined} status */
  setStatus(id, status) {
    this.status.set(id, status || { type: 'idle' });
    const li = this.items.get(id);
    const s = this.sessions.get(id);
    if (li && s) this.fill(li, s);
  }

  /** @param {string | null} id */
  setActive(id) {
    this.activeId = id;
    for (const [sid, li] of this.items) li.classList.toggle('active', sid === id);
    this.look();
    this.summarize();
  }

  /** Applies an event of the global stream that concerns the list. @param {RelayEvent} event */
  apply(event) {
    const p = event.properties || {};
    const marked = this.attention.apply(event);
    if (marked) this.redraw(marked);
    switch (event.type) {
      case E.RELAY_SESSION_CREATED:
        if (p.team && p.sessionID) this.teams.set(p.sessionID, p.team);
        this.upsert(p.info);
        break;
      case E.SESSION_CREATED:
      case E.SESSION_UPDATED:
        this.upsert(p.info);
        break;
      case E.SESSION_DELETED:
        if (p.info) this.remove(p.info.id);
        break;
      case E.SESSION_STATUS:
        this.setStatus(p.sessionID, p.status);
        break;
      case E.SESSION_IDLE:
        this.setStatus(p.sessionID, { type: 'idle' });
        break;
      default:
    }
  }
}
