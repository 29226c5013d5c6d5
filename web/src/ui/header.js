// @ts-check
// The open session's header: its title, directory (and parent link), status pill; and the
// rename and delete actions.
import { h, clear } from '../dom.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {import('../layout.js').HeaderElements} HeaderElements */

const STATUS_LABEL = { idle: 'Idle', busy: 'Working', retry: 'Retrying' };

/** Shows one session's title and status; a view of its store. */
export class SessionHeaderView {
  /**
   * @param {HeaderElements} root @param {SessionStore} store
   * @param {{navigate: (id: string) => void, access?: import('../types.js').SessionAccess | null}} ctx
   */
  constructor(root, store, ctx) {
    this.root = root;
    this.store = store;
    this.ctx = ctx;
    this.unsubscribe = store.on((change) => {
      if (change.type === 'session') this.renderTitle();
      else if (change.type === 'status') this.renderStatus();
    });
    this.render();
  }

  destroy() { this.unsubscribe(); }

  render() {
    this.renderTitle();
    this.renderStatus();
  }

  renderTitle() {
    const s = this.store.session || { id: this.store.sessionID };
    const { title, dir } = this.root;
    title.textContent = s.title || 'Untitled session';
    clear(dir).append(s.directory || '');
    const parentID = s.parentID;
    if (parentID) {
      const parent = h('a', { href: `/?session=${encodeURIComponent(parentID)}`, class: 'link parent-link', testid: 'parent-link', text: 'sub-agent of the parent session' });
      parent.addEventListener('click', (e) => { e.preventDefault(); this.ctx.navigate(parentID); });
      dir.append(' · ', parent);
    }
    const access = this.ctx.access;
    if (access && access.team) {
      dir.append(' · ', h('span', {
        class: 'team-badge', testid: 'session-team',
        text: access.role ? `team ${access.team} · ${access.role}` : `team ${access.team}`,
      }));
    }
    document.title = `${s.title || 'Session'} · opencode relay`;
  }

  renderStatus() {
    const type = (this.store.status && this.store.status.type) || 'idle';
    this.root.status.dataset.status = type;
    this.root.status.textContent = STATUS_LABEL[/** @type {keyof STATUS_LABEL} */ (type)] || type;
  }
}

/**
 * @typedef {{
 *   isOpen: () => boolean,
 *   rename: (title: string) => Promise<void>,
 *   remove: () => Promise<void>,
 * }} HeaderActionsContext  what the buttons act on: the open session, whichever it is
 */

/** Rename (in place) and delete (two clicks) of the open session. Lives as long as the page. */
export class HeaderActions {
  /** @param {HeaderElements} root @param {HeaderActionsContext} ctx */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.deleteArmed = null;
    this.onRename = () => this.startRename();
    this.onDelete = () => this.deleteClicked();
    root.rename.addEventListener('click', this.onRename);
    root.delete.addEventListener('click', this.onDelete);
  }

  destroy() {
    this.disarm();
    this.root.rename.removeEventListener('click', this.onRename);
    this.root.delete.removeEventListener('click', this.onDelete);
  }

  startRename() {
    if (!this.ctx.isOpen()) return;
    const titleEl = this.root.title;
    const input = h('input', { class: 'title-input', testid: 'session-title-input', value: titleEl.textContent, 'aria-label': 'Session title' });
    titleEl.replaceWith(input);
    input.focus();
    input.select();
    let done = false;
    /** @param {boolean} save */
    const finish = (save) => {
      if (done) return;
      done = true;
      input.replaceWith(titleEl);
      const title = input.value.trim();
      if (!save || !title || title === titleEl.textContent) return;
      titleEl.textContent = title;
      this.ctx.rename(title);
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); finish(true); }
      if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
  }

  deleteClicked() {
    if (!this.ctx.isOpen()) return;
    if (!this.deleteArmed) {
      // Two clicks, no modal dialog: the second one confirms.
      this.root.delete.textContent = 'Confirm delete';
      this.root.delete.classList.add('btn-danger');
      this.deleteArmed = setTimeout(() => this.disarm(), 4000);
      return;
    }
    this.disarm();
    this.ctx.remove();
  }

  disarm() {
    if (this.deleteArmed) clearTimeout(this.deleteArmed);
    this.deleteArmed = null;
    this.root.delete.textContent = 'Delete';
    this.root.delete.classList.remove('btn-danger');
  }
}
