// @ts-check
// Notifications, per browser: the toggle (asks the browser's permission, subscribes this
// browser to the relay's Web Push, or undoes both), and the page's own notifications while its
// tab is open but hidden. Both use the tags of notifications.js, so a push for the same thing
// replaces the page's notification instead of doubling it.
import { h } from '../dom.js';
import { api } from '../api.js';
import { keyBytes, whenActive } from '../pwa.js';
import { describe } from '../notifications.js';
import * as E from '../events.js';

/** @typedef {import('../types.js').RelayEvent} RelayEvent */
/** @typedef {import('../notifications.js').NoticeContext} NoticeContext */
/** @typedef {import('../notifications.js').Notice} Notice */
/**
 * 'push': on, this browser is subscribed to the relay's pushes; 'page': on, but only this page
 * tells (push failed or is not offered); 'off'; 'blocked': the browser denies notifications;
 * 'unsupported': the browser has no notifications; 'busy': switching.
 * @typedef {'push' | 'page' | 'off' | 'blocked' | 'unsupported' | 'busy'} NotifyState
 */
/**
 * @typedef {Omit<NoticeContext, 'parentOf'> & {
 *   registration: Promise<ServiceWorkerRegistration | null>,
 *   open: (url: string) => void,
 * }} NotifyContext
 */

const STORAGE_KEY = 'relay.notifications';
const MAX_PARENTS = 2000;
const WORKER_WAIT_MS = 30_000; // for a service worker still installing, before the page shows a notice itself

const LABEL = {
  push: 'Notifications: on', page: 'Notifications: on (this tab)', off: 'Notifications: off',
  blocked: 'Notifications: blocked', unsupported: 'Notifications: unavailable', busy: 'Notifications…',
};

/** @param {any} err */
function reason(err) {
  const text = String((err && err.message) || err || '').trim();
  return text.replace(/\.$/, '') || 'no reason given';
}

export class NotifyToggle {
  /** @param {HTMLElement} root @param {NotifyContext} ctx */
  constructor(root, ctx) {
    this.ctx = ctx;
    /** @type {NotifyState} */
    this.state = 'off';
    this.button = h('button', { type: 'button', class: 'link-button notify-toggle', testid: 'notify-toggle', 'aria-pressed': 'false' });
    this.note = h('div', { class: 'notify-note muted small', testid: 'notify-status', role: 'status', hidden: true });
    this.button.addEventListener('click', () => { this.toggle(); });
    root.append(h('div', { class: 'notify' }, this.button, this.note));
    /** Sub-agent session → its parent, from the stream's session events (the list shows no sub-agents). @type {Map<string, string>} */
    this.parents = new Map();
    /** @type {NoticeContext} */
    this.notices = { ...ctx, parentOf: (id) => this.parents.get(id) || null };
    this.set('off');
    this.ready = this.init();
  }

  /** @param {NotifyState} state @param {string} [note] */
  set(state, note = '') {
    this.state = state;
    this.button.textContent = LABEL[state];
    this.button.dataset.state = state;
    this.button.setAttribute('aria-pressed', String(state === 'push' || state === 'page'));
    this.button.disabled = state === 'unsupported' || state === 'busy';
    this.note.textContent = note;
    this.note.hidden = !note;
  }

  get on() { return this.state === 'push' || this.state === 'page'; }

  async init() {
    if (!('Notification' in window)) {
      this.set('unsupported', 'This browser cannot show notifications.');
      return;
    }
    if (localStorage.getItem(STORAGE_KEY) !== 'on') {
      this.set(Notification.permission === 'denied' ? 'blocked' : 'off');
      return;
    }
    if (Notification.permission !== 'granted') {
      this.set(Notification.permission === 'denied' ? 'blocked' : 'off');
      return;
    }
    const subscription = await this.subscription();
    if (!subscription) { this.set('page'); return; }
    this.set('push');
    // The relay may have dropped it (expired, or removed elsewhere): store it again.
    api.addPushSubscription(subscription.toJSON()).catch(() => {});
  }

  /** This browser's push subscription, if any. */
  async subscription() {
    const registration = await this.ctx.registration;
    if (!registration || !('pushManager' in registration)) return null;
    try { return await registration.pushManager.getSubscription(); } catch { return null; }
  }

  async toggle() {
    if (this.on) await this.turnOff();
    else await this.turnOn();
  }

  async turnOn() {
    this.set('busy');
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      this.set(permission === 'denied' ? 'blocked' : 'off', permission === 'denied'
        ? "The browser blocks notifications for this site: allow them in the site's settings, then try again."
        : 'Notifications stay off: the browser did not get your permission.');
      return;
    }
    localStorage.setItem(STORAGE_KEY, 'on');
    try {
      await this.subscribe();
      this.set('push', 'This browser is told when an agent needs you or finishes, also when the page is closed.');
    } catch (err) {
      this.set('page', `Push is not available here (${reason(err)}). You are told while this page is open.`);
    }
  }

  /** Subscribes this browser with the relay's key and stores the subscription with the relay. */
  async subscribe() {
    const registration = await this.ctx.registration;
    if (!registration) throw new Error('the app could not install its service worker');
    if (!('pushManager' in registration)) throw new Error('this browser has no Web Push');
    let key;
    try {
      key = (await api.pushKey()).publicKey;
    } catch (err) {
      throw new Error(err.status === 404 ? 'the relay does not send pushes' : reason(err));
    }
    const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    try {
      await api.addPushSubscription(subscription.toJSON());
    } catch (err) {
      await subscription.unsubscribe().catch(() => false);
      throw err;
    }
  }

  async turnOff() {
    this.set('busy');
    localStorage.setItem(STORAGE_KEY, 'off');
    const subscription = await this.subscription();
    let note = '';
    if (subscription) {
      const { endpoint } = subscription;
      await subscription.unsubscribe().catch(() => false);
      try {
        await api.removePushSubscription(endpoint);
      } catch (err) {
        note = `The relay could not be told (${reason(err)}); it drops the subscription at its next push.`;
      }
    }
    this.set(Notification.permission === 'denied' ? 'blocked' : 'off', note);
  }

  /** An event of the global stream: notifies while the page is hidden, if the person wants it. @param {RelayEvent} event */
  consider(event) {
    const info = E.SESSION_INFO.has(event.type) && event.properties ? event.properties.info : null;
    if (info && info.parentID) {
      if (this.parents.size >= MAX_PARENTS) this.parents.delete(/** @type {string} */ (this.parents.keys().next().value));
      this.parents.set(info.id, info.parentID);
    }
    if (!this.on || document.visibilityState !== 'hidden' || Notification.permission !== 'granted') return;
    const notice = describe(event, this.notices);
    if (notice) this.show(notice);
  }

  /** @param {Notice} notice */
  async show(notice) {
    const options = { body: notice.body, tag: notice.tag, data: { url: notice.url }, icon: '/assets/icons/icon-192.png' };
    const registration = await this.ctx.registration;
    try {
      // Through the service worker where there is one, once it is active: Android's Chrome has
      // no `new Notification`, and the worker handles the click like a push's.
      const worker = registration && await whenActive(registration, navigator.serviceWorker.ready, WORKER_WAIT_MS);
      if (worker) {
        await worker.showNotification(notice.title, options);
        return;
      }
      const shown = new Notification(notice.title, options);
      shown.onclick = () => { window.focus(); this.ctx.open(notice.url); shown.close(); };
    } catch (err) {
      console.warn('notification not shown', err);
    }
  }
}
