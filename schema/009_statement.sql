-- 009_statement.sql - a recovery request is a statement its officer signs
-- (archive/statement.c): the request id, the key owner, each record's
-- serial and key, the one-time key and the expiry, in one text form, with
-- the officer's detached CMS signature.  Agents' clients release nothing
-- without it; the server takes it once, from the requester, signed with
-- the requester's credential key.

ALTER TABLE recovery_requests ADD COLUMN statement TEXT;
ALTER TABLE recovery_requests ADD COLUMN statement_cms BLOB;
