#!/bin/bash
# 32_policy.sh - the escrow policy is its members' to grant, tried through
# the real clients.  First the README's key ceremony as written: three
# agents and a recovery officer make their keys on their own side, the
# administrator proposes, reads the hash out, each member signs over
# HTTPS, and a lost key comes back with 2 of the 3 agents (openssl cms
# decrypts with it).  Then the insider with the state directory tries:
# threshold 1, agents of his own and a policy he signs alone, his admin
# credential as a signer, a first policy whose document is not the one
# read out, a policy row of his own written into lockbox.db (the agents'
# audit names it), a share re-encrypted to his key (the audit names it),
# and a case-variant of the officer's e-mail.  Each attack fails and
# changes nothing that counts.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve
sql() { sqlite3 "$DIR/lockbox.db" "$1"; }
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Policy Test CA"

# --- the ceremony, as the README runs it -------------------------------------
for i in 1 2 3; do
    check "agent $i: request (own key), add, install" cred_made agent "$DIR" "$T/agent$i.p12" "Agent $i" "agent$i@example.org"
done
check "the officer: request, add --role recovery-officer, install" add_recovery_officer "$DIR" "$T/officer.p12" Officer officer@example.org
serve_both "$DIR" "daemon listening"
C=(--server "$HTTPS" --ca-cert "$DIR/ca.pem" --cred-pass-file "$PW")
check "the administrator proposes: threshold 2" sh -c "$LOCKBOX escrow policy propose --dir '$DIR' --threshold 2 > '$T/prop'"
H=$(tail -n1 "$T/prop")
check "  ... the hash alone on the last line, 64 hex digits" sh -c "echo '$H' | grep -Eqx '[0-9a-f]{64}'"
check "  ... the document names the 3 agents and the officer by key" sh -c "[ \$(grep -c '^agent: [0-9a-f]\{64\} ' '$T/prop') = 3 ] && [ \$(grep -c '^officer: [0-9a-f]\{64\} officer@example.org ' '$T/prop') = 1 ]"
for who in agent1 agent2 agent3; do
    check "$who signs over HTTPS" $LOCKBOX escrow policy sign "$H" "${C[@]}" --cred "$T/$who.p12" --home "$T/$who.home" --yes
    check "  ... not in force before every member has signed" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^no escrow policy in force'"
done
check "the officer signs: in force" sh -c "$LOCKBOX escrow policy sign '$H' ${C[*]} --cred '$T/officer.p12' --home '$T/officer.home' --yes | grep -q 'now in force'"
check "escrow policy: policy v1: threshold 2 of 3 agents" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v1: threshold 2 of 3 agents'"
ALICE=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW | tail -n1)
check "alice's encryption key escrowed under v1" test "$(sql "SELECT policy_hash || ' ' || nshares FROM escrow_records WHERE serial = '$ALICE'")" = "$H 3"
openssl pkcs12 -in "$T/alice.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/alice.pem" 2>/dev/null
echo "for alice only" >"$T/msg"
openssl cms -encrypt -aes256 -binary -in "$T/msg" -out "$T/msg.p7m" "$T/alice.pem"
rm -f "$T/alice.p12"
$LOCKBOX recovery request "${C[@]}" --cred "$T/officer.p12" --email alice@example.org --reason "laptop lost" --dir "$T/rec" >"$T/req" 2>&1
REQ=$(tail -n1 "$T/req")
check "2 of 3: agent 1 approves" $LOCKBOX recovery approve "$REQ" "${C[@]}" --cred "$T/agent1.p12" --home "$T/agent1.home" --yes
check "2 of 3: agent 3 approves" $LOCKBOX recovery approve "$REQ" "${C[@]}" --cred "$T/agent3.p12" --home "$T/agent3.home" --yes
check "the officer fetches alice's key, and openssl cms decrypts with it" sh -c "
    $LOCKBOX recovery fetch '$REQ' ${C[*]} --cred '$T/officer.p12' --out-p12 '$T/back.p12' --p12-pass-file '$PW' --dir '$T/rec' >/dev/null &&
    openssl pkcs12 -in '$T/back.p12' -passin 'file:$PW' -nodes -out '$T/back.pem' 2>/dev/null &&
    openssl cms -decrypt -binary -in '$T/msg.p7m' -inkey '$T/back.pem' -recip '$T/alice.pem' | cmp - '$T/msg'"
check "every member's audit: the record follows v1" $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home"
check "  ... agent 2 decrypted its own share of it" grep -q "1 of your own shares decrypted, 0 mismatch" "$T/.out"

# --- attack 1: a credential minted with the officer's e-mail -----------------
check "mallory registers a recovery officer credential of his own as officer@example.org" \
    add_recovery_officer "$DIR" "$T/fake-officer.p12" Officer officer@example.org
$LOCKBOX recovery request "${C[@]}" --cred "$T/fake-officer.p12" --email alice@example.org --reason "urgent" --dir "$T/mrec" >"$T/mreq" 2>&1
MREQ=$(tail -n1 "$T/mreq")
check "  ... the server takes his request, statement and all" sh -c "echo '$MREQ' | grep -Eqx '[0-9a-f]{32}' &&
    [ \$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM recovery_requests WHERE id = '$MREQ' AND statement IS NOT NULL\") = 1 ]"
expect_fail "agent 1's client refuses: the statement's key is no officer of its policy" "not signed by a recovery officer of escrow policy v1" \
    $LOCKBOX recovery approve "$MREQ" "${C[@]}" --cred "$T/agent1.p12" --home "$T/agent1.home" --yes
expect_fail "  ... so does agent 2's" "not signed by a recovery officer" \
    $LOCKBOX recovery approve "$MREQ" "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --yes
check "  ... nothing was released to his one-time key" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$MREQ'")" = 0
FAKE=$(openssl pkcs12 -in "$T/fake-officer.p12" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
$LOCKBOX recovery deny "$MREQ" "${C[@]}" --cred "$T/agent1.p12" --home "$T/agent1.home" --reason "not our officer" >/dev/null 2>&1
$LOCKBOX operator remove --dir "$DIR" "$FAKE" >/dev/null 2>&1

# --- attack 3: the share of another key under the requested serial ----------
DAVE=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email dave@example.org --keygen --key-type ec-p256 --out-p12 "$T/dave.p12" --p12-pass-file $PW | tail -n1)
ALICE2=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --key-type ec-p256 --out-p12 "$T/alice2.p12" --p12-pass-file $PW | tail -n1)
$LOCKBOX recovery request "${C[@]}" --cred "$T/officer.p12" --email alice@example.org --serial "$ALICE2" --reason "second laptop" --dir "$T/rec" >"$T/req2" 2>&1
REQ2=$(tail -n1 "$T/req2")
A2SER=$(openssl pkcs12 -in "$T/agent2.p12" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
ORIG=$(sql "SELECT hex(cms) FROM escrow_shares WHERE agent_serial = '$A2SER' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$ALICE2')")
sql "UPDATE escrow_shares SET cms = (SELECT s.cms FROM escrow_shares s JOIN escrow_records r ON r.id = s.record_id WHERE r.serial = '$DAVE' AND s.agent_serial = '$A2SER')
     WHERE agent_serial = '$A2SER' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$ALICE2')"
expect_fail "agent 2's client refuses dave's share handed over as alice's" "belongs to another record" \
    $LOCKBOX recovery approve "$REQ2" "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --yes
check "  ... nothing released" test "$(sql "SELECT count(*) FROM recovery_shares WHERE request_id = '$REQ2'")" = 0
check "agent 2's audit names the record whose share was swapped" sh -c "! $LOCKBOX escrow audit ${C[*]} --cred '$T/agent2.p12' --home '$T/agent2.home' --all > '$T/aud2' 2>&1; grep -q 'mismatch: record $ALICE2' '$T/aud2'"
check "agent 3, whose share was left alone, approves" $LOCKBOX recovery approve "$REQ2" "${C[@]}" --cred "$T/agent3.p12" --home "$T/agent3.home" --yes
sql "UPDATE escrow_shares SET cms = X'$ORIG' WHERE agent_serial = '$A2SER' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$ALICE2')"
check "with agent 2's share put back, its audit is clean" $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --all

# --- attack 3, the words: the reason rewritten under a signed request -------
sql "UPDATE recovery_requests SET reason = 'court order, approve now' WHERE id = '$REQ2'"
expect_fail "agent 1's client refuses a reason the officer did not sign" "another reason for this request than its officer signed" \
    $LOCKBOX recovery approve "$REQ2" "${C[@]}" --cred "$T/agent1.p12" --home "$T/agent1.home" --yes
check "  ... nothing released, no approval counted" test "$(sql "SELECT count(*) FROM recovery_approvals WHERE request_id = '$REQ2'")" = 1
check "  ... the statement the agents check carries the officer's reason" sh -c "sqlite3 '$DIR/lockbox.db' \"SELECT statement FROM recovery_requests WHERE id = '$REQ2'\" | grep -qx 'reason: second laptop'"
sql "UPDATE recovery_requests SET reason = 'second laptop' WHERE id = '$REQ2'"

# --- upgrade in place: a record as an older lockbox escrowed it ------------
# erin's shares rewritten as an older lockbox made them (the share alone,
# 33 bytes), under no policy, made before the policies began
ERIN=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email erin@example.org --keygen --key-type ec-p256 --out-p12 "$T/erin.p12" --p12-pass-file $PW | tail -n1)
openssl pkcs12 -in "$T/erin.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/erin.pem" 2>/dev/null
echo "for erin, sent before the upgrade" >"$T/emsg"
openssl cms -encrypt -aes256 -binary -in "$T/emsg" -out "$T/emsg.p7m" "$T/erin.pem"
for a in agent1 agent2 agent3; do
    openssl pkcs12 -in "$T/$a.p12" -passin "file:$PW" -nodes -out "$T/$a.all.pem" 2>/dev/null
    ser=$(openssl x509 -in "$T/$a.all.pem" -noout -serial | cut -d= -f2)
    sql "SELECT hex(cms) FROM escrow_shares WHERE agent_serial = '$ser' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$ERIN')" | xxd -r -p >"$T/$a.share.der"
    openssl cms -decrypt -inform DER -binary -in "$T/$a.share.der" -inkey "$T/$a.all.pem" -recip "$T/$a.all.pem" | head -c 33 >"$T/$a.old"
    openssl cms -encrypt -binary -outform DER -aes256 -recip "$T/$a.all.pem" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
        -keyopt rsa_mgf1_md:sha256 -in "$T/$a.old" -out "$T/$a.old.der"
    sql "UPDATE escrow_shares SET cms = X'$(xxd -p "$T/$a.old.der" | tr -d '\n')' WHERE agent_serial = '$ser' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$ERIN')"
done
sql "UPDATE escrow_records SET policy_hash = NULL, created = 1 WHERE serial = '$ERIN'"
check "upgrade: the old record is reported exposed" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep '^exposed: 1 ' | grep -q '$ERIN'"
check "upgrade: agent 1's audit counts it as made before any signed policy" sh -c "$LOCKBOX escrow audit ${C[*]} --cred '$T/agent1.p12' --home '$T/agent1.home' --all | grep -q '1 escrowed before any signed policy'"
rm -f "$T/erin.p12"
$LOCKBOX recovery request "${C[@]}" --cred "$T/officer.p12" --email erin@example.org --reason "upgrade drill" --dir "$T/rec" >"$T/ereq" 2>&1
EREQ=$(tail -n1 "$T/ereq")
check "upgrade: agent 1 approves the old record, told its share names no record" sh -c "$LOCKBOX recovery approve '$EREQ' ${C[*]} --cred '$T/agent1.p12' --home '$T/agent1.home' --yes | grep -q 'escrowed before shares named their record'"
check "upgrade: agent 2 approves" $LOCKBOX recovery approve "$EREQ" "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --yes
check "upgrade: the old record stays recoverable; openssl cms decrypts with the key" sh -c "
    $LOCKBOX recovery fetch '$EREQ' ${C[*]} --cred '$T/officer.p12' --out-p12 '$T/eback.p12' --p12-pass-file '$PW' --dir '$T/rec' >/dev/null &&
    openssl pkcs12 -in '$T/eback.p12' -passin 'file:$PW' -nodes -out '$T/eback.pem' 2>/dev/null &&
    openssl cms -decrypt -binary -in '$T/emsg.p7m' -inkey '$T/eback.pem' -recip '$T/erin.pem' | cmp - '$T/emsg'"

# --- the insider: one administrator alone ------------------------------------
state() { sql "SELECT (SELECT group_concat(hash || status) FROM escrow_policies), (SELECT count(*) FROM escrow_policy_signatures)"; }
before=$(state)
expect_code "escrow policy --threshold 1 is refused" 2 $LOCKBOX escrow policy --dir "$DIR" --threshold 1
expect_code "agent add --keygen is refused (the admin would keep the key)" 2 $LOCKBOX agent add --dir "$DIR" --keygen --name Mallory --email mallory-agent@example.org --out-p12 "$T/m.p12" --p12-pass-file $PW
check "  ... neither changed the policy" test "$(state)" = "$before"
# mallory makes two agents of his own (keys he holds) and a policy of them
for m in 1 2; do
    cred_made agent "$DIR" "$T/mal$m.p12" "Mallory $m" "mallory$m@example.org" >/dev/null 2>&1
done
POLICY_OPTS="--agents mallory1@example.org,mallory2@example.org,agent1@example.org"
$LOCKBOX escrow policy propose --dir "$DIR" --threshold 2 $POLICY_OPTS >"$T/mprop" 2>&1
unset POLICY_OPTS
MH=$(tail -n1 "$T/mprop")
check "mallory proposes v2: his two agents and agent 1" sh -c "grep -q '^previous: $H' '$T/mprop'"
check "mallory's agents sign it" sh -c "$LOCKBOX escrow policy sign '$MH' --dir '$DIR' --cred '$T/mal1.p12' --cred-pass-file '$PW' --home '$T/mal1.home' --yes &&
    $LOCKBOX escrow policy sign '$MH' --dir '$DIR' --cred '$T/mal2.p12' --cred-pass-file '$PW' --home '$T/mal2.home' --yes"
check "  ... and it is not in force: 2 agents of v1 have not signed" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v1:' && $LOCKBOX escrow policy --dir '$DIR' | grep -q '^pending: proposal v2'"
expect_fail "mallory's admin credential is no member" "neither a member" $LOCKBOX escrow policy sign "$MH" "${C[@]}" --cred "$DIR/admin.p12" --home "$T/admin.home" --trust-policy "$H" --yes
BOB=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email bob@example.org --keygen --key-type ec-p256 --out-p12 "$T/bob.p12" --p12-pass-file $PW | tail -n1)
check "new escrows still go to v1's three agents, none to mallory's" test "$(sql "SELECT r.policy_hash || ' ' || count(*) FROM escrow_records r JOIN escrow_shares s ON s.record_id = r.id JOIN operators o ON o.serial = s.agent_serial WHERE r.serial = '$BOB' AND o.email LIKE 'agent%'")" = "$H 3"
check "the proposal and the refusal left audit rows" sh -c "$LOCKBOX audit list --dir '$DIR' > '$T/audit' && grep -q 'escrow.policy_propose' '$T/audit' &&
    grep 'escrow.policy_sign_refused' '$T/audit' | grep -q 'admin@' && $LOCKBOX audit verify --dir '$DIR'"
check "mallory withdraws his proposal" $LOCKBOX escrow policy withdraw --dir "$DIR" "$MH"

# --- the row rewritten behind lockbox's back ---------------------------------
# mallory writes his own v2 into lockbox.db, in force, signed by nobody
sed -n '1,/^$/p' "$T/mprop" | sed '$d' >"$T/mdoc"
MH2=$(sha256sum "$T/mdoc" | cut -d' ' -f1)
sqlite3 "$DIR/lockbox.db" "DELETE FROM escrow_policies WHERE hash = '$MH'; DELETE FROM escrow_policy_signatures WHERE policy_hash = '$MH';
    UPDATE escrow_policies SET status = 'superseded' WHERE hash = '$H';
    INSERT INTO escrow_policies (hash, version, previous, threshold, document, status, proposed_by, created, in_force)
    VALUES ('$MH2', 2, '$H', 2, CAST(readfile('$T/mdoc') AS TEXT), 'in_force', 'sql', 0, 0)" 2>/dev/null
check "mallory's row is in force as far as the server knows" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v2:'"
CAROL=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email carol@example.org --keygen --key-type ec-p256 --out-p12 "$T/carol.p12" --p12-pass-file $PW | tail -n1)
expect_code "agent 2's next audit catches it (exit 1)" 1 $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home"
check "  ... naming the policy its members did not sign" grep -q "do not put it in force" "$T/.out"
expect_code "agent 3's audit too" 1 $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent3.p12" --home "$T/agent3.home"
check "  ... agent 2's pin still names v1" grep -q "\"newest\": \"$H\"" "$T/agent2.home/escrow-pin.json"
# put v1 back, so that what follows is about the share alone
sqlite3 "$DIR/lockbox.db" "DELETE FROM escrow_shares WHERE record_id IN (SELECT id FROM escrow_records WHERE policy_hash = '$MH2');
    DELETE FROM escrow_records WHERE policy_hash = '$MH2'; DELETE FROM escrow_policies WHERE hash = '$MH2';
    UPDATE escrow_policies SET status = 'in_force' WHERE hash = '$H'"
check "with v1 back, the audit is clean again" $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --all

# --- a share re-encrypted to mallory's key -----------------------------------
openssl pkcs12 -in "$T/mal1.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/mal1.pem" 2>/dev/null
A1=$(openssl pkcs12 -in "$T/agent1.p12" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
head -c 33 /dev/urandom >"$T/fake-share"
openssl cms -encrypt -binary -outform DER -aes256 -recip "$T/mal1.pem" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
    -in "$T/fake-share" -out "$T/fake.der"
sqlite3 "$DIR/lockbox.db" "UPDATE escrow_shares SET cms = X'$(xxd -p "$T/fake.der" | tr -d '\n')' WHERE agent_serial = '$A1' AND record_id = (SELECT id FROM escrow_records WHERE serial = '$BOB')"
expect_code "agent 2's audit names the share filed under agent 1 but sent to another key" 1 $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent2.p12" --home "$T/agent2.home" --all
check "  ... naming bob's record" sh -c "grep -q \"mismatch: record $BOB (bob@example.org): a share's recipient is not the agent certificate\" '$T/.out'"
expect_code "agent 1's audit too" 1 $LOCKBOX escrow audit "${C[@]}" --cred "$T/agent1.p12" --home "$T/agent1.home" --all

# --- a first policy whose document is not the one read out -------------------
DIR2=$T/ca2
$LOCKBOX init --p12-pass-file $PW --dir "$DIR2" --key-type ec-p256 --name "Policy Test CA 2" >/dev/null 2>&1
for i in 1 2 3; do
    cred_made agent "$DIR2" "$T/g$i.p12" "Agent $i" "g$i@example.org" >/dev/null 2>&1
done
$LOCKBOX escrow policy propose --dir "$DIR2" --threshold 2 >"$T/gprop" 2>&1
GH=$(tail -n1 "$T/gprop")
# behind the ceremony: the pending document swapped for one with agent 3
# replaced by a key of mallory's
MKEY=$(head -c 32 /dev/urandom | xxd -p -c 64)
sed -n '1,/^$/p' "$T/gprop" | sed '$d' | sed "s/^agent: [0-9a-f]* g3@example.org .*/agent: $MKEY mallory@example.org Mallory/" >"$T/gdoc2"
GH2=$(sha256sum "$T/gdoc2" | cut -d' ' -f1)
sqlite3 "$DIR2/lockbox.db" "UPDATE escrow_policies SET hash = '$GH2', document = CAST(readfile('$T/gdoc2') AS TEXT) WHERE hash = '$GH'" 2>/dev/null
expect_fail "agent 1, given the hash read out, refuses the swapped document" "check the hash read out" $LOCKBOX escrow policy sign "$GH" --dir "$DIR2" --cred "$T/g1.p12" --cred-pass-file "$PW" --home "$T/g1.home" --yes
check "  ... no signature stored, no pin written" sh -c "[ \$(sqlite3 '$DIR2/lockbox.db' 'SELECT count(*) FROM escrow_policy_signatures') = 0 ] && [ ! -e '$T/g1.home/escrow-pin.json' ]"
expect_fail "agent 3 is not named by what the server shows it: refused without a pin" "does not name your key" $LOCKBOX escrow policy sign "$GH2" --dir "$DIR2" --cred "$T/g3.p12" --cred-pass-file "$PW" --home "$T/g3.home" --yes

# --- a case-variant of the officer's e-mail ----------------------------------
sqlite3 "$DIR2/lockbox.db" "DELETE FROM escrow_policies"
add_recovery_officer "$DIR2" "$T/go.p12" Officer officer@example.org >/dev/null 2>&1
add_recovery_officer "$DIR2" "$T/gox.p12" "Officer too" Officer@Example.ORG >/dev/null 2>&1
n=$(sqlite3 "$DIR2/lockbox.db" "SELECT count(*) FROM escrow_policies")
expect_fail "a policy with officer@ and Officer@Example.ORG is refused" "stands twice" $LOCKBOX escrow policy propose --dir "$DIR2" --threshold 2
expect_fail "  ... so is naming the variant alone: it selects both" "stands twice" $LOCKBOX escrow policy propose --dir "$DIR2" --threshold 2 --officers Officer@Example.ORG
check "  ... and nothing was proposed" test "$(sqlite3 "$DIR2/lockbox.db" "SELECT count(*) FROM escrow_policies")" = "$n"

# --- over the API too: revoking agents until a record is stranded ------------
openssl pkcs12 -in "$DIR/admin.p12" -passin "file:$PW" -nodes -out "$T/admin.pem" 2>/dev/null
A3SER=$(openssl pkcs12 -in "$T/agent3.p12" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
API=(--cacert "$DIR/ca.pem" --cert "$T/admin.pem" -H 'Content-Type: application/json')
status 200 "the admin revokes agent 3's credential over the API: 2 of 3 still hold every record" \
    "${API[@]}" -X POST --data '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/$A3SER/revoke"
status 409 "  ... agent 2's next is refused: it would strand alice's records" \
    "${API[@]}" -X POST --data '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/$A2SER/revoke"
check "  ... naming the reshare, and agent 2's credential is still valid" sh -c "grep -q 'lockbox escrow reshare' '$T/body' && [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT status FROM certificates WHERE serial = '$A2SER'\")\" = valid ]"

stop_serve "policy"
no_sanitizer_reports "$T/serve.log"
exit 0
