// @ts-check
// One view per part type. Each view is {el, update(part)}; the transcript keys them by part id.
import { h } from '../dom.js';
import { renderMarkdown } from './markdown.js';
import { createToolView } from './tool.js';

/** @typedef {import('../types.js').Part} Part */
/** @typedef {{el: HTMLElement, update: (part: Part) => void}} PartView */
/** @typedef {{role: string, openSession?: (id: string) => void}} PartContext */

/** @param {Part} part @param {PartContext} ctx @returns {PartView} */
function textView(part, ctx) {
  const el = h('div', { class: 'part part-text markdown', testid: 'part-text' });
  /** @param {Part} p */
  const update = (p) => {
    el.dataset.partId = p.id;
    if (ctx.role === 'user') {
      // What the user typed is shown as typed.
      el.classList.add('plain');
      el.textContent = p.text || '';
    } else {
      el.replaceChildren(renderMarkdown(p.text || ''));
    }
    el.hidden = Boolean(p.synthetic || p.ignored) || (ctx.role === 'user' && !p.text);
  };
  update(part);
  return { el, update };
}

/** @param {Part} part @returns {PartView} */
function reasoningView(part) {
  const preview = h('span', { class: 'reasoning-preview' });
  const label = h('span', { class: 'reasoning-label' });
  const body = h('div', { class: 'reasoning-body markdown' });
  const el = h('details', { class: 'part part-reasoning', testid: 'part-reasoning' },
    h('summary', null, label, preview), body);
  let current = part;
  let dirty = true;
  const fill = () => {
    if (el.open && dirty) { body.replaceChildren(renderMarkdown(current.text || '')); dirty = false; }
  };
  el.addEventListener('toggle', fill);
  /** @param {Part} p */
  const update = (p) => {
    current = p;
    el.dataset.partId = p.id;
    const done = Boolean(p.time && p.time.end);
    el.classList.toggle('streaming', !done);
    label.textContent = done ? 'Reasoning' : 'Thinking…';
    const text = (p.text || '').trim();
    preview.textContent = text ? text.split('\n')[0].slice(0, 120) : '';
    el.hidden = !text && done;
    dirty = true;
    fill();
  };
  update(part);
  return { el, update };
}

/** @param {Part} part @returns {PartView} */
function fileView(part) {
  const el = h('div', { class: 'part part-file', testid: 'part-file' });
  /** @param {Part} p */
  const update = (p) => {
    el.dataset.partId = p.id;
    // Element.append would print a null as "null": build through h(), which skips it.
    // An attached image (a data: URL) shows as a thumbnail; anything else by its name.
    const image = typeof p.url === 'string' && p.url.startsWith('data:image/');
    el.replaceChildren(h('span', { class: 'chip', text: `📎 ${p.filename || (image ? 'image' : p.url) || 'file'}` }),
      ...(p.mime ? [h('span', { class: 'muted', text: ` ${p.mime}` })] : []),
      ...(image ? [h('img', { class: 'attachment-thumb', src: p.url, alt: p.filename || 'image' })] : []));
  };
  update(part);
  return { el, update };
}

/** @param {Part} part @param {(part: Part) => string} textOf @param {string} testid @returns {PartView} */
function noteView(part, textOf, testid) {
  const el = h('div', { class: `part part-note part-${part.type}`, testid });
  /** @param {Part} p */
  const update = (p) => {
    el.dataset.partId = p.id;
    const text = textOf(p);
    el.textContent = text || '';
    el.hidden = !text;
  };
  update(part);
  return { el, update };
}

/** @param {Part} part @returns {PartView} */
function hiddenView(part) {
  const el = h('div', { class: `part part-${part.type}`, hidden: true });
  el.dataset.partId = part.id;
  return { el, update: () => {} };
}

/** @param {Part} p */
const patchText = (p) => {
  const files = /** @type {string[]} */ (p.files || []).map((f) => f.split('/').pop());
  return files.length ? `Changed ${files.length} file${files.length > 1 ? 's' : ''}: ${files.join(', ')}` : '';
};
/** @param {Part} p */
const retryText = (p) => {
  const msg = p.error && ((p.error.data && p.error.data.message) || p.error.name);
  return `Retrying${p.attempt ? ` (attempt ${p.attempt})` : ''}${msg ? `: ${msg}` : ''}`;
};

/** The view of one part, by its type. @param {Part} part @param {PartContext} ctx @returns {PartView} */
export function createPartView(part, ctx) {
  switch (part.type) {
    case 'text': return textView(part, ctx);
    case 'reasoning': return reasoningView(part);
    case 'tool': return createToolView(part, ctx);
    case 'file': return fileView(part);
    case 'patch': return noteView(part, patchText, 'part-patch');
    case 'retry': return noteView(part, retryText, 'part-retry');
    case 'agent': return noteView(part, (p) => (p.name ? `@${p.name}` : ''), 'part-agent');
    case 'subtask': return noteView(part, (p) => `Sub-task for ${p.agent || 'agent'}: ${p.description || p.prompt || ''}`, 'part-subtask');
    case 'compaction': return noteView(part, () => 'Conversation compacted', 'part-compaction');
    default: return hiddenView(part); // step-start, step-finish, snapshot, …
  }
}
