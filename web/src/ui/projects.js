// @ts-check
// The project picker: which folder a new session starts in, and which sessions the list shows.
import { h, clear } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../types.js').ProjectInfo} ProjectInfo */
/** @typedef {import('./notices.js').Notify} Notify */
/**
 * @typedef {{
 *   onChange: (directory: string | null) => void,
 *   onStart: (directory: string) => Promise<boolean>,
 *   notify: Notify,
 * }} ProjectPickerContext  onStart: create a session there (false: refused, and said why)
 */

const STORAGE_KEY = 'relay.project';
const OTHER = 'other'; // the "Another folder…" option (project directories are absolute)

/** The last two folders of a path. @param {string} dir */
function tail(dir) {
  const parts = dir.split('/').filter(Boolean);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : dir;
}

/** @param {ProjectInfo} p */
function label(p) {
  const name = p.root ? `${p.name} (workspace root)` : p.name;
  return p.sessions ? `${name} · ${p.sessions}` : name;
}

/** A <select> of the projects from the API, above the session list; lives as long as the page. */
export class ProjectPicker {
  /** @param {HTMLElement} root @param {ProjectPickerContext} ctx */
  constructor(root, { onChange, onStart, notify }) {
    this.root = root;
    this.onChange = onChange;
    this.onStart = onStart;
    this.notify = notify;
    /** @type {Map<string, ProjectInfo>} */
    this.projects = new Map();
    /** @type {string | null} the default directory (a session created under "All projects") */
    this.defaultDirectory = null;
    this.loadToken = 0;
    /** @type {string | null} */
    this.wanted = null;
    try { this.wanted = localStorage.getItem(STORAGE_KEY) || null; } catch { /* private mode */ }
    this.select = h('select', { class: 'project-select', testid: 'project-select', 'aria-label': 'Project' },
      h('option', { value: '', text: 'All projects' }));
    this.where = h('div', { class: 'project-where muted', testid: 'project-where' });
    // "Another folder…": a path typed in, where a new session starts at once (the relay says
    // whether it may: it must exist under a workspace root).
    this.otherInput = h('input', {
      type: 'text', class: 'search project-other-input', testid: 'project-other', spellcheck: 'false',
      placeholder: '/absolute/folder/under/a/root', 'aria-label': 'Folder for a new session',
    });
    this.otherStart = h('button', { type: 'submit', class: 'btn', testid: 'project-other-start', text: 'Start' });
    this.otherForm = h('form', { class: 'project-other', hidden: true },
      this.otherInput, this.otherStart,
      h('button', { type: 'button', class: 'btn btn-ghost', text: '×', 'aria-label': 'Cancel', onclick: () => { this.otherForm.hidden = true; } }));
    this.otherForm.addEventListener('submit', (e) => { e.preventDefault(); this.startOther(); });
    clear(root).append(h('label', { class: 'project-label', text: 'Project' }), this.select, this.where, this.otherForm);
    this.select.addEventListener('change', () => {
      if (this.select.value === OTHER) {
        this.select.value = this.wanted && this.projects.has(this.wanted) ? this.wanted : '';
        this.otherForm.hidden = false;
        if (!this.otherInput.value) this.otherInput.value = `${this.target() || ''}/`;
        this.otherInput.focus();
        return;
      }
      this.wanted = this.select.value || null;
      try {
        if (this.wanted) localStorage.setItem(STORAGE_KEY, this.wanted); else localStorage.removeItem(STORAGE_KEY);
      } catch { /* private mode */ }
      this.describe();
      this.onChange(this.selected());
    });
  }

  destroy() {
    this.loadToken++;
    clear(this.root);
  }

  /** The chosen project's directory, or null for "All projects". @returns {string | null} */
  selected() {
    return this.select.value || null;
  }

  /** Where a new session starts: the chosen project, else the relay's default directory. */
  target() {
    return this.selected() || this.defaultDirectory;
  }

  async load() {
    const token = ++this.loadToken;
    let data;
    try {
      data = await api.projects();
    } catch (err) {
      if (token === this.loadToken) this.notify(`Could not load the projects: ${err.message}`);
      return;
    }
    if (token !== this.loadToken) return;
    this.defaultDirectory = data.default || null;
    this.projects = new Map((data.projects || []).map((/** @type {ProjectInfo} */ p) => [p.directory, p]));
    this.render();
  }

  /** Starts a session in the typed folder; on success the picker shows that folder. */
  async startOther() {
    const directory = this.otherInput.value.trim().replace(/(.)\/+$/, '$1');
    if (!directory.startsWith('/')) {
      this.notify('Type an absolute folder, starting with /.');
      return;
    }
    this.otherStart.disabled = true;
    try {
      if (!(await this.onStart(directory))) return;
    } finally {
      this.otherStart.disabled = false;
    }
    this.otherForm.hidden = true;
    this.otherInput.value = '';
    await this.load();
  }

  /** Shows one project's sessions (a folder a session was just made in, for one). @param {string} directory */
  choose(directory) {
    this.wanted = directory;
    try { localStorage.setItem(STORAGE_KEY, directory); } catch { /* private mode */ }
    if (this.projects.has(directory)) this.render();
  }

  /** A session appeared in a folder the list does not know yet: read the projects again.
   * @param {string | undefined} directory */
  notice(directory) {
    if (directory && !this.projects.has(directory)) this.load();
  }

  render() {
    const before = this.select.value;
    const here = [...this.projects.values()].filter((p) => p.allowed);
    const elsewhere = [...this.projects.values()].filter((p) => !p.allowed);
    /** @param {ProjectInfo} p */
    const option = (p) => h('option', { value: p.directory, title: p.directory, text: label(p) });
    clear(this.select).append(h('option', { value: '', text: 'All projects' }));
    if (here.length) this.select.append(h('optgroup', { label: 'Workspace' }, here.map(option)));
    // Folders of the caller's older sessions outside the roots: to filter the list only.
    if (elsewhere.length) this.select.append(h('optgroup', { label: 'Outside the workspace (view only)' }, elsewhere.map(option)));
    this.select.append(h('option', { value: OTHER, text: 'Another folder…' }));
    const want = this.wanted && this.projects.has(this.wanted) ? this.wanted : '';
    this.select.value = want;
    this.describe();
    if (want !== before) this.onChange(this.selected());
  }

  /** The line under the picker: where "+ New session" will start. */
  describe() {
    const chosen = this.selected();
    const project = chosen ? this.projects.get(chosen) : null;
    if (project && !project.allowed) {
      this.where.textContent = 'New sessions cannot start here: it is outside the workspace roots.';
    } else {
      const dir = this.target();
      this.where.textContent = dir ? `New sessions start in ${tail(dir)}` : '';
    }
    this.where.title = this.target() || '';
  }
}
