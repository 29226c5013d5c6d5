// App shell: routing (/?session=<id>), the global and per-session event streams, and wiring.
import './styles.css';
import { h, clear, perFrame } from './dom.js';
import { api, onUnauthorized } from './api.js';
import { EventStream } from './stream.js';
import { SessionStore } from './store.js';
import { SessionList } from './ui/sessions.js';
import { TranscriptView, errorText } from './ui/transcript.js';
import { PanelsView } from './ui/panels.js';
import { PromptsView } from './ui/prompts.js';
import { Composer } from './ui/composer.js';
import { progressText, CONNECTION_LABEL } from './ui/status.js';

const STATUS_LABEL = { idle: 'Idle', busy: 'Working', retry: 'Retrying' };

// ---- layout -------------------------------------------------------------------------------

const connection = h('div', { class: 'connection', testid: 'connection-status', 'data-state': 'connecting', role: 'status' },
  h('span', { class: 'connection-dot' }), h('span', { class: 'connection-label', text: 'Connecting…' }));
const sidebar = h('div', { class: 'sidebar-body' });
const titleEl = h('h1', { class: 'session-name', testid: 'session-title' });
const dirEl = h('div', { class: 'session-sub' });
const statusEl = h('span', { class: 'status-pill', testid: 'status-indicator', 'data-status': 'idle' });
const renameBtn = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'session-rename', text: 'Rename' });
const deleteBtn = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'session-delete', text: 'Delete' });
const panelsBtn = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'toggle-panels', text: 'Panels', 'aria-pressed': 'true' });
const backBtn = h('button', { type: 'button', class: 'btn btn-ghost only-narrow', testid: 'back-to-list', text: '←', 'aria-label': 'All sessions' });
const header = h('header', { class: 'session-header' },
  backBtn,
  h('div', { class: 'title-wrap' }, titleEl, dirEl),
  h('div', { class: 'header-actions' }, statusEl, renameBtn, deleteBtn, panelsBtn));
const transcriptEl = h('div', { class: 'transcript', testid: 'transcript' });
const progressEl = h('div', { class: 'progress', testid: 'progress', hidden: true },
  h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { class: 'progress-text' }));
const bannerEl = h('div', { class: 'banner', testid: 'session-error', role: 'alert', hidden: true });
const requestsEl = h('div', { class: 'requests', hidden: true });
const composerEl = h('div', { class: 'composer' });
const panelsEl = h('aside', { class: 'panels' });
const welcome = h('div', { class: 'welcome' },
  h('div', { class: 'welcome-title', text: 'opencode relay' }),
  h('p', { class: 'muted', text: 'Pick a session on the left, or start a new one.' }));
const sessionPane = h('div', { class: 'session-pane', hidden: true },
  header,
  h('div', { class: 'session-body' },
    h('div', { class: 'center' }, transcriptEl, progressEl, bannerEl, requestsEl, composerEl),
    panelsEl));
const toasts = h('div', { class: 'toasts', 'aria-live': 'assertive' });

const app = h('div', { class: 'app' },
  h('aside', { class: 'sidebar' },
    h('div', { class: 'brand' }, h('span', { class: 'brand-name', text: 'opencode relay' }), connection),
    sidebar),
  h('main', { class: 'main' }, welcome, sessionPane),
  toasts);
document.body.append(app);

// ---- notices ------------------------------------------------------------------------------

function notify(message, kind = 'error') {
  const toast = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: 'alert', text: message });
  toast.addEventListener('click', () => toast.remove());
  toasts.append(toast);
  setTimeout(() => toast.remove(), 8000);
}

function showBanner(text) {
  bannerEl.hidden = !text;
  clear(bannerEl);
  if (text) {
    bannerEl.append(h('span', { text }), h('button', {
      type: 'button', class: 'banner-close', 'aria-label': 'Dismiss', text: '×', onclick: () => showBanner(''),
    }));
  }
}

// ---- login (when the relay has RELAY_AUTH on) ------------------------------------------------

let loginShown = false;
function showLogin() {
  if (loginShown) return;
  loginShown = true;
  const input = h('input', { type: 'password', class: 'search', testid: 'login-token', placeholder: 'Access token', autocomplete: 'current-password', 'aria-label': 'Access token' });
  const error = h('div', { class: 'login-error', testid: 'login-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'login-submit', text: 'Sign in' });
  const form = h('form', { class: 'login-card' },
    h('div', { class: 'welcome-title', text: 'opencode relay' }),
    h('p', { class: 'muted', text: 'This relay needs an access token (opencode-relay token create).' }),
    input, error, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    button.disabled = true;
    try {
      await api.login(input.value.trim());
      location.reload(); // every stream and request starts again with the login cookie
    } catch (err) {
      error.hidden = false;
      error.textContent = err.status === 401 ? 'That token is not valid.' : err.message;
      button.disabled = false;
    }
  });
  document.body.append(h('div', { class: 'login', testid: 'login' }, form));
  input.focus();
}
onUnauthorized(showLogin);

async function showPrincipal() {
  let me;
  try { me = await api.me(); } catch { return; } // older relays have no /api/me
  if (!me || !me.auth || !me.principal) return;
  const out = h('button', { type: 'button', class: 'link-button', testid: 'logout', text: 'Sign out' });
  out.addEventListener('click', async () => {
    try { await api.logout(); } catch { /* the cookie goes either way */ }
    location.reload();
  });
  sidebar.after(h('div', { class: 'principal' },
    h('span', { class: 'muted small', testid: 'principal', text: me.principal.name || me.principal.id }), out));
}

// ---- connection state -----------------------------------------------------------------------

let globalState = 'connecting';
let sessionState = null;
function renderConnection() {
  const state = sessionState || globalState;
  connection.dataset.state = state;
  connection.querySelector('.connection-label').textContent = CONNECTION_LABEL[state] || state;
}

// ---- session list and global stream ---------------------------------------------------------

const list = new SessionList(sidebar, { onOpen: (id) => navigate(id), onNew: createSession, notify });

const globalStream = new EventStream('/api/events', {
  onEvent: (event) => {
    if (event.type === 'relay.reset') {
      globalStream.restartLive();
      list.load();
      return;
    }
    list.apply(event);
    const p = event.properties || {};
    if (event.type === 'session.deleted' && p.info && current && p.info.id === current.id) sessionGone();
  },
  onState: (state) => { globalState = state; renderConnection(); },
});

// ---- composer -----------------------------------------------------------------------------

const composer = new Composer(composerEl, {
  onSend: async (body) => {
    if (!current) return false;
    showBanner('');
    try {
      await api.prompt(current.id, body);
      return true;
    } catch (err) {
      notify(`The prompt was not sent: ${err.message}`);
      return false;
    }
  },
  onAbort: async () => {
    if (!current) return;
    composer.abort.disabled = true;
    try {
      await api.abort(current.id);
    } catch (err) {
      notify(`Could not stop the agent: ${err.message}`);
    } finally {
      composer.abort.disabled = false;
    }
  },
});

// ---- the open session ---------------------------------------------------------------------

let current = null; // {id, store, stream, views}
let openToken = 0;

function teardown() {
  if (!current) return;
  if (current.stream) current.stream.stop();
  for (const v of current.views || []) v.destroy();
  current = null;
  sessionState = null;
  renderConnection();
}

function renderHeader(store) {
  const s = store.session || {};
  titleEl.textContent = s.title || 'Untitled session';
  clear(dirEl).append(s.directory || '');
  if (s.parentID) {
    const parent = h('a', { href: `/?session=${encodeURIComponent(s.parentID)}`, class: 'link parent-link', testid: 'parent-link', text: 'sub-agent of the parent session' });
    parent.addEventListener('click', (e) => { e.preventDefault(); navigate(s.parentID); });
    dirEl.append(' · ', parent);
  }
  document.title = `${s.title || 'Session'} · opencode relay`;
}

function renderStatus(store) {
  const type = (store.status && store.status.type) || 'idle';
  statusEl.dataset.status = type;
  statusEl.textContent = STATUS_LABEL[type] || type;
  composer.setBusy(type !== 'idle');
  list.setStatus(store.sessionID, store.status);
  renderProgress(store);
}

function renderProgress(store) {
  const text = progressText(store);
  progressEl.hidden = !text;
  progressEl.querySelector('.progress-text').textContent = text || '';
}

function onSessionEvent(id, event) {
  if (!current || current.id !== id) return;
  const store = current.store;
  const p = event.properties || {};
  switch (event.type) {
    case 'relay.reset':
      // The log no longer reaches back to our position: start over from a fresh transcript.
      current.stream.stop();
      sessionState = 'reconnecting';
      renderConnection();
      openSession(id, { reload: true });
      return;
    case 'relay.session.synced':
      if (p.sessionID === id) openSession(id, { reload: true });
      else refreshRequests(id);
      return;
    case 'session.error': {
      const err = p.error || {};
      if (!p.sessionID || p.sessionID === id) {
        if (err.name !== 'MessageAbortedError') showBanner(errorText(err));
      }
      return;
    }
    case 'session.deleted':
      if (p.info && p.info.id === id) sessionGone();
      return;
    default:
  }
  store.apply(event);
  if (event.type === 'session.updated' && p.info) list.upsert(p.info);
}

async function refreshRequests(id) {
  try {
    const req = await api.requests(id);
    if (!current || current.id !== id) return;
    for (const r of req.permissions || []) current.store.addPermission(r);
    for (const q of req.questions || []) current.store.addQuestion(q);
  } catch { /* next event brings them */ }
}

function sessionGone() {
  teardown();
  notify('This session was deleted.', 'info');
  history.replaceState(null, '', '/');
  route();
}

async function openSession(id, { reload = false } = {}) {
  const token = ++openToken;
  if (!reload) {
    teardown();
    welcome.hidden = true;
    sessionPane.hidden = false;
    app.classList.add('has-session');
    titleEl.textContent = 'Loading…';
    dirEl.textContent = '';
    showBanner('');
    clear(transcriptEl).append(h('div', { class: 'transcript-loading muted', text: 'Loading transcript…' }));
    clear(panelsEl);
    composer.setEnabled(false);
    list.setActive(id);
  }
  let sessionRes;
  let messagesRes;
  try {
    [sessionRes, messagesRes] = await Promise.all([api.getSession(id), api.messages(id)]);
  } catch (err) {
    if (token !== openToken) return;
    if (reload) {
      // Keep trying: the live stream of this session may be stopped until a reload succeeds.
      notify(`Could not refresh the session: ${err.message}; retrying`);
      setTimeout(() => { if (current && current.id === id) openSession(id, { reload: true }); }, 3000);
      return;
    }
    titleEl.textContent = err.status === 404 ? 'Session not found' : 'Could not open the session';
    clear(transcriptEl).append(h('div', { class: 'transcript-empty' },
      h('div', { class: 'empty-title', text: err.status === 404 ? 'This session does not exist.' : 'Could not open the session.' }),
      h('div', { class: 'muted', text: err.status === 404 ? 'It may have been deleted.' : err.message })));
    return;
  }
  if (token !== openToken) return;
  teardown();

  const store = new SessionStore(id);
  store.session = sessionRes.session;
  store.load(messagesRes.messages || []);
  const ctx = { openSession: (sid) => navigate(sid) };
  const views = [
    new TranscriptView(transcriptEl, store, ctx),
    new PanelsView(panelsEl, store),
    new PromptsView(requestsEl, store, { notify }),
  ];
  current = { id, store, views, stream: null };
  renderHeader(store);
  renderStatus(store);
  composer.setEnabled(true);
  // Focus the prompt unless the reader is already busy elsewhere (say, renaming).
  if (!reload && (!document.activeElement || document.activeElement === document.body)) composer.focus();
  store.on((change) => {
    if (change.type === 'session') { renderHeader(store); if (store.session) list.upsert(store.session); }
    else if (change.type === 'status') renderStatus(store);
    else perFrame(`progress:${id}`, () => renderProgress(store));
  });

  // Events that arrive while the snapshot below loads wait, then replay on top of it.
  const waiting = [];
  let ready = false;
  current.stream = new EventStream(`/api/sessions/${encodeURIComponent(id)}/events`, {
    after: messagesRes.cursor || null,
    onEvent: (event) => { if (ready) onSessionEvent(id, event); else waiting.push(event); },
    onState: (state) => { if (current && current.id === id) { sessionState = state; renderConnection(); } },
  }).start();

  const [status, todos, diff, requests] = await Promise.allSettled([
    api.status(id), api.todos(id), api.diff(id), api.requests(id)]);
  if (token !== openToken) return;
  if (status.status === 'fulfilled') store.setStatus(status.value.status);
  if (todos.status === 'fulfilled') store.setTodos(todos.value.todos);
  if (diff.status === 'fulfilled') store.setDiff(diff.value.diff);
  if (requests.status === 'fulfilled') {
    for (const r of requests.value.permissions || []) store.addPermission(r);
    for (const q of requests.value.questions || []) store.addQuestion(q);
  }
  ready = true;
  for (const event of waiting.splice(0)) onSessionEvent(id, event);
}

// ---- header actions -------------------------------------------------------------------------

renameBtn.addEventListener('click', () => {
  if (!current) return;
  const id = current.id;
  const input = h('input', { class: 'title-input', testid: 'session-title-input', value: titleEl.textContent, 'aria-label': 'Session title' });
  titleEl.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    input.replaceWith(titleEl);
    const title = input.value.trim();
    if (!save || !title || title === titleEl.textContent) return;
    titleEl.textContent = title;
    try {
      const res = await api.renameSession(id, title);
      if (current && current.id === id && res.session) current.store.setSession(res.session);
      list.upsert(res.session);
    } catch (err) {
      notify(`Could not rename the session: ${err.message}`);
      if (current && current.id === id) renderHeader(current.store);
    }
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
});

let deleteArmed = null;
deleteBtn.addEventListener('click', async () => {
  if (!current) return;
  if (!deleteArmed) {
    // Two clicks, no modal dialog: the second one confirms.
    deleteBtn.textContent = 'Confirm delete';
    deleteBtn.classList.add('btn-danger');
    deleteArmed = setTimeout(() => { disarm(); }, 4000);
    return;
  }
  disarm();
  const id = current.id;
  try {
    await api.deleteSession(id);
    list.remove(id);
    if (current && current.id === id) {
      teardown();
      history.pushState(null, '', '/');
      route();
    }
  } catch (err) {
    notify(`Could not delete the session: ${err.message}`);
  }
});
function disarm() {
  clearTimeout(deleteArmed);
  deleteArmed = null;
  deleteBtn.textContent = 'Delete';
  deleteBtn.classList.remove('btn-danger');
}

panelsBtn.addEventListener('click', () => {
  const hidden = sessionPane.classList.toggle('no-panels');
  panelsBtn.setAttribute('aria-pressed', String(!hidden));
});

async function createSession() {
  try {
    const session = await api.createSession({});
    list.upsert(session);
    navigate(session.id);
  } catch (err) {
    notify(`Could not create a session: ${err.message}`);
  }
}

// ---- routing ------------------------------------------------------------------------------

function routeId() {
  const q = new URLSearchParams(location.search).get('session');
  if (q) return q;
  const m = location.hash.match(/^#\/s\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

function navigate(id) {
  if (routeId() !== id) history.pushState(null, '', `/?session=${encodeURIComponent(id)}`);
  route();
}

function route() {
  const id = routeId();
  if (id && current && current.id === id) return undefined;
  if (!id) {
    openToken++;
    teardown();
    list.setActive(null);
    sessionPane.hidden = true;
    welcome.hidden = false;
    app.classList.remove('has-session');
    document.title = 'opencode relay';
    return undefined;
  }
  return openSession(id);
}

backBtn.addEventListener('click', () => { history.pushState(null, '', '/'); route(); });
window.addEventListener('popstate', route);
window.addEventListener('hashchange', route);

// ---- start --------------------------------------------------------------------------------

// The open session's transcript goes first: it is what the reader waits for, and the browser
// has only a few connections per host. Pickers, health and list statuses follow once it is drawn.
const opened = Promise.resolve(route()).catch(() => {});
globalStream.start();
list.idle = opened;
list.load();
opened.then(() => {
  showPrincipal();
  api.agents().then((r) => composer.setAgents(r.agents)).catch(() => {});
  api.providers().then((r) => composer.setProviders(r)).catch(() => {});
  api.health().catch((err) => {
    const d = err.data || {};
    const part = d.opencode && !d.opencode.ok ? `opencode is unreachable (${d.opencode.error || 'no answer'})`
      : d.redis && !d.redis.ok ? `Redis is unreachable (${d.redis.error || 'no answer'})` : err.message;
    notify(`The relay is not healthy: ${part}`);
  });
});
