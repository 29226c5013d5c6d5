// SessionStore: snapshot loading, ordering by id, deltas, removals and requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionStore } from '../src/store.js';
import * as E from '../src/events.js';

const SID = 'ses_1';
const message = (id, role = 'assistant', sessionID = SID) => ({ id, sessionID, role, time: {} });
const part = (id, messageID, extra = {}) => ({ id, messageID, sessionID: SID, type: 'text', text: '', ...extra });
const event = (type, properties) => ({ type, properties });

/** A store and the list of changes it emitted. */
function watched() {
  const store = new SessionStore(SID);
  const changes = [];
  store.on((change) => changes.push(change));
  return { store, changes };
}

test('load keeps messages and parts in string id order', () => {
  const { store, changes } = watched();
  store.load([
    { info: message('msg_b'), parts: [part('prt_2', 'msg_b'), part('prt_1', 'msg_b')] },
    { info: message('msg_a', 'user'), parts: [] },
  ]);
  assert.deepEqual(store.order, ['msg_a', 'msg_b']);
  assert.deepEqual(store.messages.get('msg_b').partOrder, ['prt_1', 'prt_2']);
  assert.deepEqual(changes, [], 'a snapshot is drawn by the views it is given to, not announced');
});

test('upserts insert by string id, not by arrival', () => {
  const { store, changes } = watched();
  for (const id of ['msg_3', 'msg_1', 'msg_2', 'msg_10']) store.apply(event(E.MESSAGE_UPDATED, { info: message(id) }));
  assert.deepEqual(store.order, ['msg_1', 'msg_10', 'msg_2', 'msg_3']);
  store.apply(event(E.MESSAGE_UPDATED, { info: { ...message('msg_2'), modelID: 'm2' } }));
  assert.equal(store.order.length, 4);
  assert.equal(store.messages.get('msg_2').info.modelID, 'm2');
  assert.deepEqual(changes.map((c) => [c.id, c.isNew]),
    [['msg_3', true], ['msg_1', true], ['msg_2', true], ['msg_10', true], ['msg_2', false]]);

  store.apply(event(E.PART_UPDATED, { part: part('prt_b', 'msg_1') }));
  store.apply(event(E.PART_UPDATED, { part: part('prt_a', 'msg_1') }));
  assert.deepEqual(store.messages.get('msg_1').partOrder, ['prt_a', 'prt_b']);
});

test('events of other sessions change nothing', () => {
  const { store, changes } = watched();
  assert.equal(store.apply(event(E.MESSAGE_UPDATED, { info: message('msg_1', 'user', 'ses_other') })), true);
  assert.equal(store.apply(event(E.SESSION_STATUS, { sessionID: 'ses_other', status: { type: 'busy' } })), true);
  assert.equal(store.order.length, 0);
  assert.equal(store.status.type, 'idle');
  assert.deepEqual(changes, []);
});

test('a delta before its part starts a text part; the full part replaces it', () => {
  const { store, changes } = watched();
  store.apply(event(E.PART_DELTA, { sessionID: SID, messageID: 'msg_1', partID: 'prt_1', field: 'text', delta: 'Hel' }));
  store.apply(event(E.PART_DELTA, { sessionID: SID, messageID: 'msg_1', partID: 'prt_1', field: 'text', delta: 'lo' }));
  const entry = store.messages.get('msg_1');
  assert.equal(entry.info.stub, true, 'the message is a stub until message.updated comes');
  assert.equal(entry.parts.get('prt_1').text, 'Hello');
  assert.deepEqual(changes.map((c) => c.type), ['message', 'part', 'delta']);

  store.apply(event(E.PART_UPDATED, { part: part('prt_1', 'msg_1', { text: 'Hello!', time: { end: 1 } }) }));
  store.apply(event(E.MESSAGE_UPDATED, { info: message('msg_1') }));
  assert.equal(entry.parts.get('prt_1').text, 'Hello!');
  assert.equal(store.messages.get('msg_1').info.stub, undefined);
  assert.deepEqual(store.messages.get('msg_1').partOrder, ['prt_1']);
});

test('removals drop messages and parts, and unknown ids are ignored', () => {
  const { store, changes } = watched();
  store.load([{ info: message('msg_1'), parts: [part('prt_1', 'msg_1'), part('prt_2', 'msg_1')] },
    { info: message('msg_2'), parts: [] }]);
  store.apply(event(E.PART_REMOVED, { sessionID: SID, messageID: 'msg_1', partID: 'prt_1' }));
  store.apply(event(E.PART_REMOVED, { sessionID: SID, messageID: 'msg_1', partID: 'prt_9' }));
  store.apply(event(E.MESSAGE_REMOVED, { sessionID: SID, messageID: 'msg_2' }));
  store.apply(event(E.MESSAGE_REMOVED, { sessionID: SID, messageID: 'msg_9' }));
  assert.deepEqual(store.messages.get('msg_1').partOrder, ['prt_2']);
  assert.deepEqual(store.order, ['msg_1']);
  assert.deepEqual(changes, [{ type: 'part-removed', messageID: 'msg_1', id: 'prt_1' },
    { type: 'message-removed', id: 'msg_2' }]);
});

test('permission and question requests come and go, question.v2 included', () => {
  const { store } = watched();
  store.apply(event(E.PERMISSION_ASKED, { id: 'per_1', sessionID: 'ses_child', permission: 'bash' }));
  store.apply(event(E.QUESTION_ASKED, { id: 'que_1', sessionID: SID, questions: [] }));
  store.apply(event(E.QUESTION_V2_ASKED, { id: 'que_2', sessionID: SID, questions: [] }));
  store.apply(event(E.QUESTION_V2_ASKED, { id: 'que_3', sessionID: SID, questions: [] }));
  assert.deepEqual([...store.permissions.keys()], ['per_1'], 'sub-agent requests are kept too');
  assert.deepEqual([...store.questions.keys()], ['que_1', 'que_2', 'que_3']);

  store.apply(event(E.PERMISSION_REPLIED, { sessionID: 'ses_child', requestID: 'per_1', reply: 'once' }));
  store.apply(event(E.QUESTION_REPLIED, { sessionID: SID, requestID: 'que_1' }));
  store.apply(event(E.QUESTION_V2_REPLIED, { sessionID: SID, requestID: 'que_2' }));
  assert.deepEqual([...store.questions.keys()], ['que_3']);
  store.apply(event(E.QUESTION_V2_REJECTED, { sessionID: SID, requestID: 'que_3' }));
  assert.equal(store.permissions.size + store.questions.size, 0);
});

test('status, todos, diff, session info and deletion of this session', () => {
  const { store, changes } = watched();
  store.apply(event(E.SESSION_STATUS, { sessionID: SID, status: { type: 'busy' } }));
  assert.equal(store.status.type, 'busy');
  store.apply(event(E.SESSION_IDLE, { sessionID: SID }));
  assert.equal(store.status.type, 'idle');
  store.apply(event(E.TODOS, { sessionID: SID, todos: [{ content: 'a', status: 'pending' }] }));
  store.apply(event(E.SESSION_DIFF, { sessionID: SID, diff: [{ file: 'x.py' }] }));
  store.apply(event(E.SESSION_UPDATED, { info: { id: SID, title: 'Renamed' } }));
  store.apply(event(E.SESSION_DELETED, { info: { id: 'ses_other' } }));
  assert.equal(store.deleted, false);
  store.apply(event(E.SESSION_DELETED, { info: { id: SID } }));
  assert.equal(store.deleted, true);
  assert.equal(store.todos.length, 1);
  assert.equal(store.diff[0].file, 'x.py');
  assert.equal(store.session.title, 'Renamed');
  assert.deepEqual(changes.map((c) => c.type), ['status', 'status', 'todos', 'diff', 'session', 'deleted']);
});

test('the store handles exactly the STATEFUL event types', () => {
  const store = new SessionStore(SID);
  const handled = (type) => store.apply(event(type, { sessionID: 'ses_other' }));
  for (const type of E.STATEFUL) assert.equal(handled(type), true, type);
  for (const type of [E.SESSION_ERROR, ...E.RELAY_NOTICES, 'server.heartbeat', 'lsp.updated']) {
    assert.equal(handled(type), false, type);
  }
});
