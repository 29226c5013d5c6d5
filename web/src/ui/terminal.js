// @ts-check
// The session's terminal: a shell in the session's directory on the opencode machine, drawn by
// xterm.js. Only for principals the relay grants terminals (`GET /api/me`: principal.terminal);
// for others the panel stays hidden (the relay would answer 403 anyway).
//
// `POST /api/sessions/{id}/terminal` gives this principal's live terminal of the session (the
// same shell after a reload) or opens one; the WebSocket `/api/terminals/{pty}/connect` streams
// it. opencode sends a binary control frame `\x00{"cursor": N}` after every (re)connect, N being
// the output so far; the view counts on from there, so a reconnect after a dropped connection
// asks for exactly the output it missed, and a fresh page for all of it (cursor 0).
//
// xterm.js is loaded on first use (its own chunk: most pages never open a terminal); its CSS is
// small and goes with the app's.
import '@xterm/xterm/css/xterm.css';
import { h, clear } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {{id: string, cwd: string, status: string}} TerminalInfo */

const OPEN_KEY = 'ocr.terminal.'; // + session id, in sessionStorage: the terminal was open here
const RECONNECTS = 5;
const RESIZE_DELAY_MS = 150;

/** Whether the signed-in principal may open terminals; asked once per page. @type {Promise<boolean> | null} */
let granted = null;
function mayOpenTerminals() {
  if (!granted) granted = api.me().then((me) => Boolean(me && me.principal && me.principal.terminal), () => false);
  return granted;
}

/** The terminal panel of the open session; a view in the side panels (panels.js). */
export class TerminalView {
  /** @param {HTMLElement} root the panel's section @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.sid = store.sessionID;
    this.closed = false;
    /** @type {import('@xterm/xterm').Terminal | null} */
    this.term = null;
    /** @type {import('@xterm/addon-fit').FitAddon | null} */
    this.fit = null;
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {TerminalInfo | null} */
    this.info = null;
    /** Output seen so far, in opencode's units (UTF-16 code units): where a reconnect resumes. */
    this.cursor = -1;
    this.reconnects = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.resizeTimer = undefined;
    this.observer = new ResizeObserver(() => this.refit());

    this.openButton = h('button', { type: 'button', class: 'btn', testid: 'terminal-open', text: 'Open terminal', onclick: () => this.open() });
    this.endButton = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'terminal-end', text: 'End', title: 'End the shell', hidden: true, onclick: () => this.end() });
    this.status = h('div', { class: 'terminal-status muted small', testid: 'terminal-status', role: 'status' });
    this.screen = h('div', { class: 'terminal-screen', testid: 'terminal', hidden: true });
    root.hidden = true;
    clear(root).append(
      h('h2', { class: 'panel-title' }, 'Terminal', this.endButton),
      this.openButton, this.status, this.screen);
    mayOpenTerminals().then((may) => {
      if (this.closed || !may) return;
      root.hidden = false;
      if (sessionStorage.getItem(OPEN_KEY + this.sid)) this.open();
    });
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.resizeTimer);
    this.observer.disconnect();
    this.disconnect();
    if (this.term) this.term.dispose();
    clear(this.root);
  }

  /** Opens (or reattaches to) this session's terminal and connects to it. */
  async open() {
    this.openButton.disabled = true;
    this.say('Opening…');
    let info;
    try {
      info = await api.openTerminal(this.sid);
    } catch (err) {
      if (this.closed) return;
      this.openButton.disabled = false;
      this.say(err.status === 403 ? 'You may not open terminals here.' : `Could not open a terminal: ${err.message}`);
      return;
    }
    if (this.closed) return;
    sessionStorage.setItem(OPEN_KEY + this.sid, '1');
    this.info = info;
    this.cursor = 0;
    this.reconnects = 0;
    this.openButton.hidden = true;
    this.endButton.hidden = false;
    this.screen.hidden = false;
    this.screen.dataset.ptyId = info.id;
    let term;
    try {
      term = await this.ensureTerminal();
    } catch (err) {
      this.finish(`Could not load the terminal: ${err.message}`, true);
      return;
    }
    if (this.closed) return;
    term.reset();
    this.connect();
  }

  /** The xterm instance, made (and xterm.js loaded) on first use. */
  async ensureTerminal() {
    if (this.term) return this.term;
    const [{ Terminal }, { FitAddon }] = await Promise.all([import('@xterm/xterm'), import('@xterm/addon-fit')]);
    if (this.term) return this.term;
    const term = new Terminal({
      fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace', fontSize: 12,
      cursorBlink: true, scrollback: 2000, convertEol: false,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(this.screen);
    term.onData((data) => this.send(data));
    term.onBinary((data) => this.send(data));
    term.onResize((size) => this.sendSize(size));
    this.term = term;
    this.fit = fit;
    this.observer.observe(this.screen);
    this.refit();
    return term;
  }

  connect() {
    if (!this.info || this.closed) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/api/terminals/${encodeURIComponent(this.info.id)}/connect?cursor=${this.cursor}`;
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    socket.onopen = () => {
      this.say('');
      this.screen.dataset.state = 'open';
      if (this.term) this.sendSize({ rows: this.term.rows, cols: this.term.cols });
      if (this.term) this.term.focus();
    };
    socket.onmessage = (e) => {
      if (typeof e.data === 'string') {
        // opencode counts its output in UTF-16 code units, as JavaScript strings do.
        this.cursor += e.data.length;
        if (this.term) this.term.write(e.data);
        return;
      }
      const bytes = new Uint8Array(e.data);
      if (bytes[0] === 0) { // opencode's control frame: {"cursor": N}
        try { this.cursor = JSON.parse(new TextDecoder().decode(bytes.subarray(1))).cursor; } catch { /* not ours to read */ }
        this.reconnects = 0;
        return;
      }
      if (this.term) this.term.write(bytes);
    };
    socket.onclose = (e) => {
      if (socket !== this.socket || this.closed) return;
      this.socket = null;
      this.screen.dataset.state = 'closed';
      this.onClosed(e.code, e.reason);
    };
  }

  /** @param {number} code @param {string} reason */
  onClosed(code, reason) {
    if (code === 1000) { // the shell exited
      this.finish('The shell exited.');
    } else if (code === 1008 || code === 1009) { // refused: the reason says why
      this.finish(reason || 'The relay closed the terminal.', true);
    } else if (this.reconnects < RECONNECTS) {
      this.reconnects++;
      this.say('Connection lost; reconnecting…');
      this.timer = setTimeout(() => this.connect(), 500 * 2 ** this.reconnects);
    } else {
      this.finish(`The terminal's connection was lost${reason ? `: ${reason}` : ''}.`, true);
    }
  }

  /** Back to the Open button. @param {string} message @param {boolean} [mayReattach] */
  finish(message, mayReattach = false) {
    if (!mayReattach) sessionStorage.removeItem(OPEN_KEY + this.sid);
    this.info = null;
    this.say(message);
    this.openButton.hidden = false;
    this.openButton.disabled = false;
    this.endButton.hidden = true;
  }

  async end() {
    const info = this.info;
    if (!info) return;
    sessionStorage.removeItem(OPEN_KEY + this.sid);
    try { await api.endTerminal(info.id); } catch { /* the socket's close says the rest */ }
  }

  disconnect() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000);
  }

  /** @param {string} data */
  send(data) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(data);
  }

  refit() {
    if (!this.fit || this.screen.hidden || !this.screen.clientWidth) return;
    try { this.fit.fit(); } catch { /* not laid out yet */ }
  }

  /** Tells opencode the new size, once the panel stops moving. @param {{rows: number, cols: number}} size */
  sendSize(size) {
    clearTimeout(this.resizeTimer);
    const info = this.info;
    if (!info) return;
    this.resizeTimer = setTimeout(() => { api.resizeTerminal(info.id, size).catch(() => {}); }, RESIZE_DELAY_MS);
  }

  /** @param {string} text */
  say(text) { this.status.textContent = text; }
}
