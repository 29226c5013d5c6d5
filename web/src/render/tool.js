// @ts-check
// A tool call as a card: pending, running (title + spinner), completed (collapsible), error.
import { h, clear } from '../dom.js';
import { renderUnifiedDiff, diffStats, unifiedFromTexts } from './diff.js';

/** @typedef {import('../types.js').Part} Part */
/** @typedef {import('../types.js').Todo} Todo */
/** @typedef {import('./parts.js').PartView} PartView */
/** @typedef {import('./parts.js').PartContext} PartContext */

const MAX_OUTPUT = 20000;
const OPEN_BY_DEFAULT = new Set(['edit', 'write', 'apply_patch', 'patch', 'multiedit']);

/** The last three folders of a path. @param {unknown} p */
function shortPath(p) {
  if (typeof p !== 'string') return '';
  const parts = p.split('/');
  return parts.length > 3 ? `…/${parts.slice(-3).join('/')}` : p;
}

/** @param {Part} part @returns {Record<string, any>} */
function inputOf(part) { return (part.state && part.state.input) || {}; }
/** @param {Part} part @returns {Record<string, any>} */
function metaOf(part) { return (part.state && part.state.metadata) || {}; }

/** The words on a tool card's head. @param {Part} part @returns {string} */
export function toolTitle(part) {
  const state = part.state || {};
  const input = inputOf(part);
  // opencode titles a bash call with its command; the description reads better.
  if (part.tool === 'bash' && input.description) return input.description;
  if (state.title) return state.title;
  switch (part.tool) {
    case 'bash': return input.description || input.command || '';
    case 'read': case 'edit': case 'write': case 'multiedit': return shortPath(input.filePath || input.path);
    case 'glob': case 'grep': return input.pattern || '';
    case 'list': return input.path || '';
    case 'webfetch': return input.url || '';
    case 'task': return input.description || '';
    default: return '';
  }
}

/** The unified diff a tool call made, if any. @param {Part} part @returns {string | null} */
function diffOf(part) {
  const meta = metaOf(part);
  const input = inputOf(part);
  if (typeof meta.diff === 'string' && meta.diff) return meta.diff;
  const fd = meta.filediff;
  if (fd && (fd.patch || fd.before !== undefined || fd.after !== undefined)) {
    return fd.patch || unifiedFromTexts(fd.before, fd.after, fd.file || '');
  }
  if (part.tool === 'edit' && typeof input.oldString === 'string' && typeof input.newString === 'string') {
    return unifiedFromTexts(input.oldString, input.newString, input.filePath || '');
  }
  if (part.tool === 'write' && typeof input.content === 'string') {
    return unifiedFromTexts('', input.content, input.filePath || '').replace(/^@@.*\n/m, '@@ new file @@\n');
  }
  return null;
}

/** @param {Part} part @returns {string} */
function outputOf(part) {
  const state = part.state || {};
  const meta = metaOf(part);
  if (part.tool === 'bash' && typeof meta.output === 'string' && (state.status === 'running' || !state.output)) {
    return meta.output;
  }
  if (typeof state.output === 'string') return state.output;
  if (state.output !== undefined && state.output !== null) return JSON.stringify(state.output, null, 2);
  return '';
}

/** Preformatted text, cut at MAX_OUTPUT characters behind a button. @param {string} text */
function textBlock(text, cls = 'tool-output') {
  const pre = h('pre', { class: cls });
  if (text.length > MAX_OUTPUT) {
    pre.textContent = text.slice(0, MAX_OUTPUT);
    const more = h('button', { class: 'link-button', type: 'button', text: `Show all ${text.length.toLocaleString()} characters` });
    more.addEventListener('click', () => { pre.textContent = text; });
    return h('div', null, pre, more);
  }
  pre.textContent = text;
  return pre;
}

/** @param {string} label @param {...import('../dom.js').Child} content */
function section(label, ...content) {
  return h('div', { class: 'tool-section' }, h('div', { class: 'tool-label', text: label }), ...content);
}

/** @param {Part} part */
function renderInput(part) {
  const input = inputOf(part);
  switch (part.tool) {
    case 'bash':
      return input.command ? section('Command', textBlock(`$ ${input.command}`, 'tool-command')) : null;
    case 'edit': case 'write': case 'read': case 'multiedit':
      return input.filePath ? section('File', h('code', { class: 'tool-path', text: input.filePath })) : null;
    case 'todowrite':
      return null;
    default:
      if (!input || Object.keys(input).length === 0) return null;
      return section('Input', textBlock(JSON.stringify(input, null, 2), 'tool-input'));
  }
}

/** @param {Todo[]} todos */
function renderTodos(todos) {
  return h('ul', { class: 'tool-todos' }, todos.map((t) =>
    h('li', { class: `todo todo-${t.status}`, text: t.content })));
}

/** @param {Part} part @param {PartContext} ctx */
function renderBody(part, ctx) {
  const state = part.state || {};
  const body = [];
  const input = renderInput(part);
  if (input) body.push(input);
  if (part.tool === 'task') {
    const meta = metaOf(part);
    const open = ctx.openSession;
    if (meta.sessionId && open) {
      const link = h('a', { href: `/?session=${encodeURIComponent(meta.sessionId)}`, class: 'link', text: 'Open sub-agent session' });
      link.addEventListener('click', (e) => { e.preventDefault(); open(meta.sessionId); });
      body.push(section('Sub-agent', link));
    }
    if (Array.isArray(meta.summary) && meta.summary.length) {
      /** @type {Part[]} */
      const steps = meta.summary;
      body.push(section('Steps', h('ul', { class: 'tool-steps' }, steps.map((s) =>
        h('li', { class: `step-${s.state && s.state.status}`, text: `${s.tool}: ${(s.state && s.state.title) || ''}` })))));
    }
  }
  if (part.tool === 'todowrite' && Array.isArray(inputOf(part).todos)) {
    body.push(section('Todos', renderTodos(inputOf(part).todos)));
  }
  const patch = diffOf(part);
  if (patch) {
    body.push(section('Diff', h('div', { class: 'tool-diff', testid: 'tool-diff' }, renderUnifiedDiff(patch))));
  }
  if (state.status === 'error') {
    body.push(section('Error', textBlock(String(state.error || 'The tool failed.'), 'tool-error-text')));
  } else {
    const out = outputOf(part);
    if (out) body.push(section('Output', textBlock(out)));
  }
  return body;
}

/** @type {Record<string, string>} */
const STATUS_LABEL = { pending: 'Pending', running: 'Running', completed: 'Done', error: 'Failed' };

/** @param {Part} part @param {PartContext} ctx @returns {PartView} */
export function createToolView(part, ctx) {
  // The error line sits outside <details> so it shows while the card is collapsed.
  const card = h('div', { class: 'part part-tool', testid: 'part-tool' });
  const details = h('details', { class: 'tool-details' });
  const icon = h('span', { class: 'tool-icon', 'aria-hidden': 'true' });
  const name = h('span', { class: 'tool-name' });
  const title = h('span', { class: 'tool-title' });
  const stats = h('span', { class: 'tool-stats' });
  const badge = h('span', { class: 'tool-badge' });
  const summary = h('summary', { class: 'tool-head' }, icon, name, title, stats, badge);
  const errorLine = h('div', { class: 'tool-error-line', testid: 'tool-error', hidden: true });
  const body = h('div', { class: 'tool-body' });
  details.append(summary, body);
  card.append(details, errorLine);

  let current = part;
  let bodyDirty = true;
  let userToggled = false;
  const fillBody = () => {
    if (!details.open || !bodyDirty) return;
    bodyDirty = false;
    clear(body).append(...renderBody(current, ctx));
  };
  summary.addEventListener('click', () => { userToggled = true; });
  details.addEventListener('toggle', fillBody);

  /** @param {Part} p */
  const update = (p) => {
    current = p;
    const state = p.state || {};
    const status = state.status || 'pending';
    card.dataset.tool = p.tool || 'tool';
    card.dataset.status = status;
    card.dataset.partId = p.id;
    card.className = `part part-tool tool-${status}`;
    name.textContent = p.tool || 'tool';
    const t = toolTitle(p);
    title.textContent = status === 'pending' && !t ? 'Preparing…' : t;
    badge.textContent = STATUS_LABEL[status] || status;
    const patch = diffOf(p);
    if (patch && status !== 'pending') {
      const s = diffStats(patch);
      stats.textContent = '';
      stats.append(h('span', { class: 'add', text: `+${s.additions}` }), ' ', h('span', { class: 'del', text: `−${s.deletions}` }));
    } else {
      stats.textContent = '';
    }
    errorLine.hidden = status !== 'error';
    errorLine.textContent = status === 'error' ? String(state.error || 'The tool failed.') : '';
    if (!userToggled && OPEN_BY_DEFAULT.has(p.tool || '') && status === 'completed' && patch) details.open = true;
    bodyDirty = true;
    fillBody();
  };
  update(part);
  return { el: card, update };
}
