// @ts-check
// App shell: routing (/?session=<id>) and the wiring of the page's parts: the global event
// stream, the session list, the composer, and the open session (session.js).
import './styles.css';
import { api, onReach, onUnauthorized } from './api.js';
import { h } from './dom.js';
import * as E from './events.js';
import { buildLayout } from './layout.js';
import { EventStream } from './stream.js';
import { SessionController } from './session.js';
import { SessionList } from './ui/sessions.js';
import { Composer } from './ui/composer.js';
import { HeaderActions } from './ui/header.js';
import { Banner, toaster } from './ui/notices.js';
import { showLogin, showPrincipal } from './ui/login.js';
import { CONNECTION_LABEL } from './ui/status.js';
import { ProviderSetup } from './ui/providers.js';
import { ProjectPicker } from './ui/projects.js';
import { TeamPicker } from './ui/teams.js';
import { registerWorker, onOpenRequest } from './pwa.js';
import { OfflineScreen } from './ui/offline.js';
import { NotifyToggle } from './ui/notify.js';
import { errorText } from './ui/transcript.js';
import { followVisualViewport } from './ui/viewport.js';
import { ShareActions, ExportMenu, downloadExport } from './ui/share.js';
import { sharedToken, startShared } from './shared.js';

/** @typedef {import('./types.js').ConnectionState} ConnectionState */

/** The session id the URL names: `/?session=<id>`, or the older `#/s/<id>`. */
function routeId() {
  const q = new URLSearchParams(location.search).get('session');
  if (q) return q;
  const m = location.hash.match(/^#\/s\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

/** The message the URL asks to show (a search hit): `&message=<id>`. */
function routeMessage() {
  return new URLSearchParams(location.search).get('message');
}

function start() {
  const layout = buildLayout();
  document.body.append(layout.app);
  followVisualViewport(document.documentElement);
  const notify = toaster(layout.toasts);
  const banner = new Banner(layout.banner);
  onUnauthorized(showLogin);
  const worker = registerWorker();
  // Cannot reach the relay: cover the page and retry; once back, pick up the streams and list.
  const offline = new OfflineScreen(document.body, { onBack: () => resume() });
  onReach((reached) => { if (reached) offline.reached(); else offline.unreachable(); });

  /** @type {SessionController | null} */
  let current = null;

  // ---- connection dot: the open session's stream, or else the global one ------------------
  /** @type {ConnectionState} */
  let globalState = 'connecting';
  /** @type {ConnectionState | null} */
  let sessionState = null;
  const renderConnection = () => {
    const state = sessionState || globalState;
    layout.connection.dataset.state = state;
    layout.connectionLabel.textContent = CONNECTION_LABEL[state] || state;
  };

  // ---- the session list as a drawer (phone) ------------------------------------------------
  /** @param {boolean} open */
  const setDrawer = (open) => {
    layout.app.classList.toggle('drawer-open', open);
    layout.header.back.setAttribute('aria-expanded', String(open));
    if (open) layout.sessionPane.classList.remove('panels-open');
    showPanelsState();
  };

  // ---- routing ----------------------------------------------------------------------------
  /** Words to mark in the message a search hit opens (not in the URL: a reload only outlines it). */
  let revealWords = /** @type {string[]} */ ([]);

  /** @param {string} id @param {string | null} [messageID] a message to bring into view
   * @param {string[]} [words] words to mark in it */
  const navigate = (id, messageID = null, words = []) => {
    revealWords = words;
    const url = `/?session=${encodeURIComponent(id)}${messageID ? `&message=${encodeURIComponent(messageID)}` : ''}`;
    if (routeId() !== id || routeMessage() !== messageID) history.pushState(null, '', url);
    route();
  };

  const closeSession = () => {
    if (current) current.close();
    current = null;
  };

  const route = () => {
    const id = routeId();
    setDrawer(false);
    const message = routeMessage();
    if (id && current && current.id === id) {
      if (message) current.reveal(message, revealWords);
      return undefined;
    }
    closeSession();
    composer.reset();
    if (!id) {
      list.setActive(null);
      layout.sessionPane.hidden = true;
      layout.welcome.hidden = false;
      layout.app.classList.remove('has-session');
      document.title = 'opencode relay';
      return undefined;
    }
    current = new SessionController(id, {
      layout, composer, list, banner, notify, navigate,
      onGone: sessionGone,
      onConnection: (state) => { sessionState = state; renderConnection(); if (state === 'reconnecting') offline.suspect(); },
    });
    if (message) current.reveal(message, revealWords);
    return current.open();
  };

  /** The open session was deleted elsewhere: let go of it. @param {string} id */
  const sessionGone = (id) => {
    if (!current || current.id !== id) return;
    closeSession();
    notify('This session was deleted.', 'info');
    history.replaceState(null, '', '/');
    route();
  };

  /**
   * Opens a new session in `directory` (default: the picked project's); null if refused.
   * @param {string | null} [directory] @returns {Promise<import('./types.js').SessionInfo | null>}
   */
  const createSession = async (directory = projects.target()) => {
    try {
      const team = teams.chosen();
      const session = await api.createSession({
        ...(directory ? { directory } : {}), ...(team !== undefined ? { team } : {}) });
      list.upsert(session);
      navigate(session.id);
      return session;
    } catch (err) {
      notify(`Could not create a session: ${err.message}`);
      return null;
    }
  };

  const deleteOpenSession = async () => {
    if (!current) return;
    const id = current.id;
    try {
      await api.deleteSession(id);
      list.remove(id);
      if (current && current.id === id) {
        closeSession();
        history.pushState(null, '', '/');
        route();
      }
    } catch (err) {
      notify(`Could not delete the session: ${err.message}`);
    }
  };

  /** Downloads the open session as Markdown from the relay (the Export menu has JSON too). */
  const exportSession = () => {
    if (!current) { notify('Open a session to export it.', 'info'); return; }
    downloadExport(current.id, 'markdown');
  };

  // ---- the page's parts ---------------------------------------------------------------------
  const list = new SessionList(layout.sidebar, {
    onOpen: navigate, onNew: createSession, notify, storage: localStorage,
    onAttention: ({ unread, waiting }) => {
      // On a phone the list hides in the drawer: its button says when another session wants you.
      const back = layout.header.back;
      back.dataset.attention = waiting ? 'waiting' : unread ? 'unread' : '';
      back.setAttribute('aria-label', waiting ? `Sessions (${waiting} waiting for you)`
        : unread ? `Sessions (${unread} with new activity)` : 'Sessions');
    },
  });
  const teamRoot = h('div', { class: 'project-picker team-picker' });
  const projectRoot = h('div', { class: 'project-picker' });
  layout.sidebar.before(teamRoot, projectRoot);
  const teams = new TeamPicker(teamRoot, { notify });
  const projects = new ProjectPicker(projectRoot, {
    onChange: (dir) => list.setProject(dir),
    onStart: async (dir) => {
      const session = await createSession(dir);
      if (session && session.directory) projects.choose(session.directory); // as resolved
      return Boolean(session);
    },
    notify,
  });
  const providers = new ProviderSetup(layout.main, {
    notify, onChange: () => api.providers().then((r) => composer.setProviders(r)).catch(() => {}),
  });
  const foot = h('div', { class: 'sidebar-foot' }, providers.button);
  layout.sidebar.after(foot);
  const notifications = new NotifyToggle(foot, {
    registration: worker, session: (id) => list.sessions.get(id) || null, errorText,
    open: (url) => { history.pushState(null, '', url); route(); },
  });
  // A notification's click (handled by the service worker) opens its session here.
  onOpenRequest((url) => { history.pushState(null, '', url.pathname + url.search + url.hash); route(); });

  /** The relay answers again: reload what failed, and resume the streams now, not after their backoff. */
  const resume = () => {
    list.load();
    if (globalStream.state !== 'open') globalStream.reconnectNow();
    if (current && !current.store) { closeSession(); route(); } // it never loaded: open it again
    else if (current && current.stream && current.stream.state !== 'open') current.stream.reconnectNow();
  };

  const composer = new Composer(layout.composer, {
    onSend: async (body) => {
      if (!current) return false;
      banner.show('');
      try {
        await api.prompt(current.id, body);
        return true;
      } catch (err) {
        notify(`The prompt was not sent: ${err.message}`);
        return false;
      }
    },
    onCommand: async (body) => {
      if (!current) return false;
      banner.show('');
      // opencode answers a command once the model is done; its progress arrives as events, so
      // the box frees up once the relay has taken it (a refusal comes at once).
      const sent = api.command(current.id, body);
      try {
        await Promise.race([sent, new Promise((resolve) => { setTimeout(resolve, 1500); })]);
      } catch (err) {
        notify(`The command was not run: ${err.message}`);
        return false;
      }
      sent.catch((err) => notify(`The command failed: ${err.message}`));
      return true;
    },
    actions: [
      { name: 'new', description: 'Start a new session', run: () => { createSession(); } },
      { name: 'undo', description: 'Undo the last prompt and its file changes', run: () => { if (current) current.undoLast(); } },
      { name: 'redo', description: 'Bring back what was undone', run: () => { if (current) current.redo(); } },
      { name: 'fork', description: 'Copy this session into a new one', run: () => { if (current) current.forkAll(); } },
      { name: 'compact', description: 'Summarize the session so far to free context', run: () => { if (current) current.compact(); } },
      { name: 'export', description: 'Download this session as Markdown (the header\'s Export menu has JSON too)', run: () => { exportSession(); } },
    ],
    commands: async () => (await api.commands(current ? current.id : undefined)).commands,
    files: async (query) => {
      if (!current) return { directory: null, files: [] };
      return api.files(current.id, query);
    },
    notify,
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

  new HeaderActions(layout.header, {
    isOpen: () => Boolean(current),
    rename: async (title) => { if (current) await current.rename(title); },
    remove: deleteOpenSession,
  });
  // Panels: beside the transcript on a wide screen (the button hides them), over it on a narrow
  // one (the button shows them; on a phone they take the transcript's place).
  const narrow = window.matchMedia('(max-width: 1100px)');
  const showPanelsState = () => {
    const pane = layout.sessionPane.classList;
    const shown = narrow.matches ? pane.contains('panels-open') : !pane.contains('no-panels');
    layout.header.panels.setAttribute('aria-pressed', String(shown));
  };
  new ShareActions(layout.header, { sessionId: () => (current ? current.id : null), notify });
  new ExportMenu(layout.header, { sessionId: () => (current ? current.id : null) });
  layout.header.panels.addEventListener('click', () => {
    layout.sessionPane.classList.toggle(narrow.matches ? 'panels-open' : 'no-panels');
    showPanelsState();
  });
  narrow.addEventListener('change', showPanelsState);
  showPanelsState();
  layout.header.back.addEventListener('click', () => setDrawer(!layout.app.classList.contains('drawer-open')));
  layout.scrim.addEventListener('click', () => setDrawer(false));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && layout.app.classList.contains('drawer-open')) setDrawer(false);
  });
  window.addEventListener('popstate', route);
  window.addEventListener('hashchange', route);

  const globalStream = new EventStream('/api/events', {
    onEvent: (event) => {
      if (event.type === E.RELAY_RESET) {
        globalStream.restartLive();
        list.load();
        return;
      }
      list.apply(event);
      notifications.consider(event);
      const p = event.properties || {};
      if (event.type === E.RELAY_SESSION_CREATED && p.info && !p.info.parentID) projects.notice(p.info.directory);
      if (event.type === E.SESSION_DELETED && p.info) sessionGone(p.info.id);
    },
    onState: (state) => { globalState = state; renderConnection(); if (state === 'reconnecting') offline.suspect(); },
  });

  // The open session's transcript goes first: it is what the reader waits for, and the browser
  // has only a few connections per host. Pickers, health and list statuses follow once it is drawn.
  const opened = Promise.resolve(route()).catch(() => {});
  globalStream.start();
  list.idle = opened;
  list.load();
  opened.then(() => {
    projects.load();
    teams.load();
    showPrincipal(layout.sidebar).then((principal) => { if (principal) list.setPrincipal(principal); });
    providers.load();
    api.agents().then((r) => composer.setAgents(r.agents)).catch(() => {});
    api.providers().then((r) => composer.setProviders(r)).catch(() => {});
    api.health().catch((err) => {
      const d = err.data || {};
      const part = d.opencode && !d.opencode.ok ? `opencode is unreachable (${d.opencode.error || 'no answer'})`
        : d.redis && !d.redis.ok ? `Redis is unreachable (${d.redis.error || 'no answer'})` : err.message;
      notify(`The relay is not healthy: ${part}`);
    });
  });
}

// A share link (/share/<token>) opens the read-only view of one session; anything else the app.
const token = sharedToken();
if (token) startShared(token);
else start();
