#!/bin/bash
# 30_recovery.sh - M-of-N key recovery through real clients.  Alice's
# encryption keys (an old and a new one) are escrowed with 4 agents and
# threshold 2; a message is encrypted to each with openssl cms; her
# PKCS#12 is destroyed; a recovery officer asks for her keys over HTTPS and
# two agents approve with `lockbox recovery approve`.  One approval
# releases nothing; after the second the officer's `lockbox recovery
# fetch` writes a PKCS#12 with which openssl cms decrypts both messages,
# and a legacy one that gpgsm imports and decrypts with.  Also: the rules
# (the owner cannot request or approve, the requester cannot approve, an
# agent approves once, a denied or expired request releases nothing), a
# tampered record detected and named at fetch with nothing written, bad
# bodies refused, and an audit row for every step, successes and refusals,
# in a chain that verifies.  The daemon (and the client commands) run from
# the ASan build when there is one.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve
CLIENT=$SERVE

# lb ARGS: the client under test; its output is also kept for the
# sanitizer check at the end
lb() { "$CLIENT" "$@" 2>&1 | tee -a "$T/client.log"; return "${PIPESTATUS[0]}"; }
sql() { sqlite3 "$DIR/lockbox.db" "$1"; }
audit_count() { sql "SELECT count(*) FROM audit WHERE action = '$1' AND object = '$2'"; }

# --- set-up: CA, 4 agents (one is alice herself), officers, policy 2 of 4 ---
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Recovery Test CA"
for i in 1 2 3; do
    check "agent $i added (its own RSA-3072 key)" add_agent "$DIR" "$T/agent$i.p12" "Agent $i" "agent$i@example.org"
done
check "alice is also a recovery agent" add_agent "$DIR" "$T/agent-alice.p12" "Alice as agent" alice@example.org
check "a recovery officer" add_recovery_officer "$DIR" "$T/officer.p12" Officer officer@example.org
check "alice is also a recovery officer" add_recovery_officer "$DIR" "$T/officer-alice.p12" "Alice as officer" alice@example.org
# one person, one place in the policy: alice's officer credential stays out
POLICY_OPTS="--officers officer@example.org"
check "escrow policy: 2 of the 4 agents, signed by every member" policy_in_force "$DIR" 2 "$T/agent1.p12" "$T/agent2.p12" "$T/agent3.p12" "$T/agent-alice.p12" "$T/officer.p12"
unset POLICY_OPTS

# --- alice's old and new encryption keys, and mail to each -----------------
OLD=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --key-type rsa-2048 --out-p12 "$T/alice-old.p12" --p12-pass-file $PW | tail -n1)
NEW=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW | tail -n1)
check "alice's two encryption certificates issued with escrow" test -n "$OLD" -a -n "$NEW" -a "$(sql "SELECT count(*) FROM escrow_records WHERE email = 'alice@example.org'")" = 2
for k in alice-old alice; do
    openssl pkcs12 -in "$T/$k.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/$k.pem" 2>/dev/null
done
echo "old plans: meet at the old mill" >"$T/old.txt"
echo "new plans: the treasure is under the oak" >"$T/new.txt"
check "openssl cms encrypts a message to the old key (AES-256)" openssl cms -encrypt -aes256 -binary -outform DER -in "$T/old.txt" -out "$T/old.p7m" "$T/alice-old.pem"
check "openssl cms encrypts a message to the new key (AES-256)" openssl cms -encrypt -aes256 -binary -outform DER -in "$T/new.txt" -out "$T/new.p7m" "$T/alice.pem"
rm -f "$T/alice-old.p12" "$T/alice.p12"
check "alice's keys are destroyed" test ! -e "$T/alice.p12" -a ! -e "$T/alice-old.p12"

serve_both "$DIR" "daemon listening (request_ttl 7d)"
C=(--server "$HTTPS" --ca-cert "$DIR/ca.pem")
O=("${C[@]}" --cred "$T/officer.p12" --cred-pass-file $PW)
A1=("${C[@]}" --cred "$T/agent1.p12" --cred-pass-file $PW --home "$T/agent1.p12.home")
A2=("${C[@]}" --cred "$T/agent2.p12" --cred-pass-file $PW --home "$T/agent2.p12.home")
A3=("${C[@]}" --cred "$T/agent3.p12" --cred-pass-file $PW --home "$T/agent3.p12.home")
AA=("${C[@]}" --cred "$T/agent-alice.p12" --cred-pass-file $PW --home "$T/agent-alice.p12.home")
OA=("${C[@]}" --cred "$T/officer-alice.p12" --cred-pass-file $PW)
RD=(--dir "$T/rec")

# --- opening a request -------------------------------------------------------
expect_code "recovery --help" 0 lb recovery --help
check "  ... documents every subcommand" sh -c "grep -q 'recovery request' '$T/.out' && grep -q 'recovery fetch' '$T/.out'"
expect_code "approve --help exits 0" 0 lb recovery approve --help
expect_code "request without --reason is a usage error" 2 lb recovery request "${O[@]}" --email alice@example.org
expect_code "an http:// server is a usage error" 2 lb recovery pending --server "http://127.0.0.1:1" --ca-cert "$DIR/ca.pem" --cred "$T/agent1.p12" --cred-pass-file $PW
expect_code "a malformed request id is a usage error" 2 lb recovery approve not-an-id "${A1[@]}"
expect_code "the owner cannot request recovery of her own keys" 1 lb recovery request "${OA[@]}" --email alice@example.org --reason "mine" "${RD[@]}"
check "  ... and is told why" grep -q "may not request recovery of his own keys" "$T/.out"
expect_code "a request for someone without escrowed keys is refused" 1 lb recovery request "${O[@]}" --email nobody@example.org --reason "typo" "${RD[@]}"
check "  ... naming the address" grep -q "no escrowed key of nobody@example.org" "$T/.out"
expect_code "an agent cannot open a request" 1 lb recovery request "${A1[@]}" --email alice@example.org --reason "x" "${RD[@]}"
check "  ... it needs the recovery-officer role" grep -q "recovery-officer" "$T/.out"
expect_code "a client that does not trust the server's CA refuses it" 1 lb recovery pending --server "$HTTPS" --ca-cert "$T/alice.pem" --cred "$T/agent1.p12" --cred-pass-file $PW

# a passphrase file left beside a credential (by an older version, or
# planted) never overrides the one named
printf 'not the passphrase\n' >"$T/agent1.p12.pass"; chmod 600 "$T/agent1.p12.pass"
expect_code "--cred-pass-file wins over a FILE.p12.pass beside the credential" 0 lb recovery pending "${A1[@]}"
rm -f "$T/agent1.p12.pass"
expect_fail "a credential with no passphrase file and no terminal is refused" "no passphrase" sh -c "$LOCKBOX recovery pending ${C[*]} --cred '$T/agent1.p12' </dev/null"

lb recovery request "${O[@]}" --email alice@example.org --reason "laptop stolen, ticket 4711" "${RD[@]}" >"$T/req.out"
REQ=$(tail -n1 "$T/req.out")
check "request prints its id alone on the last line" sh -c "echo '$REQ' | grep -Eqx '[0-9a-f]{32}'"
check "the one-time key is kept 0600 beside its certificate" sh -c "[ \"\$(stat -c %a '$T/rec/$REQ.key')\" = 600 ] && openssl x509 -in '$T/rec/$REQ.pem' -noout -subject | grep -q 'lockbox recovery request'"
check "the one-time key is RSA-3072" sh -c "openssl pkey -in '$T/rec/$REQ.key' -noout -text | grep -q 'Private-Key: (3072 bit'"
openssl pkcs12 -in "$T/officer.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/officer.pem" 2>/dev/null
check "the one-time certificate is issued by the officer's credential" test "$(openssl x509 -in "$T/rec/$REQ.pem" -noout -issuer | sed 's/^issuer=//')" = "$(openssl x509 -in "$T/officer.pem" -noout -subject | sed 's/^subject=//')"
check "the request covers both of alice's keys" test "$(sql "SELECT count(*) FROM recovery_request_records WHERE request_id = '$REQ'")" = 2
check "it expires in 7 days" test "$(sql "SELECT expires - created FROM recovery_requests WHERE id = '$REQ'")" = 604800
check "recovery.request audited" test "$(audit_count recovery.request "$REQ")" = 1

# --- pending ---------------------------------------------------------------
expect_code "agent 1 lists pending requests" 0 lb recovery pending "${A1[@]}"
check "  ... with who, for whom, why" sh -c "grep -q '$REQ' '$T/.out' && grep -q 'officer@example.org' '$T/.out' && grep -q 'alice@example.org' '$T/.out' && grep -q 'ticket 4711' '$T/.out' && grep -q '0 of 2 approvals' '$T/.out'"
expect_code "alice (as agent) is not asked about her own keys" 0 lb recovery pending "${AA[@]}"
check "  ... the request is not listed for her" sh -c "! grep -q '$REQ' '$T/.out'"
expect_code "pending is for agents only" 1 lb recovery pending "${O[@]}"

# --- nothing is released before the threshold --------------------------------
expect_code "fetch with no approval is refused" 1 lb recovery fetch "$REQ" "${O[@]}" --out-p12 "$T/rec.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... saying 0 of 2 approvals" grep -q "0 of 2 approvals" "$T/.out"
check "  ... writing nothing" test ! -e "$T/rec.p12" -a ! -e "$T/rec.p12.pass"
expect_code "the requester (an officer) cannot approve" 1 lb recovery approve "$REQ" "${O[@]}" --yes
check "  ... it needs the recovery-agent role" grep -q "needs the role recovery-agent" "$T/.out"
expect_code "the key owner cannot approve, even as an agent" 1 lb recovery approve "$REQ" "${AA[@]}" --yes
check "  ... and is told why (by her own client, before it releases anything)" grep -q "you own the keys of this request" "$T/.out"
expect_code "agent 1 approves (--yes)" 0 lb recovery approve "$REQ" "${A1[@]}" --yes
check "  ... shown the officer's signed statement: who (by the policy's key), for whom; 1 of 2 approvals, still pending" sh -c "grep -q 'who asks:  Officer <officer@example.org> (recovery officer of escrow policy v1)' '$T/.out' && grep -q 'for whom:  alice@example.org (2 escrowed key(s))' '$T/.out' && grep -q 'why:       laptop stolen' '$T/.out' && grep -q '1 of 2 approvals, request pending' '$T/.out'"
expect_code "one approval alone: fetch is refused" 1 lb recovery fetch "$REQ" "${O[@]}" --out-p12 "$T/rec.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... saying 1 of 2 approvals" grep -q "1 of 2 approvals" "$T/.out"
check "  ... writing nothing" test ! -e "$T/rec.p12" -a ! -e "$T/rec.p12.pass"
expect_code "agent 1 cannot approve twice" 1 lb recovery approve "$REQ" "${A1[@]}" --yes
check "  ... its client releases to a one-time key once" grep -q "released shares to this request's one-time key before" "$T/.out"
expect_code "agent 1's pending list no longer shows it" 0 lb recovery pending "${A1[@]}"
check "  ... not listed" sh -c "! grep -q '$REQ' '$T/.out'"
check "shares stored so far: agent 1's, one per key" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ'")" = 2
check "no stored share is the agent's original" test "$(sql "SELECT count(*) FROM recovery_shares r JOIN escrow_shares e ON e.cms = r.cms")" = 0
expect_code "agent 2 approves (stdin not a terminal: no question)" 0 lb recovery approve "$REQ" "${A2[@]}" </dev/null
check "  ... the request is now approved" grep -q "2 of 2 approvals, request approved" "$T/.out"
expect_code "the officer follows the request with show" 0 lb recovery show "$REQ" "${O[@]}"
check "  ... approved, 2 of 2 approvals for each key" sh -c "grep -q '$REQ  approved' '$T/.out' && [ \$(grep -c ': 2 of 2 approvals' '$T/.out') = 2 ]"
expect_code "agent 3 is too late: already approved" 1 lb recovery approve "$REQ" "${A3[@]}" --yes
check "  ... told so" grep -q "already approved" "$T/.out"
check "recovery.approve audited twice, the server's refusals too" sh -c "[ $(audit_count recovery.approve "$REQ") = 2 ] && [ $(audit_count recovery.approve_refused "$REQ") -ge 2 ]"

# --- fetch and decrypt with openssl -------------------------------------------
expect_code "another officer cannot fetch the package" 1 lb recovery fetch "$REQ" "${OA[@]}" --out-p12 "$T/x.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... only the requester" grep -q "only the requester" "$T/.out"
sql "SELECT hex(cms) FROM recovery_shares WHERE request_id = '$REQ'" >"$T/shares.hex"
openssl pkcs12 -in "$T/officer.p12" -passin "file:$PW" -nodes -out "$T/officer-full.pem" 2>/dev/null
expect_code "the requester fetches (modern PKCS#12)" 0 lb recovery fetch "$REQ" "${O[@]}" --out-p12 "$T/rec.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... naming both keys" sh -c "grep -q '$OLD' '$T/.out' && grep -q '$NEW' '$T/.out'"
check "the PKCS#12 is 0600, no passphrase beside it" sh -c "[ \"\$(stat -c %a '$T/rec.p12')\" = 600 ] && [ ! -e '$T/rec.p12.pass' ]"
cp "$T/rec.p12" "$T/rec.p12.orig"
expect_fail "a second fetch to the same file refuses to overwrite it" "already exists" lb recovery fetch "$REQ" "${O[@]}" --out-p12 "$T/rec.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... which stays as it was" cmp -s "$T/rec.p12" "$T/rec.p12.orig"
openssl pkcs12 -in "$T/rec.p12" -passin "file:$PW" -info -noout >"$T/info.txt" 2>&1
check "modern: HMAC-SHA256 MAC" grep -q "MAC: sha256" "$T/info.txt"
check "modern: PBES2 AES-256-CBC with PBKDF2-SHA256, keys and certificates" sh -c "[ \$(grep -c 'PBES2, PBKDF2, AES-256-CBC, Iteration [0-9]*, PRF hmacWithSHA256' '$T/info.txt') = 3 ]"
openssl pkcs12 -in "$T/rec.p12" -passin "file:$PW" -nodes -nocerts -out "$T/keys.pem" 2>/dev/null
openssl pkcs12 -in "$T/rec.p12" -passin "file:$PW" -nokeys -out "$T/certs.pem" 2>/dev/null
check "it holds both keys, their certificates and the CA" sh -c "[ \$(grep -c 'BEGIN PRIVATE KEY' '$T/keys.pem') = 2 ] && [ \$(grep -c 'BEGIN CERTIFICATE' '$T/certs.pem') = 3 ] && grep -q 'Recovery Test CA' '$T/certs.pem'"
# split the keys and find the one of a certificate
awk -v d="$T" '/BEGIN PRIVATE KEY/{n++; on=1} on{print > (d "/k" n ".pem")} /END PRIVATE KEY/{on=0}' "$T/keys.pem"
key_of() { # CERT: prints the recovered key file matching it
    local want k
    want=$(openssl x509 -in "$1" -noout -pubkey)
    for k in "$T"/k[0-9].pem; do
        [ "$(openssl pkey -in "$k" -pubout 2>/dev/null)" = "$want" ] && { echo "$k"; return; }
    done
    echo /dev/null
}
check "openssl cms decrypts the old message with the recovered key" sh -c "openssl cms -decrypt -binary -inform DER -in '$T/old.p7m' -inkey '$(key_of "$T/alice-old.pem")' -recip '$T/alice-old.pem' | cmp - '$T/old.txt'"
check "openssl cms decrypts the new message with the recovered key" sh -c "openssl cms -decrypt -binary -inform DER -in '$T/new.p7m' -inkey '$(key_of "$T/alice.pem")' -recip '$T/alice.pem' | cmp - '$T/new.txt'"
check "recovery.fetch audited" test "$(audit_count recovery.fetch "$REQ")" = 1

# --- recovery leaves nothing behind --------------------------------------------
check "the request is collected (recovery.collect audited)" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT collected IS NOT NULL FROM recovery_requests WHERE id = '$REQ'\")\" = 1 ] && [ $(audit_count recovery.collect "$REQ") = 1 ]"
check "  ... its rewrapped shares are deleted on the server" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ'")" = 0
check "  ... its one-time key and certificate are deleted here" test ! -e "$T/rec/$REQ.key" -a ! -e "$T/rec/$REQ.pem"
# an insider with the state directory: the shares' bytes are gone from
# the database file and its WAL too (secure_delete, WAL truncated)
check "the collected shares' bytes are in neither lockbox.db nor its WAL" python3 - "$DIR" "$T/shares.hex" <<'PY'
import glob, sys
d, f = sys.argv[1], sys.argv[2]
needles = [bytes.fromhex(h)[-48:] for h in open(f).read().split()]
blobs = b"".join(open(p, "rb").read() for p in glob.glob(d + "/lockbox.db*"))
assert len(needles) == 4, len(needles)
assert not [n for n in needles if n in blobs]
PY
expect_fail "a second fetch answers: collected" "collected" lb recovery fetch "$REQ" "${O[@]}" --out-p12 "$T/rec-again.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... writing nothing" test ! -e "$T/rec-again.p12"
check "  ... the package answers 410" sh -c "curl -s -o /dev/null -w '%{http_code}' --cacert '$DIR/ca.pem' --cert '$T/officer-full.pem' '$HTTPS/api/v1/recovery/requests/$REQ/package' | grep -qx 410"

# --- legacy PKCS#12 into gpgsm: each fetch is a request of its own ----------------
approved_request() { # ARGS...: a request approved by agents 1 and 2; its id
    local id
    id=$(lb recovery request "${O[@]}" --email alice@example.org "$@" "${RD[@]}" | tail -n1)
    lb recovery approve "$id" "${A1[@]}" --yes >/dev/null && lb recovery approve "$id" "${A2[@]}" --yes >/dev/null
    echo "$id"
}
REQL=$(approved_request --reason "legacy copy")
expect_code "legacy, both keys" 0 lb recovery fetch "$REQL" "${O[@]}" --out-p12 "$T/rec-legacy2.p12" --p12-pass-file $PW --format legacy "${RD[@]}"
check "  ... with a note on gpgsm and --serial" grep -q "gpgsm 2.2 imports only the first key" "$T/.out"
REQS=$(approved_request --serial "$OLD" --reason "old key for gpgsm")
expect_code "the old key alone, legacy, for gpgsm" 0 lb recovery fetch "$REQS" "${O[@]}" --out-p12 "$T/rec-legacy.p12" --p12-pass-file $PW --format legacy --serial "$OLD" "${RD[@]}"
openssl pkcs12 -legacy -in "$T/rec-legacy.p12" -passin "file:$PW" -info -noout >"$T/info-legacy.txt" 2>&1
check "legacy: SHA-1 MAC" grep -q "MAC: sha1" "$T/info-legacy.txt"
check "legacy: PBE-SHA1-3DES for key and certificates" sh -c "[ \$(grep -c 'pbeWithSHA1And3-KeyTripleDES-CBC' '$T/info-legacy.txt') = 2 ]"
check "--serial wrote only that key" sh -c "[ \$(openssl pkcs12 -legacy -in '$T/rec-legacy.p12' -passin 'file:$PW' -nodes -nocerts 2>/dev/null | grep -c 'BEGIN PRIVATE KEY') = 1 ]"
check "each fetch audited once, each request collected" sh -c "[ $(audit_count recovery.fetch "$REQL") = 1 ] && [ $(audit_count recovery.collect "$REQL") = 1 ] && [ $(audit_count recovery.collect "$REQS") = 1 ]"
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
echo allow-loopback-pinentry >"$GNUPGHOME/gpg-agent.conf"
# no look-ups through dirmngr: gpgsm would fetch a missing issuer from the
# certificate's caIssuers URL, this CA's default base URL 127.0.0.1:8080,
# where another CA on the machine (make run's demo) may answer; a foreign
# issuer there makes the import fail with "BAD signature"
echo disable-dirmngr >"$GNUPGHOME/gpgsm.conf"
at_exit "GNUPGHOME='$GNUPGHOME' gpgconf --kill all 2>/dev/null"
# the agent started before, not on gpgsm's first call: on a loaded machine
# gpgsm's own start of it can time out; a failure shows gpgsm's log
gpgconf --launch gpg-agent 2>/dev/null
check "gpgsm imports the legacy PKCS#12" sh -c "gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --import '$T/rec-legacy.p12' <'$PW' 2>'$T/gpgsm-import.log'; grep -q 'secret keys imported: 1' '$T/gpgsm-import.log' || { cat '$T/gpgsm-import.log'; false; }"
check "gpgsm decrypts the old message with it" sh -c "gpgsm --batch --pinentry-mode loopback --passphrase-fd 0 --decrypt '$T/old.p7m' <'$PW' 2>'$T/gpgsm-decrypt.log' | cmp - '$T/old.txt' || { cat '$T/gpgsm-decrypt.log'; false; }"

# --- deny -----------------------------------------------------------------------
REQ2=$(lb recovery request "${O[@]}" --email alice@example.org --serial "$NEW" --reason "second try" "${RD[@]}" | tail -n1)
check "a request for one key (--serial)" test "$(sql "SELECT count(*) FROM recovery_request_records rr JOIN escrow_records e ON e.id = rr.record_id WHERE rr.request_id = '$REQ2' AND e.serial = '$NEW'")" = 1
expect_code "a request for a serial that is not alice's is refused" 1 lb recovery request "${O[@]}" --email alice@example.org --serial 0123456789ABCDEF --reason "x" "${RD[@]}"
expect_code "the owner cannot deny either" 1 lb recovery deny "$REQ2" "${AA[@]}" --reason "no"
expect_code "deny needs --reason" 2 lb recovery deny "$REQ2" "${A1[@]}"
expect_code "agent 1 denies" 0 lb recovery deny "$REQ2" "${A1[@]}" --reason "not approved by HR"
check "the request is denied, by whom and why" test "$(sql "SELECT status || '|' || denied_by || '|' || deny_reason FROM recovery_requests WHERE id = '$REQ2'")" = "denied|agent1@example.org|not approved by HR"
expect_code "a denied request cannot be approved" 1 lb recovery approve "$REQ2" "${A2[@]}" --yes
check "  ... told it was denied" grep -q "denied by agent1@example.org" "$T/.out"
expect_code "a denied request releases nothing" 1 lb recovery fetch "$REQ2" "${O[@]}" --out-p12 "$T/denied.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... and the one-time key of the denied request is deleted here" sh -c "grep -q 'one-time key of request $REQ2 is deleted' '$T/.out' && [ ! -e '$T/rec/$REQ2.key' ]"
check "  ... nothing written" test ! -e "$T/denied.p12"
check "recovery.deny audited, refusals too" sh -c "[ $(audit_count recovery.deny "$REQ2") = 1 ] && [ $(audit_count recovery.deny_refused "$REQ2") = 1 ] && [ $(audit_count recovery.fetch_refused "$REQ2") = 1 ]"

# --- approved, then expired: releases nothing -------------------------------
REQ3=$(lb recovery request "${O[@]}" --email alice@example.org --reason "third" "${RD[@]}" | tail -n1)
lb recovery approve "$REQ3" "${A1[@]}" --yes >/dev/null
lb recovery approve "$REQ3" "${A3[@]}" --yes >/dev/null
check "third request approved" test "$(sql "SELECT status FROM recovery_requests WHERE id = '$REQ3'")" = approved
check "  ... holding rewrapped shares" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ3'")" -gt 0
sql "UPDATE recovery_requests SET expires = strftime('%s','now') - 1 WHERE id = '$REQ3'"
expect_code "an approved but expired request releases nothing" 1 lb recovery fetch "$REQ3" "${O[@]}" --out-p12 "$T/expired.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... told it expired" grep -q "expired at" "$T/.out"
check "  ... nothing written" test ! -e "$T/expired.p12"
check "  ... its rewrapped shares are deleted, its one-time key too" sh -c "[ \$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ3'\") = 0 ] && [ ! -e '$T/rec/$REQ3.key' ]"
check "  ... marked expired, audited as recovery.expire" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT status FROM recovery_requests WHERE id = '$REQ3'\")\" = expired ] && [ $(audit_count recovery.expire "$REQ3") = 1 ]"

# --- the API refuses bad input ------------------------------------------------
openssl pkcs12 -in "$T/agent3.p12" -passin "file:$PW" -nodes -out "$T/agent3.pem" 2>/dev/null
REQ4=$(lb recovery request "${O[@]}" --email alice@example.org --reason "fourth" "${RD[@]}" | tail -n1)
status() { # WANT DESC CURL-ARGS...
    local want=$1 desc=$2 got; shift 2
    got=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 20 --cacert "$DIR/ca.pem" --cert "$T/agent3.pem" "$@")
    if [ "$got" = "$want" ]; then ok "$desc"; else fail "$desc (HTTP $got, want $want)"; head -c 400 "$T/body" | sed 's/^/       /'; echo; fi
}
J=(-H "Content-Type: application/json" -X POST)
U=$HTTPS/api/v1/recovery/requests
status 400 "malformed request id: 400" "$U/NOT-AN-ID"
status 404 "unknown request id: 404" "$U/0123456789abcdef0123456789abcdef"
status 200 "an agent reads the request" "$U/$REQ4"
check "  ... with the one-time certificate, the requester's credential and its own shares" python3 -c "
import json; d = json.load(open('$T/body'))
assert d['request_cert'].startswith('-----BEGIN CERTIFICATE') and d['requester_cert'].startswith('-----BEGIN CERTIFICATE')
assert len(d['shares']) == 2 and all(s['cms'] for s in d['shares'])"
status 400 "approve with an unknown field: 400" "${J[@]}" -d '{"shares": [], "x": 1}' "$U/$REQ4/approve"
check "  ... naming it" grep -q "unknown field 'x'" "$T/body"
status 400 "approve with no shares: 400" "${J[@]}" -d '{"shares": []}' "$U/$REQ4/approve"
status 400 "approve with a share that is not base64: 400" "${J[@]}" -d '{"shares": [{"record_id": 1, "cms": "%%%%"}]}' "$U/$REQ4/approve"
status 400 "approve with one share missing: 400" "${J[@]}" -d '{"shares": [{"record_id": 1, "cms": "AAAA"}]}' "$U/$REQ4/approve"
check "  ... one share per covered record" grep -q "one share per covered record" "$T/body"
RIDS=$(sql "SELECT group_concat(record_id) FROM recovery_request_records WHERE request_id = '$REQ4'")
status 400 "approve with shares that are not CMS to the one-time key: 400" "${J[@]}" -d "{\"shares\": [{\"record_id\": ${RIDS%,*}, \"cms\": \"AAAA\"}, {\"record_id\": ${RIDS#*,}, \"cms\": \"AAAA\"}]}" "$U/$REQ4/approve"
check "  ... and nothing counted" test "$(sql "SELECT count(*) FROM recovery_approvals WHERE request_id = '$REQ4'")" = 0
status 415 "approve without a JSON content type: 415" -X POST -d 'shares=1' "$U/$REQ4/approve"
status 403 "an agent cannot fetch: 403" "$U/$REQ4/package"
status 403 "an agent cannot open a request: 403" "${J[@]}" -d '{"email": "alice@example.org", "reason": "x", "request_cert": "x"}' "$U"
openssl pkcs12 -in "$DIR/admin.p12" -passin "file:$PW" -nodes -out "$T/admin.pem" 2>/dev/null
status 403 "an administrator has no recovery role: 403" --cert "$T/admin.pem" "$U"
status 400 "listing with an unknown parameter: 400" "$U?pendng=1"
# a server (or database) that swaps in a one-time key of its own gets nothing
sql "UPDATE recovery_requests SET request_cert = X'$(openssl x509 -in "$T/alice.pem" -outform DER | xxd -p | tr -d '\n')' WHERE id = '$REQ4'"
expect_code "an agent refuses a one-time key its requester did not sign" 1 lb recovery approve "$REQ4" "${A1[@]}" --yes
check "  ... saying so" grep -q "refusing to release a share" "$T/.out"
check "  ... and hands in nothing" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ4'")" = 0
expect_code "another officer cannot withdraw the request" 1 lb recovery deny "$REQ4" "${OA[@]}" --reason "not mine"
expect_code "the requester withdraws it" 0 lb recovery deny "$REQ4" "${O[@]}" --reason "key swapped: investigating"
check "  ... denied by the requester" test "$(sql "SELECT status || '|' || denied_by FROM recovery_requests WHERE id = '$REQ4'")" = "denied|officer@example.org"

# --- a tampered record is detected and named ----------------------------------
REQ5=$(lb recovery request "${O[@]}" --email alice@example.org --reason "fifth" "${RD[@]}" | tail -n1)
lb recovery approve "$REQ5" "${A2[@]}" --yes >/dev/null
lb recovery approve "$REQ5" "${A3[@]}" --yes >/dev/null
orig=$(sql "SELECT hex(ciphertext) FROM escrow_records WHERE serial = '$OLD'")
b=${orig:40:2}; nb=$(printf '%02X' $(( 0x$b ^ 0x01 )))
sql "UPDATE escrow_records SET ciphertext = X'${orig:0:40}$nb${orig:42}' WHERE serial = '$OLD'"
check "one byte of the old key's ciphertext changed in the database" test "$(sql "SELECT hex(ciphertext) FROM escrow_records WHERE serial = '$OLD'")" != "$orig"
expect_code "fetch detects the tampered record" 1 lb recovery fetch "$REQ5" "${O[@]}" --out-p12 "$T/tampered.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... naming it by serial" grep -q "escrow record for serial $OLD failed authentication: altered in the database" "$T/.out"
check "  ... and writes no PKCS#12" test ! -e "$T/tampered.p12" -a ! -e "$T/tampered.p12.pass"
sql "UPDATE escrow_records SET ciphertext = X'$orig' WHERE serial = '$OLD'"
expect_code "restored, the same request opens" 0 lb recovery fetch "$REQ5" "${O[@]}" --out-p12 "$T/restored.p12" --p12-pass-file $PW "${RD[@]}"

stop_serve "first daemon"

# --- a request that expires on its own (request_ttl = 1s) --------------------
printf '\n[escrow]\nrequest_ttl = 1s\n' >>"$DIR/lockbox.conf"
serve_both "$DIR" "daemon listening (request_ttl 1s)"
C=(--server "$HTTPS" --ca-cert "$DIR/ca.pem")
O=("${C[@]}" --cred "$T/officer.p12" --cred-pass-file $PW)
A1=("${C[@]}" --cred "$T/agent1.p12" --cred-pass-file $PW --home "$T/agent1.p12.home")
REQ6=$(lb recovery request "${O[@]}" --email alice@example.org --reason "sixth" "${RD[@]}" | tail -n1)
check "a request with a 1 s lifetime" test "$(sql "SELECT expires - created FROM recovery_requests WHERE id = '$REQ6'")" = 1
sleep 2
expect_code "listing pending after expiry" 0 lb recovery pending "${A1[@]}"
check "  ... does not show it" sh -c "! grep -q '$REQ6' '$T/.out'"
check "  ... and marked it expired, audited as recovery.expire" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT status FROM recovery_requests WHERE id = '$REQ6'\")\" = expired ] && [ $(audit_count recovery.expire "$REQ6") = 1 ]"
expect_code "an expired request cannot be approved" 1 lb recovery approve "$REQ6" "${A1[@]}" --yes
check "  ... told so" grep -q "expired" "$T/.out"
expect_code "an expired request releases nothing" 1 lb recovery fetch "$REQ6" "${O[@]}" --out-p12 "$T/expired6.p12" --p12-pass-file $PW "${RD[@]}"
check "  ... nothing written" test ! -e "$T/expired6.p12"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DIR/ca.pem" --cert "$T/agent3.pem" -H "Content-Type: application/json" -X POST -d '{"reason": "late"}' "$HTTPS/api/v1/recovery/requests/$REQ6/deny")
if [ "$code" = 410 ]; then ok "deny on an expired request: 410"; else fail "deny on an expired request: 410 (HTTP $code)"; fi
stop_serve "second daemon"

# --- the audit trail -----------------------------------------------------------
for a in recovery.request recovery.request_refused recovery.approve recovery.approve_refused \
    recovery.deny recovery.deny_refused recovery.fetch recovery.fetch_refused recovery.expire; do
    check "audit has $a rows" test "$(sql "SELECT count(*) FROM audit WHERE action = '$a'")" -ge 1
done
check "audit rows name the operator" test "$(sql "SELECT actor FROM audit WHERE action = 'recovery.approve' ORDER BY id LIMIT 1")" = "api:agent1@example.org"
check "lockbox audit verify passes" $LOCKBOX audit verify --dir "$DIR"
check "no share or key in the daemon's log" sh -c "! grep -Eqi 'BEGIN (RSA )?PRIVATE|MII[A-Za-z0-9+/]{60}' '$T/serve.log'"
no_sanitizer_reports "$T/serve.log" "$T/client.log"
