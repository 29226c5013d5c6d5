// @ts-check
// The offline screen: covers the page when the relay cannot be reached (the service worker
// still serves the app, but its calls fail), says so, and retries with a growing delay until
// the relay answers again; then it steps aside and the page picks up where it was.
import { h } from '../dom.js';

/** Delays between tries, in ms; the last one repeats. */
export const RETRY_DELAYS = [1000, 2000, 4000, 8000, 15000, 30000];

/**
 * `probe` asks whether the relay answers (default: GET /healthz); `onBack` runs when it does
 * again, if the page had loaded before (a page that started without the relay reloads instead).
 * @typedef {{probe?: () => Promise<boolean>, onBack: () => void}} OfflineContext
 */

/** True when the relay itself answered /healthz (not the network failing, not a gateway). */
export async function probeRelay() {
  try {
    const res = await fetch('/healthz', { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (![502, 503, 504].includes(res.status)) return true;
    const data = await res.json().catch(() => null);
    return Boolean(data && data.error); // the relay's own 503 (still starting) is an answer
  } catch {
    return false;
  }
}

export class OfflineScreen {
  /** @param {HTMLElement} root @param {OfflineContext} ctx */
  constructor(root, ctx) {
    this.ctx = ctx;
    this.probe = ctx.probe || probeRelay;
    this.shown = false;
    this.checking = false;
    /** Whether the relay answered before the screen came up (else the page reloads once back). */
    this.loaded = false;
    this.attempt = 0;
    this.deadline = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.clock = undefined;
    this.status = h('p', { class: 'offline-status', testid: 'offline-status', role: 'status' });
    this.retry = h('button', { type: 'button', class: 'btn btn-primary', testid: 'offline-retry', text: 'Try now' });
    this.retry.addEventListener('click', () => { this.tryNow(); });
    this.el = h('div', { class: 'offline', testid: 'offline-screen', hidden: true, role: 'alertdialog', 'aria-labelledby': 'offline-title' },
      h('div', { class: 'offline-card' },
        h('div', { class: 'offline-mark', 'aria-hidden': 'true' }),
        h('div', { class: 'welcome-title', id: 'offline-title', text: 'Cannot reach the relay' }),
        h('p', { class: 'muted', text: `The relay at ${location.host} is not answering: it may be stopped or restarting, or this device is offline. Sessions keep running on the server; this page reconnects by itself.` }),
        this.status, this.retry));
    root.append(this.el);
    // The device says it lost the network: ask (a relay on this machine may still answer).
    this.onOffline = () => { this.suspect(); };
    this.onOnline = () => { if (this.shown) this.tryNow(); };
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
  }

  /** The relay answered a request. */
  reached() {
    if (this.shown) this.back();
    this.loaded = true;
  }

  /** A request could not reach the relay: show the screen and start retrying. */
  unreachable() {
    if (this.shown) return;
    this.shown = true;
    this.el.hidden = false;
    this.attempt = 0;
    this.schedule();
  }

  /** Something looks wrong (an event stream dropped): ask once, and show the screen if no answer. */
  async suspect() {
    if (this.shown || this.checking) return;
    this.checking = true;
    const ok = await this.probe();
    this.checking = false;
    if (!ok) this.unreachable();
  }

  async tryNow() {
    if (!this.shown || this.checking) return;
    this.stopTimers();
    this.checking = true;
    this.retry.disabled = true;
    this.status.textContent = 'Trying to reach the relay…';
    const ok = await this.probe();
    this.checking = false;
    this.retry.disabled = false;
    if (!this.shown) return;
    if (ok) this.back();
    else this.schedule();
  }

  schedule() {
    this.stopTimers();
    const delay = RETRY_DELAYS[Math.min(this.attempt++, RETRY_DELAYS.length - 1)];
    this.deadline = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((this.deadline - Date.now()) / 1000));
      this.status.textContent = `Trying again in ${seconds} s.`;
    };
    tick();
    this.clock = setInterval(tick, 1000);
    this.timer = setTimeout(() => { this.tryNow(); }, delay);
  }

  back() {
    this.stopTimers();
    this.shown = false;
    this.el.hidden = true;
    this.attempt = 0;
    if (!this.loaded) {
      location.reload(); // the page started without the relay: nothing of it is worth keeping
      return;
    }
    this.ctx.onBack();
  }

  stopTimers() {
    clearTimeout(this.timer);
    clearInterval(this.clock);
  }

  destroy() {
    this.stopTimers();
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    this.el.remove();
  }
}
