-- 007_collected.sql - recovery leaves nothing behind (archive/recovery.c).
-- When the officer's client has written the recovered PKCS#12 and deleted
-- its one-time key, it says so; the request's re-wrapped shares are then
-- deleted and `collected` records when.  A collected request reads as
-- status 'collected' (the status column keeps 'fetched': its CHECK is
-- from schema 2) and its package answers 410.  Denied and expired
-- requests lose their shares too.  Shares left by earlier versions on
-- requests that can release nothing any more go now.

ALTER TABLE recovery_requests ADD COLUMN collected INTEGER;

DELETE FROM recovery_shares WHERE request_id IN
    (SELECT id FROM recovery_requests WHERE status IN ('denied', 'expired'));
