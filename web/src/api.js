// The relay's REST API (docs/api.md). Every failure becomes an ApiError with plain words.

export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network', data = null } = {}) {
    super(message);
    this.data = data;
    this.status = status;
    this.code = code;
  }
}

// Called when the relay answers 401 (RELAY_AUTH on, no or stale login).
let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError('Cannot reach the relay. Check that it is running and your network is up.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
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

export const api = {
  listSessions: ({ limit = 200, search = '' } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (search) q.set('search', search);
    return request('GET', `/api/sessions?${q}`);
  },
  createSession: (body = {}) => request('POST', '/api/sessions', body),
  getSession: (id) => request('GET', `/api/sessions/${enc(id)}`),
  renameSession: (id, title) => request('PATCH', `/api/sessions/${enc(id)}`, { title }),
  deleteSession: (id) => request('DELETE', `/api/sessions/${enc(id)}`),
  messages: (id) => request('GET', `/api/sessions/${enc(id)}/messages`),
  prompt: (id, body) => request('POST', `/api/sessions/${enc(id)}/prompt`, body),
  abort: (id) => request('POST', `/api/sessions/${enc(id)}/abort`),
  status: (id) => request('GET', `/api/sessions/${enc(id)}/status`),
  diff: (id) => request('GET', `/api/sessions/${enc(id)}/diff`),
  todos: (id) => request('GET', `/api/sessions/${enc(id)}/todos`),
  requests: (id) => request('GET', `/api/sessions/${enc(id)}/requests`),
  replyPermission: (id, requestID, reply) =>
    request('POST', `/api/sessions/${enc(id)}/permissions/${enc(requestID)}`, { reply }),
  answerQuestion: (id, requestID, answers) =>
    request('POST', `/api/sessions/${enc(id)}/questions/${enc(requestID)}`, { answers }),
  rejectQuestion: (id, requestID) =>
    request('POST', `/api/sessions/${enc(id)}/questions/${enc(requestID)}/reject`),
  health: () => request('GET', '/api/health'),
  me: () => request('GET', '/api/me'),
  login: (token) => request('POST', '/api/login', { token }),
  logout: () => request('POST', '/api/logout'),
  agents: () => request('GET', '/api/agents'),
  providers: () => request('GET', '/api/providers'),
};
