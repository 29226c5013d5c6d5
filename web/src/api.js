// @ts-check
// The relay's REST API (docs/api.md). Every failure becomes an ApiError with plain words.

export class ApiError extends Error {
  /** @param {string} message @param {{status?: number, code?: string, data?: any}} [details] */
  constructor(message, { status = 0, code = 'network', data = null } = {}) {
    super(message);
    this.data = data;
    this.status = status;
    this.code = code;
  }
}

// Called when the relay answers 401 (RELAY_AUTH on, no or stale login).
let unauthorized = () => {};
/** @param {() => void} fn */
export function onUnauthorized(fn) { unauthorized = fn; }

// Told whether the relay answered: false when the network failed or only a gateway in front of
// the relay answered (a 502/503/504 without the relay's own error body), true otherwise.
let reach = (/** @type {boolean} */ _reached) => {};
/** @param {(reached: boolean) => void} fn */
export function onReach(fn) { reach = fn; }

/** A gateway's answer in place of the relay's (the relay's own errors carry {"error": …}). @param {Response} res @param {any} data */
function fromGateway(res, data) {
  return [502, 503, 504].includes(res.status) && !(data && data.error);
}

/**
 * One call of the relay's API; resolves to the parsed JSON answer (null if empty).
 * @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<any>}
 */
async function request(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    reach(false);
    throw new ApiError('Cannot reach the relay. Check that it is running and your network is up.');
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (fromGateway(res, data)) {
    reach(false);
    throw new ApiError(`Cannot reach the relay (the gateway answered ${res.status}).`, { status: res.status, code: 'unreachable' });
  }
  reach(true);
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/login') unauthorized();
    const err = data && data.error;
    const message = (typeof err === 'string' ? err : err && err.message)
      || `The relay answered ${res.status} ${res.statusText}`.trim();
    throw new ApiError(message, { status: res.status, code: (err && err.code) || 'http', data });
  }
  return data;
}

const enc = encodeURIComponent;

/** @typedef {{type: 'file', mime: string, filename: string, url: string}} FilePart  opencode's file part: a data: URL, or file:// in the session's directory */
/** @typedef {{type: 'text', text: string} | FilePart} PromptPart */
/** @typedef {{text?: string, parts?: PromptPart[], agent?: string, model?: string}} PromptBody  text or parts; model is "provider/model" */
/** @typedef {{command: string, arguments: string, agent?: string, model?: string, parts?: FilePart[]}} CommandBody */

export const api = {
  listSessions: ({ limit = 200, search = '' } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (search) q.set('search', search);
    return request('GET', `/api/sessions?${q}`);
  },
  /** Search across sessions (`GET /api/search`). @param {{q: string, limit?: number, after?: string | null}} args */
  search: ({ q, limit = 20, after = null }) => {
    const query = new URLSearchParams({ q, limit: String(limit) });
    if (after) query.set('after', after);
    return request('GET', `/api/search?${query}`);
  },
  createSession: (/** @type {{directory?: string, title?: string, team?: string | null}} */ body = {}) => request('POST', '/api/sessions', body),
  teams: () => request('GET', '/api/teams'),
  projects: () => request('GET', '/api/projects'),
  getSession: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}`),
  renameSession: (/** @type {string} */ id, /** @type {string} */ title) => request('PATCH', `/api/sessions/${enc(id)}`, { title }),
  deleteSession: (/** @type {string} */ id) => request('DELETE', `/api/sessions/${enc(id)}`),
  messages: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/messages`),
  prompt: (/** @type {string} */ id, /** @type {PromptBody} */ body) => request('POST', `/api/sessions/${enc(id)}/prompt`, body),
  command: (/** @type {string} */ id, /** @type {CommandBody} */ body) => request('POST', `/api/sessions/${enc(id)}/command`, body),
  commands: (/** @type {string | undefined} */ session) => request('GET', session ? `/api/commands?session=${enc(session)}` : '/api/commands'),
  files: (/** @type {string} */ id, /** @type {string} */ query) => request('GET', `/api/sessions/${enc(id)}/files?query=${enc(query)}&limit=30`),
  tree: (/** @type {string} */ id, /** @type {string} */ path) => request('GET', `/api/sessions/${enc(id)}/tree?path=${enc(path)}`),
  file: (/** @type {string} */ id, /** @type {string} */ path) => request('GET', `/api/sessions/${enc(id)}/file?path=${enc(path)}`),
  abort: (/** @type {string} */ id) => request('POST', `/api/sessions/${enc(id)}/abort`),
  status: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/status`),
  diff: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/diff`),
  changes: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/changes`),
  changeDiff: (/** @type {string} */ id, /** @type {string} */ path) =>
    request('GET', `/api/sessions/${enc(id)}/changes/diff?path=${enc(path)}`),
  todos: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/todos`),
  requests: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/requests`),
  revert: (/** @type {string} */ id, /** @type {string} */ messageID) => request('POST', `/api/sessions/${enc(id)}/revert`, { messageID }),
  unrevert: (/** @type {string} */ id) => request('POST', `/api/sessions/${enc(id)}/unrevert`),
  fork: (/** @type {string} */ id, /** @type {string | null} */ messageID) =>
    request('POST', `/api/sessions/${enc(id)}/fork`, messageID ? { messageID } : {}),
  summarize: (/** @type {string} */ id) => request('POST', `/api/sessions/${enc(id)}/summarize`, {}),
  replyPermission: (/** @type {string} */ id, /** @type {string} */ requestID, /** @type {string} */ reply) =>
    request('POST', `/api/sessions/${enc(id)}/permissions/${enc(requestID)}`, { reply }),
  answerQuestion: (/** @type {string} */ id, /** @type {string} */ requestID, /** @type {string[][]} */ answers) =>
    request('POST', `/api/sessions/${enc(id)}/questions/${enc(requestID)}`, { answers }),
  rejectQuestion: (/** @type {string} */ id, /** @type {string} */ requestID) =>
    request('POST', `/api/sessions/${enc(id)}/questions/${enc(requestID)}/reject`),
  openTerminal: (/** @type {string} */ id) => request('POST', `/api/sessions/${enc(id)}/terminal`),
  resizeTerminal: (/** @type {string} */ pty, /** @type {{rows: number, cols: number}} */ size) =>
    request('PUT', `/api/terminals/${enc(pty)}/size`, size),
  endTerminal: (/** @type {string} */ pty) => request('DELETE', `/api/terminals/${enc(pty)}`),
  share: (/** @type {string} */ id, /** @type {number | null} */ expiresIn) =>
    request('POST', `/api/sessions/${enc(id)}/share`, expiresIn ? { expiresIn } : {}),
  shares: (/** @type {string} */ id) => request('GET', `/api/sessions/${enc(id)}/shares`),
  revokeShare: (/** @type {string} */ id, /** @type {string} */ shareId) =>
    request('DELETE', `/api/sessions/${enc(id)}/shares/${enc(shareId)}`),
  health: () => request('GET', '/api/health'),
  me: () => request('GET', '/api/me'),
  loginOptions: () => request('GET', '/api/login'),
  login: (/** @type {string} */ token) => request('POST', '/api/login', { token }),
  logout: () => request('POST', '/api/logout'),
  agents: () => request('GET', '/api/agents'),
  providers: () => request('GET', '/api/providers'),
  providerSetup: () => request('GET', '/api/providers/setup'),
  pushKey: () => request('GET', '/api/push/key'),
  addPushSubscription: (/** @type {PushSubscriptionJSON} */ subscription) => request('POST', '/api/push/subscriptions', subscription),
  removePushSubscription: (/** @type {string} */ endpoint) => request('DELETE', '/api/push/subscriptions', { endpoint }),
  setProviderKey: (/** @type {string} */ provider, /** @type {string} */ key) =>
    request('PUT', `/api/providers/${enc(provider)}/auth`, { key }),
};
