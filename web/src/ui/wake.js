// @ts-check
// "While you were away": when the tab comes back to the front (visibilitychange → visible), a
// marker above the transcript says what happened while it was hidden: how many events arrived,
// whether the agent finished, whether a request waits for an answer. A click on it, or
// scrolling the transcript by hand, dismisses it.
import { h, clear } from '../dom.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {{transcript: HTMLElement}} WakeContext */

/**
 * The marker's words. @param {{count: number, finished: boolean, waiting: boolean}} away
 * @returns {string}
 */
export function wakeText({ count, finished, waiting }) {
  const parts = [`${count} new ${count === 1 ? 'event' : 'events'}`];
  if (finished) parts.push('finished');
  if (waiting) parts.push('waiting for you');
  return parts.join(' · ');
}

/** The open session's "while you were away" marker; a view of its store. */
export class WakeMarkerView {
  /** @param {HTMLElement} root @param {SessionStore} store @param {WakeContext} ctx */
  constructor(root, store, ctx) {
    this.root = root;
    this.store = store;
    this.transcript = ctx.transcript;
    /** Events counted since the tab was hidden; null while it is visible. @type {number | null} */
    this.count = document.visibilityState === 'hidden' ? 0 : null;
    /** The session worked at some point while the tab was hidden. */
    this.busyWhileHidden = store.status.type !== 'idle';
    this.unsubscribe = store.on((change) => {
      if (change.type === 'status' && this.count !== null && store.status.type !== 'idle') this.busyWhileHidden = true;
    });
    this.onVisibility = () => {
      if (document.visibilityState === 'hidden') this.hidden();
      else this.shown();
    };
    this.dismiss = () => clear(this.root);
    this.onKey = (/** @type {KeyboardEvent} */ e) => {
      if (['PageUp', 'PageDown', 'Home', 'End', 'ArrowUp', 'ArrowDown'].includes(e.key)) this.dismiss();
    };
    document.addEventListener('visibilitychange', this.onVisibility);
    // Scrolling by hand (wheel, touch, keys), not the transcript's own stick-to-bottom.
    this.transcript.addEventListener('wheel', this.dismiss, { passive: true });
    this.transcript.addEventListener('touchmove', this.dismiss, { passive: true });
    this.transcript.addEventListener('pointerdown', this.dismiss);
    this.transcript.addEventListener('keydown', this.onKey);
    clear(root);
  }

  destroy() {
    this.unsubscribe();
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.transcript.removeEventListener('wheel', this.dismiss);
    this.transcript.removeEventListener('touchmove', this.dismiss);
    this.transcript.removeEventListener('pointerdown', this.dismiss);
    this.transcript.removeEventListener('keydown', this.onKey);
    clear(this.root);
  }

  /** One event of the session's stream arrived. */
  note() {
    if (this.count !== null) this.count++;
  }

  hidden() {
    this.count = 0;
    this.busyWhileHidden = this.store.status.type !== 'idle';
  }

  shown() {
    const count = this.count || 0;
    this.count = null;
    if (!count) return;
    const finished = this.busyWhileHidden && this.store.status.type === 'idle';
    const waiting = this.store.permissions.size + this.store.questions.size > 0;
    const marker = h('button', {
      type: 'button', class: 'wake-marker', testid: 'wake-marker', 'data-count': String(count),
      'data-finished': String(finished), 'data-waiting': String(waiting),
      title: 'What happened while this tab was in the background (click to dismiss)',
      text: wakeText({ count, finished, waiting }),
    });
    marker.addEventListener('click', this.dismiss);
    clear(this.root).append(marker);
  }
}
