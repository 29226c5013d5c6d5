// @ts-check
// The session's directory as a tree (GET …/tree?path=): the top folder when the panel is
// drawn, every other folder only when it is opened. A file opens in the viewer. When files
// changed (the relay's notice), the session's changes move or the agent has finished, the open
// folders are read again, keeping what is open.
//
// A folder may hold thousands of entries, so the tree is drawn as a list of its visible rows
// (open folders' entries flattened, indented by depth) of which only those in view, and a few
// around them, are in the DOM; scrolling draws the others.
import { h, clear } from '../dom.js';
import { api } from '../api.js';
import { FileViewer } from './fileviewer.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {{name: string, path: string, type: 'file'|'directory', ignored: boolean}} FileNode */
/** @typedef {{node: FileNode, depth: number} | {note: string, depth: number, error: boolean}} Row */

const INDENT_PX = 12;
const ROW_PX = 22;

/** The rows' height: the tree's `--file-row-px` (44 on a phone, for touch), else ROW_PX. @param {Element} tree */
function rowHeight(tree) {
  const value = parseFloat(getComputedStyle(tree).getPropertyValue('--file-row-px'));
  return value > 0 ? value : ROW_PX;
}
/** rows drawn above and below the visible ones */
const OVERSCAN = 20;
/** rows drawn when the tree cannot tell its height yet (hidden panel) */
const FALLBACK_ROWS = 40;
const REFRESH_DELAY_MS = 400;

/** One side panel: the tree, and the viewer its files open in. */
export class FileTreeView {
  /** @param {HTMLElement} root a section.panel @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.rowPx = ROW_PX;
    /** @type {Map<string, FileNode[]>} folder path -> its entries, for every folder read */
    this.folders = new Map();
    /** @type {Set<string>} folders shown open ('' is the top one, always open) */
    this.open = new Set(['']);
    /** @type {Map<string, string>} folder path -> why it could not be read */
    this.failed = new Map();
    /** @type {Set<string>} folders being read */
    this.reading = new Set();
    /** @type {Row[]} the visible rows, top to bottom */
    this.rows = [];
    /** @type {[number, number]} the rows now in the DOM: [first, end) */
    this.drawn = [0, 0];
    this.refreshing = false;
    this.scrollQueued = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    this.closed = false;

    this.space = h('div', { class: 'file-tree-space' });
    this.tree = h('div', { class: 'file-tree', testid: 'file-tree', role: 'tree', 'aria-busy': 'true' },
      this.space);
    this.tree.addEventListener('click', (e) => this.onClick(e));
    this.tree.addEventListener('scroll', () => this.onScroll(), { passive: true });
    const refresh = h('button', { type: 'button', class: 'panel-action', testid: 'file-tree-refresh',
      title: 'Read the folders again', 'aria-label': 'Refresh the files', text: '↻',
      onclick: () => this.refresh() });
    clear(root).append(h('h2', { class: 'panel-title' }, 'Files ', refresh), this.tree);
    this.viewer = new FileViewer(root, { sessionID: store.sessionID });
    // What was last seen of the session: the tree is read again when the relay says files
    // changed, when the session's changes move or when it goes from working to idle; not when
    // the same state is merely loaded again.
    this.seenDiff = diffKey(store);
    this.seenStatus = store.status.type;
    this.unsubscribe = store.on((change) => {
      if (change.type === 'files') {  // the relay's `relay.files.changed` notice
        this.scheduleRefresh();
      } else if (change.type === 'diff' && diffKey(store) !== this.seenDiff) {
        this.seenDiff = diffKey(store);
        this.scheduleRefresh();
      } else if (change.type === 'status' && store.status.type !== this.seenStatus) {
        if (store.status.type === 'idle') this.scheduleRefresh();
        this.seenStatus = store.status.type;
      }
    });
    this.read('');
  }

  destroy() {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.unsubscribe();
    this.viewer.destroy();
    clear(this.root);
  }

  /** @param {MouseEvent} event */
  onClick(event) {
    const row = /** @type {Element} */ (event.target).closest('.file-row');
    const node = row && /** @type {HTMLElement | null} */ (row.parentElement);
    if (!node || !node.dataset.path) return;
    const path = node.dataset.path;
    if (node.dataset.type === 'directory') this.toggle(path);
    else this.viewer.show(path);
  }

  /** Opens or closes a folder; an opened folder is read (nothing is read before). @param {string} path */
  toggle(path) {
    if (this.open.has(path)) {
      this.open.delete(path);
    } else {
      this.open.add(path);
      this.read(path);  // what was read before shows until the fresh answer is in
    }
    this.update();
  }

  /** Reads one folder and draws the tree again. @param {string} path */
  async read(path) {
    this.reading.add(path);
    this.update();
    try {
      const answer = await api.tree(this.store.sessionID, path);
      this.folders.set(path, answer.entries);
      this.failed.delete(path);
    } catch (err) {
      this.failed.set(path, /** @type {Error} */ (err).message);
    } finally {
      this.reading.delete(path);
    }
    if (!this.closed) this.update();
  }

  /** The rows of the open folders, flattened; then the ones in view are drawn. */
  update() {
    /** @type {Row[]} */
    const rows = [];
    /** @param {string} path @param {number} depth */
    const walk = (path, depth) => {
      const error = this.failed.get(path);
      const entries = this.folders.get(path);
      if (error) rows.push({ note: `Cannot list this folder: ${error}`, depth, error: true });
      else if (!entries) rows.push({ note: 'Loading…', depth, error: false });
      else if (!entries.length) rows.push({ note: path ? 'Empty folder.' : 'No files.', depth, error: false });
      for (const node of error ? [] : entries || []) {
        rows.push({ node, depth });
        if (node.type === 'directory' && this.open.has(node.path)) walk(node.path, depth + 1);
      }
    };
    walk('', 0);
    this.rows = rows;
    this.rowPx = rowHeight(this.tree);
    this.space.style.height = `${rows.length * this.rowPx}px`;
    this.tree.setAttribute('data-rows', String(rows.length));
    this.tree.setAttribute('aria-busy', String(this.reading.size > 0));
    this.draw(true);
  }

  onScroll() {
    if (this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => { this.scrollQueued = false; if (!this.closed) this.draw(false); });
  }

  /** Puts the rows in view (and OVERSCAN around them) in the DOM. @param {boolean} changed */
  draw(changed) {
    const height = this.tree.clientHeight;
    const row = this.rowPx;
    const shown = height ? Math.ceil(height / row) : FALLBACK_ROWS;
    const top = Math.floor(this.tree.scrollTop / row);
    const first = Math.max(0, top - OVERSCAN);
    const end = Math.min(this.rows.length, top + shown + OVERSCAN);
    if (!changed && first === this.drawn[0] && end === this.drawn[1]) return;
    this.drawn = [first, end];
    // A row that looks the same as before stays the same element: a redraw (a refresh after the
    // agent wrote files) then neither swallows a click in progress nor takes the focus away.
    /** @type {Map<string, Element>} */
    const before = new Map();
    for (const el of [...this.space.children]) {
      const path = /** @type {HTMLElement} */ (el).dataset.path;
      if (path !== undefined) before.set(path, el);
    }
    /** @type {Element[]} */
    const wanted = [];
    for (let i = first; i < end; i++) {
      const fresh = this.rowOf(this.rows[i], i);
      const old = fresh.dataset.path === undefined ? undefined : before.get(fresh.dataset.path);
      if (old && old.isEqualNode(fresh)) {
        before.delete(/** @type {string} */ (fresh.dataset.path));
        wanted.push(old);
      } else {
        wanted.push(fresh);
      }
    }
    const keep = new Set(wanted);
    for (const el of [...this.space.children]) if (!keep.has(el)) el.remove();
    let next = this.space.firstChild;
    for (const el of wanted) {
      if (el === next) next = next.nextSibling;
      else this.space.insertBefore(el, next);
    }
  }

  /** @param {Row} row @param {number} index */
  rowOf(row, index) {
    const indent = `${6 + row.depth * INDENT_PX}px`;
    if (!('node' in row)) {
      const note = h('div', { class: row.error ? 'file-note error' : 'file-note muted', text: row.note });
      note.style.top = `${index * this.rowPx}px`;
      note.style.paddingLeft = indent;
      return note;
    }
    const entry = row.node;
    const node = document.createElement('div');
    node.className = entry.ignored ? 'file-node ignored' : 'file-node';
    node.setAttribute('data-testid', 'file-node');
    node.dataset.path = entry.path;
    node.dataset.type = entry.type;
    node.setAttribute('role', 'treeitem');
    node.setAttribute('aria-level', String(row.depth + 1));
    node.style.top = `${index * this.rowPx}px`;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = entry.type === 'directory' ? 'file-row folder' : 'file-row';
    button.style.paddingLeft = indent;
    button.title = entry.path;
    button.textContent = entry.name;
    if (entry.type === 'directory') {
      const open = this.open.has(entry.path);
      node.setAttribute('aria-expanded', String(open));
      button.setAttribute('aria-expanded', String(open));
    }
    node.append(button);
    return node;
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  /** Reads every open folder again, then draws the tree, keeping what is open. */
  async refresh() {
    if (this.refreshing || this.closed) return;
    this.refreshing = true;
    const paths = [...this.open].filter((p) => this.folders.has(p) || this.failed.has(p));
    for (const path of paths) this.reading.add(path);
    this.tree.setAttribute('aria-busy', 'true');
    try {
      const answers = await Promise.allSettled(paths.map((p) => api.tree(this.store.sessionID, p)));
      if (this.closed) return;
      answers.forEach((answer, i) => {
        const path = paths[i];
        this.reading.delete(path);
        if (answer.status === 'fulfilled') {
          this.folders.set(path, answer.value.entries);
          this.failed.delete(path);
        } else if (path) {
          this.open.delete(path);  // gone (or unreadable): shown closed, read when opened
          this.folders.delete(path);
          this.failed.delete(path);
        } else {
          this.failed.set('', /** @type {Error} */ (answer.reason).message);
        }
      });
      this.update();
    } finally {
      for (const path of paths) this.reading.delete(path);
      this.refreshing = false;
    }
  }
}

/** What of the session's changes the tree cares about. @param {SessionStore} store */
function diffKey(store) {
  return (store.diff || []).map((f) => `${f.file}:${f.additions}:${f.deletions}`).join('|');
}
