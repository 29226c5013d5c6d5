// @ts-check
// The session's directory as a tree (GET …/tree?path=): the top folder when the panel is
// drawn, every other folder only when it is first opened. A file opens in the viewer. When
// the session's changes move or the agent has finished, the open folders are read again,
// keeping what is open.
import { h, clear } from '../dom.js';
import { api } from '../api.js';
import { FileViewer } from './fileviewer.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {{name: string, path: string, type: 'file'|'directory', ignored: boolean}} FileNode */

const INDENT_PX = 12;
const REFRESH_DELAY_MS = 400;

/** One side panel: the tree, and the viewer its files open in. */
export class FileTreeView {
  /** @param {HTMLElement} root a section.panel @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.store = store;
    /** @type {Map<string, FileNode[]>} folder path -> its entries, for every folder read */
    this.folders = new Map();
    /** @type {Set<string>} folders shown open ('' is the top one, always open) */
    this.open = new Set(['']);
    /** @type {Map<string, HTMLElement>} folder path -> the element its children go in */
    this.slots = new Map();
    /** @type {Map<string, string>} folder path -> why it could not be read */
    this.failed = new Map();
    this.refreshing = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    this.closed = false;

    this.tree = h('div', { class: 'file-tree', testid: 'file-tree', role: 'tree' });
    this.tree.addEventListener('click', (e) => this.onClick(e));
    this.slots.set('', this.tree);
    const refresh = h('button', { type: 'button', class: 'panel-action', testid: 'file-tree-refresh',
      title: 'Read the folders again', 'aria-label': 'Refresh the files', text: '↻',
      onclick: () => this.refresh() });
    clear(root).append(h('h2', { class: 'panel-title' }, 'Files ', refresh), this.tree);
    this.viewer = new FileViewer(root, { sessionID: store.sessionID });
    this.unsubscribe = store.on((change) => {
      if (change.type === 'diff' || (change.type === 'status' && store.status.type === 'idle')) this.scheduleRefresh();
    });
    this.fill('');
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
    const row = /** @type {HTMLElement | null} */ (/** @type {Element} */ (event.target).closest('.file-row'));
    const node = row && /** @type {HTMLElement | null} */ (row.parentElement);
    if (!node || !node.dataset.path) return;
    const path = node.dataset.path;
    if (node.dataset.type === 'directory') this.toggle(node, path);
    else this.viewer.show(path);
  }

  /** @param {HTMLElement} node @param {string} path */
  toggle(node, path) {
    const row = /** @type {HTMLElement} */ (node.firstElementChild);
    if (this.open.has(path)) {
      this.open.delete(path);
      row.setAttribute('aria-expanded', 'false');
      const slot = this.slots.get(path);
      if (slot) slot.hidden = true;
      return;
    }
    this.open.add(path);
    row.setAttribute('aria-expanded', 'true');
    let slot = this.slots.get(path);
    if (!slot) {
      slot = h('div', { class: 'file-children', role: 'group' });
      this.slots.set(path, slot);
      node.append(slot);
    }
    slot.hidden = false;
    if (!this.folders.has(path)) this.fill(path);
  }

  /** Reads one folder (the first time it is opened) and draws it. @param {string} path */
  async fill(path) {
    const slot = this.slots.get(path);
    if (!slot) return;
    clear(slot).append(this.note('Loading…', depthOf(path)));
    try {
      const answer = await api.tree(this.store.sessionID, path);
      this.folders.set(path, answer.entries);
      this.failed.delete(path);
    } catch (err) {
      this.failed.set(path, /** @type {Error} */ (err).message);
    }
    if (!this.closed) this.draw(path);
  }

  /** Draws a folder's entries into its slot; open sub-folders keep their drawn children.
   * @param {string} path */
  draw(path) {
    const slot = this.slots.get(path);
    if (!slot) return;
    const depth = depthOf(path);
    const fragment = document.createDocumentFragment();
    const error = this.failed.get(path);
    const entries = this.folders.get(path);
    if (error) fragment.append(this.note(`Cannot list this folder: ${error}`, depth, true));
    else if (entries && !entries.length) fragment.append(this.note(path ? 'Empty folder.' : 'No files.', depth));
    for (const entry of error ? [] : entries || []) fragment.append(this.nodeOf(entry, depth));
    clear(slot).append(fragment);
  }

  /** One row (and, for an open folder, the slot of its children). @param {FileNode} entry @param {number} depth */
  nodeOf(entry, depth) {
    const folder = entry.type === 'directory';
    const node = document.createElement('div');
    node.className = entry.ignored ? 'file-node ignored' : 'file-node';
    node.setAttribute('data-testid', 'file-node');
    node.dataset.path = entry.path;
    node.dataset.type = entry.type;
    node.setAttribute('role', 'treeitem');
    const row = document.createElement('button');
    row.type = 'button';
    row.className = folder ? 'file-row folder' : 'file-row';
    row.style.paddingLeft = `${6 + depth * INDENT_PX}px`;
    row.title = entry.path;
    row.textContent = entry.name;
    node.append(row);
    if (folder) {
      const open = this.open.has(entry.path);
      row.setAttribute('aria-expanded', String(open));
      const slot = this.slots.get(entry.path);
      if (open && slot) {
        node.append(slot);
        this.draw(entry.path);
      } else if (slot) {
        this.slots.delete(entry.path);  // closed: read again when next opened
        this.folders.delete(entry.path);
      }
    }
    return node;
  }

  /** @param {string} text @param {number} depth @param {boolean} [error] */
  note(text, depth, error = false) {
    return h('div', { class: error ? 'file-note error' : 'file-note muted', text,
      style: `padding-left: ${6 + depth * INDENT_PX}px` });
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  /** Reads every open folder again, then redraws from the top, keeping what is open. */
  async refresh() {
    if (this.refreshing || this.closed) return;
    this.refreshing = true;
    try {
      const paths = [...this.open].filter((p) => this.folders.has(p) || this.failed.has(p));
      const answers = await Promise.allSettled(paths.map((p) => api.tree(this.store.sessionID, p)));
      if (this.closed) return;
      answers.forEach((answer, i) => {
        if (answer.status === 'fulfilled') {
          this.folders.set(paths[i], answer.value.entries);
          this.failed.delete(paths[i]);
        } else if (paths[i]) {
          this.open.delete(paths[i]);  // gone (or unreadable): shown closed
          this.folders.delete(paths[i]);
          this.slots.delete(paths[i]);
        } else {
          this.failed.set('', /** @type {Error} */ (answer.reason).message);
        }
      });
      this.draw('');
    } finally {
      this.refreshing = false;
    }
  }
}

/** How deep a folder's children are drawn ('' -> 0, 'a' -> 1, 'a/b' -> 2). @param {string} path */
function depthOf(path) {
  return path ? path.split('/').length : 0;
}
