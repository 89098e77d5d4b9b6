-- OAuth2 tokens per account (issue 15). Tokens are sealed with the store's
-- AES-GCM key, bound to the account and the token kind.
CREATE TABLE oauth_tokens (
  account     TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,             -- which flow/client/user/scope the tokens were issued for
  refresh_enc TEXT,                      -- device flow: the refresh token from `postern oauth login`
  access_enc  TEXT,                      -- the current access token
  expires_at  TEXT,                      -- when access_enc expires (RFC 3339)
  refused     TEXT,                      -- why the refresh token was refused (invalid_grant); cleared by a new login
  updated_at  TEXT NOT NULL
);
