// @ts-check
// The page's fixed frame: sidebar, the open session's header, transcript, prompt area and side
// panels, and the toasts. Built once by main.js; views fill the regions.
import { h } from './dom.js';

export function buildLayout() {
  const connectionLabel = h('span', { class: 'connection-label', text: 'Connecting…' });
  const connection = h('div', { class: 'connection', testid: 'connection-status', 'data-state': 'connecting', role: 'status' },
    h('span', { class: 'connection-dot' }), connectionLabel);
  const sidebar = h('div', { class: 'sidebar-body' });
  const header = {
    title: h('h1', { class: 'session-name', testid: 'session-title' }),
    dir: h('div', { class: 'session-sub' }),
    status: h('span', { class: 'status-pill', testid: 'status-indicator', 'data-status': 'idle' }),
    rename: h('button', { type: 'button', class: 'btn btn-ghost', testid: 'session-rename', text: 'Rename' }),
    delete: h('button', { type: 'button', class: 'btn btn-ghost', testid: 'session-delete', text: 'Delete' }),
    panels: h('button', { type: 'button', class: 'btn btn-ghost', testid: 'toggle-panels', text: 'Panels', 'aria-pressed': 'true' }),
    share: h('button', { type: 'button', class: 'btn btn-ghost', testid: 'share-button', text: 'Share', 'aria-haspopup': 'dialog', 'aria-expanded': 'false' }),
    sharePopover: h('div', { class: 'share-popover', testid: 'share-popover', role: 'dialog', 'aria-label': 'Share link', hidden: true }),
    exportMenu: h('details', { class: 'export-menu', testid: 'export-menu' }),
    exportItems: h('div', { class: 'export-items', role: 'menu' }),
    back: h('button', { type: 'button', class: 'btn btn-ghost only-narrow', testid: 'back-to-list', text: '☰', 'aria-label': 'Sessions', 'aria-expanded': 'false' }),
  };
  header.exportMenu.append(h('summary', { class: 'btn btn-ghost', text: 'Export' }), header.exportItems);
  const transcript = h('div', { class: 'transcript', testid: 'transcript' });
  const progress = h('div', { class: 'progress', testid: 'progress', hidden: true },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { class: 'progress-text' }));
  const banner = h('div', { class: 'banner', testid: 'session-error', role: 'alert', hidden: true });
  const requests = h('div', { class: 'requests', hidden: true });
  const revert = h('div', { class: 'revert-region' });
  const usage = h('div', { class: 'usage-region' });
  const composer = h('div', { class: 'composer' });
  const wake = h('div', { class: 'wake-region' });
  const panels = h('aside', { class: 'panels' });
  const welcome = h('div', { class: 'welcome' },
    h('div', { class: 'welcome-title', text: 'opencode relay' }),
    h('p', { class: 'muted', text: 'Pick a session on the left, or start a new one.' }));
  const sessionPane = h('div', { class: 'session-pane', hidden: true },
    h('header', { class: 'session-header' },
      header.back,
      h('div', { class: 'title-wrap' }, header.title, header.dir),
      h('div', { class: 'header-actions' }, header.status, header.share, header.exportMenu, header.rename, header.delete, header.panels),
      header.sharePopover),
    h('div', { class: 'session-body' },
      h('div', { class: 'center' }, wake, transcript, progress, banner, requests, revert, usage, composer),
      panels));
  const toasts = h('div', { class: 'toasts', 'aria-live': 'assertive' });
  // On a phone the session list is a drawer over the session; tapping beside it closes it.
  const scrim = h('div', { class: 'drawer-scrim', 'aria-hidden': 'true' });
  const main = h('main', { class: 'main' }, welcome, sessionPane);
  const app = h('div', { class: 'app' },
    h('aside', { class: 'sidebar' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-name', text: 'opencode relay' }), connection),
      sidebar),
    scrim,
    main,
    toasts);
  return {
    app, connection, connectionLabel, sidebar, header, transcript, progress, banner, requests,
    revert, usage, composer, panels, welcome, sessionPane, toasts, main, wake, scrim,
  };
}

/** @typedef {ReturnType<typeof buildLayout>} Layout */
/** @typedef {Layout['header']} HeaderElements */
