// @ts-check
// The "Changes" side panel: the files changed on disk where the session works, each with its diff.
//
// `GET …/changes` lists them: in a git repository the working tree against HEAD, elsewhere the
// files the session's tools wrote or edited. An opened file reads its diff (`GET …/changes/diff`).
// The list is read again, debounced, when the agent may have changed files: the relay's
// `relay.files.changed` notice (while the session works), a completed file tool call, the end of
// a turn, an undo or redo.
import { h, clear } from '../dom.js';
import { api } from '../api.js';
import { renderUnifiedDiff } from '../render/diff.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {import('../types.js').StoreChange} StoreChange */
/** @typedef {import('../types.js').Changes} Changes */
/** @typedef {import('../types.js').ChangedFile} ChangedFile */

export const REFRESH_DELAY_MS = 400;
const FILE_TOOLS = new Set(['write', 'edit', 'multiedit', 'apply_patch', 'patch']);
/** @type {Record<string, string>} */
const STATUS_MARK = { added: 'A', modified: 'M', deleted: 'D' };

/** The changes panel of the open session; a view of its store. */
export class ChangesView {
  /** @param {HTMLElement} root the panel's section @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.count = h('span', { class: 'panel-count' });
    this.source = h('div', { class: 'changes-source muted' });
    this.list = h('ul', { class: 'changes-list', testid: 'changes-list', 'aria-busy': 'true' });
    /** @type {Set<string>} files whose diff the reader opened; they stay open on refresh */
    this.openPaths = new Set();
    /** @type {Map<string, HTMLElement>} the diff shown of each open file, kept while it is re-read */
    this.shown = new Map();
    // opencode's git status and diff take seconds in a big working tree: one list read at a
    // time (a change meanwhile asks for one more after it), and diffs read one after another.
    this.loading = false;
    this.again = false;
    /** @type {Promise<void>} */
    this.diffs = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.destroyed = false;
    /** The session's undo point as last seen: an undo or redo changes files. */
    this.revert = revertOf(store);
    this.list.append(h('li', { class: 'panel-empty', text: 'Reading the changes…' }));
    clear(root).append(
      h('h2', { class: 'panel-title' }, 'Changes ', this.count), this.source, this.list);
    this.unsubscribe = store.on((change) => { if (this.touchesFiles(change)) this.schedule(); });
    this.refresh();
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.timer);
    this.unsubscribe();
    clear(this.root);
  }

  /** Whether a store change may mean files changed on disk. @param {StoreChange} change */
  touchesFiles(change) {
    switch (change.type) {
      case 'files': case 'diff': return true;
      case 'session': {
        const revert = revertOf(this.store);
        if (revert === this.revert) return false;
        this.revert = revert;
        return true;
      }
      case 'status': return this.store.status.type === 'idle';
      case 'part': {
        const part = this.store.messages.get(change.messageID)?.parts.get(change.id);
        return !!part && part.type === 'tool' && FILE_TOOLS.has(part.tool || '')
          && part.state?.status === 'completed';
      }
      default: return false;
    }
  }

  /** Reads the list again once changes have settled for REFRESH_DELAY_MS. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  async refresh() {
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      const changes = await api.changes(this.store.sessionID);
      if (!this.destroyed) this.render(changes);
    } catch (err) {
      if (!this.destroyed) this.showError(err.message);
    } finally {
      this.loading = false;
      if (this.again && !this.destroyed) {
        this.again = false;
        this.schedule();
      }
    }
  }

  /** @param {string} message */
  showError(message) {
    this.list.setAttribute('aria-busy', 'false');
    clear(this.count);
    clear(this.list).append(h('li', { class: 'panel-empty', text: `Could not read the changes: ${message}` }));
  }

  /** @param {Changes} changes */
  render(changes) {
    const files = changes.files || [];
    const git = changes.source === 'git';
    this.list.setAttribute('aria-busy', 'false');
    this.list.dataset.source = changes.source;
    this.source.textContent = git
      ? `Working tree${changes.branch ? ` on ${changes.branch}` : ''}, against the last commit`
      : 'Not a git repository: the files the agent wrote or edited';
    const adds = files.reduce((n, f) => n + (f.additions || 0), 0);
    const dels = files.reduce((n, f) => n + (f.deletions || 0), 0);
    clear(this.count);
    if (files.length) this.count.append(`${files.length} `, h('span', { class: 'add', text: `+${adds}` }), ' ', h('span', { class: 'del', text: `−${dels}` }));
    clear(this.list);
    if (!files.length) {
      this.list.append(h('li', { class: 'panel-empty', text: git ? 'No changes on disk.' : 'No files written or edited yet.' }));
      return;
    }
    const shown = new Set(files.map((f) => f.path));
    for (const path of [...this.openPaths]) {
      if (!shown.has(path)) { this.openPaths.delete(path); this.shown.delete(path); }
    }
    for (const file of files) this.list.append(this.item(file));
  }

  /** One changed file: its name and counts; opening it shows its diff. @param {ChangedFile} file */
  item(file) {
    const body = h('div', { class: 'change-body' });
    const details = h('details', { class: 'diff-file' },
      h('summary', null,
        h('span', { class: `change-status change-${file.status}`, text: STATUS_MARK[file.status] || '?', title: file.status }),
        h('span', { class: 'diff-file-name', text: file.path, title: file.path }),
        h('span', { class: 'add', text: `+${file.additions || 0}` }),
        h('span', { class: 'del', text: `−${file.deletions || 0}` })),
      body);
    details.addEventListener('toggle', () => {
      if (details.open) {
        this.openPaths.add(file.path);
        this.diffs = this.diffs.then(() => this.showDiff(file.path, body, details));
      } else {
        this.openPaths.delete(file.path);
        this.shown.delete(file.path);
      }
    });
    if (this.openPaths.has(file.path)) {
      const before = this.shown.get(file.path);
      if (before) body.append(before);
      details.open = true;  // fires toggle: the diff is read again
    }
    return h('li', { class: 'change-item', testid: 'change-item', 'data-path': file.path, 'data-status': file.status }, details);
  }

  /** @param {string} path @param {HTMLElement} body @param {HTMLDetailsElement} details */
  async showDiff(path, body, details) {
    if (this.destroyed || !details.open || !details.isConnected) return;  // closed or redrawn meanwhile
    if (!body.firstChild) body.append(h('div', { class: 'panel-empty', text: 'Loading…' }));
    try {
      const diff = await api.changeDiff(this.store.sessionID, path);
      if (this.destroyed) return;
      const view = h('div', { class: 'diff-view', testid: 'diff-view', 'data-path': path },
        diff.patch ? renderUnifiedDiff(diff.patch) : h('div', { class: 'panel-empty', text: 'No diff to show (a binary file?).' }));
      clear(body).append(view);
      this.shown.set(path, view);
    } catch (err) {
      if (this.destroyed) return;
      clear(body).append(h('div', { class: 'panel-empty', text: err.status === 404 ? 'No longer changed.' : `Could not read the diff: ${err.message}` }));
    }
  }
}

/** The session's undo point, as a string to compare. @param {SessionStore} store */
function revertOf(store) {
  return JSON.stringify((store.session && store.session.revert) || null);
}
