// @ts-check
// What the agent is doing, in a few words, derived from the open session's state.
import { perFrame } from '../dom.js';

/** @typedef {import('../store.js').SessionStore} SessionStore */

/** @type {Record<string, string>} */
const TOOL_VERBS = {
  bash: 'Running bash', read: 'Reading', edit: 'Editing', write: 'Writing', glob: 'Searching files',
  grep: 'Searching', list: 'Listing files', webfetch: 'Fetching', task: 'Running a sub-agent',
  todowrite: 'Updating todos', todoread: 'Reading todos',
};

/** The progress line's text, or null when the agent is idle. @param {SessionStore} store */
export function progressText(store) {
  const status = store.status || { type: 'idle' };
  if (status.type === 'retry') {
    return `Retrying${status.attempt ? ` (attempt ${status.attempt})` : ''}${status.message ? `: ${status.message}` : '…'}`;
  }
  if (status.type !== 'busy') return null;
  if (store.permissions.size) return 'Waiting for your permission…';
  if (store.questions.size) return 'Waiting for your answer…';
  const entry = store.lastAssistant();
  if (!entry) return 'Thinking…';
  for (let i = entry.partOrder.length - 1; i >= 0; i--) {
    const part = entry.parts.get(entry.partOrder[i]);
    if (!part) continue;
    if (part.type === 'tool') {
      const st = part.state || {};
      const verb = TOOL_VERBS[part.tool || ''] || `Running ${part.tool}`;
      if (st.status === 'running') return st.title ? `${verb}: ${st.title}` : `${verb}…`;
      if (st.status === 'pending') return `${verb}…`;
      return 'Thinking…';
    }
    if (part.type === 'reasoning') return 'Thinking…';
    if (part.type === 'text') return (part.time && part.time.end) ? 'Thinking…' : 'Writing…';
  }
  return 'Thinking…';
}

/** The progress line under the transcript; a view of the open session's store. */
export class ProgressView {
  /** @param {HTMLElement} root @param {SessionStore} store */
  constructor(root, store) {
    this.root = root;
    this.store = store;
    this.text = /** @type {HTMLElement} */ (root.querySelector('.progress-text'));
    // Any change can change the text (a part streams, a request comes): redraw once a frame,
    // but at once when the status changes, so "idle" never shows next to a stale line.
    this.unsubscribe = store.on((change) => {
      if (change.type === 'status') this.render();
      else perFrame(`progress:${store.sessionID}`, () => this.render());
    });
    this.render();
  }

  destroy() { this.unsubscribe(); }

  render() {
    const text = progressText(this.store);
    this.root.hidden = !text;
    this.text.textContent = text || '';
  }
}

/** @type {Record<string, string>} */
export const CONNECTION_LABEL = {
  connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Offline',
};
