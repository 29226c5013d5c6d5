// @ts-check
// Tiny DOM helpers. Text always goes in through textContent, never innerHTML.

/** @typedef {Node | string | number | boolean | null | undefined | ChildList} Child  false/null/undefined are skipped, arrays flattened */
/** @typedef {Array<Child>} ChildList */
/** @typedef {Record<string, any> | null} Attrs  `class`, `text`, `testid`, `dataset`, `on<event>` handlers, or plain attributes */

/**
 * Creates an element: h('button', { class: 'btn', onclick }, 'Label').
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Attrs} [attrs] @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'testid') el.setAttribute('data-testid', value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {Child[]} children */
function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Removes every child; returns the element. @template {Element} T @param {T} el @returns {T} */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** "5 min ago" for a time in ms. @param {number | undefined} ms */
export function timeAgo(ms) {
  if (!ms) return '';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 7) return `${Math.round(s / 86400)} d ago`;
  return new Date(ms).toLocaleDateString();
}

/** @param {number | undefined} ms */
export function clockTime(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** @type {Map<string, () => void>} */
const pending = new Map();
/** Runs fn at most once per animation frame per key (the latest fn wins). @param {string} key @param {() => void} fn */
export function perFrame(key, fn) {
  if (pending.has(key)) { pending.set(key, fn); return; }
  pending.set(key, fn);
  requestAnimationFrame(() => {
    const latest = pending.get(key);
    pending.delete(key);
    if (latest) latest();
  });
}
