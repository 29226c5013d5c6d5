// @ts-check
// The file viewer: one file of the session's directory over the page (GET …/file?path=).
// Text is highlighted with line numbers, images are shown, other binary files and files over
// the relay's limit are named with their size instead. Escape, the close button or a click
// beside it closes it.
import { h, clear } from '../dom.js';
import { api } from '../api.js';
import { renderCode } from '../render/code.js';
import { formatBytes } from '../render/filetype.js';

/** @typedef {{path: string, type: 'text'|'image'|'binary'|'too_large', size: number, limit: number, mime?: string|null, content?: string, encoding?: string}} FileView */

/** A page-wide view: shows one file at a time until closed. */
export class FileViewer {
  /** @param {HTMLElement} root where the overlay lives @param {{sessionID: string}} ctx */
  constructor(root, ctx) {
    this.ctx = ctx;
    this.title = h('span', { class: 'file-viewer-path' });
    this.meta = h('span', { class: 'file-viewer-meta muted' });
    this.body = h('div', { class: 'file-viewer-body' });
    this.closeButton = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'file-viewer-close',
      'aria-label': 'Close the file', text: '✕', onclick: () => this.close() });
    this.panel = h('section', { class: 'file-viewer', testid: 'file-viewer', role: 'dialog',
      'aria-modal': 'true', 'aria-label': 'File' },
    h('header', { class: 'file-viewer-header' }, this.title, this.meta, this.closeButton),
    this.body);
    this.backdrop = h('div', { class: 'file-viewer-backdrop', hidden: true,
      onclick: (/** @type {MouseEvent} */ e) => { if (e.target === this.backdrop) this.close(); } },
    this.panel);
    this.onKey = (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Escape' && !this.backdrop.hidden) this.close(); };
    document.addEventListener('keydown', this.onKey);
    root.append(this.backdrop);
    /** which request's answer is still wanted */
    this.generation = 0;
    /** @type {HTMLElement | null} what had the focus before the viewer opened; it gets it back */
    this.returnFocus = null;
  }

  /** Opens a file (relative to the session's directory). @param {string} path */
  async show(path) {
    const generation = ++this.generation;
    this.title.textContent = path;
    this.title.title = path;
    this.meta.textContent = '';
    this.panel.setAttribute('data-path', path);
    this.panel.setAttribute('data-state', 'loading');
    clear(this.body).append(h('div', { class: 'file-viewer-note muted', text: 'Loading…' }));
    if (this.backdrop.hidden) this.returnFocus = /** @type {HTMLElement | null} */ (document.activeElement);
    this.backdrop.hidden = false;
    this.closeButton.focus();
    /** @type {FileView} */
    let file;
    try {
      file = await api.file(this.ctx.sessionID, path);
    } catch (err) {
      if (generation !== this.generation) return;
      this.panel.setAttribute('data-state', 'error');
      clear(this.body).append(h('div', { class: 'file-viewer-note error', testid: 'file-viewer-error',
        text: `Cannot show this file: ${/** @type {Error} */ (err).message}` }));
      return;
    }
    if (generation !== this.generation) return;
    this.render(file);
  }

  /** @param {FileView} file */
  render(file) {
    this.panel.setAttribute('data-state', file.type);
    this.meta.textContent = [formatBytes(file.size), file.mime].filter(Boolean).join(' · ');
    clear(this.body);
    if (file.type === 'text') {
      this.body.append(renderCode(file.content || '', file.path));
    } else if (file.type === 'image') {
      const img = h('img', { src: `data:${file.mime};base64,${file.content || ''}`, alt: file.path });
      // Icons a few pixels wide are drawn larger, pixel for pixel, to be seen at all.
      img.addEventListener('load', () => { if (img.naturalWidth < 32) img.classList.add('tiny'); }, { once: true });
      this.body.append(h('div', { class: 'file-viewer-image' }, img));
    } else if (file.type === 'binary') {
      this.body.append(h('div', { class: 'file-viewer-note muted',
        text: `This is a binary file (${formatBytes(file.size)}${file.mime ? `, ${file.mime}` : ''}); it is not shown.` }));
    } else {
      this.body.append(h('div', { class: 'file-viewer-note muted',
        text: `This file is too large to show: ${formatBytes(file.size)}, the limit is ${formatBytes(file.limit)}.` }));
    }
  }

  close() {
    this.generation++;
    this.backdrop.hidden = true;
    clear(this.body);
    this.panel.removeAttribute('data-path');
    if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
    this.returnFocus = null;
  }

  destroy() {
    this.generation++;
    document.removeEventListener('keydown', this.onKey);
    this.backdrop.remove();
  }
}
