// @ts-check
// The open session's Share and Export actions in its header. Share makes a read-only link
// (`POST …/share`), shows it to copy, lists the session's links and revokes them; Export
// downloads the session from the relay (`GET …/export?format=markdown|json`). Both live as long
// as the page and act on whichever session is open.
import { h, clear, timeAgo } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../layout.js').HeaderElements} HeaderElements */
/** @typedef {import('./notices.js').Notify} Notify */
/** @typedef {{id: string, createdAt: number, expiresAt: number | null, createdBy: string}} ShareInfo */

const EXPIRY = [['', 'Never expires'], ['3600', 'Expires in 1 hour'], ['86400', 'Expires in 1 day'], ['604800', 'Expires in 7 days']];

/** @param {number | null} ms */
function expiryText(ms) {
  if (ms === null) return 'no expiry';
  return `expires ${new Date(ms).toLocaleString()}`;
}

/** Where a session's export downloads from. @param {string} id @param {'markdown' | 'json'} format */
export function exportUrl(id, format) {
  return `/api/sessions/${encodeURIComponent(id)}/export?format=${format}`;
}

/** Downloads a session's export (the relay names the file). @param {string} id @param {'markdown' | 'json'} format */
export function downloadExport(id, format) {
  const link = h('a', { href: exportUrl(id, format), download: '' });
  document.body.append(link);
  link.click();
  link.remove();
}

/**
 * @typedef {{sessionId: () => string | null, notify: Notify}} ShareContext
 */

/** Share button and its popover: the new link, and the session's links with Revoke. */
export class ShareActions {
  /** @param {HeaderElements} root @param {ShareContext} ctx */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.popover = root.sharePopover;
    this.onClick = () => { if (this.popover.hidden) this.open(); else this.close(); };
    this.onKey = (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Escape') this.close(); };
    root.share.addEventListener('click', this.onClick);
    this.popover.addEventListener('keydown', this.onKey);
  }

  destroy() {
    this.root.share.removeEventListener('click', this.onClick);
    this.popover.removeEventListener('keydown', this.onKey);
  }

  close() {
    this.popover.hidden = true;
    this.root.share.setAttribute('aria-expanded', 'false');
    clear(this.popover);
  }

  /** Makes a link at once (that is what the button is for), then lists them all. */
  async open() {
    const id = this.ctx.sessionId();
    if (!id) return;
    this.popover.hidden = false;
    this.root.share.setAttribute('aria-expanded', 'true');
    clear(this.popover).append(h('div', { class: 'muted', text: 'Making a read-only link…' }));
    await this.create(id, null);
  }

  /** @param {string} id @param {number | null} expiresIn */
  async create(id, expiresIn) {
    try {
      const made = await api.share(id, expiresIn);
      if (this.ctx.sessionId() !== id || this.popover.hidden) return;
      await this.render(id, `${location.origin}${made.path}`);
    } catch (err) {
      this.ctx.notify(`Could not share the session: ${err.message}`);
      this.close();
    }
  }

  /** @param {string} id @param {string | null} url the link just made (its token is shown only now) */
  async render(id, url) {
    /** @type {ShareInfo[]} */
    let shares = [];
    try {
      shares = (await api.shares(id)).shares;
    } catch (err) {
      this.ctx.notify(`Could not list the share links: ${err.message}`);
    }
    if (this.ctx.sessionId() !== id || this.popover.hidden) return;
    const expiry = h('select', { class: 'share-expiry', testid: 'share-expiry', 'aria-label': 'Expiry of a new link' },
      EXPIRY.map(([value, label]) => h('option', { value, text: label })));
    const again = h('button', { type: 'button', class: 'btn', testid: 'share-new', text: 'New link',
      onclick: () => this.create(id, expiry.value ? Number(expiry.value) : null) });
    clear(this.popover).append(
      h('div', { class: 'share-title', text: 'Read-only link' }),
      h('p', { class: 'muted share-note', text: 'Anyone with the link sees this session\'s transcript, live, and nothing else. Copy it now: it is shown only once.' }));
    if (url) {
      const field = h('input', { class: 'share-link', testid: 'share-link', value: url, readonly: true, 'aria-label': 'Share link' });
      const copy = h('button', { type: 'button', class: 'btn btn-primary', testid: 'share-copy', text: 'Copy',
        onclick: async () => {
          field.select();
          try { await navigator.clipboard.writeText(url); copy.textContent = 'Copied'; } catch { copy.textContent = 'Press Ctrl+C'; }
        } });
      this.popover.append(h('div', { class: 'share-row' }, field, copy));
      field.focus();
      field.select();
    }
    this.popover.append(h('div', { class: 'share-row' }, expiry, again));
    this.popover.append(h('div', { class: 'share-list-title', text: `Links of this session (${shares.length})` }),
      h('ul', { class: 'share-list', testid: 'share-list' }, shares.map((s) => h('li', { class: 'share-item', dataset: { share: s.id } },
        h('span', { text: `${s.id} · made ${timeAgo(s.createdAt)} · ${expiryText(s.expiresAt)}` }),
        h('button', { type: 'button', class: 'btn btn-ghost', testid: 'share-revoke', text: 'Revoke',
          onclick: () => this.revoke(id, s.id) })))));
  }

  /** @param {string} id @param {string} shareId */
  async revoke(id, shareId) {
    try {
      await api.revokeShare(id, shareId);
      this.ctx.notify('The link was revoked: it no longer opens anything.', 'info');
      const shown = /** @type {HTMLInputElement | null} */ (this.popover.querySelector('.share-link'));
      await this.render(id, shown ? shown.value : null);
    } catch (err) {
      this.ctx.notify(`Could not revoke the link: ${err.message}`);
    }
  }
}

/** The Export menu: Markdown or JSON of the open session, downloaded from the relay. */
export class ExportMenu {
  /** @param {HeaderElements} root @param {{sessionId: () => string | null}} ctx */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.onToggle = () => this.fill();
    root.exportMenu.addEventListener('toggle', this.onToggle);
  }

  destroy() { this.root.exportMenu.removeEventListener('toggle', this.onToggle); }

  /** Points the menu's links at the open session (the relay sends them as attachments). */
  fill() {
    const id = this.ctx.sessionId();
    const items = this.root.exportItems;
    clear(items);
    if (!id) return;
    const item = (/** @type {'markdown' | 'json'} */ format, /** @type {string} */ label, /** @type {string} */ note) =>
      h('a', { class: 'menu-item', role: 'menuitem', href: exportUrl(id, format), download: '', testid: `export-${format}`,
        onclick: () => { this.root.exportMenu.open = false; } },
      h('span', { class: 'menu-item-name', text: label }), h('span', { class: 'muted', text: note }));
    items.append(item('markdown', 'Markdown', 'to read: prompts, answers, tool calls, diffs'),
      item('json', 'JSON', 'the stored objects'));
  }
}
