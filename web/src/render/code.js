// @ts-check
// A whole file as code: highlighted by its name's language, with line numbers beside it.
// highlight.js is the one markdown.js registers; the file viewer adds a few languages that
// files often are and chat code blocks rarely (Markdown, C, Java, INI/TOML, Makefile, Dockerfile).
import hljs from 'highlight.js/lib/core';
import c from 'highlight.js/lib/languages/c';
import dockerfile from 'highlight.js/lib/languages/dockerfile';
import ini from 'highlight.js/lib/languages/ini';
import java from 'highlight.js/lib/languages/java';
import makefile from 'highlight.js/lib/languages/makefile';
import markdown from 'highlight.js/lib/languages/markdown';
import { h } from '../dom.js';
import { highlight } from './markdown.js';
import { languageOf, lineCount } from './filetype.js';

for (const [name, lang] of Object.entries({ c, dockerfile, ini, java, makefile, markdown })) {
  if (!hljs.getLanguage(name)) hljs.registerLanguage(name, lang);
}

/** Beyond this many characters a file is shown plain: highlighting it would stall the page. */
export const HIGHLIGHT_MAX_CHARS = 300_000;

/** A file's text as a code block with line numbers. @param {string} text @param {string} path */
export function renderCode(text, path) {
  const language = languageOf(path);
  const numbers = Array.from({ length: lineCount(text) }, (_, i) => i + 1).join('\n');
  const code = h('code', { class: 'hljs', 'data-language': language || 'plain' });
  if (language && text.length <= HIGHLIGHT_MAX_CHARS) {
    // highlight.js escapes the text itself; its output is only the text plus <span class>.
    code.innerHTML = highlight(text, language);
  } else {
    code.textContent = text;
  }
  return h('div', { class: 'code-file' },
    h('pre', { class: 'code-gutter', 'aria-hidden': 'true', text: numbers }),
    h('pre', { class: 'code-text' }, code));
}
