// @ts-check
// The read-only view a share link opens (/share/<token>): one session's transcript, live.
//
// It reads `/share/<token>/session` (the session, its status and transcript, and the event id
// they reflect), then follows `/share/<token>/events?after=<cursor>`. The token in the path is
// the only credential: nothing here calls /api, so a reader who is not signed in never meets
// the sign-in form, and one who is sees exactly what the link shows. There is no composer, no
// session list, no side panels and no action buttons.
import './styles.css';
import { h, clear } from './dom.js';
import * as E from './events.js';
import { buildLayout } from './layout.js';
import { EventStream } from './stream.js';
import { SessionStore } from './store.js';
import { TranscriptView } from './ui/transcript.js';
import { SessionHeaderView } from './ui/header.js';
import { ProgressView } from './ui/status.js';
import { CONNECTION_LABEL } from './ui/status.js';

/** @typedef {{destroy: () => void}} View */

/** The share token the page's path names, else null. */
export function sharedToken() {
  const m = location.pathname.match(/^\/share\/([^/]+)\/?$/);
  return m ? decodeURIComponent(m[1]) : null;
}

/** @param {string} token */
export function startShared(token) {
  const base = `/share/${encodeURIComponent(token)}`;
  const layout = buildLayout();
  document.body.append(layout.app);
  layout.app.classList.add('shared-view', 'has-session');
  layout.welcome.hidden = true;
  layout.sessionPane.hidden = false;
  layout.composer.hidden = true;
  layout.panels.hidden = true;
  for (const el of [layout.header.share, layout.header.exportMenu, layout.header.rename,
    layout.header.delete, layout.header.panels, layout.header.back]) el.remove();
  const badge = h('span', { class: 'shared-badge', testid: 'shared-badge', text: 'Read-only' });
  layout.header.status.before(badge, layout.connection); // the sidebar, where it lives, is not shown

  /** @param {string} state */
  const showConnection = (state) => {
    layout.connection.dataset.state = state;
    layout.connectionLabel.textContent = CONNECTION_LABEL[/** @type {keyof CONNECTION_LABEL} */ (state)] || state;
  };

  /** @type {View[]} */
  let views = [];
  /** @type {EventStream | null} */
  let stream = null;

  /** @param {string} title @param {string} text */
  const gone = (title, text) => {
    if (stream) stream.stop();
    stream = null;
    for (const view of views) view.destroy();
    views = [];
    showConnection('closed');
    layout.header.status.hidden = true;
    layout.header.title.textContent = title;
    layout.header.dir.textContent = '';
    clear(layout.transcript).append(h('div', { class: 'transcript-empty', testid: 'share-gone' },
      h('div', { class: 'empty-title', text: title }), h('div', { class: 'muted', text })));
  };

  const load = async () => {
    let res;
    try {
      res = await fetch(`${base}/session`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch {
      gone('Cannot reach the relay', 'Check your network, then reload the page.');
      return;
    }
    const data = await res.json().catch(() => null);
    if (!res.ok || !data) {
      const message = (data && data.error && data.error.message) || `The relay answered ${res.status}.`;
      gone(res.status === 404 ? 'This link no longer works' : 'Could not open the shared session', message);
      return;
    }
    if (stream) stream.stop();
    for (const view of views) view.destroy();
    const store = new SessionStore(data.session.id);
    store.session = data.session;
    store.load(data.messages || []);
    store.setStatus(data.status);
    const ctx = { navigate: () => {} };
    views = [
      new SessionHeaderView(layout.header, store, ctx),
      new ProgressView(layout.progress, store),
      new TranscriptView(layout.transcript, store, {}),
    ];
    document.title = `${data.session.title || 'Session'} · shared · opencode relay`;
    const live = new EventStream(`${base}/events`, {
      after: data.cursor || null,
      onEvent: (event) => {
        if (event.type === E.RELAY_RESET || (event.type === E.RELAY_SESSION_SYNCED
            && event.properties && event.properties.sessionID === store.sessionID)) {
          load();
          return;
        }
        store.apply(event);
      },
      onState: (state) => {
        if (live !== stream) return;
        showConnection(state);
        // A dropped stream may be a revoked or expired link: then say so and stop.
        if (state === 'reconnecting') recheck();
      },
    });
    stream = live;
    live.start();
  };

  // The stream stopped for good: find out whether the link still works.
  const recheck = async () => {
    try {
      const res = await fetch(`${base}/session`, { method: 'GET', cache: 'no-store' });
      if (res.status === 404) {
        const data = await res.json().catch(() => null);
        gone('This link no longer works', (data && data.error && data.error.message) || 'It was revoked or has expired.');
      }
    } catch { /* offline: the stream retries by itself */ }
  };

  load();
}
