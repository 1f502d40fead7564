-- 005_names.sql - one word per idea in the database (docs/GLOSSARY.md):
-- a time column is named for its event as a past participle, an actor
-- column is <participle>_by.  Renaming keeps every value, so the audit
-- chain, whose hashes cover values and not column names, still verifies.
-- A withdrawn one-time token is recorded as withdrawn, not as expired.

ALTER TABLE audit RENAME COLUMN ts TO created;
ALTER TABLE certificates RENAME COLUMN issued_at TO issued;
ALTER TABLE certificates RENAME COLUMN revoked_at TO revoked;
ALTER TABLE crl_state RENAME COLUMN issued_at TO issued;
ALTER TABLE crl_publications RENAME COLUMN published_at TO published;
ALTER TABLE crl_publications RENAME COLUMN attempted_at TO attempted;
ALTER TABLE enroll_tokens RENAME COLUMN creator TO created_by;
ALTER TABLE recovery_requests RENAME COLUMN requester_email TO requested_by;
ALTER TABLE recovery_approvals RENAME COLUMN agent_email TO approved_by;

ALTER TABLE enroll_tokens ADD COLUMN withdrawn INTEGER;  -- time withdrawn; NULL: not
ALTER TABLE enroll_tokens ADD COLUMN withdrawn_by TEXT;
