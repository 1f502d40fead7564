#!/bin/bash
# 60_backup.sh - backup while the daemon serves, and restore into a fresh
# directory.  A CA with three recovery agents escrows alice's encryption key;
# `lockbox backup` runs while the daemon answers requests and the CLI issues
# certificates; the backup is 0600.  Restored into a new directory, the
# audit chain verifies, sqlite3's integrity_check is ok, the certificates
# are those of a consistent snapshot, and the restored CA, served on other
# ports, gives back alice's escrowed key through the M-of-N recovery
# workflow: the key matches her certificate from before the backup and
# decrypts mail sent to it.  Also: restore refuses a non-empty directory,
# a corrupted or truncated backup leaves nothing behind, and usage errors.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
NEW=$T/restored
BK=$T/ca.lbk
asan_serve

# --- a CA with escrow ---------------------------------------------------------
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Backup Test CA"
for i in 1 2 3; do
    check "agent $i added" add_agent "$DIR" "$T/agent$i.p12" "Agent $i" "agent$i@example.org"
done
check "a recovery officer" add_recovery_officer "$DIR" "$T/officer.p12" Officer officer@example.org
check "a 2-of-3 escrow policy its members signed" policy_in_force "$DIR" 2 "$T/agent1.p12" "$T/agent2.p12" "$T/agent3.p12" "$T/officer.p12"
SERIAL=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --key-type rsa-2048 --out-p12 "$T/alice.p12" --p12-pass-file $PW | tail -n1)
check "alice's encryption key issued with escrow" test -n "$SERIAL" -a "$(db_count "SELECT count(*) FROM escrow_records WHERE serial = '$SERIAL'")" = 1
openssl pkcs12 -in "$T/alice.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/alice.pem" 2>/dev/null
echo "sent before the backup" >"$T/msg.txt"
check "mail encrypted to alice's certificate" openssl cms -encrypt -aes256 -binary -outform DER -in "$T/msg.txt" -out "$T/msg.p7m" "$T/alice.pem"
rm -f "$T/alice.p12" "$T/alice.p12.pass"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj "/CN=x" -out "$T/bob.csr" 2>/dev/null
printf 'password = x\n' >"$DIR/ldap.pass"; chmod 600 "$DIR/ldap.pass"
printf '\n[directory]\nbind_password_file = ldap.pass\n' >>"$DIR/lockbox.conf"

expect_code "backup --help exits 0" 0 $LOCKBOX backup --help
check "  ... warns that the file holds the CA key's passphrase" grep -q "HOLDS THE CA KEY TOGETHER WITH ITS PASSPHRASE" "$T/.out"
expect_code "backup without --out is a usage error" 2 $LOCKBOX backup --dir "$DIR"
expect_code "restore without --dir is a usage error" 2 $LOCKBOX restore "$BK"

# --- backup while the daemon serves and the CLI writes ------------------------
serve_both "$DIR" "daemon listening (original)"
$LOCKBOX list --dir "$DIR" | sort >"$T/list-before"
( while [ ! -e "$T/stop" ]; do
      curl -s -o /dev/null "$HTTP/ca.crt"; curl -s -o /dev/null "$HTTP/ca.crl"
      curl -s -o /dev/null --cacert "$DIR/ca.pem" "$HTTPS/healthz"
  done ) &
LOAD=$!
( for i in $(seq 1 15); do
      $LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/bob.csr" --email "bob$i@example.org" --out /dev/null >/dev/null 2>&1
  done ) &
WRITER=$!
at_exit "touch '$T/stop'; kill $LOAD $WRITER 2>/dev/null"
sleep 0.3
expect_code "backup while the daemon serves and certificates are issued" 0 $LOCKBOX backup --dir "$DIR" --out "$BK"
cp "$T/.out" "$T/backup.out"
wait "$WRITER"
touch "$T/stop"; wait "$LOAD"
check "  ... names the database, the CA key and its passphrase, pub/ and ldap.pass" sh -c "for f in lockbox.db lockbox.conf ca.pem ca.key ca.key.pass tls.pem tls.key pub/ca.crt ldap.pass; do grep -q \" \$f\$\" '$T/backup.out' || exit 1; done"
check "the backup file is mode 0600" test "$(stat -c %a "$BK")" = 600
check "  ... and starts with its magic" sh -c "head -c 17 '$BK' | grep -q '^LOCKBOX-BACKUP 1$'"
check "the backup is in the audit log" test "$(db_count "SELECT count(*) FROM audit WHERE action = 'backup.create' AND object = '$BK'")" = 1
expect_code "backup never replaces an existing file" 1 $LOCKBOX backup --dir "$DIR" --out "$BK"
check "  ... says so" grep -q "already exists" "$T/.out"
stop_serve "original"
$LOCKBOX list --dir "$DIR" | sort >"$T/list-after"
check "the writer issued certificates during the backup" test "$(wc -l <"$T/list-after")" -gt "$(wc -l <"$T/list-before")"

# --- restore refusals ------------------------------------------------------------
mkdir "$T/full"; echo keep >"$T/full/mine"
expect_code "restore into a non-empty directory is refused" 1 $LOCKBOX restore "$BK" --dir "$T/full"
check "  ... saying so, and the directory is untouched" sh -c "grep -q 'not empty' '$T/.out' && [ \"\$(ls '$T/full')\" = mine ]"
size=$(stat -c %s "$BK")
cp "$BK" "$T/flipped.lbk"
off=$((size / 2)); b=$(od -An -tu1 -j "$off" -N1 "$BK" | tr -d ' ')
printf "\\$(printf '%03o' $(( (b ^ 1) & 255 )))" | dd of="$T/flipped.lbk" bs=1 seek="$off" conv=notrunc 2>/dev/null
check "one byte of a copy flipped" sh -c "! cmp -s '$BK' '$T/flipped.lbk'"
expect_code "a corrupted backup is refused" 1 $LOCKBOX restore "$T/flipped.lbk" --dir "$T/bad"
check "  ... naming the checksum, and nothing is left behind" sh -c "grep -q 'SHA-256 mismatch' '$T/.out' && [ ! -e '$T/bad' ]"
head -c $((size - 40)) "$BK" >"$T/short.lbk"
expect_code "a truncated backup is refused" 1 $LOCKBOX restore "$T/short.lbk" --dir "$T/bad"
check "  ... nothing is left behind" test ! -e "$T/bad"
expect_code "a file that is no backup is refused" 1 $LOCKBOX restore "$DIR/ca.pem" --dir "$T/bad"
check "  ... bad magic, nothing left behind" sh -c "grep -q 'not a lockbox backup' '$T/.out' && [ ! -e '$T/bad' ]"

# --- restore ---------------------------------------------------------------------
expect_code "restore into a fresh directory" 0 $LOCKBOX restore "$BK" --dir "$NEW"
check "  ... reports the integrity check and the audit chain" sh -c "grep -q 'integrity_check ok' '$T/.out' && grep -q 'audit chain: ok' '$T/.out' && grep -q ' ca.key$' '$T/.out'"
check "secrets restored 0600, the directory 0700, pub/ 0755" sh -c "for f in ca.key ca.key.pass tls.key lockbox.db ldap.pass admin.p12; do [ \"\$(stat -c %a '$NEW/'\$f)\" = 600 ] || exit 1; done; [ \"\$(stat -c %a '$NEW')\" = 700 ] && [ \"\$(stat -c %a '$NEW/pub')\" = 755 ]"
check "key, config and CA certificate identical to the original" sh -c "for f in ca.key ca.key.pass ca.pem lockbox.conf tls.key pub/ca.crt ldap.pass; do cmp -s '$DIR/'\$f '$NEW/'\$f || exit 1; done"
check "lockbox audit verify passes on the restored CA" $LOCKBOX audit verify --dir "$NEW"
check "sqlite3: PRAGMA integrity_check is ok" test "$(sqlite3 "$NEW/lockbox.db" 'PRAGMA integrity_check')" = ok
$LOCKBOX list --dir "$NEW" | sort >"$T/list-restored"
check "every certificate from before the backup is restored" sh -c "[ -z \"\$(comm -23 '$T/list-before' '$T/list-restored')\" ]"
check "  ... and only certificates the original has (a consistent snapshot)" sh -c "[ -z \"\$(comm -13 '$T/list-after' '$T/list-restored')\" ]"
check "  ... with alice's escrow record" test "$(sqlite3 "$NEW/lockbox.db" "SELECT count(*) FROM escrow_records WHERE serial = '$SERIAL'")" = 1
last=$(sqlite3 "$NEW/lockbox.db" "SELECT id FROM audit ORDER BY id DESC LIMIT 1")
check "the restored audit log is the original's up to row $last" test "$(sqlite3 "$NEW/lockbox.db" "SELECT group_concat(hash) FROM (SELECT hash FROM audit ORDER BY id)")" = "$(sqlite3 "$DIR/lockbox.db" "SELECT group_concat(hash) FROM (SELECT hash FROM audit WHERE id <= $last ORDER BY id)")"
check "the restored CA opens its key: it issues" $LOCKBOX issue --dir "$NEW" --profile smime-sign --csr "$T/bob.csr" --email carol@example.org --out "$T/carol.pem"
check "  ... a certificate that verifies against the original CA certificate" openssl verify -CAfile "$DIR/ca.pem" "$T/carol.pem"

# --- recover alice's key from the restored CA -----------------------------------------
serve_both "$NEW" "daemon listening (restored, other ports)"
C=(--server "$HTTPS" --ca-cert "$NEW/ca.pem")
REQ=$($LOCKBOX recovery request "${C[@]}" --cred "$T/officer.p12" --cred-pass-file $PW --email alice@example.org --reason "restored CA test" --dir "$T/rec" 2>>"$T/client.log" | tail -n1)
check "a recovery officer opens a request on the restored CA" sh -c "echo '$REQ' | grep -Eqx '[0-9a-f]{32}'"
expect_code "agent 1 approves" 0 $LOCKBOX recovery approve "$REQ" "${C[@]}" --cred "$T/agent1.p12" --cred-pass-file $PW --home "$T/agent1.p12.home" --yes
expect_code "agent 2 approves" 0 $LOCKBOX recovery approve "$REQ" "${C[@]}" --cred "$T/agent2.p12" --cred-pass-file $PW --home "$T/agent2.p12.home" --yes
check "  ... 2 of 2 approvals" grep -q "2 of 2 approvals, request approved" "$T/.out"
expect_code "the officer fetches the recovered key" 0 $LOCKBOX recovery fetch "$REQ" "${C[@]}" --cred "$T/officer.p12" --cred-pass-file $PW --out-p12 "$T/rec.p12" --p12-pass-file $PW --dir "$T/rec"
check "  ... naming alice's serial" grep -q "$SERIAL" "$T/.out"
openssl pkcs12 -in "$T/rec.p12" -passin "file:$PW" -nodes -nocerts -out "$T/rec.key" 2>/dev/null
check "the recovered key matches alice's certificate from before the backup" test "$(openssl pkey -in "$T/rec.key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$T/alice.pem" -noout -pubkey)"
check "  ... and decrypts the mail sent before the backup" sh -c "openssl cms -decrypt -binary -inform DER -in '$T/msg.p7m' -inkey '$T/rec.key' -recip '$T/alice.pem' | cmp - '$T/msg.txt'"
stop_serve "restored"
check "the restored audit chain still verifies after the recovery" $LOCKBOX audit verify --dir "$NEW"
no_sanitizer_reports "$T/serve.log"
