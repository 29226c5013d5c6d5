// @ts-check
// The installable app's page side: registers the service worker (sw.js) and hands the page the
// sessions a notification click asks to open.

/**
 * Registers /sw.js for the whole app; resolves to the registration, or null where service
 * workers are unavailable (an insecure origin, an old or locked-down browser).
 * @returns {Promise<ServiceWorkerRegistration | null>}
 */
export async function registerWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  } catch (err) {
    console.warn('service worker not registered', err);
    return null;
  }
}

/**
 * The registration once its worker is active, or null when it is not within `ms`. A new worker
 * first stores the app shell (seconds on a slow link or a busy machine); a notification the page
 * shows itself meanwhile (`new Notification`) is lost where pages cannot show them (Android's
 * Chrome) and is not the worker's to replace or to handle the click of.
 * @param {ServiceWorkerRegistration} registration
 * @param {Promise<ServiceWorkerRegistration>} ready `navigator.serviceWorker.ready`
 * @param {number} ms
 * @returns {Promise<ServiceWorkerRegistration | null>}
 */
export function whenActive(registration, ready, ms) {
  if (registration.active) return Promise.resolve(registration);
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Promise<null>} */
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); });
  return Promise.race([ready, late]).finally(() => clearTimeout(timer));
}

/**
 * Calls `open(url)` when the service worker forwards a notification click to this page
 * (the click names a path on this origin, such as `/?session=<id>`).
 * @param {(url: URL) => void} open
 */
export function onOpenRequest(open) {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.addEventListener('message', (event) => {
    const data = event.data || {};
    if (data.type !== 'relay:open' || typeof data.url !== 'string') return;
    const url = new URL(data.url, location.origin);
    if (url.origin === location.origin) open(url);
  });
}

/** The VAPID key (base64url) as the bytes `pushManager.subscribe` takes. @param {string} key */
export function keyBytes(key) {
  const base64 = (key + '='.repeat((4 - (key.length % 4)) % 4)).replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(base64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
