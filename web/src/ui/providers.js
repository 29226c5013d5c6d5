// @ts-check
// First run and providers: says when opencode has no usable model provider, and lets an admin
// connect one with an API key (PUT /api/providers/{id}/auth). The key goes to opencode and is
// never shown again; opencode keeps it for the whole opencode server, not per session.
import { api } from '../api.js';
import { h, clear } from '../dom.js';

/** @typedef {{type: string, label: string}} AuthMethod */
/** @typedef {{id: string, name: string, connected: boolean, source: string | null, env: string[], models: number, methods: AuthMethod[], accepts_key: boolean}} ProviderEntry */
/** @typedef {{ready: boolean, connected: string[], default: Record<string, string>, scope: string, providers: ProviderEntry[]}} ProviderSetupInfo */

// Offered first in the picker: the providers most people have a key for.
const COMMON = ['anthropic', 'openai', 'google', 'openrouter', 'mistral', 'groq', 'deepseek', 'xai'];

export class ProviderSetup {
  /**
   * @param {HTMLElement} root where the panel goes (shown above the main area)
   * @param {{notify: (message: string, kind?: 'error' | 'info') => void, onChange?: () => void}} ctx
   */
  constructor(root, ctx) {
    this.ctx = ctx;
    /** @type {ProviderSetupInfo | null} */
    this.info = null;
    this.panel = h('section', { class: 'provider-setup', testid: 'provider-setup', hidden: true, 'aria-label': 'Model providers' });
    root.prepend(this.panel);
    /** A button that opens the panel at any time (placed by main.js). */
    this.button = h('button', { type: 'button', class: 'link-button', testid: 'providers-open', text: 'Providers' });
    this.button.addEventListener('click', () => this.open());
  }

  /** Reads the providers; shows the panel by itself when no usable model is configured. */
  async load() {
    try {
      this.info = await api.providerSetup();
    } catch {
      return; // opencode unreachable: the health notice says so
    }
    if (this.info && !this.info.ready) this.open();
    else if (!this.panel.hidden) this.render();
  }

  open() {
    this.panel.hidden = false;
    this.render();
    if (!this.info) this.load();
  }

  close() {
    this.panel.hidden = true;
  }

  render() {
    const info = this.info;
    clear(this.panel);
    const close = h('button', { type: 'button', class: 'banner-close', 'aria-label': 'Close', text: '×', onclick: () => this.close() });
    if (!info) {
      this.panel.append(h('div', { class: 'provider-head' }, h('strong', { text: 'Model providers' }), close),
        h('p', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const connected = info.providers.filter((p) => p.connected);
    const keyable = info.providers.filter((p) => !p.connected && p.accepts_key);
    keyable.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    const heading = info.ready ? 'Model providers' : 'Connect a model provider';
    const lead = info.ready
      ? `Connected: ${connected.map((p) => p.name).join(', ')}.`
      : 'No usable model is configured: opencode would try its built-in online models, which need internet access, and a prompt would fail. Connect a provider below, or start the relay with its key in the environment (e.g. ANTHROPIC_API_KEY), or add it to opencode\'s config.';

    const select = /** @type {HTMLSelectElement} */ (h('select', { testid: 'provider-select', 'aria-label': 'Provider' },
      ...keyable.map((p) => h('option', { value: p.id, text: p.name }))));
    const key = /** @type {HTMLInputElement} */ (h('input', {
      type: 'password', testid: 'provider-key', placeholder: 'API key', autocomplete: 'off', spellcheck: 'false', 'aria-label': 'API key',
    }));
    const hint = h('div', { class: 'muted small', testid: 'provider-hint' });
    const showHint = () => {
      const p = keyable.find((x) => x.id === select.value);
      hint.textContent = p && p.env.length ? `Or set ${p.env.join(' / ')} where the relay starts opencode.` : '';
    };
    select.addEventListener('change', showHint);
    showHint();
    const status = h('div', { class: 'provider-status', testid: 'provider-status', role: 'status' });
    const connect = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'btn btn-primary', testid: 'provider-connect', text: 'Connect' }));
    const form = h('form', { class: 'provider-form' }, select, key, connect);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const provider = select.value;
      const value = key.value.trim();
      if (!provider || !value) return;
      connect.disabled = true;
      status.textContent = '';
      try {
        await api.setProviderKey(provider, value);
        key.value = '';
        this.ctx.notify(`Connected ${provider}.`, 'info');
        this.info = null;
        await this.load();
        this.render();
        if (this.ctx.onChange) this.ctx.onChange();
      } catch (err) {
        status.textContent = err.status === 403 ? 'Only an admin may connect providers.' : `Could not connect ${provider}: ${err.message}`;
      } finally {
        connect.disabled = false;
      }
    });
    this.panel.append(
      h('div', { class: 'provider-head' }, h('strong', { text: heading }), close),
      h('p', { class: info.ready ? 'muted' : 'provider-warning', testid: 'provider-lead', text: lead }),
      form, hint, status,
      h('p', { class: 'muted small', text: `Keys are stored by opencode, not the relay, and are never shown again. Scope: ${info.scope}.` }),
    );
  }
}

/** @param {ProviderEntry} p */
function rank(p) {
  const i = COMMON.indexOf(p.id);
  return i < 0 ? COMMON.length : i;
}
