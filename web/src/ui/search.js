// @ts-check
// Search across sessions: the hits of `GET /api/search` for the session list's search box, each
// a title and a snippet with the matches marked; a click opens the session at the message.
import { h, clear, timeAgo } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../types.js').SearchResult} SearchResult */
/** @typedef {import('./notices.js').Notify} Notify */
/** @typedef {{onOpen: (sessionID: string, messageID: string | null, words: string[]) => void, notify: Notify}} SearchContext */

/**
 * The snippet as text nodes and `<mark>`s (never HTML: the text is the session's).
 * @param {string} snippet @param {number[][]} ranges code-point offsets
 */
export function markedSnippet(snippet, ranges) {
  const chars = Array.from(snippet); // the relay counts code points, JavaScript UTF-16 units
  /** @type {(string | HTMLElement)[]} */
  const out = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at || end > chars.length || start >= end) continue;
    if (start > at) out.push(chars.slice(at, start).join(''));
    out.push(h('mark', { text: chars.slice(start, end).join('') }));
    at = end;
  }
  if (at < chars.length) out.push(chars.slice(at).join(''));
  return out;
}

/** The results list above the session list; hidden while the search box is empty. */
export class SearchResultsView {
  /** @param {HTMLElement} root @param {SearchContext} ctx */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.q = '';
    this.token = 0;
    /** @type {string | null} the next page's cursor */
    this.next = null;
    /** @type {WeakMap<Element, string[]>} each hit's matched words, to mark in the message */
    this.words = new WeakMap();
    this.heading = h('div', { class: 'search-heading muted', text: 'In messages' });
    this.list = h('ul', { class: 'search-results', testid: 'search-results', role: 'list' });
    this.more = h('button', { type: 'button', class: 'btn btn-block search-more', text: 'More results', hidden: true });
    this.status = h('div', { class: 'search-status muted' });
    this.box = h('section', { class: 'search-box', hidden: true, 'aria-label': 'Search results' },
      this.heading, this.list, this.status, this.more);
    root.append(this.box);
    this.more.addEventListener('click', () => this.fetch(true));
    this.list.addEventListener('click', (e) => {
      const li = /** @type {HTMLElement | null} */ (e.target instanceof Element ? e.target.closest('[data-session-id]') : null);
      if (!li || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.ctx.onOpen(/** @type {string} */ (li.dataset.sessionId), li.dataset.messageId || null, this.words.get(li) || []);
    });
  }

  destroy() {
    this.token++;
    this.box.remove();
  }

  /** Searches for `q` (the search box's text as typed); empty hides the results. @param {string} q */
  query(q) {
    this.q = q;
    this.next = null;
    if (!q.trim()) {
      this.token++;
      this.box.hidden = true;
      clear(this.list);
      return Promise.resolve();
    }
    return this.fetch(false);
  }

  /** @param {boolean} more the next page, appended */
  async fetch(more) {
    const token = ++this.token;
    let data;
    try {
      data = await api.search({ q: this.q, after: more ? this.next : null });
    } catch (err) {
      if (token !== this.token) return;
      // A query of no words (say, only punctuation) is not worth a toast.
      this.status.textContent = err.status === 400 ? '' : `Search failed: ${err.message}`;
      if (err.status === 404) this.box.hidden = true; // search is off on this relay
      return;
    }
    if (token !== this.token) return;
    if (!more) clear(this.list);
    for (const result of data.results || []) this.list.append(this.item(result));
    this.next = data.next || null;
    this.box.hidden = false;
    this.more.hidden = !this.next;
    this.status.textContent = this.list.children.length ? '' : 'No message matches.';
  }

  /** @param {SearchResult} r */
  item(r) {
    const href = `/?session=${encodeURIComponent(r.sessionID)}${r.messageID ? `&message=${encodeURIComponent(r.messageID)}` : ''}`;
    const chars = Array.from(r.snippet);
    const words = [...new Set(r.ranges.map(([start, end]) => chars.slice(start, end).join('')))];
    const li = h('li', { class: 'search-result', testid: 'search-result', 'data-session-id': r.sessionID, 'data-message-id': r.messageID || '' },
      h('a', { href, class: 'search-link' },
        h('div', { class: 'search-title-row' },
          h('span', { class: 'search-title', text: r.title || 'Untitled session' }),
          h('span', { class: 'session-time', text: timeAgo(r.time) })),
        h('div', { class: 'search-snippet' }, ...markedSnippet(r.snippet, r.ranges))));
    this.words.set(li, words);
    return li;
  }
}
