// What the agent is doing, in a few words, derived from the open session's state.
const TOOL_VERBS = {
  bash: 'Running bash', read: 'Reading', edit: 'Editing', write: 'Writing', glob: 'Searching files',
  grep: 'Searching', list: 'Listing files', webfetch: 'Fetching', task: 'Running a sub-agent',
  todowrite: 'Updating todos', todoread: 'Reading todos',
};

export function progressText(store) {
  const status = store.status || { type: 'idle' };
  if (status.type === 'retry') {
    return `Retrying${status.attempt ? ` (attempt ${status.attempt})` : ''}${status.message ? `: ${status.message}` : '…'}`;
  }
  if (status.type !== 'busy') return null;
  if (store.permissions.size) return 'Waiting for your permission…';
  if (store.questions.size) return 'Waiting for your answer…';
  const entry = store.lastAssistant();
  if (!entry) return 'Thinking…';
  for (let i = entry.partOrder.length - 1; i >= 0; i--) {
    const part = entry.parts.get(entry.partOrder[i]);
    if (part.type === 'tool') {
      const st = part.state || {};
      const verb = TOOL_VERBS[part.tool] || `Running ${part.tool}`;
      if (st.status === 'running') return st.title ? `${verb}: ${st.title}` : `${verb}…`;
      if (st.status === 'pending') return `${verb}…`;
      return 'Thinking…';
    }
    if (part.type === 'reasoning') return 'Thinking…';
    if (part.type === 'text') return (part.time && part.time.end) ? 'Thinking…' : 'Writing…';
  }
  return 'Thinking…';
}

export const CONNECTION_LABEL = {
  connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Offline',
};
