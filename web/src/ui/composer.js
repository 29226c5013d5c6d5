// @ts-check
// The prompt box: Enter sends, Shift+Enter adds a line; agent and model pickers; abort;
// `/` commands (opencode's and the page's own actions), `@` file mentions, attachments.
import { h, clear } from '../dom.js';
import { Menu, slashQuery, mentionQuery, filterItems, parseSlash, mentionMime } from './menu.js';

/** @typedef {import('../types.js').AgentInfo} AgentInfo */
/** @typedef {import('../types.js').ProviderList} ProviderList */
/** @typedef {import('../api.js').PromptBody} PromptBody */
/** @typedef {import('../api.js').CommandBody} CommandBody */
/** @typedef {import('../api.js').FilePart} FilePart */
/** @typedef {import('./menu.js').MenuItem} MenuItem */
/** @typedef {{name: string, description?: string, run: () => void}} ComposerAction  one of the page's own actions */
/** @typedef {{name: string, description?: string, source?: string}} CommandInfo  one of opencode's commands */
/**
 * @typedef {{
 *   onSend: (body: PromptBody) => Promise<boolean>,
 *   onCommand: (body: CommandBody) => Promise<boolean>,
 *   onAbort: () => void,
 *   actions: ComposerAction[],
 *   commands: () => Promise<CommandInfo[]>,
 *   files: (query: string) => Promise<{directory: string | null, files: string[]}>,
 *   notify: (message: string) => void,
 * }} ComposerContext  onSend and onCommand resolve true once the relay took it; `actions` may grow
 */

/** What can be attached: the relay passes on these types only (415 otherwise). */
const ACCEPT = 'image/*,application/pdf,text/*';
const TEXT_EXTENSIONS = /\.(txt|md|markdown|json|ya?ml|toml|csv|log|py|js|ts|jsx|tsx|css|html|sh|go|rs|java|c|h|cpp|rb|sql|xml|ini|cfg)$/i;

/** A file's type as the browser names it; a known text extension with no type is text/plain. @param {File} file */
function mimeOf(file) {
  if (file.type) return file.type;
  return TEXT_EXTENSIONS.test(file.name) ? 'text/plain' : 'application/octet-stream';
}

/** @param {File} file @returns {Promise<string>} */
function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

const AGENT_KEY = 'opencode-relay.agent';
const MODEL_KEY = 'opencode-relay.model';

/** @param {string} key @param {string} value */
function remember(key, value) {
  try { if (value) localStorage.setItem(key, value); else localStorage.removeItem(key); } catch { /* private mode */ }
}
/** @param {string} key */
function recall(key) {
  try { return localStorage.getItem(key) || ''; } catch { return ''; }
}

/** The prompt box of the page; it outlives sessions (main.js enables it for the open one). */
export class Composer {
  /** @param {HTMLElement} root @param {ComposerContext} ctx */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.onSend = ctx.onSend;
    this.onAbort = ctx.onAbort;
    /** @type {FilePart[]} attachments waiting to be sent (data: URLs) */
    this.attachments = [];
    /** @type {Map<string, FilePart>} mentioned files by their path, while `@path` stays in the text */
    this.mentions = new Map();
    /** @type {Promise<CommandInfo[]> | null} */
    this.commandList = null;
    this.fileSearch = 0;
    this.sending = false;
    this.busy = false;
    this.input = h('textarea', {
      class: 'prompt-input', testid: 'prompt-input', rows: 1,
      placeholder: 'Ask the agent… (Enter to send, Shift+Enter for a new line)', 'aria-label': 'Prompt',
    });
    this.agent = h('select', { class: 'picker', testid: 'agent-select', 'aria-label': 'Agent', title: 'Agent' },
      h('option', { value: '', text: 'Default agent' }));
    this.model = h('select', { class: 'picker', testid: 'model-select', 'aria-label': 'Model', title: 'Model' },
      h('option', { value: '', text: 'Default model' }));
    this.send = h('button', { type: 'button', class: 'btn btn-primary', testid: 'send-button', text: 'Send' });
    this.abort = h('button', { type: 'button', class: 'btn btn-danger', testid: 'abort-button', text: 'Stop', hidden: true });
    this.picker = h('input', { type: 'file', multiple: true, accept: ACCEPT, hidden: true, testid: 'attach-input' });
    this.attach = h('button', {
      type: 'button', class: 'btn attach', testid: 'attach-button', text: 'Attach', title: 'Attach images, PDFs or text files', 'aria-label': 'Attach files',
    });
    this.chips = h('div', { class: 'attachments', hidden: true });
    // Why the prompt box is off, when it is for good (a team's viewer), not just loading.
    this.reason = h('div', { class: 'composer-reason', testid: 'composer-readonly', role: 'note', hidden: true });
    clear(root).append(
      this.reason,
      this.chips,
      this.input,
      h('div', { class: 'composer-bar' },
        h('div', { class: 'pickers' }, this.attach, this.picker, this.agent, this.model),
        h('div', { class: 'composer-actions' }, this.abort, this.send)),
    );
    this.commandMenu = new Menu(root, {
      testid: 'command-menu', itemTestid: 'command-item', empty: 'No such command',
      onPick: (item) => this.pickCommand(item),
    });
    this.mentionMenu = new Menu(root, {
      testid: 'mention-menu', itemTestid: 'mention-item', empty: 'No matching file',
      onPick: (item) => this.pickFile(item),
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.isComposing) return;
      if (this.commandMenu.key(e) || this.mentionMenu.key(e)) {
        e.preventDefault();
        return;
      }
      if (e.key === 'Enter' && !e.shiftKey && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => { this.autosize(); this.updateMenus(); });
    this.input.addEventListener('blur', () => { this.commandMenu.hide(); this.mentionMenu.hide(); });
    this.input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData ? e.clipboardData.files : [])];
      if (files.length) { e.preventDefault(); this.addFiles(files); }
    });
    root.addEventListener('dragover', (e) => { e.preventDefault(); root.classList.add('dropping'); });
    root.addEventListener('dragleave', () => root.classList.remove('dropping'));
    root.addEventListener('drop', (e) => {
      e.preventDefault();
      root.classList.remove('dropping');
      if (e.dataTransfer && e.dataTransfer.files.length) this.addFiles([...e.dataTransfer.files]);
    });
    this.attach.addEventListener('click', () => this.picker.click());
    this.picker.addEventListener('change', () => {
      if (this.picker.files) this.addFiles([...this.picker.files]);
      this.picker.value = '';
    });
    this.send.addEventListener('click', () => this.submit());
    this.abort.addEventListener('click', () => this.onAbort());
    this.agent.addEventListener('change', () => remember(AGENT_KEY, this.agent.value));
    this.model.addEventListener('change', () => remember(MODEL_KEY, this.model.value));
  }

  destroy() { clear(this.root); }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 240)}px`;
  }

  /** @param {AgentInfo[] | undefined} agents */
  setAgents(agents) {
    const usable = (agents || []).filter((a) => a.mode !== 'subagent' && !a.hidden);
    clear(this.agent).append(h('option', { value: '', text: 'Default agent' }),
      ...usable.map((a) => h('option', { value: a.name, 'data-value': a.name, text: a.name, title: a.description || '' })));
    const saved = recall(AGENT_KEY);
    if (usable.some((a) => a.name === saved)) this.agent.value = saved;
  }

  /** @param {ProviderList | undefined} data */
  setProviders(data) {
    const providers = (data && data.providers) || [];
    const defaults = (data && data.default) || {};
    const groups = providers.map((p) => {
      const models = Object.values(p.models || {});
      return h('optgroup', { label: p.name || p.id }, models.map((m) => h('option', {
        value: `${p.id}/${m.id}`, 'data-value': `${p.id}/${m.id}`,
        text: `${m.name || m.id}${defaults[p.id] === m.id ? ' (default)' : ''}`,
      })));
    });
    clear(this.model).append(h('option', { value: '', text: 'Default model' }), ...groups);
    const saved = recall(MODEL_KEY);
    if (saved && [...this.model.options].some((o) => o.value === saved)) this.model.value = saved;
  }

  /** @param {boolean} busy */
  setBusy(busy) {
    this.busy = busy;
    this.abort.hidden = !busy;
    this.abort.disabled = false;
  }

  /** @param {boolean} enabled @param {string} [reason] why not, shown above the box */
  setEnabled(enabled, reason = '') {
    this.input.disabled = !enabled;
    this.send.disabled = !enabled || this.sending;
    this.attach.disabled = Boolean(reason);
    this.reason.textContent = reason;
    this.reason.hidden = !reason;
    this.root.classList.toggle('read-only', Boolean(reason));
  }

  focus() { this.input.focus(); }

  /** Puts text in the prompt box (an undone prompt comes back to be edited). @param {string} text */
  setText(text) { this.input.value = text; this.autosize(); }

  /** A new session: its commands (project ones included) are read again. */
  reset() {
    this.commandList = null;
    this.mentions.clear();
  }

  // ---- menus ------------------------------------------------------------------------------
  updateMenus() {
    const caret = this.input.selectionStart ?? this.input.value.length;
    const slash = slashQuery(this.input.value, caret);
    if (slash !== null) {
      this.mentionMenu.hide();
      this.showCommands(slash);
      return;
    }
    this.commandMenu.hide();
    const mention = mentionQuery(this.input.value, caret);
    if (mention && !this.input.disabled) this.showFiles(mention.query);
    else this.mentionMenu.hide();
  }

  /** @param {string} query */
  async showCommands(query) {
    const commands = await this.loadCommands();
    if (slashQuery(this.input.value, this.input.selectionStart ?? 0) !== query) return; // typed on
    /** @type {MenuItem[]} */
    const items = [
      ...this.ctx.actions.map((a) => ({ value: a.name, label: `/${a.name}`, detail: a.description, kind: 'relay' })),
      ...commands.filter((c) => !this.ctx.actions.some((a) => a.name === c.name))
        .map((c) => ({ value: c.name, label: `/${c.name}`, detail: c.description, kind: c.source || 'command' })),
    ];
    this.commandMenu.show(filterItems(items, query));
  }

  /** opencode's commands for the open session, read once per session. @returns {Promise<CommandInfo[]>} */
  loadCommands() {
    if (!this.commandList) this.commandList = this.ctx.commands().catch(() => { this.commandList = null; return []; });
    return this.commandList;
  }

  /** @param {MenuItem} item */
  pickCommand(item) {
    this.commandMenu.hide();
    const action = this.ctx.actions.find((a) => a.name === item.value);
    if (action) {
      this.input.value = '';
      this.autosize();
      action.run();
      return;
    }
    this.input.value = `/${item.value} `;
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
    this.autosize();
  }

  /** @param {string} query */
  async showFiles(query) {
    const ticket = ++this.fileSearch;
    let found;
    try {
      found = await this.ctx.files(query);
    } catch {
      this.mentionMenu.hide();
      return;
    }
    if (ticket !== this.fileSearch) return; // a newer search is on its way
    const mention = mentionQuery(this.input.value, this.input.selectionStart ?? 0);
    if (!mention) return;
    this.directory = found.directory;
    this.mentionMenu.show(found.files.map((f) => ({ value: f, label: f })));
  }

  /** @param {MenuItem} item */
  pickFile(item) {
    this.mentionMenu.hide();
    const caret = this.input.selectionStart ?? this.input.value.length;
    const mention = mentionQuery(this.input.value, caret);
    if (!mention || !this.directory) return;
    const text = this.input.value;
    const inserted = `@${item.value} `;
    this.input.value = text.slice(0, mention.start) + inserted + text.slice(caret);
    const at = mention.start + inserted.length;
    this.input.setSelectionRange(at, at);
    const path = `${this.directory.replace(/\/+$/, '')}/${item.value}`;
    this.mentions.set(item.value, {
      type: 'file', mime: mentionMime(item.value), filename: item.value, url: `file://${encodeURI(path)}`,
    });
    this.autosize();
  }

  // ---- attachments --------------------------------------------------------------------------
  /** @param {File[]} files */
  async addFiles(files) {
    for (const file of files) {
      try {
        this.attachments.push({ type: 'file', mime: mimeOf(file), filename: file.name, url: await dataUrl(file) });
      } catch {
        this.ctx.notify(`Could not read ${file.name}.`);
      }
    }
    this.drawChips();
  }

  drawChips() {
    clear(this.chips);
    this.chips.hidden = !this.attachments.length;
    for (const part of this.attachments) {
      const remove = h('button', { type: 'button', class: 'chip-remove', testid: 'attachment-remove', text: '×', 'aria-label': `Remove ${part.filename}` });
      remove.addEventListener('click', () => {
        this.attachments = this.attachments.filter((p) => p !== part);
        this.drawChips();
      });
      this.chips.append(h('span', { class: 'attachment-chip', testid: 'attachment-chip', title: `${part.filename} (${part.mime})` },
        part.mime.startsWith('image/') ? h('img', { src: part.url, alt: '' })
          : h('span', { class: 'attachment-kind', text: part.mime === 'application/pdf' ? 'PDF' : 'TXT' }),
        h('span', { class: 'attachment-name', text: part.filename }), remove));
    }
  }

  /** The file parts to send: attachments, and mentions still named in `text`. @param {string} text */
  fileParts(text) {
    const mentioned = [...this.mentions].filter(([path]) => text.includes(`@${path}`)).map(([, part]) => part);
    return [...mentioned, ...this.attachments];
  }

  async submit() {
    const text = this.input.value;
    if ((!text.trim() && !this.attachments.length) || this.sending || this.input.disabled) return;
    const files = this.fileParts(text);
    const slash = parseSlash(text);
    this.sending = true;
    this.send.disabled = true;
    try {
      const commands = slash ? await this.loadCommands() : [];
      const command = slash && commands.some((c) => c.name === slash.name) ? slash : null;
      const action = slash && this.ctx.actions.find((a) => a.name === slash.name);
      if (action && !slash.args) {
        this.input.value = '';
        action.run();
        return;
      }
      let ok;
      if (command) {
        /** @type {CommandBody} */
        const body = { command: command.name, arguments: command.args };
        if (this.agent.value) body.agent = this.agent.value;
        if (this.model.value) body.model = this.model.value;
        if (files.length) body.parts = files;
        ok = await this.ctx.onCommand(body);
      } else {
        /** @type {import('../api.js').PromptPart[]} */
        const typed = text.trim() ? [{ type: 'text', text }] : [];
        /** @type {PromptBody} */
        const body = files.length ? { parts: [...typed, ...files] } : { text };
        if (this.agent.value) body.agent = this.agent.value;
        if (this.model.value) body.model = this.model.value;
        ok = await this.onSend(body);
      }
      if (ok) {
        // Keep anything typed while the request was on its way.
        if (this.input.value === text) this.input.value = '';
        this.attachments = [];
        this.mentions.clear();
        this.drawChips();
        this.autosize();
      }
    } finally {
      this.sending = false;
      this.send.disabled = this.input.disabled;
    }
  }
}
