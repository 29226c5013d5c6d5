// EventStream: duplicate guard, relay notices, resuming with ?after=, restarting live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStream } from '../src/stream.js';

/** Stands in for the browser's EventSource; every instance is kept in `opened`. */
class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static opened = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeEventSource.CONNECTING;
    this.closed = false;
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    FakeEventSource.opened.push(this);
  }

  close() { this.closed = true; this.readyState = FakeEventSource.CLOSED; }

  // What the server does:
  open() { this.readyState = FakeEventSource.OPEN; this.onopen(); }
  send(event, id) { this.onmessage({ data: JSON.stringify(event), lastEventId: id || '' }); }
  drop(giveUp) { this.readyState = giveUp ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING; this.onerror(); }
}

/** A stream on a fake environment, with what it delivered and the states it went through. */
function harness(options = {}) {
  FakeEventSource.opened = [];
  const listeners = new Map();
  const fakeWindow = {
    addEventListener: (type, fn) => listeners.set(type, fn),
    removeEventListener: (type) => listeners.delete(type),
  };
  const events = [];
  const states = [];
  const stream = new EventStream('/api/events', {
    ...options,
    onEvent: (event, id) => events.push([event.type, id]),
    onState: (state) => states.push(state),
    env: { EventSource: FakeEventSource, window: fakeWindow },
  });
  const current = () => FakeEventSource.opened[FakeEventSource.opened.length - 1];
  return { stream, events, states, listeners, current };
}

test('opens at the live end, or after the cursor it was given', () => {
  const live = harness();
  live.stream.start();
  assert.equal(live.current().url, '/api/events');
  const resumed = harness({ after: '1700000000000-0' });
  resumed.stream.start();
  assert.equal(resumed.current().url, '/api/events?after=1700000000000-0');
  assert.deepEqual(resumed.states, ['connecting']);
  resumed.current().open();
  assert.deepEqual(resumed.states, ['connecting', 'open']);
});

test('an event id seen before is not applied twice', () => {
  const { stream, events, current } = harness();
  stream.start();
  current().open();
  current().send({ type: 'message.updated' }, '1-0');
  current().send({ type: 'message.part.updated' }, '2-0');
  current().send({ type: 'message.updated' }, '1-0'); // replayed
  current().send({ type: 'message.part.updated' }, '2-0');
  current().send({ type: 'session.idle' }, '3-0');
  assert.deepEqual(events, [['message.updated', '1-0'], ['message.part.updated', '2-0'], ['session.idle', '3-0']]);
  assert.equal(stream.lastId, '3-0');
});

test('a relay notice that repeats the previous id is still delivered', () => {
  const { stream, events, current } = harness();
  stream.start();
  current().send({ type: 'message.updated' }, '5-0');
  current().send({ type: 'relay.reset' }, '5-0');
  current().send({ type: 'message.updated' }, '5-0');
  assert.deepEqual(events, [['message.updated', '5-0'], ['relay.reset', '5-0']]);
  assert.equal(stream.lastId, '5-0');
});

test('when the browser gives up, it reconnects with ?after=<last id> after a growing delay', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { stream, states, current } = harness();
  stream.start();
  const first = current();
  first.open();
  first.send({ type: 'message.updated' }, '7-0');
  first.drop(false); // EventSource retries by itself: no new connection of ours
  assert.equal(FakeEventSource.opened.length, 1);
  assert.equal(states.at(-1), 'reconnecting');
  first.drop(true);
  t.mock.timers.tick(999);
  assert.equal(FakeEventSource.opened.length, 1);
  t.mock.timers.tick(1);
  assert.equal(FakeEventSource.opened.length, 2);
  assert.equal(current().url, '/api/events?after=7-0');
  current().drop(true);
  t.mock.timers.tick(1999);
  assert.equal(FakeEventSource.opened.length, 2, 'the second retry waits twice as long');
  t.mock.timers.tick(1);
  assert.equal(FakeEventSource.opened.length, 3);
  current().open();
  assert.equal(states.at(-1), 'open');
  // Late callbacks of a replaced connection change nothing.
  first.send({ type: 'message.updated' }, '8-0');
  assert.equal(stream.lastId, '7-0');
});

test('coming back online reconnects at once', () => {
  const { stream, listeners, current } = harness();
  stream.start();
  current().send({ type: 'message.updated' }, '9-0');
  current().drop(false);
  listeners.get('online')();
  assert.equal(FakeEventSource.opened.length, 2);
  assert.equal(FakeEventSource.opened[0].closed, true);
  assert.equal(current().url, '/api/events?after=9-0');
});

test('restartLive forgets the position and the seen ids', () => {
  const { stream, events, current } = harness();
  stream.start();
  current().send({ type: 'message.updated' }, '4-0');
  stream.restartLive();
  assert.equal(FakeEventSource.opened[0].closed, true);
  assert.equal(current().url, '/api/events');
  current().send({ type: 'message.updated' }, '4-0'); // a new log may reuse ids
  assert.equal(events.length, 2);
});

test('stop closes the connection, cancels a pending retry and stops listening', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { stream, states, listeners, current } = harness();
  stream.start();
  current().drop(true);
  stream.stop();
  t.mock.timers.tick(60000);
  assert.equal(FakeEventSource.opened.length, 1);
  assert.equal(current().closed, true);
  assert.equal(listeners.has('online'), false);
  assert.equal(states.at(-1), 'closed');
});

