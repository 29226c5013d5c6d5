// @ts-check
// Signing in when the relay has RELAY_AUTH on, and who is signed in.
import { h } from '../dom.js';
import { api } from '../api.js';

let loginShown = false;

/** Covers the page with the sign-in form (once); a good token reloads the page. */
export function showLogin() {
  if (loginShown) return;
  loginShown = true;
  const input = h('input', { type: 'password', class: 'search', testid: 'login-token', placeholder: 'Access token', autocomplete: 'current-password', 'aria-label': 'Access token' });
  const error = h('div', { class: 'login-error', testid: 'login-error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'login-submit', text: 'Sign in' });
  const form = h('form', { class: 'login-card' },
    h('div', { class: 'welcome-title', text: 'opencode relay' }),
    h('p', { class: 'muted', text: 'This relay needs an access token (opencode-relay token create).' }),
    input, error, button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    button.disabled = true;
    try {
      await api.login(input.value.trim());
      location.reload(); // every stream and request starts again with the login cookie
    } catch (err) {
      error.hidden = false;
      error.textContent = err.status === 401 ? 'That token is not valid.' : err.message;
      button.disabled = false;
    }
  });
  document.body.append(h('div', { class: 'login', testid: 'login' }, form));
  input.focus();
  offerSso(form);
}

/** Adds "Sign in with SSO" under the token form when the relay offers single sign-on: a plain
 * link to /sso/login, which takes the browser to the identity provider and back.
 * @param {HTMLElement} form */
async function offerSso(form) {
  let options;
  try { options = await api.loginOptions(); } catch { return; } // older relays: tokens only
  if (!options || !options.sso) return;
  form.append(
    h('div', { class: 'login-or muted small', text: 'or' }),
    h('a', { class: 'btn login-sso', href: '/sso/login', testid: 'login-sso', text: 'Sign in with SSO' }));
}

/**
 * Names the signed-in principal after `anchor`, with a "Sign out" link; returns its id (null when
 * auth is off or unknown).
 * @param {HTMLElement} anchor @returns {Promise<string | null>}
 */
export async function showPrincipal(anchor) {
  let me;
  try { me = await api.me(); } catch { return null; } // older relays have no /api/me
  if (!me || !me.auth || !me.principal) return null;
  const out = h('button', { type: 'button', class: 'link-button', testid: 'logout', text: 'Sign out' });
  out.addEventListener('click', async () => {
    try { await api.logout(); } catch { /* the cookie goes either way */ }
    location.reload();
  });
  anchor.after(h('div', { class: 'principal' },
    h('span', { class: 'muted small', testid: 'principal', text: me.principal.name || me.principal.id }), out));
  return me.principal.id || null;
}
