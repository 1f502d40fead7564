#!/bin/bash
# 10_cli.sh - the admin CLI end to end through real clients: init, issue
# from an openssl-made CSR, openssl verify, list/show, revoke, operators and
# role separation, the audit chain (and its tamper detection), refusal to
# overwrite a CA, a subordinate CA installed from a parent's signature.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
check "init creates a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Test S/MIME CA"
# all_exist FILE...: every FILE exists; names those that do not
all_exist() { local f m=""; for f in "$@"; do [ -e "$f" ] || m="$m $f"; done; [ -z "$m" ] || { echo "missing:$m"; return 1; }; }
check "state directory holds every file" all_exist "$DIR"/{lockbox.conf,lockbox.db,ca.pem,ca.key,ca.key.pass,tls.pem,tls.key,admin.p12,pub/ca.crt}
mode() { stat -c %a "$1"; }
if [ "$(mode "$DIR/ca.key.pass")" = 600 ] && [ "$(mode "$DIR/ca.key")" = 600 ] &&
   [ "$(mode "$DIR/admin.p12")" = 600 ] && [ "$(mode "$DIR/tls.key")" = 600 ]; then
    ok "secret files are 0600"
else
    fail "secret files are 0600"
fi
check "CA key is encrypted PKCS#8" grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$DIR/ca.key"
check "CA key decrypts with its passphrase file" openssl pkey -in "$DIR/ca.key" -passin "file:$DIR/ca.key.pass" -noout
check "config parses with openssl's own parser" openssl req -config "$DIR/lockbox.conf" -new -x509 -key "$DIR/tls.key" -subj /CN=x -out /dev/null
check "schema versioned with user_version" test "$(sqlite3 "$DIR/lockbox.db" 'PRAGMA user_version')" -ge 1
check "admin.p12 opens with the passphrase of --p12-pass-file" openssl pkcs12 -in "$DIR/admin.p12" -passin "file:$PW" -nokeys -out /dev/null
check "no passphrase is written beside admin.p12" test ! -e "$DIR/admin.p12.pass"
expect_fail "init with neither --p12-pass-file nor a terminal is refused" "no passphrase" sh -c "$LOCKBOX init --dir '$T/nopass' --key-type ec-p256 </dev/null"
check "  ... before anything is written" test ! -e "$T/nopass"
check "TLS certificate verifies against the CA" openssl verify -CAfile "$DIR/ca.pem" -purpose sslserver "$DIR/tls.pem"
expect_code "init refuses to overwrite an existing CA" 1 $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256
check "CA key unchanged after refused init" openssl pkey -in "$DIR/ca.key" -passin "file:$DIR/ca.key.pass" -noout

# a failed init leaves nothing behind, so that a retry works
mkdir -p "$T/half/admin.p12"
expect_code "init fails when admin.p12 cannot be written" 1 $LOCKBOX init --p12-pass-file $PW --dir "$T/half" --key-type ec-p256
if [ -z "$(ls "$T/half" | grep -v '^admin.p12$')" ]; then ok "  ... and removes what it wrote"; else fail "  ... left $(ls "$T/half" | tr '\n' ' ')"; fi
rmdir "$T/half/admin.p12"
check "  ... so a retry succeeds" $LOCKBOX init --p12-pass-file $PW --dir "$T/half" --key-type ec-p256

# a signing certificate from a CSR whose subject and SAN must be ignored
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/alice.key" \
    -out "$T/alice.csr" -subj "/CN=Mallory/emailAddress=mallory@evil.example" \
    -addext "subjectAltName=email:mallory@evil.example" 2>/dev/null
serial=$($LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/alice.csr" --email alice@example.org --out "$T/alice.pem")
check "issue prints the serial" test -n "$serial"
check "issued certificate verifies (openssl verify -purpose smimesign)" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/alice.pem"
check "subject comes from --email, not the CSR" sh -c "openssl x509 -in '$T/alice.pem' -noout -subject | grep -q 'CN = alice@example.org'"
if openssl x509 -in "$T/alice.pem" -noout -text | grep -qi mallory; then fail "CSR identity leaked into the certificate"; else ok "CSR identity ignored"; fi
check "SAN is the rfc822Name" sh -c "openssl x509 -in '$T/alice.pem' -noout -ext subjectAltName | grep -q 'email:alice@example.org'"
check "signing certificate signs S/MIME that openssl cms verifies" sh -c "
    echo hello > '$T/msg.txt' &&
    openssl cms -sign -in '$T/msg.txt' -signer '$T/alice.pem' -inkey '$T/alice.key' -out '$T/msg.p7m' &&
    openssl cms -verify -in '$T/msg.p7m' -CAfile '$DIR/ca.pem' -out /dev/null"
check "the certificate is stored (list --email)" sh -c "$LOCKBOX list --dir '$DIR' --email alice@example.org | grep -q '$serial'"
check "show prints the serial and profile" sh -c "$LOCKBOX show --dir '$DIR' '$serial' | grep -q 'profile:     smime-sign'"
check "show --pem matches the issued certificate" sh -c "$LOCKBOX show --dir '$DIR' --pem '$serial' | openssl x509 | cmp - '$T/alice.pem'"
check "list --json is valid JSON" sh -c "$LOCKBOX list --dir '$DIR' --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert any(c[\"serial\"]==\"$serial\" for c in d)'"
check "DER CSR on standard input" sh -c "openssl req -in '$T/alice.csr' -outform DER | $LOCKBOX issue --dir '$DIR' --profile smime-sign --csr - --email bob@example.org | openssl verify -CAfile '$DIR/ca.pem'"

# issuance without escrow is refused for the encryption profile
expect_code "smime-enc without a key to escrow is refused" 2 $LOCKBOX issue --dir "$DIR" --profile smime-enc --csr "$T/alice.csr" --email alice@example.org
check "smime-enc refusal names escrow" grep -q "escrow" "$T/.out"
expect_code "smime-sign never takes a key (--keygen)" 2 $LOCKBOX issue --dir "$DIR" --profile smime-sign --keygen --out-p12 "$T/no.p12" --p12-pass-file $PW --email alice@example.org
check "  ... and wrote nothing" test ! -e "$T/no.p12"

# revocation
check "revoke with a reason" $LOCKBOX revoke --dir "$DIR" "$serial" --reason keyCompromise
check "list --status revoked shows it" sh -c "$LOCKBOX list --dir '$DIR' --status revoked | grep -q '$serial'"
check "show names the reason" sh -c "$LOCKBOX show --dir '$DIR' '$serial' | grep -q 'reason:      keyCompromise'"
expect_code "second revoke fails" 1 $LOCKBOX revoke --dir "$DIR" "$serial"
expect_code "unknown serial fails" 1 $LOCKBOX revoke --dir "$DIR" 0123456789ABCDEF
expect_code "unknown reason is a usage error" 2 $LOCKBOX revoke --dir "$DIR" "$serial" --reason unspecified

# operators and role separation
check "operator add --keygen (officer)" $LOCKBOX operator add --dir "$DIR" --role officer --keygen --out-p12 "$T/officer.p12" --p12-pass-file $PW --name "Olivia Officer" --email olivia@example.org
check "officer.p12 is 0600, and no passphrase beside it" sh -c "[ \"\$(stat -c %a '$T/officer.p12')\" = 600 ] && [ ! -e '$T/officer.p12.pass' ]"
n_ops=$(db_count "SELECT count(*) FROM operators")
cp "$T/officer.p12" "$T/officer.p12.orig"
expect_fail "operator add --keygen refuses an existing --out-p12" "already exists" $LOCKBOX operator add --dir "$DIR" --role auditor --keygen --out-p12 "$T/officer.p12" --p12-pass-file $PW --email aud@example.org
check "  ... leaves that file as it was and adds no operator" sh -c "cmp -s '$T/officer.p12' '$T/officer.p12.orig' && [ \$(sqlite3 '$DIR/lockbox.db' 'SELECT count(*) FROM operators') = $n_ops ]"
expect_fail "agent add --keygen is refused: the agent makes the key (exit 2)" "lockbox agent request" $LOCKBOX agent add --dir "$DIR" --keygen --out-p12 "$T/k.p12" --p12-pass-file $PW --email kim@example.org
expect_code "  ... a usage error" 2 $LOCKBOX agent add --dir "$DIR" --keygen --out-p12 "$T/k.p12" --p12-pass-file $PW --email kim@example.org
expect_fail "operator add --role recovery-officer --keygen is refused" "lockbox operator request" $LOCKBOX operator add --dir "$DIR" --role recovery-officer --keygen --out-p12 "$T/k.p12" --p12-pass-file $PW --email kim@example.org
check "  ... issuing nothing" sh -c "[ ! -e '$T/k.p12' ] && [ \$(sqlite3 '$DIR/lockbox.db' 'SELECT count(*) FROM operators') = $n_ops ]"
# a credential made on its holder's side: request, add --csr, install
check "agent request makes an encrypted key and a request" $LOCKBOX agent request --name "Kim Agent" --email kim@example.org --out-key "$T/kim.key" --out-csr "$T/kim.csr" --pass-file $PW
check "  ... the key 0600 and encrypted under the passphrase" sh -c "[ \"\$(stat -c %a '$T/kim.key')\" = 600 ] && grep -q 'BEGIN ENCRYPTED PRIVATE KEY' '$T/kim.key' && openssl pkey -in '$T/kim.key' -passin 'file:$PW' -noout"
check "  ... RSA-3072, the request for kim@example.org" sh -c "openssl req -in '$T/kim.csr' -verify -noout -text 2>/dev/null | grep -q 'Public-Key: (3072 bit)' && openssl req -in '$T/kim.csr' -noout -text | grep -q 'email:kim@example.org'"
cp "$T/kim.key" "$T/kim.key.orig"
expect_fail "agent request refuses to overwrite a key" "already exists" $LOCKBOX agent request --email kim@example.org --out-key "$T/kim.key" --out-csr "$T/kim2.csr" --pass-file $PW
check "  ... which stays as it was" cmp -s "$T/kim.key" "$T/kim.key.orig"
expect_fail "agent request with neither --pass-file nor a terminal is refused" "no passphrase" sh -c "$LOCKBOX agent request --email kim@example.org --out-key '$T/kim3.key' --out-csr '$T/kim3.csr' </dev/null"
check "  ... writing nothing" test ! -e "$T/kim3.key" -a ! -e "$T/kim3.csr"
check "agent add --csr certifies it" $LOCKBOX agent add --dir "$DIR" --csr "$T/kim.csr" --name "Kim Agent" --email kim@example.org --out "$T/kim.crt"
printf 'another passphrase\n' >"$T/wrong.pw"; chmod 600 "$T/wrong.pw"
expect_fail "agent install with the wrong passphrase is refused" "wrong passphrase" $LOCKBOX agent install --cert "$T/kim.crt" --key "$T/kim.key" --out-p12 "$T/kim.p12" --pass-file "$T/wrong.pw"
check "  ... writing nothing" test ! -e "$T/kim.p12"
expect_fail "agent install refuses a certificate of another key" "is not the certificate of the key" $LOCKBOX agent install --cert "$DIR/ca.pem" --key "$T/kim.key" --out-p12 "$T/kim.p12" --pass-file $PW
check "agent install writes the credential" $LOCKBOX agent install --cert "$T/kim.crt" --key "$T/kim.key" --out-p12 "$T/kim.p12" --pass-file $PW --ca-cert "$DIR/ca.pem"
check "  ... that opens under the key's passphrase, with the CA" sh -c "openssl pkcs12 -in '$T/kim.p12' -passin 'file:$PW' -nokeys 2>/dev/null | grep -c 'BEGIN CERTIFICATE' | grep -qx 2 && [ ! -e '$T/kim.p12.pass' ]"
expect_fail "agent install refuses to overwrite a credential" "already exists" $LOCKBOX agent install --cert "$T/kim.crt" --key "$T/kim.key" --out-p12 "$T/kim.p12" --pass-file $PW
check "officer credential opens" openssl pkcs12 -in "$T/officer.p12" -passin "file:$PW" -nokeys -out "$T/officer.pem"
check "officer credential is a client certificate of this CA" openssl verify -CAfile "$DIR/ca.pem" -purpose sslclient "$T/officer.pem"
$LOCKBOX operator request --email olivia@example.org --out-key "$T/olivia-ra.key" --out-csr "$T/olivia-ra.csr" --pass-file $PW >/dev/null
expect_code "role separation: officer may not become a recovery agent" 1 $LOCKBOX operator add --dir "$DIR" --role recovery-agent --csr "$T/olivia-ra.csr" --email olivia@example.org
openssl req -new -newkey rsa:3072 -nodes -keyout "$T/agent.key" -out "$T/agent.csr" -subj "/CN=x" 2>/dev/null
check "operator add --csr (recovery-agent, RSA-3072)" $LOCKBOX operator add --dir "$DIR" --role recovery-agent --csr "$T/agent.csr" --name "Rita Agent" --email rita@example.org --out "$T/agent.pem"
check "agent certificate carries the key recovery agent EKU" sh -c "openssl x509 -in '$T/agent.pem' -noout -text | grep -q '1.3.6.1.4.1.311.21.6'"
check "operator list shows both" sh -c "$LOCKBOX operator list --dir '$DIR' | grep -q olivia@example.org && $LOCKBOX operator list --dir '$DIR' | grep -q rita@example.org"
off_serial=$($LOCKBOX operator list --dir "$DIR" --json | python3 -c 'import json,sys; print([o["serial"] for o in json.load(sys.stdin) if o["email"]=="olivia@example.org"][0])')
check "operator remove" $LOCKBOX operator remove --dir "$DIR" "$off_serial"
check "removed operator's credential is revoked" sh -c "$LOCKBOX show --dir '$DIR' '$off_serial' | grep -q 'privilegeWithdrawn'"
check "after removal the e-mail may take a recovery role" add_recovery_officer "$DIR" "$T/ro.p12" olivia@example.org olivia@example.org

# the audit chain
check "audit verify passes" $LOCKBOX audit verify --dir "$DIR"
check "audit list --json names issue, revoke and operator rows" sh -c "$LOCKBOX audit list --dir '$DIR' --json | python3 -c '
import json,sys; a={r[\"action\"] for r in json.load(sys.stdin)}
assert {\"ca.init\",\"cert.issue\",\"cert.revoke\",\"operator.add\",\"operator.remove\"} <= a, a'"
# A row as lockbox wrote it before the actions were renamed (schema 005):
# its hash covers the old name "issue", computed here from the chain's
# definition (core/audit.c: SHA-256 over length-prefixed "id:ts", actor,
# action, object, detail, prev_hash).  It must verify as it stands and
# list under its new name, with the recorded one beside it.
check "a row with an action's old name, chained as lockbox chains rows" python3 - "$DIR/lockbox.db" <<'PY'
import hashlib, sqlite3, struct, sys, time
db = sqlite3.connect(sys.argv[1])
rid, prev = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
rid += 1
ts = int(time.time())
f = [f"{rid}:{ts}", "cli:legacy", "issue", "0A1B", "profile=smime-sign", prev]
h = hashlib.sha256(b"".join(struct.pack(">Q", len(x.encode())) + x.encode() for x in f)).hexdigest()
db.execute("INSERT INTO audit (id, created, actor, action, object, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (rid, ts, f[1], f[2], f[3], f[4], prev, h))
db.commit()
PY
check "  ... audit verify passes over it: the old rows stay as written" $LOCKBOX audit verify --dir "$DIR"
check "  ... audit list --json shows it as cert.issue, recorded as issue" sh -c "$LOCKBOX audit list --dir '$DIR' --json | python3 -c '
import json,sys; rows=json.load(sys.stdin); r=[r for r in rows if r[\"actor\"] == \"cli:legacy\"][0]
assert r[\"action\"] == \"cert.issue\" and r[\"recorded_action\"] == \"issue\", r
assert not any(\"recorded_action\" in x for x in rows if x is not r), rows'"
check "  ... and the text listing under its new name" sh -c "$LOCKBOX audit list --dir '$DIR' | grep cli:legacy | grep -q ' cert.issue '"
sqlite3 "$DIR/lockbox.db" "UPDATE audit SET detail = 'reason=superseded' WHERE action = 'cert.revoke' AND object = '$serial'"
bad=$(sqlite3 "$DIR/lockbox.db" "SELECT id FROM audit WHERE action = 'cert.revoke' AND object = '$serial'")
expect_code "audit verify fails on a tampered row" 1 $LOCKBOX audit verify --dir "$DIR"
check "audit verify names the first bad row" grep -q "row $bad" "$T/.out"
expect_code "audit with no subcommand is a usage error" 2 $LOCKBOX audit

# --help on every command: exit 0 and its usage
for c in init ca issue revoke list show operator audit serve; do
    expect_code "$c --help exits 0" 0 $LOCKBOX $c --help
    check "  ... showing its usage" grep -q "usage: lockbox $c" "$T/.out"
done
expect_code "unknown command is a usage error" 2 $LOCKBOX frobnicate

# LOCKBOX_DIR default
check "LOCKBOX_DIR selects the state directory" env LOCKBOX_DIR="$DIR" $LOCKBOX list --status revoked

# a subordinate CA signed by this one (via openssl as the parent)
SUB=$T/sub
check "init --subordinate writes a CSR" $LOCKBOX init --p12-pass-file $PW --dir "$SUB" --subordinate --key-type ec-p256 --name "Test Issuing CA"
check "subordinate CSR verifies" openssl req -in "$SUB/ca.csr" -verify -noout
cat > "$T/parent.cnf" <<'CNF'
[v3_sub]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
openssl req -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/root.key" \
    -out "$T/root.pem" -subj "/CN=Parent Root" -days 30 2>/dev/null
openssl x509 -req -in "$SUB/ca.csr" -CA "$T/root.pem" -CAkey "$T/root.key" -CAcreateserial \
    -days 20 -extfile "$T/parent.cnf" -extensions v3_sub -out "$T/sub.pem" 2>/dev/null
cat "$T/sub.pem" "$T/root.pem" > "$T/sub-chain.pem"
expect_fail "ca install refuses a certificate for another key" "is not for this CA's key" $LOCKBOX ca install --p12-pass-file $PW --dir "$SUB" "$T/root.pem"
check "ca install accepts the parent's signature" $LOCKBOX ca install --p12-pass-file $PW --dir "$SUB" "$T/sub-chain.pem"
check "subordinate issues" $LOCKBOX issue --dir "$SUB" --profile smime-sign --csr "$T/alice.csr" --email alice@example.org --out "$T/sub-alice.pem"
check "chain verifies to the parent root" openssl verify -CAfile "$T/root.pem" -untrusted "$SUB/ca.pem" -purpose smimesign "$T/sub-alice.pem"
exit 0
