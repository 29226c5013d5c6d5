// @ts-check
// The transcript: one element per message and per part, keyed by id. A delta re-renders only
// its own part (once per frame). Big sessions render the newest messages first and older
// ones as the reader scrolls up.
import { h, clear, clockTime, perFrame } from '../dom.js';
import { createPartView } from '../render/parts.js';
import { revertedFrom, formatCost } from './history.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {import('../types.js').Part} Part */
/** @typedef {import('../types.js').MessageEntry} MessageEntry */
/** @typedef {import('../types.js').MessageError} MessageError */
/** @typedef {import('../types.js').StoreChange} StoreChange */
/** @typedef {import('../render/parts.js').PartView & {type: string}} KeyedPartView */
/** @typedef {{el: HTMLElement, head: HTMLElement, partsEl: HTMLElement, errorEl: HTMLElement, role?: string}} MessageView */

const FIRST_PAGE = 24; // enough to fill a tall screen; older ones follow on scroll
const PAGE = 40;

/** A message's or session's error in plain words. @param {MessageError | null | undefined} error */
export function errorText(error) {
  if (!error) return '';
  const msg = (error.data && error.data.message) || error.message || '';
  switch (error.name) {
    case 'MessageAbortedError': return 'Stopped.';
    case 'ProviderAuthError': return `The model provider refused the credentials${msg ? `: ${msg}` : '.'}`;
    case 'APIError': return `The model provider answered with an error${msg ? `: ${msg}` : '.'}`;
    case 'MessageOutputLengthError': return 'The answer was cut off: it reached the output length limit.';
    default: return msg || error.name || 'Something went wrong.';
  }
}

/**
 * What the transcript's buttons act on.
 * @typedef {{
 *   openSession?: (id: string) => void,
 *   undo?: (messageID: string) => Promise<void>,
 *   fork?: (messageID: string) => Promise<void>,
 * }} TranscriptContext
 */

/** An answer's tokens and cost, in short. @param {import('../types.js').MessageInfo} info */
function messageUsage(info) {
  const t = info.tokens || {};
  const cache = t.cache || {};
  const total = (t.input || 0) + (t.output || 0) + (t.reasoning || 0) + (cache.read || 0) + (cache.write || 0);
  if (!total) return '';
  return `${total.toLocaleString('en')} tokens · ${formatCost(typeof info.cost === 'number' ? info.cost : 0)}`;
}

/** The messages of the open session; a view of its store. */
export class TranscriptView {
  /** @param {HTMLElement} root the scrolling element @param {SessionStore} store @param {TranscriptContext} ctx */
  constructor(root, store, ctx) {
    this.root = root; // scrolling element
    this.store = store;
    this.ctx = ctx;
    this.list = h('div', { class: 'messages' });
    this.more = h('button', { class: 'load-earlier', type: 'button', hidden: true });
    this.more.addEventListener('click', () => this.showEarlier());
    this.empty = h('div', { class: 'transcript-empty', hidden: true },
      h('div', { class: 'empty-title', text: 'No messages yet' }),
      h('div', { class: 'muted', text: 'Write a prompt below to start.' }));
    clear(root).append(this.more, this.empty, this.list);
    /** @type {Map<string, MessageView>} by message id */
    this.messageViews = new Map();
    /** @type {Map<string, KeyedPartView>} by part id */
    this.partViews = new Map();
    /** @type {string | null} id of the oldest rendered message; older ones wait */
    this.firstRendered = null;
    this.stick = true;
    this.onScroll = () => {
      this.stick = root.scrollHeight - root.scrollTop - root.clientHeight < 80;
    };
    root.addEventListener('scroll', this.onScroll, { passive: true });
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.showEarlier();
    }, { root, rootMargin: '300px 0px 0px 0px' });
    /** @type {string | null} the first undone message, as last drawn */
    this.revertedFrom = revertedFrom(store);
    this.unsubscribe = store.on((change) => this.onChange(change));
    this.renderInitial();
  }

  destroy() {
    if (typeof CSS !== 'undefined' && CSS.highlights) CSS.highlights.delete('search-hit');
    this.unsubscribe();
    this.observer.disconnect();
    this.root.removeEventListener('scroll', this.onScroll);
  }

  renderInitial() {
    const order = this.store.order;
    const start = Math.max(0, order.length - FIRST_PAGE);
    this.firstRendered = order.length ? order[start] : null;
    const frag = document.createDocumentFragment();
    for (let i = start; i < order.length; i++) frag.append(this.buildMessage(order[i]));
    this.list.append(frag);
    this.updateMore();
    this.updateEmpty();
    this.scrollToBottom();
  }

  /** Brings a message into view and outlines it (a search hit), drawing earlier pages as needed;
   * `words` are marked in its text with the CSS Custom Highlight API (no DOM change, so the
   * message's own redraws are untouched).
   * @param {string} messageID @param {string[]} [words] @returns {boolean} whether the transcript has it */
  reveal(messageID, words = []) {
    if (!this.store.messages.has(messageID)) return false;
    while (!this.isRendered(messageID) && this.firstRendered !== this.store.order[0]) this.showEarlier();
    const view = this.messageViews.get(messageID);
    if (!view) return false;
    // An attribute, not a class: a message's class is redrawn with each of its updates.
    for (const el of this.list.querySelectorAll('[data-found]')) el.removeAttribute('data-found');
    view.el.dataset.found = 'true';
    markWords(view.partsEl, words);
    this.stick = false;
    view.el.scrollIntoView({ block: 'center' });
    return true;
  }

  /** @param {string} messageID */
  isRendered(messageID) {
    return this.firstRendered === null || messageID >= this.firstRendered;
  }

  updateMore() {
    const hidden = this.firstRendered === null ? 0 : this.store.order.indexOf(this.firstRendered);
    this.more.hidden = hidden <= 0;
    this.more.textContent = `Show ${Math.min(PAGE, hidden)} earlier messages (${hidden} hidden)`;
    if (hidden > 0) this.observer.observe(this.more); else this.observer.unobserve(this.more);
  }

  updateEmpty() {
    this.empty.hidden = this.store.order.length > 0;
  }

  showEarlier() {
    const order = this.store.order;
    const idx = this.firstRendered === null ? 0 : order.indexOf(this.firstRendered);
    if (idx <= 0) return;
    const start = Math.max(0, idx - PAGE);
    const frag = document.createDocumentFragment();
    for (let i = start; i < idx; i++) frag.append(this.buildMessage(order[i]));
    // Keep the reader's place while content is added above.
    const before = this.root.scrollHeight - this.root.scrollTop;
    this.list.prepend(frag);
    this.firstRendered = order[start];
    this.root.scrollTop = this.root.scrollHeight - before;
    this.updateMore();
  }

  /** @param {string} id */
  buildMessage(id) {
    const entry = /** @type {MessageEntry} */ (this.store.messages.get(id));
    const head = h('div', { class: 'msg-head' });
    const partsEl = h('div', { class: 'msg-parts' });
    const errorEl = h('div', { class: 'msg-error', testid: 'message-error', hidden: true });
    const el = h('article', { class: 'message', testid: 'message' }, head, partsEl, errorEl);
    /** @type {MessageView} */
    const view = { el, head, partsEl, errorEl };
    this.messageViews.set(id, view);
    this.updateMessage(id);
    for (const partID of entry.partOrder) partsEl.append(this.buildPart(this.partOf(entry, partID), entry.info.role));
    return el;
  }

  /** @param {string} id */
  updateMessage(id) {
    const entry = this.store.messages.get(id);
    const view = this.messageViews.get(id);
    if (!entry || !view) return;
    const info = entry.info;
    if (view.role && view.role !== info.role) {
      // A stub guessed the wrong role: rebuild the parts for the real one.
      clear(view.partsEl);
      for (const partID of entry.partOrder) view.partsEl.append(this.buildPart(this.partOf(entry, partID), info.role));
    }
    view.role = info.role;
    view.el.dataset.role = info.role;
    view.el.dataset.messageId = id;
    view.el.className = `message message-${info.role}`;
    clear(view.head);
    const who = info.role === 'user' ? 'You' : 'Assistant';
    view.head.append(h('span', { class: 'msg-role', text: who }));
    const detail = info.role === 'assistant' ? [info.agent || info.mode, info.modelID].filter(Boolean).join(' · ') : '';
    if (detail) view.head.append(h('span', { class: 'msg-detail', text: detail }));
    if (info.time && info.time.created) view.head.append(h('time', { class: 'msg-time', text: clockTime(info.time.created) }));
    const usage = info.role === 'assistant' && info.tokens ? messageUsage(info) : '';
    if (usage) view.head.append(h('span', { class: 'msg-usage', testid: 'message-usage', text: usage }));
    view.head.append(this.actions(info));
    this.markReverted(id, view);
    const err = info.error;
    view.errorEl.hidden = !err;
    view.errorEl.textContent = err ? errorText(err) : '';
    view.errorEl.classList.toggle('aborted', Boolean(err && err.name === 'MessageAbortedError'));
  }

  /** Undo (user messages) and Fork buttons of a message. @param {import('../types.js').MessageInfo} info */
  actions(info) {
    const box = h('span', { class: 'msg-actions' });
    const { undo, fork } = this.ctx;
    /** @param {string} testid @param {string} label @param {string} title @param {(id: string) => Promise<void>} act */
    const button = (testid, label, title, act) => {
      const b = h('button', { type: 'button', class: 'msg-action', testid, text: label, title });
      b.addEventListener('click', async () => {
        b.disabled = true;
        try { await act(info.id); } finally { b.disabled = false; }
      });
      return b;
    };
    if (undo && info.role === 'user' && !info.stub) {
      box.append(button('message-undo', 'Undo', 'Undo this prompt and everything after it, files included', undo));
    }
    if (fork && !info.stub) {
      box.append(button('message-fork', 'Fork', 'Start a new session with the conversation up to here', fork));
    }
    return box;
  }

  /** Dims an undone message. @param {string} id @param {MessageView} view */
  markReverted(id, view) {
    const undone = this.revertedFrom !== null && id >= this.revertedFrom;
    view.el.classList.toggle('reverted', undone);
    if (undone) view.el.dataset.reverted = 'true'; else delete view.el.dataset.reverted;
  }

  /** @param {MessageEntry} entry @param {string} partID */
  partOf(entry, partID) {
    return /** @type {Part} */ (entry.parts.get(partID));
  }

  /** @param {Part} part @param {string} role */
  buildPart(part, role) {
    const view = { ...createPartView(part, { role, openSession: this.ctx.openSession }), type: part.type };
    this.partViews.set(part.id, view);
    return view.el;
  }

  /** @param {StoreChange} change */
  onChange(change) {
    switch (change.type) {
      case 'session': {
        const from = revertedFrom(this.store);
        if (from === this.revertedFrom) return;
        this.revertedFrom = from;
        for (const [id, view] of this.messageViews) this.markReverted(id, view);
        return;
      }
      case 'message': {
        if (!this.isRendered(change.id)) { this.updateMore(); return; }
        if (change.isNew) this.insertMessage(change.id);
        else this.updateMessage(change.id);
        this.updateEmpty();
        break;
      }
      case 'message-removed': {
        const view = this.messageViews.get(change.id);
        if (view) {
          view.el.remove();
          this.messageViews.delete(change.id);
        }
        this.updateMore();
        this.updateEmpty();
        break;
      }
      case 'part': {
        if (!this.messageViews.has(change.messageID)) return;
        const entry = /** @type {MessageEntry} */ (this.store.messages.get(change.messageID));
        const part = this.partOf(entry, change.id);
        const existing = this.partViews.get(change.id);
        if (existing && existing.type === part.type) {
          existing.update(part);
        } else {
          const el = this.buildPart(part, entry.info.role);
          if (existing) existing.el.replaceWith(el);
          else this.insertPartEl(entry, change.id, el);
        }
        break;
      }
      case 'delta': {
        const view = this.partViews.get(change.id);
        if (!view || !this.messageViews.has(change.messageID)) return;
        perFrame(`part:${change.id}`, () => {
          const entry = this.store.messages.get(change.messageID);
          const part = entry && entry.parts.get(change.id);
          if (part && this.partViews.get(change.id) === view) view.update(part);
          this.keepBottom();
        });
        return;
      }
      case 'part-removed': {
        const view = this.partViews.get(change.id);
        if (view) { view.el.remove(); this.partViews.delete(change.id); }
        break;
      }
      default:
        return;
    }
    this.keepBottom();
  }

  /** @param {string} id */
  insertMessage(id) {
    const el = this.buildMessage(id);
    const order = this.store.order;
    const idx = order.indexOf(id);
    for (let i = idx + 1; i < order.length; i++) {
      const next = this.messageViews.get(order[i]);
      if (next) { this.list.insertBefore(el, next.el); return; }
    }
    this.list.append(el);
  }

  /** @param {MessageEntry} entry @param {string} partID @param {HTMLElement} el */
  insertPartEl(entry, partID, el) {
    const view = /** @type {MessageView} */ (this.messageViews.get(entry.info.id));
    const idx = entry.partOrder.indexOf(partID);
    for (let i = idx + 1; i < entry.partOrder.length; i++) {
      const next = this.partViews.get(entry.partOrder[i]);
      if (next && next.el.parentNode === view.partsEl) { view.partsEl.insertBefore(el, next.el); return; }
    }
    view.partsEl.append(el);
  }

  keepBottom() {
    if (!this.stick) return;
    perFrame(`scroll:${this.store.sessionID}`, () => this.scrollToBottom());
  }

  scrollToBottom() {
    this.root.scrollTop = this.root.scrollHeight;
    this.stick = true;
  }
}

/** Marks every occurrence of `words` (ignoring case) in the text under `root` as the `search-hit`
 * highlight (styled by `::highlight(search-hit)`); browsers without the API only get the outline.
 * @param {Element} root @param {string[]} words */
function markWords(root, words) {
  if (typeof CSS === 'undefined' || !CSS.highlights || typeof Highlight === 'undefined') return;
  CSS.highlights.delete('search-hit');
  const wanted = words.map((w) => w.toLowerCase()).filter(Boolean);
  if (!wanted.length) return;
  const ranges = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = (node.textContent || '').toLowerCase();
    for (const word of wanted) {
      for (let at = text.indexOf(word); at !== -1; at = text.indexOf(word, at + word.length)) {
        const range = new Range();
        range.setStart(node, at);
        range.setEnd(node, at + word.length);
        ranges.push(range);
      }
    }
  }
  if (ranges.length) CSS.highlights.set('search-hit', new Highlight(...ranges));
}
