// @ts-check
// Requests that wait for the user: permission prompts and agent questions (also from sub-agents).
import { h, clear } from '../dom.js';
import { api } from '../api.js';
import { renderUnifiedDiff } from '../render/diff.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */
/** @typedef {import('../types.js').PermissionRequest} PermissionRequest */
/** @typedef {import('../types.js').QuestionRequest} QuestionRequest */
/** @typedef {import('./notices.js').Notify} Notify */

/** @type {Record<string, string>} */
const PERMISSION_WORDS = {
  edit: 'edit files', write: 'write files', bash: 'run a command', webfetch: 'fetch a web page',
  read: 'read files', external_directory: 'work outside the project directory',
  doom_loop: 'keep repeating the same tool call', task: 'start a sub-agent',
};

/** The requests waiting above the prompt; a view of the open session's store. */
export class PromptsView {
  /**
   * @param {HTMLElement} root @param {SessionStore} store
   * @param {{notify: Notify, access?: import('../types.js').SessionAccess | null}} ctx
   */
  constructor(root, store, { notify, access = null }) {
    this.root = root;
    this.store = store;
    this.notify = notify;
    // Answering is for the session's creator and its team's admins (the relay says 403 else).
    this.mayAnswer = !access || access.right === 'manage';
    this.whyNot = access && !this.mayAnswer
      ? `Only the session's creator or an admin of team ${access.team} can answer.` : '';
    /** @type {Set<string>} requests whose answer is on its way */
    this.busy = new Set();
    this.unsubscribe = store.on((change) => { if (change.type === 'requests') this.render(); });
    this.render();
  }

  destroy() { this.unsubscribe(); clear(this.root); }

  // Keyed by request id, so a half-filled question survives other requests coming and going.
  render() {
    /** @type {Map<string, PermissionRequest | QuestionRequest>} */
    const wanted = new Map();
    for (const req of this.store.permissions.values()) wanted.set(req.id, req);
    for (const req of this.store.questions.values()) wanted.set(req.id, req);
    for (const el of [...this.root.children]) {
      if (!wanted.has(/** @type {HTMLElement} */ (el).dataset.requestId || '')) el.remove();
    }
    for (const [id, req] of wanted) {
      if (this.root.querySelector(`[data-request-id="${CSS.escape(id)}"]`)) continue;
      this.root.append(this.store.permissions.has(id) ? this.permission(req) : this.question(req));
    }
    this.root.hidden = !this.root.firstChild;
  }

  /** @param {string} id @param {boolean} busy */
  setBusy(id, busy) {
    if (busy) this.busy.add(id); else this.busy.delete(id);
    const el = this.root.querySelector(`[data-request-id="${CSS.escape(id)}"]`);
    if (el) for (const c of el.querySelectorAll('button, input')) /** @type {HTMLButtonElement | HTMLInputElement} */ (c).disabled = busy || !this.mayAnswer;
  }

  /** Why the caller cannot answer, under a request (nothing when it can). */
  note() {
    return this.whyNot ? h('div', { class: 'request-note muted', testid: 'request-readonly', text: this.whyNot }) : null;
  }

  /** A chip for requests of sub-agent sessions. @param {PermissionRequest | QuestionRequest} req */
  fromSubagent(req) {
    return req.sessionID && req.sessionID !== this.store.sessionID
      ? h('span', { class: 'chip', text: 'sub-agent' }) : null;
  }

  /** @param {PermissionRequest} req */
  permission(req) {
    const meta = req.metadata || {};
    const what = PERMISSION_WORDS[req.permission || ''] || req.permission || 'use a tool';
    const details = [];
    const patterns = (req.patterns || []).filter(Boolean);
    if (meta.command) details.push(h('pre', { class: 'tool-command', text: `$ ${meta.command}` }));
    else if (patterns.length) details.push(h('pre', { class: 'tool-command', text: patterns.join('\n') }));
    if (meta.filepath || meta.filePath) details.push(h('code', { class: 'tool-path', text: meta.filepath || meta.filePath }));
    if (typeof meta.diff === 'string' && meta.diff) details.push(h('div', { class: 'tool-diff' }, renderUnifiedDiff(meta.diff, { maxLines: 200 })));
    const disabled = this.busy.has(req.id) || !this.mayAnswer;
    /** @param {string} label @param {string} reply @param {string} testid @param {string} cls */
    const button = (label, reply, testid, cls) => h('button', {
      type: 'button', class: cls, testid, disabled,
      onclick: () => this.reply(req, reply),
    }, label);
    return h('div', { class: 'request permission', testid: 'permission-prompt', 'data-request-id': req.id, 'data-permission': req.permission, role: 'alertdialog' },
      h('div', { class: 'request-title' }, `The agent wants to ${what}`, this.fromSubagent(req)),
      details,
      h('div', { class: 'request-actions' },
        button('Allow once', 'once', 'permission-allow-once', 'btn btn-primary'),
        button('Always allow', 'always', 'permission-allow-always', 'btn'),
        button('Reject', 'reject', 'permission-reject', 'btn btn-danger')),
      req.always && req.always.length && req.always[0] !== '*'
        ? h('div', { class: 'muted small', text: `"Always" allows: ${req.always.join(', ')}` }) : null,
      this.note());
  }

  /** @param {PermissionRequest} req @param {string} reply once, always or reject */
  async reply(req, reply) {
    this.setBusy(req.id, true);
    try {
      await api.replyPermission(this.store.sessionID, req.id, reply);
      this.store.removePermission(req.id);
    } catch (err) {
      this.notify(`Could not answer the permission request: ${err.message}`);
    } finally {
      this.setBusy(req.id, false);
    }
  }

  /** @param {QuestionRequest} req */
  question(req) {
    const questions = req.questions || [];
    const disabled = this.busy.has(req.id) || !this.mayAnswer;
    const fields = questions.map((q, qi) => {
      const type = q.multiple ? 'checkbox' : 'radio';
      const name = `q-${req.id}-${qi}`;
      return h('fieldset', { class: 'question', 'data-index': qi },
        q.header ? h('legend', { text: q.header }) : null,
        h('div', { class: 'question-text', text: q.question }),
        (q.options || []).map((o) => h('label', { class: 'question-option', testid: 'question-option' },
          h('input', { type, name, value: o.label, disabled }),
          h('span', { class: 'option-label', text: o.label }),
          o.description ? h('span', { class: 'option-desc muted', text: o.description }) : null)),
        h('input', { type: 'text', class: 'question-other', name: `${name}-other`, placeholder: 'Or type your own answer', disabled, testid: 'question-other' }));
    });
    const form = h('form', { class: 'request question-prompt', testid: 'question-prompt', 'data-request-id': req.id },
      h('div', { class: 'request-title' }, 'The agent has a question', this.fromSubagent(req)),
      fields,
      h('div', { class: 'request-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', testid: 'question-submit', disabled }, 'Answer'),
        h('button', { type: 'button', class: 'btn', testid: 'question-reject', disabled, onclick: () => this.rejectQuestion(req) }, 'Dismiss')),
      this.note());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const answers = questions.map((q, qi) => {
        const name = `q-${req.id}-${qi}`;
        const picked = [...form.querySelectorAll(`input[name="${CSS.escape(name)}"]:checked`)]
          .map((i) => /** @type {HTMLInputElement} */ (i).value);
        const otherInput = /** @type {HTMLInputElement} */ (form.querySelector(`input[name="${CSS.escape(`${name}-other`)}"]`));
        const other = otherInput.value.trim();
        return other ? [...picked, other] : picked;
      });
      this.answer(req, answers);
    });
    return form;
  }

  /** @param {QuestionRequest} req @param {string[][]} answers one list of picked labels per question */
  async answer(req, answers) {
    this.setBusy(req.id, true);
    try {
      await api.answerQuestion(this.store.sessionID, req.id, answers);
      this.store.removeQuestion(req.id);
    } catch (err) {
      this.notify(`Could not send the answer: ${err.message}`);
    } finally {
      this.setBusy(req.id, false);
    }
  }

  /** @param {QuestionRequest} req */
  async rejectQuestion(req) {
    this.setBusy(req.id, true);
    try {
      await api.rejectQuestion(this.store.sessionID, req.id);
      this.store.removeQuestion(req.id);
    } catch (err) {
      this.notify(`Could not dismiss the question: ${err.message}`);
    } finally {
      this.setBusy(req.id, false);
    }
  }
}
