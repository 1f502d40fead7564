#!/bin/bash
# 11_bad_input.sh - bad input gets a clear one-line error, exit 1 (or 2 for
# usage), and changes nothing: malformed and oversized CSRs, bad
# signatures, refused keys, bad e-mail addresses, unknown profiles, missing
# individual names, broken and oversized configs.  Runs the ASan/UBSan
# build of lockbox when there is one, so the parsers run under sanitizers.
. "$SRC/tests/integration/lib.sh"

LB=${LOCKBOX_ASAN:-$LOCKBOX}
[ -x "$LB" ] || LB=$LOCKBOX
DIR=$T/ca
$LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 >/dev/null || { fail "init"; exit 1; }
state() { sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates; SELECT count(*) FROM audit" | tr '\n' ' '; }
before=$(state)

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k.pem" -out "$T/good.csr" -subj /CN=x 2>/dev/null
openssl req -in "$T/good.csr" -outform DER -out "$T/good.der"
head -c "$(( $(wc -c <"$T/good.der") - 10 ))" "$T/good.der" > "$T/trunc.der"
head -n 3 "$T/good.csr" > "$T/trunc.pem"
cat "$T/good.der" /dev/urandom 2>/dev/null | head -c "$(( $(wc -c <"$T/good.der") + 7 ))" > "$T/trailing.der"
head -c 4096 /dev/urandom > "$T/random.bin"
: > "$T/empty"
# flip one byte near the end (inside the signature) of the DER request
python3 - "$T/good.der" "$T/badsig.der" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[-5] ^= 0x01
open(sys.argv[2], 'wb').write(d)
PY
python3 -c "print('-----BEGIN CERTIFICATE REQUEST-----'); print(('A'*64+'\n')*1100, end=''); print('-----END CERTIFICATE REQUEST-----')" > "$T/huge.pem"
openssl req -new -newkey rsa:1024 -nodes -keyout /dev/null -out "$T/rsa1024.csr" -subj /CN=x 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -keyout /dev/null -out "$T/p521.csr" -subj /CN=x 2>/dev/null
openssl req -new -newkey ed25519 -nodes -keyout /dev/null -out "$T/ed25519.csr" -subj /CN=x 2>/dev/null

issue() { $LB issue --dir "$DIR" --profile smime-sign --email alice@example.org --csr "$@"; }
one_line() { [ "$(wc -l < "$T/.out")" -eq 1 ] && grep -q '^lockbox: ' "$T/.out"; }

for f in empty random.bin trunc.der trunc.pem trailing.der; do
    expect_code "malformed CSR ($f) refused" 1 issue "$T/$f"
    check "  ... with one clear line" one_line
done
expect_code "CSR with a broken signature refused" 1 issue "$T/badsig.der"
check "  ... naming the signature" grep -q "signature" "$T/.out"
expect_code "oversized CSR refused" 1 issue "$T/huge.pem"
check "  ... naming the size" grep -q "larger than" "$T/.out"
expect_code "missing CSR file refused" 1 issue "$T/nonexistent"
expect_code "a directory as CSR refused" 1 issue "$T"
expect_code "RSA-1024 key refused" 1 issue "$T/rsa1024.csr"
check "  ... naming what the profile accepts" grep -q "accepts" "$T/.out"
expect_code "P-521 key refused" 1 issue "$T/p521.csr"
expect_code "Ed25519 key refused" 1 issue "$T/ed25519.csr"
for e in alice a@ @example.org "a b@example.org" "a@b@example.org" "alice@exa mple.org" "alice@-example.org" "al..ice@example.org" ""; do
    expect_code "e-mail '$e' refused" 1 $LB issue --dir "$DIR" --profile smime-sign --email "$e" --csr "$T/good.csr"
done
expect_code "unknown profile refused" 1 $LB issue --dir "$DIR" --profile smime-everything --email alice@example.org --csr "$T/good.csr"
check "  ... listing the known profiles" grep -q "smime-sign" "$T/.out"
expect_code "operator profile not issued by 'issue'" 1 $LB issue --dir "$DIR" --profile operator --email alice@example.org --csr "$T/good.csr"
expect_code "missing --email is a usage error" 2 $LB issue --dir "$DIR" --profile smime-sign --csr "$T/good.csr"
expect_code "too long a validity refused" 1 $LB issue --dir "$DIR" --profile smime-sign --email alice@example.org --csr "$T/good.csr" --days 400

# individual validation: names become required
cp -a "$DIR" "$T/ind"
python3 - "$T/ind/lockbox.conf" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
s = s.replace("[profile.smime-sign]\nvalidity_days = 365\nvalidation = mailbox", "[profile.smime-sign]\nvalidity_days = 365\nvalidation = individual")
open(p, 'w').write(s)
PY
expect_code "individual profile without names refused" 1 $LB issue --dir "$T/ind" --profile smime-sign --email alice@example.org --csr "$T/good.csr"
check "individual profile with names issues" sh -c "$LB issue --dir '$T/ind' --profile smime-sign --email alice@example.org --given-name Alice --surname Liddell --csr '$T/good.csr' > '$T/ind.pem'"
check "  ... subject givenName, surname, CN" sh -c "openssl x509 -in '$T/ind.pem' -noout -subject -nameopt RFC2253 | grep -q 'CN=Alice Liddell,SN=Liddell,GN=Alice'"
check "  ... individual strict policy" sh -c "openssl x509 -in '$T/ind.pem' -noout -text | grep -q 2.23.140.1.5.4.3"

# broken configuration: a clear error naming the line, nothing written
cp -a "$DIR" "$T/badconf"
printf '[ca\nname = x\n' >> "$T/badconf/lockbox.conf"
expect_code "broken config refused" 1 $LB list --dir "$T/badconf"
check "  ... naming the line" grep -q "line" "$T/.out"
cp -a "$DIR" "$T/bigconf"
head -c 1100000 /dev/zero | tr '\0' '#' >> "$T/bigconf/lockbox.conf"
expect_code "oversized config refused" 1 $LB list --dir "$T/bigconf"
cp -a "$DIR" "$T/badval"
sed -i 's/^validity_days = 365$/validity_days = 900/' "$T/badval/lockbox.conf"
expect_code "subscriber validity over 825 days refused" 1 $LB list --dir "$T/badval"
sed -i 's/^validity_days = 900$/validity_days = lots/' "$T/badval/lockbox.conf"
expect_code "non-numeric setting refused" 1 $LB list --dir "$T/badval"
expect_code "missing state directory: clear error" 1 $LB list --dir "$T/nothing-here"
check "  ... pointing at init" grep -q "lockbox init" "$T/.out"

after=$(state)
if [ "$before" = "$after" ]; then ok "nothing was written by any refused command ($after)"; else fail "database changed: $before -> $after"; fi
check "audit chain intact" $LOCKBOX audit verify --dir "$DIR"
exit 0
