// @ts-check
// Telling the person watching: toasts for failed requests, a banner for the session's error.
import { h, clear } from '../dom.js';

/** @typedef {(message: string, kind?: 'error' | 'info') => void} Notify */

/** A function that shows a toast in root for 8 seconds (or until clicked). @param {HTMLElement} root @returns {Notify} */
export function toaster(root) {
  return (message, kind = 'error') => {
    const toast = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: 'alert', text: message });
    toast.addEventListener('click', () => toast.remove());
    root.append(toast);
    setTimeout(() => toast.remove(), 8000);
  };
}

/** The session's error line above the prompt; the reader can dismiss it. */
export class Banner {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
  }

  /** Shows text, or hides the banner when text is empty. @param {string} text */
  show(text) {
    this.root.hidden = !text;
    clear(this.root);
    if (text) {
      this.root.append(h('span', { text }), h('button', {
        type: 'button', class: 'banner-close', 'aria-label': 'Dismiss', text: '×', onclick: () => this.show(''),
      }));
    }
  }
}
