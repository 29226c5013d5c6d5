// describe(): which events become notifications, their words, tags and links (the same as the
// relay's pushes: src/opencode_relay/push/notices.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, noticeTag, sessionUrl } from '../src/notifications.js';

const listed = { ses_top: { title: 'Fix the build' } };
const parents = { ses_child: 'ses_top', ses_grandchild: 'ses_child' };
const ctx = {
  session: (id) => listed[id] || null,
  parentOf: (id) => parents[id] || null,
  errorText: (err) => `plain(${err.name})`,
};

test('a permission request: the session, what the agent wants, tagged by request', () => {
  const n = describe({ type: 'permission.asked', properties: { id: 'per_1', sessionID: 'ses_top', permission: 'bash', patterns: ['ls -la'] } }, ctx);
  assert.deepEqual(n, {
    kind: 'permission', title: 'Permission needed: Fix the build', body: 'Wants to use bash',
    tag: 'permission:per_1', sessionID: 'ses_top', url: '/?session=ses_top',
  });
});

test("a sub-agent's question opens the top-level session, where it shows", () => {
  for (const type of ['question.asked', 'question.v2.asked']) {
    const n = describe({ type, properties: { id: 'que_9', sessionID: 'ses_grandchild', questions: [{ question: 'Which  file?\n' }] } }, ctx);
    assert.equal(n.kind, 'question');
    assert.equal(n.title, 'Question: Fix the build');
    assert.equal(n.body, 'Which file?');
    assert.equal(n.tag, noticeTag('question', 'que_9'));
    assert.equal(n.url, '/?session=ses_top');
  }
});

test('idle counts only for a listed top-level session', () => {
  assert.deepEqual(describe({ type: 'session.idle', properties: { sessionID: 'ses_top' } }, ctx),
    { kind: 'idle', title: 'Done: Fix the build', body: 'Finished', tag: 'idle:ses_top', sessionID: 'ses_top', url: '/?session=ses_top' });
  assert.equal(describe({ type: 'session.idle', properties: { sessionID: 'ses_child' } }, ctx), null);
  assert.equal(describe({ type: 'session.idle', properties: { sessionID: 'ses_unknown' } }, ctx), null);
});

test('errors, but not a stop the person asked for; tagged by top-level session', () => {
  const err = describe({ type: 'session.error', properties: { sessionID: 'ses_child', error: { name: 'APIError' } } }, ctx);
  assert.equal(err.body, 'plain(APIError)');
  assert.equal(err.tag, 'error:ses_top');
  assert.equal(describe({ type: 'session.error', properties: { sessionID: 'ses_top', error: { name: 'MessageAbortedError' } } }, ctx), null);
  const failed = describe({ type: 'relay.session.failed', properties: { sessionID: 'ses_top', message: 'Provider x failed.' } }, ctx);
  assert.equal(failed.tag, err.tag);
  assert.equal(failed.body, 'Provider x failed.');
});

test('other events, or events without a session or request id, make none; long text is clipped', () => {
  assert.equal(describe({ type: 'message.part.delta', properties: { sessionID: 'ses_top' } }, ctx), null);
  assert.equal(describe({ type: 'session.idle', properties: {} }, ctx), null);
  assert.equal(describe({ type: 'permission.asked', properties: { sessionID: 'ses_top' } }, ctx), null);
  const long = describe({ type: 'question.asked', properties: { id: 'q', sessionID: 'ses_other', questions: [{ question: 'x'.repeat(500) }] } }, ctx);
  assert.equal(long.title, 'Question: opencode session');
  assert.equal(long.body.length, 120);
  assert.ok(long.body.endsWith('…'));
  assert.equal(sessionUrl('a b'), '/?session=a%20b');
});
