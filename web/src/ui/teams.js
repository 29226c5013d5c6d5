// @ts-check
// The team picker: which team a new session is made for (shown only to callers in a team).
import { h, clear } from '../dom.js';
import { api } from '../api.js';

/** @typedef {import('../types.js').TeamInfo} TeamInfo */
/** @typedef {import('./notices.js').Notify} Notify */

const NONE = ''; // "Just me": a session of no team

/** @param {TeamInfo} t */
function label(t) {
  return t.role ? `${t.name} (${t.role})` : t.name;
}

/** A <select> of the caller's teams above the session list; lives as long as the page. */
export class TeamPicker {
  /** @param {HTMLElement} root @param {{notify: Notify}} ctx */
  constructor(root, { notify }) {
    this.root = root;
    this.notify = notify;
    /** @type {TeamInfo[]} */
    this.teams = [];
    this.select = h('select', { class: 'project-select', testid: 'team-select', 'aria-label': 'Team of a new session' });
    this.role = h('div', { class: 'project-where muted', testid: 'team-role' });
    clear(root).append(h('label', { class: 'project-label', text: 'Team' }), this.select, this.role);
    root.hidden = true;
    this.select.addEventListener('change', () => this.describe());
  }

  async load() {
    try {
      this.teams = (await api.teams()).teams || [];
    } catch (err) {
      this.notify(`Could not load your teams: ${err.message}`);
      return;
    }
    this.root.hidden = this.teams.length === 0;
    // Viewers read a team's sessions but do not start them: their teams are listed, not picked.
    const starters = this.teams.filter((t) => t.role !== 'viewer');
    const before = this.select.value;
    clear(this.select).append(
      h('option', { value: NONE, text: 'Just me (no team)' }),
      ...this.teams.map((t) => h('option', {
        value: t.name, text: label(t), disabled: t.role === 'viewer',
        title: t.role === 'viewer' ? 'Viewers read this team\'s sessions but cannot start one' : '',
      })));
    // As the relay does: the one team the caller may start sessions in is the default.
    this.select.value = starters.some((t) => t.name === before) ? before
      : starters.length === 1 ? starters[0].name : NONE;
    this.describe();
  }

  /** The `team` of a new session's body: a name, null (no team), or undefined (no picker). */
  chosen() {
    if (this.root.hidden) return undefined;
    return this.select.value || null;
  }

  describe() {
    const team = this.teams.find((t) => t.name === this.select.value);
    this.role.textContent = team
      ? `You are ${team.role === 'admin' ? 'an' : 'a'} ${team.role} of ${team.name}${team.root ? ` · starts in ${team.root}` : ''}`
      : 'New sessions are yours alone';
  }
}
