// @ts-check
// The prompt box: Enter sends, Shift+Enter adds a line; agent and model pickers; abort.
import { h, clear } from '../dom.js';

/** @typedef {import('../types.js').AgentInfo} AgentInfo */
/** @typedef {import('../types.js').ProviderList} ProviderList */
/** @typedef {import('../api.js').PromptBody} PromptBody */
/**
 * @typedef {{
 *   onSend: (body: PromptBody) => Promise<boolean>,
 *   onAbort: () => void,
 * }} ComposerContext  onSend resolves true once the relay took the prompt
 */

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
  constructor(root, { onSend, onAbort }) {
    this.root = root;
    this.onSend = onSend;
    this.onAbort = onAbort;
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
    clear(root).append(
      this.input,
      h('div', { class: 'composer-bar' },
        h('div', { class: 'pickers' }, this.agent, this.model),
        h('div', { class: 'composer-actions' }, this.abort, this.send)),
    );
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => this.autosize());
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
      ...usable.map((a) => h('option', { value: a.name, text: a.name, title: a.description || '' })));
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
        value: `${p.id}/${m.id}`,
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

  /** @param {boolean} enabled */
  setEnabled(enabled) {
    this.input.disabled = !enabled;
    this.send.disabled = !enabled || this.sending;
  }

  focus() { this.input.focus(); }

  /** Puts text in the prompt box (an undone prompt comes back to be edited). @param {string} text */
  setText(text) { this.input.value = text; this.autosize(); }

  async submit() {
    const text = this.input.value;
    if (!text.trim() || this.sending || this.input.disabled) return;
    /** @type {PromptBody} */
    const body = { text };
    if (this.agent.value) body.agent = this.agent.value;
    if (this.model.value) body.model = this.model.value;
    this.sending = true;
    this.send.disabled = true;
    try {
      const ok = await this.onSend(body);
      if (ok) {
        // Keep anything typed while the request was on its way.
        if (this.input.value === text) this.input.value = '';
        this.autosize();
      }
    } finally {
      this.sending = false;
      this.send.disabled = this.input.disabled;
    }
  }
}
