// A real OpenID provider for the tests: panva's oidc-provider (pinned in the root package.json),
// on a loopback port, with its own login and consent forms (devInteractions: any password).
//
//   node tests/support/oidc_provider.mjs '<json options>'
//
// Options: {clients: [{client_id, client_secret, redirect_uris}], users: {login: {name, email,
// groups}}, usersFile, idTokenSeconds, clockOffsetSeconds, host}. Prints one line,
// `listening <issuer>`, once it answers. `clockOffsetSeconds` runs the provider's clock that far
// from the machine's (a provider whose clock is behind issues ID tokens that are expired on
// arrival). `usersFile` (a JSON file of `users`) is read afresh for every account the provider
// looks up: a test changes a person's groups there, as an administrator would at the provider.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const options = JSON.parse(process.argv[2] || '{}');

if (options.clockOffsetSeconds) {
  const realNow = Date.now.bind(Date);
  const offset = options.clockOffsetSeconds * 1000;
  Date.now = () => realNow() + offset;
}

// Imported after the clock is set: the provider reads Date.now() for every time it writes.
const { default: Provider } = await import('oidc-provider');

const users = () => (options.usersFile
  ? JSON.parse(readFileSync(options.usersFile, 'utf8')) : options.users || {});
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, options.host || '127.0.0.1', resolve));
const issuer = `http://${options.host || '127.0.0.1'}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (options.clients || []).map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: client.client_secret ? 'client_secret_basic' : 'none',
    ...client,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Scopes name the claims they release; `groups` is a scope of its own, as at most providers.
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: {
    IdToken: options.idTokenSeconds || 3600,
    AccessToken: 3600,
    AuthorizationCode: 60,
    Interaction: 3600,
    Session: 3600,
    Grant: 3600,
  },
  async findAccount(_ctx, id) {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: user.name, email: user.email, email_verified: true, groups: user.groups || [] };
      },
    };
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

server.on('request', provider.callback());
console.log(`listening ${issuer}`);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
