// @ts-check
// A session's history controls: the banner of an undo (with Redo), and the usage bar (tokens,
// cost, how full the context window is) with Compact. Views of the open session's store.
import { h, clear } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {import('../types.js').Usage} Usage */
/** @typedef {import('../types.js').StoreChange} StoreChange */

/** The id of the first undone message, if the session is reverted. @param {SessionStore} store */
export function revertedFrom(store) {
  const revert = store.session && store.session.revert;
  return revert && typeof revert.messageID === 'string' ? revert.messageID : null;
}

/** Shows that messages are undone, and the button that brings them back. */
export class RevertBannerView {
  /** @param {HTMLElement} root @param {SessionStore} store @param {{redo: () => Promise<void>}} ctx */
  constructor(root, store, ctx) {
    this.root = root;
    this.store = store;
    this.ctx = ctx;
    this.unsubscribe = store.on((change) => {
      if (change.type === 'session' || change.type === 'message' || change.type === 'message-removed') this.render();
    });
    this.render();
  }

  destroy() { this.unsubscribe(); clear(this.root); }

  render() {
    const from = revertedFrom(this.store);
    const undone = from ? this.store.order.filter((id) => id >= from).length : 0;
    if (!from) { clear(this.root); return; }
    const redo = h('button', { type: 'button', class: 'btn', testid: 'redo-button', text: 'Redo' });
    redo.addEventListener('click', async () => {
      redo.disabled = true;
      try { await this.ctx.redo(); } finally { redo.disabled = false; }
    });
    clear(this.root).append(h('div', { class: 'revert-banner', testid: 'revert-banner', role: 'status' },
      h('span', { text: `${undone} message${undone === 1 ? '' : 's'} undone and their file changes rolled back. Sending a new prompt discards them.` }),
      redo));
  }
}

const number = new Intl.NumberFormat('en');

/** @param {number} cost */
export function formatCost(cost) {
  return `$${cost.toFixed(cost > 0 && cost < 0.01 ? 4 : 2)}`;
}

/** The session's tokens, cost and context window, from `GET /api/sessions/{id}`; and Compact. */
export class UsageView {
  /** @param {HTMLElement} root @param {SessionStore} store @param {{compact: () => Promise<void>}} ctx */
  constructor(root, store, ctx) {
    this.root = root;
    this.store = store;
    this.ctx = ctx;
    this.closed = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.tokens = h('span', { class: 'usage-tokens', testid: 'usage-tokens' });
    this.cost = h('span', { class: 'usage-cost', testid: 'usage-cost' });
    this.fill = h('span', { class: 'context-fill' });
    this.meterLabel = h('span', { class: 'context-label' });
    this.meter = h('span', { class: 'context-meter', testid: 'context-meter', role: 'meter', 'aria-label': 'Context window used' },
      h('span', { class: 'context-track' }, this.fill), this.meterLabel);
    this.compact = h('button', { type: 'button', class: 'btn btn-ghost btn-small', testid: 'compact-button', text: 'Compact',
      title: 'Summarize the session so far, to free the context window' });
    this.compact.addEventListener('click', async () => {
      this.compact.disabled = true;
      this.compact.textContent = 'Compacting…';
      try { await this.ctx.compact(); } finally {
        this.compact.disabled = false;
        this.compact.textContent = 'Compact';
        this.refresh();
      }
    });
    clear(root).append(h('div', { class: 'usage-bar' }, this.tokens, this.cost, this.meter, this.compact));
    // Totals change as answers finish: re-read them once things settle.
    this.unsubscribe = store.on((change) => {
      if (change.type === 'message' || change.type === 'message-removed' || change.type === 'status') this.later();
    });
    this.refresh();
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.timer);
    this.unsubscribe();
    clear(this.root);
  }

  later() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 400);
  }

  async refresh() {
    try {
      const res = await api.getSession(this.store.sessionID);
      if (!this.closed && res.usage) this.render(res.usage);
    } catch { /* the next change tries again */ }
  }

  /** @param {Usage} usage */
  render(usage) {
    const t = usage.tokens;
    const total = t.input + t.output + t.reasoning + t.cache.read + t.cache.write;
    this.root.dataset.messages = String(usage.messages);
    this.tokens.textContent = `${number.format(total)} tokens`;
    this.tokens.title = `input ${number.format(t.input)} · output ${number.format(t.output)} · reasoning ${number.format(t.reasoning)} · cache read ${number.format(t.cache.read)} · cache write ${number.format(t.cache.write)}`;
    this.tokens.dataset.input = String(t.input);
    this.tokens.dataset.output = String(t.output);
    this.cost.textContent = formatCost(usage.cost);
    const { used, limit, percent } = usage.context;
    const shown = percent === null ? 0 : Math.min(100, percent);
    this.fill.style.width = `${shown}%`;
    this.meter.dataset.used = used === null ? '' : String(used);
    this.meter.dataset.limit = limit === null ? '' : String(limit);
    this.meter.dataset.percent = percent === null ? '' : String(percent);
    this.meter.classList.toggle('high', shown >= 80);
    this.meter.setAttribute('aria-valuenow', String(shown));
    this.meterLabel.textContent = used === null ? 'context: —'
      : limit ? `context ${number.format(used)} / ${number.format(limit)} (${percent}%)`
        : `context ${number.format(used)}`;
    this.compact.hidden = usage.messages === 0;
  }
}
