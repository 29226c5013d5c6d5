// @ts-check
// One open session: its store, its event stream and its views, from opening to closing.
//
// Opening reads the transcript (`GET …/messages`) first, then follows `…/events?after=<cursor>`.
// Events that arrive while the rest of the snapshot (status, todos, diff, requests) loads wait
// in a buffer and are applied on top of it. A reload (relay.reset, relay.session.synced) builds
// a fresh store, stream and views and then drops the old ones.
import { h, clear } from './dom.js';
import { api } from './api.js';
import * as E from './events.js';
import { EventStream } from './stream.js';
import { SessionStore } from './store.js';
import { TranscriptView, errorText } from './ui/transcript.js';
import { PanelsView } from './ui/panels.js';
import { PromptsView } from './ui/prompts.js';
import { SessionHeaderView } from './ui/header.js';
import { ProgressView } from './ui/status.js';
import { RevertBannerView, UsageView } from './ui/history.js';
import { WakeMarkerView } from './ui/wake.js';

/** @typedef {import('./types.js').RelayEvent} RelayEvent */
/** @typedef {import('./types.js').ConnectionState} ConnectionState */
/** @typedef {import('./types.js').StoreChange} StoreChange */
/** @typedef {import('./layout.js').Layout} Layout */
/** @typedef {import('./ui/composer.js').Composer} Composer */
/** @typedef {import('./ui/sessions.js').SessionList} SessionList */
/** @typedef {import('./ui/notices.js').Notify} Notify */
/** @typedef {import('./ui/notices.js').Banner} Banner */

/**
 * What a session needs from the page around it.
 * @typedef {{
 *   layout: Layout, composer: Composer, list: SessionList, banner: Banner, notify: Notify,
 *   navigate: (id: string) => void,
 *   onGone: (id: string) => void,
 *   onConnection: (state: ConnectionState | null) => void,
 * }} SessionContext
 */

/** @typedef {{destroy: () => void}} View */

const RELOAD_RETRY_MS = 3000;

export class SessionController {
  /** @param {string} id @param {SessionContext} ctx */
  constructor(id, ctx) {
    this.id = id;
    this.ctx = ctx;
    /** Counts loads: an answer that comes back after a newer load started is dropped. */
    this.generation = 0;
    this.closed = false;
    /** @type {SessionStore | null} */
    this.store = null;
    /** @type {EventStream | null} */
    this.stream = null;
    /** @type {View[]} */
    this.views = [];
    /** @type {SessionHeaderView | null} */
    this.header = null;
    /** @type {WakeMarkerView | null} */
    this.wake = null;
    /** @type {(() => void) | null} */
    this.unsubscribe = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    /** @type {{messageID: string, words: string[]} | null} a message to bring into view once drawn */
    this.revealing = null;
  }

  /** Brings a message into view and marks it and `words` in it (a search hit), now or once loaded.
   * @param {string} messageID @param {string[]} [words] */
  reveal(messageID, words = []) {
    this.revealing = { messageID, words };
    const transcript = this.views.find((view) => view instanceof TranscriptView);
    if (transcript instanceof TranscriptView && transcript.reveal(messageID, words)) this.revealing = null;
  }

  /** Shows the session pane in its loading state, then loads the session into it. */
  open() {
    const { layout, composer, list, banner } = this.ctx;
    layout.welcome.hidden = true;
    layout.sessionPane.hidden = false;
    layout.app.classList.add('has-session');
    layout.header.title.textContent = 'Loading…';
    layout.header.dir.textContent = '';
    banner.show('');
    clear(layout.transcript).append(h('div', { class: 'transcript-loading muted', text: 'Loading transcript…' }));
    clear(layout.panels);
    composer.setEnabled(false);
    list.setActive(this.id);
    return this.load({ reload: false });
  }

  /** Reads the session again from the relay and replaces what is shown. */
  reload() {
    return this.load({ reload: true });
  }

  /** Stops the stream and the views; nothing of this session changes the page any more. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    this.release();
    this.ctx.onConnection(null);
  }

  /** @param {{reload: boolean}} options */
  async load({ reload }) {
    const generation = ++this.generation;
    const stale = () => this.closed || generation !== this.generation;
    let sessionRes;
    let messagesRes;
    try {
      [sessionRes, messagesRes] = await Promise.all([api.getSession(this.id), api.messages(this.id)]);
    } catch (err) {
      if (stale()) return;
      if (reload) {
        // Keep trying: the live stream of this session may be stopped until a reload succeeds.
        this.ctx.notify(`Could not refresh the session: ${err.message}; retrying`);
        this.retryTimer = setTimeout(() => { if (!this.closed) this.reload(); }, RELOAD_RETRY_MS);
        return;
      }
      this.showLoadError(err);
      return;
    }
    if (stale()) return;
    this.release();

    const store = new SessionStore(this.id);
    store.session = sessionRes.session;
    store.load(messagesRes.messages || []);
    this.show(store, reload, sessionRes.access || null);

    // Events that arrive while the snapshot below loads wait, then replay on top of it.
    /** @type {RelayEvent[]} */
    const waiting = [];
    let ready = false;
    const stream = new EventStream(`/api/sessions/${encodeURIComponent(this.id)}/events`, {
      after: messagesRes.cursor || null,
      onEvent: (event) => { if (ready) this.route(event); else waiting.push(event); },
      onState: (state) => { if (!this.closed && stream === this.stream) this.ctx.onConnection(state); },
    });
    this.stream = stream;
    stream.start();

    const [status, todos, diff, requests] = await Promise.allSettled([
      api.status(this.id), api.todos(this.id), api.diff(this.id), api.requests(this.id)]);
    if (stale()) return;
    if (status.status === 'fulfilled') store.setStatus(status.value.status);
    if (todos.status === 'fulfilled') store.setTodos(todos.value.todos);
    if (diff.status === 'fulfilled') store.setDiff(diff.value.diff);
    if (requests.status === 'fulfilled') store.addRequests(requests.value);
    ready = true;
    for (const event of waiting.splice(0)) this.route(event);
  }

  /**
   * Builds the views of a freshly loaded store.
   * @param {SessionStore} store @param {boolean} reload
   * @param {import('./types.js').SessionAccess | null} access what the caller may do with it
   */
  show(store, reload, access) {
    const { layout, composer, notify, navigate } = this.ctx;
    this.store = store;
    const ctx = {
      openSession: navigate, navigate, notify, access,
      undo: (/** @type {string} */ id) => this.undo(id),
      fork: (/** @type {string} */ id) => this.fork(id),
    };
    this.header = new SessionHeaderView(layout.header, store, ctx);
    this.wake = new WakeMarkerView(layout.wake, store, { transcript: layout.transcript });
    this.views = [
      this.header,
      this.wake,
      new ProgressView(layout.progress, store),
      new TranscriptView(layout.transcript, store, ctx),
      new RevertBannerView(layout.revert, store, { redo: () => this.redo() }),
      new UsageView(layout.usage, store, { compact: () => this.compact() }),
      new PanelsView(layout.panels, store),
      new PromptsView(layout.requests, store, ctx),
    ];
    this.unsubscribe = store.on((change) => this.onStoreChange(change));
    if (this.revealing) this.reveal(this.revealing.messageID, this.revealing.words);
    this.showStatus();
    // Sharing, renaming and deleting a teammate's session is for the team's admins; a team's
    // viewer reads along. The relay refuses the others anyway (403 role_refused).
    const manages = access === null || access.right === 'manage';
    for (const button of [layout.header.share, layout.header.rename, layout.header.delete]) button.hidden = !manages;
    const readOnly = access !== null && access.right === 'read';
    composer.setEnabled(!readOnly, readOnly
      ? `You are a viewer of team ${access.team}: you can read this session and follow it live, but not prompt it.`
      : '');
    // Focus the prompt unless the reader is already busy elsewhere (say, renaming).
    if (!reload && (!document.activeElement || document.activeElement === document.body)) composer.focus();
  }

  /** What the rest of the page shows of this session: the list's row, the composer's Stop. @param {StoreChange} change */
  onStoreChange(change) {
    const store = /** @type {SessionStore} */ (this.store);
    if (change.type === 'session' && store.session) this.ctx.list.upsert(store.session);
    else if (change.type === 'status') this.showStatus();
    else if (change.type === 'deleted') this.ctx.onGone(this.id);
  }

  showStatus() {
    const store = /** @type {SessionStore} */ (this.store);
    this.ctx.composer.setBusy(store.status.type !== 'idle');
    this.ctx.list.setStatus(this.id, store.status);
  }

  /** @param {any} err an ApiError */
  showLoadError(err) {
    const { layout } = this.ctx;
    const missing = err.status === 404;
    layout.header.title.textContent = missing ? 'Session not found' : 'Could not open the session';
    clear(layout.transcript).append(h('div', { class: 'transcript-empty' },
      h('div', { class: 'empty-title', text: missing ? 'This session does not exist.' : 'Could not open the session.' }),
      h('div', { class: 'muted', text: missing ? 'It may have been deleted.' : err.message })));
  }

  /** One event of this session's stream: relay notices and errors here, the rest to the store. @param {RelayEvent} event */
  route(event) {
    const store = this.store;
    if (this.closed || !store) return;
    if (this.wake) this.wake.note();
    const p = event.properties || {};
    switch (event.type) {
      case E.RELAY_RESET:
        // The log no longer reaches back to our position: start over from a fresh transcript.
        if (this.stream) this.stream.stop();
        this.ctx.onConnection('reconnecting');
        this.reload();
        return;
      case E.RELAY_SESSION_SYNCED:
        if (p.sessionID === this.id) this.reload();
        else this.refreshRequests();
        return;
      case E.RELAY_SESSION_FAILED:
        // The relay stopped opencode's retries: its message names the provider and what to do.
        if (p.sessionID === this.id && p.message) this.ctx.banner.show(String(p.message));
        return;
      case E.RELAY_FILES_CHANGED:
        if (p.sessionID === this.id) store.filesChanged();
        return;
      case E.SESSION_ERROR: {
        const err = p.error || {};
        if ((!p.sessionID || p.sessionID === this.id) && err.name !== 'MessageAbortedError') {
          this.ctx.banner.show(errorText(err));
        }
        return;
      }
      default:
    }
    store.apply(event);
    if (event.type === E.SESSION_UPDATED && p.info) this.ctx.list.upsert(p.info);
  }

  // A sub-agent session was re-read: its requests may have changed.
  async refreshRequests() {
    const store = this.store;
    try {
      const requests = await api.requests(this.id);
      if (!this.closed && store === this.store && store) store.addRequests(requests);
    } catch { /* the next event brings them */ }
  }

  /** Renames the session; the header shows the new title at once. @param {string} title */
  async rename(title) {
    try {
      const res = await api.renameSession(this.id, title);
      if (!this.closed && this.store && res.session) this.store.setSession(res.session);
      this.ctx.list.upsert(res.session);
    } catch (err) {
      this.ctx.notify(`Could not rename the session: ${err.message}`);
      if (!this.closed && this.header) this.header.render();
    }
  }

  /**
   * Undoes a prompt and all after it (opencode restores the files), and puts the prompt's text
   * back in the composer to be edited, as opencode's own app does.
   * @param {string} messageID
   */
  async undo(messageID) {
    const store = this.store;
    try {
      const res = await api.revert(this.id, messageID);
      if (this.closed || store !== this.store || !store) return;
      store.setSession(res.session);
      const entry = store.messages.get(messageID);
      const text = entry ? entry.partOrder.map((pid) => entry.parts.get(pid))
        .filter((p) => p && p.type === 'text' && !p.synthetic).map((p) => (p && p.text) || '').join('\n') : '';
      if (text) { this.ctx.composer.setText(text); this.ctx.composer.focus(); }
    } catch (err) {
      this.ctx.notify(`Could not undo: ${err.message}`);
    }
  }

  /** Undoes the newest prompt not undone yet (the command menu's /undo). */
  async undoLast() {
    const store = this.store;
    if (!store) return;
    const from = store.session && store.session.revert ? store.session.revert.messageID : null;
    const prompts = store.order.filter((id) => {
      const entry = store.messages.get(id);
      return entry && entry.info.role === 'user' && (!from || id < from);
    });
    const last = prompts[prompts.length - 1];
    if (last) await this.undo(last);
    else this.ctx.notify('There is no prompt to undo.');
  }

  /** Takes the last undo back (files too). */
  async redo() {
    try {
      const res = await api.unrevert(this.id);
      if (!this.closed && this.store) this.store.setSession(res.session);
    } catch (err) {
      this.ctx.notify(`Could not redo: ${err.message}`);
    }
  }

  /** A new session with the conversation up to and including this message; opens it. @param {string} messageID */
  async fork(messageID) {
    const order = this.store ? this.store.order : [];
    const next = order[order.indexOf(messageID) + 1] || null;
    try {
      const session = await api.fork(this.id, next);
      this.ctx.list.upsert(session);
      this.ctx.navigate(session.id);
    } catch (err) {
      this.ctx.notify(`Could not fork the session: ${err.message}`);
    }
  }

  /** A new session with the whole conversation so far (the command menu's /fork). */
  async forkAll() {
    const order = this.store ? this.store.order : [];
    if (order.length) await this.fork(order[order.length - 1]);
    else this.ctx.notify('There is nothing to fork yet.');
  }

  /** Summarizes the session so far (opencode's compaction) with its last used model. */
  async compact() {
    try {
      await api.summarize(this.id);
    } catch (err) {
      this.ctx.notify(`Could not compact the session: ${err.message}`);
    }
  }

  // Drops the current store's stream, views and subscription (before a reload shows new ones).
  release() {
    if (this.stream) this.stream.stop();
    this.stream = null;
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    for (const view of this.views) view.destroy();
    this.views = [];
    this.header = null;
    this.wake = null;
  }
}
