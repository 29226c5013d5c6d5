// @ts-check
// Markdown for untrusted model output: marked -> DOMPurify, code highlighted by highlight.js.
import { Marked } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

const languages = { bash, css, diff, go, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);
/** @type {Record<string, string>} */
const aliases = { sh: 'bash', shell: 'bash', zsh: 'bash', console: 'bash', js: 'javascript',
  jsx: 'javascript', mjs: 'javascript', ts: 'typescript', tsx: 'typescript', py: 'python',
  html: 'xml', svg: 'xml', yml: 'yaml', rs: 'rust', patch: 'diff' };

/** @type {Record<string, string>} */
const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** @param {string} s */
const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ENTITIES[c]);

/** Highlighted HTML of code in a language (plain, escaped text if unknown). @param {string} code @param {string} [lang] */
export function highlight(code, lang) {
  const name = lang && (aliases[lang.toLowerCase()] || lang.toLowerCase());
  if (name && hljs.getLanguage(name)) {
    try { return hljs.highlight(code, { language: name, ignoreIllegals: true }).value; } catch { /* plain */ }
  }
  return escapeHtml(code);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    code({ text, lang }) {
      const language = (lang || '').trim().split(/\s+/)[0];
      const label = language ? `<span class="code-lang">${escapeHtml(language)}</span>` : '';
      return `<pre class="code">${label}<code class="hljs">${highlight(text, language)}</code></pre>`;
    },
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  // Nothing is fetched from outside the relay: remote images become links.
  if (node.tagName === 'IMG') {
    const src = node.getAttribute('src') || '';
    // "//host/x" is another host: only a single leading slash is the relay itself.
    if (!/^data:image\//i.test(src) && !/^\/(?!\/)/.test(src)) {
      node.removeAttribute('src');
      node.removeAttribute('srcset');
      node.setAttribute('data-blocked-src', src);
    }
  }
});

const PURIFY = {
  FORBID_TAGS: ['style', 'form', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
  FORBID_ATTR: ['style'],
  ALLOW_DATA_ATTR: false,
};

// Returns a DocumentFragment: no second parse, and blocked images become plain text.
/** @param {string} html */
export function sanitize(html) {
  const fragment = DOMPurify.sanitize(html, { ...PURIFY, RETURN_DOM_FRAGMENT: true });
  for (const img of fragment.querySelectorAll('img[data-blocked-src]')) {
    const note = document.createElement('span');
    note.className = 'blocked-image';
    note.title = img.getAttribute('data-blocked-src') || '';
    note.textContent = `[image: ${img.getAttribute('alt') || 'not loaded'}]`;
    img.replaceWith(note);
  }
  return fragment;
}

/** @param {string} text */
export function renderMarkdown(text) {
  let html;
  try {
    html = marked.parse(text || '', { async: false });
  } catch {
    html = `<p>${escapeHtml(text || '')}</p>`;
  }
  return sanitize(html);
}
