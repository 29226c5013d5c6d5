// @ts-check
// What the file viewer needs to know of a file without a DOM: its language (by name), its
// lines, its size in plain units. Kept apart so node --test can check it (web/test/code.test.js).

/** @type {Record<string, string>} file extension -> highlight.js language */
const BY_EXTENSION = {
  sh: 'bash', bash: 'bash', zsh: 'bash', css: 'css', diff: 'diff', patch: 'diff', go: 'go',
  js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascript', json: 'json',
  jsonc: 'json', py: 'python', pyi: 'python', rs: 'rust', sql: 'sql', ts: 'typescript',
  mts: 'typescript', cts: 'typescript', tsx: 'typescript', html: 'xml', htm: 'xml', xml: 'xml',
  svg: 'xml', vue: 'xml', yml: 'yaml', yaml: 'yaml', c: 'c', h: 'c', java: 'java', md: 'markdown',
  markdown: 'markdown', ini: 'ini', toml: 'ini', cfg: 'ini', conf: 'ini', mk: 'makefile',
};
/** @type {Record<string, string>} whole file names */
const BY_NAME = { makefile: 'makefile', gnumakefile: 'makefile', dockerfile: 'dockerfile',
  '.bashrc': 'bash', '.profile': 'bash', '.gitignore': 'bash', '.env': 'bash' };

/** The highlight.js language of a file, from its name ('' when none fits). @param {string} path */
export function languageOf(path) {
  const name = (path.split('/').pop() || '').toLowerCase();
  if (BY_NAME[name]) return BY_NAME[name];
  const dot = name.lastIndexOf('.');
  return dot > 0 ? BY_EXTENSION[name.slice(dot + 1)] || '' : '';
}

/** How many lines a text has, as an editor counts them. @param {string} text */
export function lineCount(text) {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** "1.5 MiB" for a byte count. @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

