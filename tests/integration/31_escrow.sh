#!/bin/bash
# 31_escrow.sh - archival of encryption keys through the CLI: recovery
# agents (--csr, and request/add/install), the escrow policy, issuance refused with too
# few agents, --keygen and --csr/--key archival, the CA-signed receipt
# checked with openssl cms, the issued key working with openssl cms, and a
# scan of the database files for the private key's bytes (DER and raw
# private scalar or exponent), which must never be there.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
$LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 >/dev/null || { fail "init"; exit 1; }
count() { sqlite3 "$DIR/lockbox.db" "SELECT (SELECT count(*) FROM certificates WHERE profile = 'smime-enc'), (SELECT count(*) FROM escrow_records)"; }

check "escrow policy says that none is in force" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^no escrow policy in force'"
expect_code "smime-enc with no escrow policy is refused" 1 $LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW
check "  ... naming 'lockbox escrow policy propose'" grep -q "lockbox escrow policy propose" "$T/.out"
check "  ... writing no certificate, record or file" sh -c "[ '$(count)' = '0|0' ] && [ ! -e '$T/alice.p12' ]"

openssl req -new -newkey rsa:3072 -nodes -keyout "$T/agent1.key" -out "$T/agent1.csr" -subj "/CN=ignored" 2>/dev/null
check "agent add --csr (RSA-3072, key never leaves the agent)" $LOCKBOX agent add --dir "$DIR" --csr "$T/agent1.csr" --name "Agent One" --email agent1@example.org --out "$T/agent1.pem"
check "agent certificate: clientAuth + key recovery agent EKU" sh -c "openssl x509 -in '$T/agent1.pem' -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication, 1.3.6.1.4.1.311.21.6'"
check "agent install takes an openssl-made key as well" $LOCKBOX agent install --cert "$T/agent1.pem" --key "$T/agent1.key" --out-p12 "$T/agent1.p12" --pass-file "$PW"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -out "$T/ecagent.csr" -subj "/CN=x" 2>/dev/null
expect_code "an EC agent key is refused (RSA >= 3072 only)" 1 $LOCKBOX agent add --dir "$DIR" --csr "$T/ecagent.csr" --name X --email x@example.org
check "agent request, add --csr, install" add_agent "$DIR" "$T/agent2.p12" "Agent Two" agent2@example.org
check "agent list shows both, active, with expiry" sh -c "$LOCKBOX agent list --dir '$DIR' | grep -c ' active ' | grep -qx 2"
expect_code "threshold 1 is a usage error (one agent is never enough)" 2 $LOCKBOX escrow policy propose --dir "$DIR" --threshold 1
expect_code "threshold 0 is a usage error" 2 $LOCKBOX escrow policy --dir "$DIR" --threshold 0
expect_fail "2 of 2 agents is refused (M + 1 agents at least)" "needs at least 3 agents" $LOCKBOX escrow policy propose --dir "$DIR" --threshold 2
check "a third agent (request, add, install)" add_agent "$DIR" "$T/agent3.p12" "Agent Three" agent3@example.org
check "escrow policy --threshold 2 makes a proposal, not a change" sh -c "$LOCKBOX escrow policy --dir '$DIR' --threshold 2 > '$T/prop' && grep -q '^lockbox escrow policy v1' '$T/prop' &&
    $LOCKBOX escrow policy --dir '$DIR' | grep -q '^no escrow policy in force'"
phash=$(tail -n1 "$T/prop")
check "  ... whose hash (its last line) is the SHA-256 of its document" sh -c "sed -n '1,/^\$/p' '$T/prop' | sed '\$d' | sha256sum | grep -q '^$phash '"
check "  ... and pending" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^pending: proposal v1: threshold 2 of 3 agents'"
expect_fail "a second proposal after the same policy is refused" "one policy has one successor" $LOCKBOX escrow policy propose --dir "$DIR" --threshold 2
expect_code "smime-enc while the proposal is pending is refused" 1 $LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW
for a in 1 2; do
    check "agent $a signs the proposal" $LOCKBOX escrow policy sign "$phash" --dir "$DIR" --cred "$T/agent$a.p12" --cred-pass-file "$PW" --home "$T/home$a" --yes
done
check "  ... and it waits for every member (the first policy)" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^no escrow policy in force'"
check "agent 3 signs: the policy is in force" sh -c "$LOCKBOX escrow policy sign '$phash' --dir '$DIR' --cred '$T/agent3.p12' --cred-pass-file '$PW' --home '$T/home3' --yes | grep -q 'now in force'"
check "escrow policy: policy v1: threshold 2 of 3 agents, its hash and signers" sh -c "$LOCKBOX escrow policy --dir '$DIR' > '$T/show' && grep -q '^policy v1: threshold 2 of 3 agents' '$T/show' && grep -q \"hash: $phash\" '$T/show' &&
    grep -q 'signers: .*agent1@example.org' '$T/show' && grep -q 'signers: .*agent2@example.org' '$T/show' && grep -q 'signers: .*agent3@example.org' '$T/show'"
check "each signer's client keeps its pin, 0600" sh -c "[ \"\$(stat -c %a '$T/home1/escrow-pin.json')\" = 600 ] && grep -q '\"first\": \"$phash\"' '$T/home1/escrow-pin.json'"

# --keygen, default rsa-3072
serial=$($LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW | tail -n1)
check "smime-enc --keygen issues and prints the serial" test -n "$serial"
check "alice.p12 is 0600, no passphrase beside it" sh -c "[ ! -e '$T/alice.p12.pass' ] && [ \"\$(stat -c %a '$T/alice.p12')\" = 600 ]"
n_rec=$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records")
expect_fail "issue --out-p12 refuses an existing file before issuing" "already exists" $LOCKBOX issue --dir "$DIR" --profile smime-enc --email alice@example.org --keygen --out-p12 "$T/alice.p12" --p12-pass-file $PW
check "  ... so no key is escrowed and lost" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records")" = "$n_rec"
expect_fail "issue --out-p12 with neither passphrase file nor terminal is refused" "no passphrase" sh -c "$LOCKBOX issue --dir '$DIR' --profile smime-enc --email alice@example.org --keygen --out-p12 '$T/alice-np.p12' </dev/null"
check "  ... before issuing anything" sh -c "[ ! -e '$T/alice-np.p12' ] && [ \$(sqlite3 '$DIR/lockbox.db' 'SELECT count(*) FROM escrow_records') = $n_rec ]"
openssl pkcs12 -in "$T/alice.p12" -passin "file:$PW" -nokeys -clcerts -out "$T/alice.pem" 2>/dev/null
openssl pkcs12 -in "$T/alice.p12" -passin "file:$PW" -nocerts -nodes -out "$T/alice.key" 2>/dev/null
check "the key is RSA-3072" sh -c "openssl pkey -in '$T/alice.key' -noout -text | grep -q 'Private-Key: (3072 bit'"
check "the certificate verifies for S/MIME encryption" openssl verify -CAfile "$DIR/ca.pem" -purpose smimeencrypt "$T/alice.pem"
check "openssl cms encrypt to it and decrypt with the key" sh -c "
    echo 'the secret plans' > '$T/msg' &&
    openssl cms -encrypt -binary -aes256 -in '$T/msg' -out '$T/msg.p7m' '$T/alice.pem' &&
    openssl cms -decrypt -binary -in '$T/msg.p7m' -inkey '$T/alice.key' -recip '$T/alice.pem' | cmp - '$T/msg'"
# a record as an older lockbox left it: under no signed policy
sqlite3 "$DIR/lockbox.db" "UPDATE escrow_records SET policy_hash = NULL WHERE serial = '$serial'"
check "escrow policy reports a record made before any signed policy as exposed" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep '^exposed: 1 escrow record' | grep -q '$serial'"
sqlite3 "$DIR/lockbox.db" "UPDATE escrow_records SET policy_hash = '$phash' WHERE serial = '$serial'"
check "  ... and none once it names its policy" sh -c "! $LOCKBOX escrow policy --dir '$DIR' | grep -q '^exposed:'"
check "the record names the policy it was escrowed under" test "$(sqlite3 "$DIR/lockbox.db" "SELECT policy_hash FROM escrow_records WHERE serial = '$serial'")" = "$phash"
check "escrow record and one share per agent of the policy" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT threshold || '/' || nshares FROM escrow_records WHERE serial = '$serial'\")\" = 2/3 ] &&
    [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM escrow_shares s JOIN escrow_records r ON r.id = s.record_id WHERE r.serial = '$serial'\")\" = 3 ]"
check "the receipt verifies against the CA (openssl cms)" sh -c "openssl cms -verify -inform DER -in '$T/alice.p12.receipt' -CAfile '$DIR/ca.pem' -purpose any -out '$T/receipt.txt'"
hash=$(sqlite3 "$DIR/lockbox.db" "SELECT record_sha256 FROM escrow_records WHERE serial = '$serial'")
check "the receipt names the serial and the stored record's SHA-256" sh -c "grep -q 'serial: $serial' '$T/receipt.txt' && grep -q 'record-sha256: $hash' '$T/receipt.txt'"
check "the stored receipt equals the one handed out" sh -c "sqlite3 '$DIR/lockbox.db' \"SELECT hex(receipt) FROM escrow_records WHERE serial = '$serial'\" | xxd -r -p | cmp - '$T/alice.p12.receipt'"
check "the share for agent 2 decrypts with agent 2's key only, and names its policy" sh -c "
    openssl pkcs12 -in '$T/agent2.p12' -passin 'file:$PW' -nodes -out '$T/agent2.pem' 2>/dev/null &&
    a2=\$(openssl x509 -in '$T/agent2.pem' -noout -serial | cut -d= -f2) &&
    sqlite3 '$DIR/lockbox.db' \"SELECT hex(cms) FROM escrow_shares WHERE agent_serial = '\$a2'\" | xxd -r -p > '$T/share2.der' &&
    openssl cms -decrypt -inform DER -in '$T/share2.der' -inkey '$T/agent2.pem' -recip '$T/agent2.pem' -binary -out '$T/share2.bin' &&
    [ \$(wc -c < '$T/share2.bin') = 97 ] && [ \"\$(tail -c 32 '$T/share2.bin' | xxd -p -c 64)\" = '$phash' ] &&
    ! openssl cms -decrypt -inform DER -in '$T/share2.der' -inkey '$T/agent1.key' -recip '$T/agent1.pem' -binary -out /dev/null 2>/dev/null"

# --keygen with the other key types
check "smime-enc --keygen --key-type ec-p256 (keyAgreement)" sh -c "$LOCKBOX issue --dir '$DIR' --profile smime-enc --email bob@example.org --keygen --key-type ec-p256 --out-p12 '$T/bob.p12' --p12-pass-file $PW >/dev/null &&
    openssl pkcs12 -in '$T/bob.p12' -passin 'file:$PW' -nokeys -clcerts | openssl x509 -noout -ext keyUsage | grep -q 'Key Agreement'"
check "smime-enc --keygen --key-type rsa-2048 --format legacy" sh -c "$LOCKBOX issue --dir '$DIR' --profile smime-enc --email carol@example.org --keygen --key-type rsa-2048 --format legacy --out-p12 '$T/carol.p12' --p12-pass-file $PW >/dev/null &&
    openssl pkcs12 -in '$T/carol.p12' -passin 'file:$PW' -info -noout 2>&1 | grep -q 'pbeWithSHA1And3-KeyTripleDES-CBC'"

# a client-made key handed in for archival
openssl req -new -newkey rsa:3072 -nodes -keyout "$T/dave.key" -out "$T/dave.csr" -subj "/CN=x" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other.key" 2>/dev/null
expect_code "--csr with a --key that is not the CSR's is refused" 1 $LOCKBOX issue --dir "$DIR" --profile smime-enc --email dave@example.org --csr "$T/dave.csr" --key "$T/other.key" --out "$T/dave.pem"
check "--csr + --key archives a client-made key" $LOCKBOX issue --dir "$DIR" --profile smime-enc --email dave@example.org --csr "$T/dave.csr" --key "$T/dave.key" --out "$T/dave.pem"
check "  ... with its receipt beside it" test -s "$T/dave.pem.receipt"

# one key, one purpose: a signing key is never escrowed, an escrowed key
# never certified for signing, whatever the CSR's encoding of it
db() { sqlite3 "$DIR/lockbox.db" "$1"; }
state() { db "SELECT count(*) FROM certificates; SELECT count(*) FROM escrow_records; SELECT count(*) FROM audit" | tr '\n' ' '; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/fay.key" -out "$T/fay.csr" -subj "/CN=fay" 2>/dev/null
FAYSIGN=$($LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/fay.csr" --email fay@example.org --out "$T/fay-sign.pem" 2>/dev/null | tail -n1)
$LOCKBOX revoke --dir "$DIR" "$FAYSIGN" --reason keyCompromise >/dev/null 2>&1
before=$(state)
expect_code "the signing key of fay's (revoked) smime-sign certificate is not escrowed" 1 $LOCKBOX issue --dir "$DIR" --profile smime-enc --email fay@example.org --csr "$T/fay.csr" --key "$T/fay.key" --out "$T/fay-enc.pem"
check "  ... naming the signing certificate" grep -q "certificate $FAYSIGN" "$T/.out"
check "  ... nothing issued, escrowed or audited" test "$(state)" = "$before"
check "  ... and no file written" test ! -e "$T/fay-enc.pem"
openssl req -new -key "$T/dave.key" -subj "/CN=dave" -out "$T/dave-sign.csr" 2>/dev/null
DAVEENC=$(openssl x509 -in "$T/dave.pem" -noout -serial | cut -d= -f2)
expect_code "dave's escrowed key is not certified for signing" 1 $LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/dave-sign.csr" --email dave@example.org --out "$T/dave-sign.pem"
check "  ... naming the encryption certificate" grep -q "certificate $DAVEENC" "$T/.out"
check "  ... nothing issued or audited" test "$(state)" = "$before"
openssl pkey -in "$T/dave.key" -pubout -out "$T/dave.pub" 2>/dev/null
openssl req -new -key "$T/dave.key" -subj "/CN=dave" -sigopt rsa_padding_mode:pss -out "$T/dave-pss.csr" 2>/dev/null
expect_code "  ... nor as an operator's credential (a CSR signed with RSA-PSS)" 1 $LOCKBOX operator add --dir "$DIR" --role officer --csr "$T/dave-pss.csr" --name Dave --email dave.officer@example.org
check "  ... nothing issued or audited" test "$(state)" = "$before"
check "each key's purpose is recorded once, for good" test "$(db "SELECT purpose FROM key_uses WHERE serial = '$FAYSIGN'")/$(db "SELECT purpose FROM key_uses WHERE serial = '$DAVEENC'")" = "signing/encryption"

# the database never holds plaintext key material
python3 - "$DIR" "$T/alice.key" "$T/dave.key" <<'PY' && ok "no private key bytes (DER, d, p, q) in lockbox.db / -wal" || fail "private key material found in the database files"
import subprocess, sys, glob, re
d = sys.argv[1]
blobs = b"".join(open(f, "rb").read() for f in glob.glob(d + "/lockbox.db*"))
needles = []
for k in sys.argv[2:]:
    der = subprocess.run(["openssl", "pkey", "-in", k, "-outform", "DER"], capture_output=True, check=True).stdout
    needles.append(("PKCS#8 DER of " + k, der))
    text = subprocess.run(["openssl", "pkey", "-in", k, "-noout", "-text"], capture_output=True, text=True, check=True).stdout
    for name in ("privateExponent", "prime1", "prime2"):
        m = re.search(name + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
        raw = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1))).lstrip(b"\0")
        needles.append((name + " of " + k, raw))
bad = [n for n, b in needles if b in blobs or b[:32] in blobs]
assert len(blobs) > 10000
assert not bad, bad
PY
python3 - "$DIR" "$T/bob.p12" <<'PY' && ok "no EC private scalar in lockbox.db / -wal" || fail "EC private scalar found in the database files"
import subprocess, sys, glob, re, os
d, p12 = sys.argv[1], sys.argv[2]
key = subprocess.run(["openssl", "pkcs12", "-in", p12, "-passin", "file:" + os.environ["PW"], "-nocerts", "-nodes"], capture_output=True, check=True).stdout
text = subprocess.run(["openssl", "pkey", "-noout", "-text"], input=key, capture_output=True, check=True).stdout.decode()
m = re.search(r"priv:\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
scalar = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1))).lstrip(b"\0")
blobs = b"".join(open(f, "rb").read() for f in glob.glob(d + "/lockbox.db*"))
assert len(scalar) >= 31 and scalar not in blobs
PY

# removing an agent keeps existing escrows; new ones go to the active set
a1=$(openssl x509 -in "$T/agent1.pem" -noout -serial | cut -d= -f2)
check "agent remove" $LOCKBOX agent remove --dir "$DIR" "$a1"
check "  ... keeps alice's three shares" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_shares s JOIN escrow_records r ON r.id = s.record_id WHERE r.serial = '$serial'")" = 3
expect_fail "  ... and new escrows wait for a policy without agent 1" "agent agent1@example.org of escrow policy v1 has no active credential" $LOCKBOX issue --dir "$DIR" --profile smime-enc --email erin@example.org --keygen --key-type ec-p256 --out-p12 "$T/erin.p12" --p12-pass-file $PW
check "a fourth agent (request, add, install)" add_agent "$DIR" "$T/agent4.p12" "Agent Four" agent4@example.org
check "policy v2 proposed: agents 2, 3 and 4" sh -c "$LOCKBOX escrow policy propose --dir '$DIR' --threshold 2 > '$T/prop2' && grep -q '^previous: $phash' '$T/prop2'"
hash2=$(tail -n1 "$T/prop2")
check "agent 2 (of v1) signs v2" $LOCKBOX escrow policy sign "$hash2" --dir "$DIR" --cred "$T/agent2.p12" --cred-pass-file "$PW" --home "$T/home2" --yes
check "agent 3 (of v1) signs v2" $LOCKBOX escrow policy sign "$hash2" --dir "$DIR" --cred "$T/agent3.p12" --cred-pass-file "$PW" --home "$T/home3" --yes
check "  ... which waits for the agent it adds (proof of possession)" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v1:'"
check "agent 4 signs: v2 is in force" sh -c "$LOCKBOX escrow policy sign '$hash2' --dir '$DIR' --cred '$T/agent4.p12' --cred-pass-file '$PW' --home '$T/home4' --yes | grep -q 'now in force' &&
    $LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v2: threshold 2 of 3 agents'"
check "  ... new escrows split among its three agents, under v2" sh -c "$LOCKBOX issue --dir '$DIR' --profile smime-enc --email erin@example.org --keygen --key-type ec-p256 --out-p12 '$T/erin.p12' --p12-pass-file $PW >/dev/null &&
    [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT nshares || ' ' || policy_hash FROM escrow_records WHERE email = 'erin@example.org'\")\" = '3 $hash2' ]"
check "audit rows for escrow and policy, chain intact" sh -c "$LOCKBOX audit list --dir '$DIR' > '$T/audit' && grep -q ' escrow.store ' '$T/audit' && grep -q escrow.policy_propose '$T/audit' &&
    grep -q escrow.policy_sign '$T/audit' && grep -q escrow.policy_in_force '$T/audit' && $LOCKBOX audit verify --dir '$DIR'"

# an agent going must not strand an escrow: alice's v1 record is held by
# agents 2 and 3 now (agent 1 removed), its threshold is 2
a2=$(openssl pkcs12 -in "$T/agent2.p12" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2)
audit_n() { sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit"; }
n0=$(audit_n)
expect_fail "agent remove is refused while it would leave alice's record below its threshold" "[0-9]+ escrow record\\(s\\) that would be left with fewer shares held by active agents than their threshold \\(the first, $serial: 1 of 2\\)" \
    $LOCKBOX agent remove --dir "$DIR" "$a2"
expect_fail "  ... so is revoking its credential (superseded)" "lockbox escrow reshare" $LOCKBOX revoke --dir "$DIR" "$a2" --reason superseded
check "  ... agent 2 is still active and its credential valid, no audit row" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT o.status || ' ' || c.status FROM operators o JOIN certificates c ON c.serial = o.serial WHERE o.serial = '$a2'\")\" = 'active valid' ] && [ \$(sqlite3 '$DIR/lockbox.db' 'SELECT count(*) FROM audit') = $n0 ]"
check "escrow status: every record recoverable by the active agents" sh -c "$LOCKBOX escrow status --dir '$DIR' > '$T/st1' && grep -Eq '^escrow records: ([0-9]+), recoverable by the active agents: \\1\$' '$T/st1' && ! grep -q 'not recoverable' '$T/st1'"
check "a keyCompromise revocation goes through, warning with the record to reshare" sh -c "$LOCKBOX revoke --dir '$DIR' '$a2' --reason keyCompromise 2>'$T/kc.err' | grep -q '^revoked' && grep -q 'warning: [0-9]* escrow record(s) (the first $serial)' '$T/kc.err' && grep -q 'lockbox escrow reshare' '$T/kc.err'"
check "escrow status: v1's records are no longer recoverable, alice's named; v2's are" sh -c "$LOCKBOX escrow status --dir '$DIR' > '$T/st2' &&
    grep -Eq '^policy v1 \\([0-9a-f]{16}\\): [0-9]+ record\\(s\\), 0 recoverable by the active agents\$' '$T/st2' &&
    grep -q '^  not recoverable .*$serial' '$T/st2' &&
    grep -Eq '^policy v2 \\([0-9a-f]{16}\\): 1 record\\(s\\), 1 recoverable by the active agents\$' '$T/st2'"
expect_code "escrow status takes no arguments" 2 $LOCKBOX escrow status --dir "$DIR" extra
exit 0
