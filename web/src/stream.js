// @ts-check
// One SSE subscription that survives drops without gaps or doubles.
//
// EventSource reconnects by itself after a network drop and sends Last-Event-ID. When it
// gives up (HTTP error, relay restart refusing the connection) we open a new one with
// ?after=<last id applied>. Every applied id is remembered, so a replayed event is never
// applied twice even if the relay resends it.
import { RELAY_PREFIX } from './events.js';

/** @typedef {import('./types.js').RelayEvent} RelayEvent */
/** @typedef {import('./types.js').ConnectionState} ConnectionState */

/**
 * What the stream needs from its surroundings: the browser's by default, fakes in tests.
 * @typedef {{
 *   EventSource: {new (url: string): EventSource, readonly CLOSED: number},
 *   window: Pick<Window, 'addEventListener' | 'removeEventListener'>,
 * }} StreamEnvironment
 */

/**
 * @typedef {{
 *   after?: string | null,
 *   onEvent: (event: RelayEvent, id: string | null) => void,
 *   onState?: (state: ConnectionState) => void,
 *   env?: StreamEnvironment,
 * }} StreamOptions
 */

const MAX_SEEN = 50000;

export class EventStream {
  /** @param {string} path @param {StreamOptions} options */
  constructor(path, { after = null, onEvent, onState = () => {}, env }) {
    this.path = path;
    this.lastId = after;
    this.onEvent = onEvent;
    this.onState = onState;
    this.env = env || { EventSource: globalThis.EventSource, window: globalThis.window };
    /** @type {ConnectionState} */
    this.state = 'closed';
    /** @type {EventSource | null} */
    this.es = null;
    /** @type {Set<string>} */
    this.seen = new Set();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.attempt = 0;
    this.stopped = false;
    this.onOnline = () => { if (this.state === 'reconnecting') this.reconnectNow(); };
  }

  start() {
    this.stopped = false;
    this.env.window.addEventListener('online', this.onOnline);
    this.open('connecting');
    return this;
  }

  stop() {
    this.stopped = true;
    this.env.window.removeEventListener('online', this.onOnline);
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.es = null;
    this.setState('closed');
  }

  // Starts over from the live end (after relay.reset, once state has been refetched).
  restartLive() {
    this.lastId = null;
    this.seen.clear();
    this.reconnectNow();
  }

  // Closes the current connection and resumes from the last applied id.
  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
    this.open('reconnecting');
  }

  /** @param {ConnectionState} state */
  open(state) {
    this.setState(state);
    const url = this.lastId ? `${this.path}?after=${encodeURIComponent(this.lastId)}` : this.path;
    const Source = this.env.EventSource;
    const es = new Source(url);
    this.es = es;
    es.onopen = () => {
      if (es !== this.es) return;
      this.attempt = 0;
      this.setState('open');
    };
    es.onmessage = (msg) => {
      if (es !== this.es) return;
      this.receive(msg);
    };
    es.onerror = () => {
      if (es !== this.es || this.stopped) return;
      if (es.readyState === Source.CLOSED) {
        // The browser gave up; retry ourselves with a growing delay.
        const delay = Math.min(15000, 1000 * 2 ** this.attempt++);
        this.setState('reconnecting');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.open('reconnecting'), delay);
      } else {
        this.setState('reconnecting');
      }
    };
  }

  /** @param {{data: string, lastEventId?: string}} msg */
  receive(msg) {
    /** @type {RelayEvent} */
    let event;
    try { event = JSON.parse(msg.data); } catch { return; }
    const id = msg.lastEventId || null;
    // Relay notices sent without an id of their own (relay.reset, relay.shutdown) still report
    // the previous event's id, so a repeated id is a duplicate only for other events.
    const notice = Boolean(event && String(event.type || '').startsWith(RELAY_PREFIX));
    if (id && !(notice && id === this.lastId)) {
      if (this.seen.has(id)) return;
      this.seen.add(id);
      if (this.seen.size > MAX_SEEN) this.seen.delete(/** @type {string} */ (this.seen.values().next().value));
      this.lastId = id;
    }
    if (this.state !== 'open') this.setState('open');
    try {
      this.onEvent(event, id);
    } catch (err) {
      console.error('event handler failed', event && event.type, err);
    }
  }

  /** @param {ConnectionState} state */
  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }
}
