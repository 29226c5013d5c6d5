// @ts-check
// What the service worker decides, as plain functions (web/test/sw.test.js): which requests it
// answers from the app-shell cache, and what a push payload becomes on screen.

/** Paths the service worker never answers: the API (data, event streams) and the relay's own. */
const PASSTHROUGH = ['/api/', '/metrics', '/healthz', '/readyz'];

/**
 * How the service worker handles a request: 'shell' (a page navigation: the network, else the
 * cached app shell), 'asset' (a file of the shell: cache first), or null (the network alone).
 * @param {{method: string, mode: string, url: string, headers: {get(name: string): string | null}}} request
 * @param {string} origin the service worker's origin
 * @param {ReadonlySet<string>} shell paths of the cached shell files
 * @returns {'shell' | 'asset' | null}
 */
export function strategy(request, origin, shell) {
  if (request.method !== 'GET') return null;
  const url = new URL(request.url);
  if (url.origin !== origin) return null;
  if (PASSTHROUGH.some((p) => url.pathname === p.replace(/\/$/, '') || url.pathname.startsWith(p))) return null;
  if ((request.headers.get('accept') || '').includes('text/event-stream')) return null;
  if (request.mode === 'navigate') return url.pathname === '/' ? 'shell' : null;
  return shell.has(url.pathname) ? 'asset' : null;
}

/**
 * A push message as the relay sends it (E2's contract):
 * {title, body, url, tag, kind: 'permission'|'question'|'idle'|'error', sessionID}.
 * @typedef {{title: string, body: string, url: string, tag: string, kind: string, sessionID: string}} PushPayload
 */

/**
 * The notification a push payload shows; null for a payload that is not one of ours. The URL
 * must stay on this origin (a notification never opens another site).
 * @param {unknown} payload @param {string} origin
 * @returns {{title: string, options: {body: string, tag: string, data: {url: string}, icon: string, badge: string}} | null}
 */
export function notificationFor(payload, origin) {
  if (!payload || typeof payload !== 'object') return null;
  const p = /** @type {Record<string, unknown>} */ (payload);
  if (typeof p.title !== 'string' || !p.title) return null;
  let url = '/';
  if (typeof p.url === 'string') {
    try {
      const target = new URL(p.url, origin);
      if (target.origin === origin) url = target.pathname + target.search + target.hash;
    } catch { /* keep '/' */ }
  }
  const tag = typeof p.tag === 'string' && p.tag ? p.tag
    : `${typeof p.kind === 'string' ? p.kind : 'notice'}:${typeof p.sessionID === 'string' ? p.sessionID : ''}`;
  return {
    title: p.title,
    options: {
      body: typeof p.body === 'string' ? p.body : '',
      tag,
      data: { url },
      icon: '/assets/icons/icon-192.png',
      badge: '/assets/icons/icon-192.png',
    },
  };
}

/**
 * The window a notification click should use: a visible one first, then any of ours.
 * @template {{url: string, visibilityState?: string, focused?: boolean}} C
 * @param {readonly C[]} clients @param {string} origin
 * @returns {C | null}
 */
export function pickWindow(clients, origin) {
  const ours = clients.filter((c) => { try { return new URL(c.url).origin === origin; } catch { return false; } });
  return ours.find((c) => c.focused) || ours.find((c) => c.visibilityState === 'visible') || ours[0] || null;
}

/** True when one of the windows is on screen (the page then tells the person itself). @param {readonly {visibilityState?: string}[]} clients */
export function anyVisible(clients) {
  return clients.some((c) => c.visibilityState === 'visible');
}
