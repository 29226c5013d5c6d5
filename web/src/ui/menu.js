// @ts-check
// A keyboard-driven pop-up list above the prompt (slash commands, @-mentions), and the pure
// logic it needs: which token the caret is in, and how items are filtered.
import { h, clear } from '../dom.js';

/** @typedef {{value: string, label: string, detail?: string, kind?: string}} MenuItem */

/**
 * The slash command being typed: `/name` at the very start of the prompt, caret inside it.
 * @param {string} text @param {number} caret @returns {string | null} the name typed so far
 */
export function slashQuery(text, caret) {
  const m = /^\/(\S*)$/.exec(text.slice(0, caret));
  return m ? m[1] : null;
}

/**
 * The mention being typed (`@query`): at the start or after a space, ending at the caret.
 * @param {string} text @param {number} caret @returns {{start: number, query: string} | null}
 */
export function mentionQuery(text, caret) {
  const m = /(^|\s)@([^\s@]*)$/.exec(text.slice(0, caret));
  return m ? { start: caret - m[2].length - 1, query: m[2] } : null;
}

/**
 * Items whose value starts with the query first, then those containing it (value or detail).
 * @param {MenuItem[]} items @param {string} query @returns {MenuItem[]}
 */
export function filterItems(items, query) {
  const q = query.toLowerCase();
  const starts = items.filter((i) => i.value.toLowerCase().startsWith(q));
  const within = items.filter((i) => !i.value.toLowerCase().startsWith(q)
    && (i.value.toLowerCase().includes(q) || (i.detail || '').toLowerCase().includes(q)));
  return [...starts, ...within];
}

/** A slash command `/name args` to run: the name and the rest. @param {string} text */
export function parseSlash(text) {
  const m = /^\/(\S+)(?:\s+([\s\S]*))?$/.exec(text.trim());
  return m ? { name: m[1], args: (m[2] || '').trim() } : null;
}

const IMAGE_TYPES = /** @type {Record<string, string>} */ ({
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', svg: 'image/svg+xml',
});

/** The type a mentioned file is sent as: images and PDFs by their extension, anything else as text. @param {string} path */
export function mentionMime(path) {
  const ext = (path.split('.').pop() || '').toLowerCase();
  if (ext === 'pdf') return 'application/pdf';
  return IMAGE_TYPES[ext] || 'text/plain';
}

/** The pop-up list. It does not own the input: the composer feeds it keys and items. */
export class Menu {
  /**
   * @param {HTMLElement} root where the list is drawn
   * @param {{testid: string, itemTestid: string, onPick: (item: MenuItem) => void, empty: string}} opts
   */
  constructor(root, { testid, itemTestid, onPick, empty }) {
    this.itemTestid = itemTestid;
    this.onPick = onPick;
    this.empty = empty;
    /** @type {MenuItem[]} */
    this.items = [];
    this.index = 0;
    this.el = h('div', { class: 'menu', testid, role: 'listbox', hidden: true });
    root.append(this.el);
  }

  get open() { return !this.el.hidden; }

  /** @param {MenuItem[]} items */
  show(items) {
    this.items = items.slice(0, 50);
    this.index = Math.min(this.index, Math.max(0, this.items.length - 1));
    this.draw();
    this.el.hidden = false;
  }

  hide() {
    this.el.hidden = true;
    this.index = 0;
  }

  draw() {
    clear(this.el);
    if (!this.items.length) {
      this.el.append(h('div', { class: 'menu-empty', text: this.empty }));
      return;
    }
    this.items.forEach((item, i) => {
      const row = h('div', {
        class: `menu-item${i === this.index ? ' active' : ''}`, testid: this.itemTestid, role: 'option',
        'data-value': item.value, 'aria-selected': String(i === this.index),
      }, h('span', { class: 'menu-label', text: item.label }),
      item.kind ? h('span', { class: 'menu-kind', text: item.kind }) : null,
      item.detail ? h('span', { class: 'menu-detail', text: item.detail }) : null);
      // mousedown, not click: the input keeps its focus.
      row.addEventListener('mousedown', (e) => { e.preventDefault(); this.onPick(item); });
      this.el.append(row);
    });
    const active = this.el.children[this.index];
    if (active && 'scrollIntoView' in active) active.scrollIntoView({ block: 'nearest' });
  }

  /** Handles a key while open; true when the menu used it. @param {KeyboardEvent} e */
  key(e) {
    if (!this.open) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (this.items.length) {
        const step = e.key === 'ArrowDown' ? 1 : -1;
        this.index = (this.index + step + this.items.length) % this.items.length;
        this.draw();
      }
      return true;
    }
    if (e.key === 'Escape') { this.hide(); return true; }
    if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey) {
      const item = this.items[this.index];
      if (!item) return false;
      this.onPick(item);
      return true;
    }
    return false;
  }
}
