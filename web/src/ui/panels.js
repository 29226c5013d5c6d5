// @ts-check
// Side panels of the open session: its todo list and the changes on disk (ui/changes.js).
import { h, clear } from '../dom.js';
import { ChangesView } from './changes.js';
import { TerminalView } from './terminal.js';
import { FileTreeView } from './filetree.js';

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
    const changes = h('section', { class: 'panel panel-changes' });
    const files = h('section', { class: 'panel panel-files' });
    const terminalPanel = h('section', { class: 'panel panel-terminal' });
    clear(root).append(
      h('section', { class: 'panel' },
        h('h2', { class: 'panel-title' }, 'Todos ', this.todoCount), this.todoList),
      changes,
      files,
      terminalPanel,
    );
    this.changes = new ChangesView(changes, store);
    this.files = new FileTreeView(files, store);
    this.terminal = new TerminalView(terminalPanel, store);
    this.unsubscribe = store.on((change) => {
      if (change.type === 'todos') this.renderTodos();
    });
    this.renderTodos();
  }

  destroy() {
    this.terminal.destroy(); this.unsubscribe(); this.changes.destroy(); this.files.destroy(); clear(this.root);
  }

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
}
