// @ts-check
// The shapes the UI reads: events from the relay's streams and the objects its REST API returns
// (docs/api.md). Only the fields the UI uses are named; opencode sends more, and they pass
// through untouched.

/**
 * One event of an SSE stream: opencode's `{type, properties}`, or a relay notice (`relay.*`).
 * @typedef {{type: string, properties?: Record<string, any>}} RelayEvent
 */

/**
 * A session as opencode describes it (`session.updated`, `GET /api/sessions/{id}`).
 * @typedef {{
 *   id: string, title?: string, directory?: string, parentID?: string,
 *   time?: {created?: number, updated?: number}, [key: string]: any,
 * }} SessionInfo
 */

/**
 * One hit of `GET /api/search`: plain-text `snippet`, `ranges` of the matches in it ([start, end)
 * in code points); `messageID` null when the title matched.
 * @typedef {{
 *   sessionID: string, title: string, messageID: string | null, partID: string | null,
 *   snippet: string, ranges: number[][], time: number,
 * }} SearchResult
 */

/**
 * A folder a session can live in (`GET /api/projects`): `allowed` when a new session may start
 * there (it lies under a workspace root).
 * @typedef {{
 *   directory: string, name: string, root: boolean, id: string | null, vcs: string | null,
 *   sessions: number, allowed: boolean, sources: string[], teams?: string[],
 * }} ProjectInfo
 */

/**
 * One of the caller's teams (`GET /api/teams`) and its role there.
 * @typedef {{
 *   id: string, name: string, role: 'viewer' | 'member' | 'admin' | null,
 *   group: string | null, groupRole: string | null, upstream: string | null, root: string | null,
 * }} TeamInfo
 */

/**
 * What the caller may do with a session (`GET /api/sessions/{sid}`'s `access`): `read` (a
 * team's viewer), `drive` (a member: prompts too), `manage` (its creator, a team admin).
 * @typedef {{team: string | null, role: string | null, right: 'read' | 'drive' | 'manage'}} SessionAccess
 */

/**
 * What a session is doing (`session.status`, `GET …/status`).
 * @typedef {{type: string, attempt?: number, message?: string}} SessionStatus
 */

/**
 * A message's header; its content comes as parts. `stub` marks a placeholder the store made
 * for parts that arrived before their message.
 * @typedef {{
 *   id: string, sessionID: string, role: string, time?: {created?: number, completed?: number},
 *   agent?: string, mode?: string, modelID?: string, error?: MessageError, stub?: boolean,
 *   [key: string]: any,
 * }} MessageInfo
 */

/** @typedef {{name?: string, message?: string, data?: {message?: string}}} MessageError */

/**
 * One part of a message: text, reasoning, tool call, file, patch, step marker…
 * @typedef {{
 *   id: string, messageID: string, sessionID: string, type: string, text?: string,
 *   tool?: string, state?: ToolState, time?: {start?: number, end?: number}, [key: string]: any,
 * }} Part
 */

/**
 * A tool call's progress: pending, running, completed or error.
 * @typedef {{
 *   status?: string, input?: Record<string, any>, metadata?: Record<string, any>,
 *   output?: any, error?: string, title?: string,
 * }} ToolState
 */

/** @typedef {{info: MessageInfo, parts: Part[]}} StoredMessage  a message as `GET …/messages` returns it */

/** @typedef {{info: MessageInfo, parts: Map<string, Part>, partOrder: string[]}} MessageEntry  a message in the store */

/** @typedef {{content: string, status: string, priority?: string, id?: string}} Todo */

/**
 * A changed file of the session (`session.diff`, `GET …/diff`).
 * @typedef {{
 *   file: string, before?: string, after?: string, patch?: string,
 *   additions?: number, deletions?: number,
 * }} FileDiff
 */

/**
 * A file changed on disk (`GET …/changes`); `GET …/changes/diff` adds its `patch`.
 * @typedef {{
 *   path: string, status: 'added' | 'modified' | 'deleted', additions: number, deletions: number,
 *   patch?: string,
 * }} ChangedFile
 */

/**
 * `GET …/changes`: `git` is the working tree against HEAD; `tools` (not a git repository) the
 * files the session's tool calls wrote or edited.
 * @typedef {{source: 'git' | 'tools', branch: string | null, files: ChangedFile[]}} Changes
 */

/**
 * The agent asks to use a tool (`permission.asked`).
 * @typedef {{
 *   id: string, sessionID: string, permission?: string, patterns?: string[],
 *   always?: string[], metadata?: Record<string, any>,
 * }} PermissionRequest
 */

/**
 * The agent asks the user something (`question.asked`, `question.v2.asked`).
 * @typedef {{id: string, sessionID: string, questions?: Question[]}} QuestionRequest
 */

/**
 * @typedef {{
 *   question: string, header?: string, multiple?: boolean,
 *   options?: {label: string, description?: string}[],
 * }} Question
 */

/**
 * What changed in a SessionStore; views subscribe and redraw only what a change touches.
 * @typedef {(
 *   {type: 'message', id: string, isNew: boolean} |
 *   {type: 'message-removed', id: string} |
 *   {type: 'part', messageID: string, id: string, isNew: boolean} |
 *   {type: 'delta', messageID: string, id: string, field: string} |
 *   {type: 'part-removed', messageID: string, id: string} |
 *   {type: 'status' | 'todos' | 'diff' | 'session' | 'deleted' | 'requests' | 'files'}
 * )} StoreChange
 */

/**
 * `GET /api/sessions/{id}`'s `usage`: the session's tokens and cost, and its context window.
 * @typedef {{
 *   tokens: {input: number, output: number, reasoning: number, cache: {read: number, write: number}},
 *   cost: number, messages: number, model: {providerID: string, modelID: string} | null,
 *   context: {used: number | null, limit: number | null, percent: number | null},
 * }} Usage
 */

/** @typedef {{name: string, description?: string, mode?: string, hidden?: boolean}} AgentInfo */

/**
 * `GET /api/providers`: the providers with their models, and each provider's default model.
 * @typedef {{
 *   providers?: {id: string, name?: string, models?: Record<string, {id: string, name?: string}>}[],
 *   default?: Record<string, string>,
 * }} ProviderList
 */

/** @typedef {'connecting' | 'open' | 'reconnecting' | 'closed'} ConnectionState  as the connection dot shows it */

export {};
