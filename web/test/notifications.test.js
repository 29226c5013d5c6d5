// describe(): which events become notifications, their words, tags and links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, noticeTag, sessionUrl } from '../src/notifications.js';

const sessions = {
  ses_top: { title: 'Fix the build' },
  ses_child: { title: 'sub-agent', parentID: 'ses_top' },
};
const ctx = {
  session: (id) => sessions[id] || null,
  errorText: (err) => `plain(${err.name})`,
};

test('a permission request names the session and what the agent wants, tagged by request', () => {
  const n = describe({ type: 'permission.asked', properties: { id: 'per_1', sessionID: 'ses_top', permission: 'bash', patterns: ['ls -la'] } }, ctx);
  assert.deepEqual(n, {
    kind: 'permission', title: 'Permission needed', body: 'Fix the build: the agent asks to use bash ls -la',
    tag: 'relay:permission:per_1', sessionID: 'ses_top', url: '/?session=ses_top',
  });
});

test('questions of both event families, also from sub-agents', () => {
  for (const type of ['question.asked', 'question.v2.asked']) {
    const n = describe({ type, properties: { id: 'que_9', sessionID: 'ses_child', questions: [{ question: 'Which  file?\n' }] } }, ctx);
    assert.equal(n.kind, 'question');
    assert.equal(n.body, 'sub-agent: Which file?');
    assert.equal(n.tag, noticeTag('question', 'que_9'));
  }
});

test('idle counts only for a listed top-level session', () => {
  assert.equal(describe({ type: 'session.idle', properties: { sessionID: 'ses_top' } }, ctx).tag, 'relay:idle:ses_top');
  assert.equal(describe({ type: 'session.idle', properties: { sessionID: 'ses_child' } }, ctx), null);
  assert.equal(describe({ type: 'session.idle', properties: { sessionID: 'ses_unknown' } }, ctx), null);
});

test('errors, but not a stop the person asked for; the relay notice shares the tag', () => {
  const err = describe({ type: 'session.error', properties: { sessionID: 'ses_top', error: { name: 'APIError' } } }, ctx);
  assert.equal(err.body, 'Fix the build: plain(APIError)');
  assert.equal(describe({ type: 'session.error', properties: { sessionID: 'ses_top', error: { name: 'MessageAbortedError' } } }, ctx), null);
  const failed = describe({ type: 'relay.session.failed', properties: { sessionID: 'ses_top', message: 'Provider x failed.' } }, ctx);
  assert.equal(failed.tag, err.tag);
});

test('other events, or events without a session, make none; long text is clipped', () => {
  assert.equal(describe({ type: 'message.part.delta', properties: { sessionID: 'ses_top' } }, ctx), null);
  assert.equal(describe({ type: 'session.idle', properties: {} }, ctx), null);
  const long = describe({ type: 'question.asked', properties: { id: 'q', sessionID: 'ses_top', questions: [{ question: 'x'.repeat(500) }] } }, ctx);
  assert.equal(long.body.length, 180);
  assert.ok(long.body.endsWith('…'));
  assert.equal(sessionUrl('a b'), '/?session=a%20b');
});
