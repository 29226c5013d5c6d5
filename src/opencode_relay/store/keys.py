"""The one place that builds Redis key names.

The plan's layout, made safe for Redis Cluster: every key of one session carries the session id
as its hash tag (``{ses_…}``), so a session's keys share a slot and one event's writes can be one
transaction. A configurable prefix lets several relays (or tests) share a Redis.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "ocr:"

    # Global keys.
    @property
    def session_list(self) -> str:
        return f"{self.prefix}sessions:list"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    # The global log's companions share its slot (the tag is the log's own name, which has no
    # braces and so hashes whole): the publish script writes all three (store/log.py).
    @property
    def published(self) -> str:
        """HASH: session id -> the newest entry of its log that is in the global log."""
        return f"{self.prefix}log:{{{self.events}}}:published"

    def unpublished(self, owner: str) -> str:
        """SET: sessions `owner` (an ingester) appended to, whose entries may not all be in
        the global log yet; repaired by the next owner (store/log.py, `EventLog.repair`)."""
        return f"{self.prefix}log:{{{self.events}}}:unpublished:{owner}"

    @property
    def pruned(self) -> str:
        """ZSET: sessions pruned from Redis (not from opencode), scored by their last change."""
        return f"{self.prefix}sessions:pruned"

    @property
    def message_index(self) -> str:
        return f"{self.prefix}message-session"

    def message_claim(self, mid: str) -> str:
        """STRING, expiring: the session a new message's id was first sent for, until that
        message is ingested into `message_index` (store/state.py, `claim_message_id`)."""
        return f"{self.prefix}message-claim:{mid}"

    def ingest_leader(self, upstream: str) -> str:
        return f"{self.prefix}ingest:leader:{upstream}"

    def ingest_replicated(self, upstream: str) -> str:
        """When the ingestor's last batch was confirmed on replicas (store/replication.py)."""
        return f"{self.prefix}ingest:replicated:{upstream}"

    @property
    def retention_lock(self) -> str:
        return f"{self.prefix}retention:lock"

    @property
    def audit(self) -> str:
        """STREAM: the audit log, one entry per state-changing action (audit.py)."""
        return f"{self.prefix}audit"

    def audit_anonymous(self, minute: int) -> str:
        """STRING (INCR, expires): entries without a principal (refused logins) this minute."""
        return f"{self.prefix}audit:anonymous:{minute}"

    # Security: API tokens (stored as hashes only), login sessions, rate-limit counters.
    @property
    def auth_tokens(self) -> str:
        return f"{self.prefix}auth:tokens"

    @property
    def auth_token_hashes(self) -> str:
        return f"{self.prefix}auth:token-hashes"

    def auth_login(self, digest: str) -> str:
        return f"{self.prefix}auth:login:{digest}"

    def sso_state(self, digest: str) -> str:
        """STRING (expires, read with GETDEL): a single sign-on in progress, under the SHA-256
        of its `state`: the nonce, PKCE verifier, redirect URI and the browser's binding."""
        return f"{self.prefix}auth:sso-state:{digest}"

    def rate_prompts(self, principal_id: str) -> str:
        return f"{self.prefix}ratelimit:prompts:{principal_id}"

    def rate_streams(self, principal_id: str) -> str:
        return f"{self.prefix}ratelimit:streams:{principal_id}"

    # Teams (teams.py): each team's record, its members, and each principal's teams.
    @property
    def teams(self) -> str:
        """HASH: team name -> its record (group, group role, upstream, root, created)."""
        return f"{self.prefix}teams"

    def team_members(self, team: str) -> str:
        """HASH: principal id -> its role in the team (viewer, member, admin)."""
        return f"{self.prefix}team:{team}:members"

    def principal_teams(self, principal_id: str) -> str:
        """HASH: team name -> the principal's role there (team_members read the other way)."""
        return f"{self.prefix}teams:of:{principal_id}"

    # Identity-provider groups (groups.py): who held each group at their last sign-in.
    def group_holders(self, group: str) -> str:
        """ZSET: principal id -> until when (Unix seconds) it holds `group`: the end of the
        login made by the sign-in that named the group (the name is kept as the provider
        sent it; a brace in it only picks this one key's slot)."""
        return f"{self.prefix}group:{group}:holders"

    def principal_groups(self, principal_id: str) -> str:
        """SET: the groups the principal's last sign-in named (at least every group whose
        `group_holders` holds it); expires with the last login that recorded any of them."""
        return f"{self.prefix}groups:of:{{{principal_id}}}"

    def principal_groups_login(self, principal_id: str) -> str:
        """STRING: the digest of the login cookie whose sign-in recorded `principal_groups`
        (the same slot); expires with that login."""
        return f"{self.prefix}groups:of:{{{principal_id}}}:login"

    # Terminals: who owns each PTY (opencode's id), and each principal's PTY of a session.
    def terminal(self, pty_id: str) -> str:
        return f"{self.prefix}terminal:{pty_id}"

    # Web Push: the VAPID key pair, each principal's subscriptions, and send claims.
    @property
    def push_vapid(self) -> str:
        """STRING: the VAPID private key (base64url, raw 32 bytes); never leaves Redis."""
        return f"{self.prefix}push:vapid"

    def push_subscriptions(self, principal_id: str) -> str:
        """HASH: subscription id -> the browser's PushSubscription (endpoint, keys, added)."""
        return f"{self.prefix}push:subs:{principal_id}"

    @property
    def push_endpoints(self) -> str:
        """HASH: subscription id -> the principal it is stored under (one owner per browser)."""
        return f"{self.prefix}push:endpoints"

    def push_sent(self, claim: str) -> str:
        """STRING (SET NX, with a TTL): this notification was claimed by one replica."""
        return f"{self.prefix}push:sent:{claim}"

    # Search (search/): which sessions may hold a term (hints, checked against each session's
    # own postings), and every term seen (prefix lookups). All under one hash tag of their own,
    # `{search}`, outside the sessions' slots: one script writes a batch's hints, and a query
    # may combine terms.
    def search_term(self, term: str) -> str:
        """ZSET (all scores 0, read by lex order): sessions that may hold `term`."""
        return f"{self.prefix}search:{{search}}:term:{term}"

    @property
    def search_vocabulary(self) -> str:
        """ZSET (all scores 0): every term ever indexed, for prefix expansion."""
        return f"{self.prefix}search:{{search}}:vocabulary"

    # Keys of one session (all tagged with its id).
    def session(self, sid: str) -> str:
        return f"{self.prefix}sessions:{{{sid}}}"

    def session_messages(self, sid: str) -> str:
        return f"{self.prefix}sessions:{{{sid}}}:messages"

    def message(self, sid: str, mid: str) -> str:
        return f"{self.prefix}messages:{{{sid}}}:{mid}"

    def message_parts(self, sid: str, mid: str) -> str:
        return f"{self.prefix}messages:{{{sid}}}:{mid}:parts"

    def part(self, sid: str, pid: str) -> str:
        return f"{self.prefix}parts:{{{sid}}}:{pid}"

    def status(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:status"

    def diff(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:diff"

    def todos(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:todo"

    def requests(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:requests"

    def children(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:children"

    def session_upstream(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:upstream"

    def session_events(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:events"

    def session_owner(self, sid: str) -> str:
        return f"{self.prefix}session:{{{sid}}}:owner"

    def session_team(self, sid: str) -> str:
        """STRING: the team a session was created for (sub-agent sessions inherit it)."""
        return f"{self.prefix}session:{{{sid}}}:team"

    def session_terminal(self, sid: str, principal_id: str) -> str:
        """STRING: the PTY this principal opened for the session, for reattaching (expires)."""
        return f"{self.prefix}session:{{{sid}}}:terminal:{principal_id}"

    def shares(self, sid: str) -> str:
        """HASH: share id -> the share link's record (who made it, when, until when)."""
        return f"{self.prefix}session:{{{sid}}}:shares"

    def share_digests(self, sid: str) -> str:
        """HASH: SHA-256 of a share link's token -> its share id (the token is never stored)."""
        return f"{self.prefix}session:{{{sid}}}:share-digests"

    def usage(self, sid: str) -> str:
        """HASH: token and cost totals of the session's assistant messages, kept at ingest."""
        return f"{self.prefix}session:{{{sid}}}:usage"

    def session_sequence(self, sid: str) -> str:
        """HASH: how far opencode's durable history of the session is committed here:
        `seq` -> the last sequence number, `ahead` -> the last durable event's id, committed
        maybe before its sequence number was (ingest/durable.py)."""
        return f"{self.prefix}session:{{{sid}}}:sequence"

    def search_postings(self, sid: str) -> str:
        """HASH: part id (or 'title') -> its message id, time and terms (search/index.py)."""
        return f"{self.prefix}search:{{{sid}}}:postings"

    def fixed_session_keys(self, sid: str) -> list[str]:
        """Every key of a session except the per-message and per-part ones."""
        return [self.session(sid), self.session_messages(sid), self.status(sid), self.diff(sid),
                self.todos(sid), self.requests(sid), self.children(sid), self.session_events(sid),
                self.session_owner(sid), self.session_team(sid), self.session_upstream(sid),
                self.usage(sid), self.shares(sid), self.share_digests(sid),
                self.search_postings(sid), self.session_sequence(sid)]
