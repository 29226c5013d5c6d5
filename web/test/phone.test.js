// The phone's pure parts: fitting the app to the visual viewport (the on-screen keyboard), the
// session list's attention marks (unread, waiting), and the "while you were away" marker's words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewportVars, followVisualViewport } from '../src/ui/viewport.js';
import { Attention, eventSession } from '../src/ui/attention.js';
import { wakeText } from '../src/ui/wake.js';

test('the app takes the visible height and top of the visual viewport', () => {
  assert.deepEqual(viewportVars({ height: 844, offsetTop: 0 }),
    { '--app-height': '844px', '--app-top': '0px' });
  // keyboard open: 336 px of the page are hidden below, the page scrolled by 120.4 px
  assert.deepEqual(viewportVars({ height: 507.6, offsetTop: 120.4 }),
    { '--app-height': '508px', '--app-top': '120px' });
  assert.deepEqual(viewportVars({ height: -3, offsetTop: -1 }),
    { '--app-height': '0px', '--app-top': '0px' });
});

test('followVisualViewport sets the variables on every resize and scroll, and stops', () => {
  const listeners = new Map();
  const vv = {
    height: 844, offsetTop: 0,
    addEventListener: (type, fn) => listeners.set(type, fn),
    removeEventListener: (type) => listeners.delete(type),
  };
  const props = {};
  const el = { style: { setProperty: (k, v) => { props[k] = v; } } };
  const stop = followVisualViewport(el, vv);
  assert.equal(props['--app-height'], '844px');
  vv.height = 500; vv.offsetTop = 40;
  listeners.get('resize')();
  assert.deepEqual(props, { '--app-height': '500px', '--app-top': '40px' });
  vv.offsetTop = 60;
  listeners.get('scroll')();
  assert.equal(props['--app-top'], '60px');
  stop();
  assert.equal(listeners.size, 0);
  assert.equal(typeof followVisualViewport(el, null), 'function'); // no visualViewport: no-op
});

function memory() {
  const data = new Map();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => data.set(k, v) };
}

const sessions = new Map([
  ['ses_a', { id: 'ses_a', time: { created: 1, updated: 100 } }],
  ['ses_b', { id: 'ses_b', time: { created: 2, updated: 200 } }],
  ['ses_child', { id: 'ses_child', parentID: 'ses_b', time: { created: 3, updated: 300 } }],
]);
const lookup = (id) => sessions.get(id);

test('activity marks the root session unread unless it is being looked at', () => {
  const att = new Attention(lookup, memory());
  att.look('ses_a');
  const part = { type: 'message.part.updated', properties: { part: { sessionID: 'ses_a' } } };
  assert.equal(att.apply(part), null);
  assert.equal(att.isUnread('ses_a'), false);
  const child = { type: 'message.updated', properties: { info: { sessionID: 'ses_child' } } };
  assert.equal(att.apply(child), 'ses_b'); // a sub-agent's activity is its parent's
  assert.equal(att.isUnread('ses_b'), true);
  assert.equal(att.apply(child), null); // already unread: nothing to redraw
  att.look(null); // tab hidden
  assert.equal(att.apply({ type: 'session.idle', properties: { sessionID: 'ses_a' } }), 'ses_a');
  att.look('ses_b');
  assert.equal(att.isUnread('ses_b'), false);
  // status changes and file notices are not activity of their own
  assert.equal(att.apply({ type: 'session.status', properties: { sessionID: 'ses_a', status: { type: 'busy' } } }), null);
  assert.equal(eventSession({ type: 'x' }), undefined);
});

test('pending requests of a session and its sub-agents make it waiting until answered', () => {
  const att = new Attention(lookup, null);
  assert.equal(att.apply({ type: 'permission.asked', properties: { id: 'per_1', sessionID: 'ses_child' } }), 'ses_b');
  assert.equal(att.apply({ type: 'question.v2.asked', properties: { id: 'que_1', sessionID: 'ses_b' } }), 'ses_b');
  assert.equal(att.waitingCount('ses_b'), 2);
  assert.equal(att.apply({ type: 'permission.replied', properties: { requestID: 'per_1', sessionID: 'ses_child' } }), 'ses_b');
  assert.equal(att.apply({ type: 'question.rejected', properties: { requestID: 'que_9', sessionID: 'ses_b' } }), null);
  assert.equal(att.apply({ type: 'question.v2.replied', properties: { requestID: 'que_1', sessionID: 'ses_b' } }), 'ses_b');
  assert.equal(att.waitingCount('ses_b'), 0);
  att.setWaiting('ses_a', ['per_x']);
  assert.equal(att.waitingCount('ses_a'), 1);
  att.setWaiting('ses_a', []);
  assert.equal(att.waitingCount('ses_a'), 0);
});

test('"last seen" survives a reload, per principal: a session updated since is unread', () => {
  const storage = memory();
  const first = new Attention(lookup, storage, 'alice');
  first.look('ses_a');
  first.look('ses_b');
  assert.deepEqual(JSON.parse(storage.data.get('relay.seen.alice')), { ses_a: 100, ses_b: 200 });
  sessions.set('ses_a', { id: 'ses_a', time: { created: 1, updated: 150 } });
  const again = new Attention(lookup, storage, 'alice');
  again.loaded(sessions.values());
  assert.equal(again.isUnread('ses_a'), true); // changed since it was seen
  assert.equal(again.isUnread('ses_b'), false);
  assert.equal(again.isUnread('ses_child'), false); // first listed now: seen as it is
  assert.equal(JSON.parse(storage.data.get('relay.seen.alice')).ses_child, 300);
  sessions.set('ses_child', { id: 'ses_child', parentID: 'ses_b', time: { created: 3, updated: 350 } });
  again.loaded(sessions.values());
  assert.equal(again.isUnread('ses_child'), true); // changed since this browser first listed it
  const bob = new Attention(lookup, storage, 'bob');
  bob.loaded(sessions.values());
  assert.equal(bob.isUnread('ses_a'), false);
  again.forget('ses_a');
  assert.equal(JSON.parse(storage.data.get('relay.seen.alice')).ses_a, undefined);
  sessions.set('ses_a', { id: 'ses_a', time: { created: 1, updated: 100 } });
  sessions.set('ses_child', { id: 'ses_child', parentID: 'ses_b', time: { created: 3, updated: 300 } });
});

test('the wake marker says how many events, and whether it finished or waits', () => {
  assert.equal(wakeText({ count: 1, finished: false, waiting: false }), '1 new event');
  assert.equal(wakeText({ count: 12, finished: true, waiting: false }), '12 new events · finished');
  assert.equal(wakeText({ count: 3, finished: false, waiting: true }), '3 new events · waiting for you');
});
