// @ts-check
// Side panels of the open session: its todo list and the files it changed.
import { h, clear } from '../dom.js';
import { renderUnifiedDiff, patchOfFileDiff } from '../render/diff.js';
import { TerminalView } from './terminal.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */

/** @type {Record<string, string>} */
const TODO_MARK = { completed: '✓', in_progress: '◐', pending: '○', cancelled: '✕' };

/** The side panels; a view of the open session's store. */
export class PanelsView {
  /** @param {HTMLElement} root @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.todoCount = h('span', { class: 'panel-count' });
    this.todoList = h('ul', { class: 'todo-list', testid: 'todo-list' });
    this.diffCount = h('span', { class: 'panel-count' });
    this.diffList = h('div', { class: 'diff-list', testid: 'diff-view' });
    /** @type {Set<string>} files whose diff the reader opened; they stay open on redraw */
    this.openFiles = new Set();
    const terminalPanel = h('section', { class: 'panel panel-terminal' });
    clear(root).append(
      h('section', { class: 'panel' },
        h('h2', { class: 'panel-title' }, 'Todos ', this.todoCount), this.todoList),
      h('section', { class: 'panel' },
        h('h2', { class: 'panel-title' }, 'Changed files ', this.diffCount), this.diffList),
      terminalPanel,
    );
    this.terminal = new TerminalView(terminalPanel, store);
    this.unsubscribe = store.on((change) => {
      if (change.type === 'todos') this.renderTodos();
      if (change.type === 'diff') this.renderDiff();
    });
    this.renderTodos();
    this.renderDiff();
  }

  destroy() { this.terminal.destroy(); this.unsubscribe(); clear(this.root); }

  renderTodos() {
    const todos = this.store.todos || [];
    const done = todos.filter((t) => t.status === 'completed').length;
    this.todoCount.textContent = todos.length ? `${done}/${todos.length}` : '';
    clear(this.todoList);
    if (!todos.length) {
      this.todoList.append(h('li', { class: 'panel-empty', text: 'No todos.' }));
      return;
    }
    for (const t of todos) {
      this.todoList.append(h('li', {
        class: `todo-item todo-${t.status}`, testid: 'todo-item',
        'data-status': t.status, 'data-priority': t.priority,
      }, h('span', { class: 'todo-mark', text: TODO_MARK[t.status] || '○', 'aria-hidden': 'true' }),
      h('span', { class: 'todo-text', text: t.content })));
    }
  }

  renderDiff() {
    const files = this.store.diff || [];
    const adds = files.reduce((n, f) => n + (f.additions || 0), 0);
    const dels = files.reduce((n, f) => n + (f.deletions || 0), 0);
    clear(this.diffCount);
    if (files.length) this.diffCount.append(`${files.length} `, h('span', { class: 'add', text: `+${adds}` }), ' ', h('span', { class: 'del', text: `−${dels}` }));
    clear(this.diffList);
    if (!files.length) {
      this.diffList.append(h('div', { class: 'panel-empty', text: 'No changes.' }));
      return;
    }
    for (const fd of files) {
      const body = h('div', { class: 'diff-file-body' });
      const item = h('details', { class: 'diff-file', testid: 'diff-file', 'data-file': fd.file },
        h('summary', null,
          h('span', { class: 'diff-file-name', text: fd.file, title: fd.file }),
          h('span', { class: 'add', text: `+${fd.additions || 0}` }),
          h('span', { class: 'del', text: `−${fd.deletions || 0}` })),
        body);
      const fill = () => {
        if (item.open && !body.firstChild) body.append(renderUnifiedDiff(patchOfFileDiff(fd)));
        if (item.open) this.openFiles.add(fd.file); else this.openFiles.delete(fd.file);
      };
      item.addEventListener('toggle', fill);
      if (this.openFiles.has(fd.file)) item.open = true;
      this.diffList.append(item);
    }
  }
}
