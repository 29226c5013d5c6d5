// @ts-check
// The service worker (served as /sw.js, scope /): keeps the app shell (index.html, the bundle,
// the manifest, icons) so the page opens without the relay and can say that it cannot reach it;
// shows the relay's push notifications and opens the session a click names. It never answers
// API calls or event streams (sw/policy.js). Built by build.mjs, which fills in RELAY_SHELL
// (the shell's paths) and RELAY_VERSION (a hash of them): a new build is a new worker and cache.
import { anyVisible, notificationFor, pickWindow, strategy } from './sw/policy.js';

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
const CACHE_PREFIX = 'relay-shell-';
const CACHE = `${CACHE_PREFIX}${RELAY_VERSION}`;
const SHELL = new Set(RELAY_SHELL);
const ORIGIN = sw.location.origin;

sw.addEventListener('install', (event) => {
  // `reload`: the HTTP cache must not hand back an older index.html than this build's.
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll([...SHELL].map((path) => new Request(path, { cache: 'reload' }))))
    .then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names
      .filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE)
      .map((name) => caches.delete(name))))
    .then(() => sw.clients.claim()));
});

sw.addEventListener('fetch', (event) => {
  const how = strategy(event.request, ORIGIN, SHELL);
  if (how === 'shell') event.respondWith(page(event.request));
  else if (how === 'asset') event.respondWith(asset(event.request));
  // Everything else (the API, event streams, other sites) goes to the network untouched.
});

/**
 * A page load: the relay's answer when it gives one; the cached shell when the network fails
 * or only a gateway answers (the shell then shows that the relay cannot be reached).
 * @param {Request} request
 */
async function page(request) {
  try {
    const response = await fetch(request);
    if (![502, 503, 504].includes(response.status)) return response;
    const cached = await caches.match('/', { cacheName: CACHE });
    return cached || response;
  } catch (err) {
    const cached = await caches.match('/', { cacheName: CACHE });
    if (cached) return cached;
    throw err;
  }
}

/** A file of the shell: from the cache (names carry the build's hash), else the network. @param {Request} request */
async function asset(request) {
  const cached = await caches.match(request, { cacheName: CACHE, ignoreSearch: true });
  return cached || fetch(request);
}

sw.addEventListener('push', (event) => {
  let payload = null;
  try { payload = event.data ? event.data.json() : null; } catch { payload = null; }
  const shown = notificationFor(payload, ORIGIN);
  if (!shown) return;
  event.waitUntil(sw.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
    // A page on screen tells the person itself; a hidden one shows the same tag, so the two
    // replace each other instead of doubling.
    if (anyVisible(windows)) return undefined;
    return sw.registration.showNotification(shown.title, shown.options);
  }));
});

sw.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = typeof data.url === 'string' ? data.url : '/';
  event.waitUntil(sw.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(async (windows) => {
    const target = pickWindow(windows, ORIGIN);
    if (target) {
      // The page routes itself (no reload, the prompt box keeps its draft); see pwa.js.
      target.postMessage({ type: 'relay:open', url });
      await target.focus();
      return;
    }
    await sw.clients.openWindow(url);
  }));
});

sw.addEventListener('pushsubscriptionchange', (event) => {
  // The push service replaced the subscription: subscribe again with the same key and tell the
  // relay (the login cookie goes along; a failure leaves it to the page's next start).
  const change = /** @type {Event & {oldSubscription?: PushSubscription | null, waitUntil(p: Promise<unknown>): void}} */ (event);
  const key = change.oldSubscription ? change.oldSubscription.options.applicationServerKey : null;
  if (!key) return;
  change.waitUntil(sw.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key })
    .then((subscription) => fetch('/api/push/subscriptions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(subscription.toJSON()),
    }))
    .catch(() => undefined));
});
