#!/bin/bash
# 50_est.sh - the EST server (RFC 7030 / RFC 8951) in token mode, driven
# by curl and openssl as an EST client would (the lockbox CLI only for the
# administrator's steps: init, recovery agents, tokens, approval, show):
# cacerts and csrattrs without credentials; simpleenroll by one-time token
# (identity from the token, never from the CSR), a spent, wrong or missing
# token refused with 401 and the Basic realm, the per-user backoff (429 with
# Retry-After); the unlabelled path meaning smime-sign; simplereenroll by
# the current certificate over TLS (renew and rekey, the old one superseded
# and no longer usable, a CSR naming someone else refused); serverkeygen on
# smime-enc (multipart/mixed, key matching the certificate and escrowed,
# or enveloped to the user's key-transport certificate when the CSR names
# one); approval = manual (202, approve, deny); limits and malformed
# bodies; and the autoenrollment policy with its ETag.
# The daemon runs from the ASan build when one is there (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

asan_serve
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }

# status, header, b64der, certs_of, serial_of, san_of, csr: lib.sh
ncerts() { grep -c 'BEGIN CERTIFICATE' "$1"; }
subject_of() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253; }
field() { $LOCKBOX show --dir "$DIR" --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
pubkey() { openssl pkey -pubin -in "$1" -pubout 2>/dev/null || openssl x509 -in "$1" -noout -pubkey; }
same_key() { # CERT KEYFILE [DER]: the certificate's public key is KEYFILE's
    local f=PEM; [ "${3:-}" = DER ] && f=DER
    [ "$(openssl x509 -in "$1" -noout -pubkey)" = "$(openssl pkey -inform $f -in "$2" -pubout)" ]
}
# is: DESC SQL WANT: the query on lockbox.db gives WANT (shows what it gave)
is() { local got; got=$(sqlite3 "$DIR/lockbox.db" "$2"); if [ "$got" = "$3" ]; then ok "$1"; else fail "$1 (got '$got', want '$3')"; fi; }
# csr_with NAME KEY SUBJ [REQ-ARGS...]: a CSR of an existing key.
csr_with() {
    local n=$1 k=$2 s=$3; shift 3
    openssl req -new -key "$k" -subj "$s" -outform DER -out "$T/$n.der" "$@" 2>/dev/null && base64 "$T/$n.der" >"$T/$n.b64"
}
token() { # WHO PROFILES [DIR]: a token for WHO@example.org in $T/WHO.tok
    $LOCKBOX token create --dir "${3:-$DIR}" --email "$1@example.org" --profiles "$2" | tail -n1 >"$T/$1.tok"
}
tok() { cat "$T/$1.tok"; }

# --- the CA, its recovery agents, the daemon -----------------------------------
est_ca "EST Test CA" "three recovery agents and their 2-of-3 escrow policy (for smime-enc)"

serve_up "$DIR" "$P1" "$T/serve.log" "daemon listening"
PID=$SERVE_PID
EST=https://127.0.0.1:$P1/.well-known/est
CA=(--cacert "$DIR/ca.pem")
P10=(-H 'Content-Type: application/pkcs10')

# --- cacerts and csrattrs: no credentials ----------------------------------------
openssl x509 -in "$DIR/ca.pem" -outform DER -out "$T/ca.der"
status 200 "GET cacerts without credentials" "${CA[@]}" "$EST/cacerts"
check "  ... Content-Type application/pkcs7-mime" header content-type 'application/pkcs7-mime(; *smime-type=certs-only)?'
check "  ... Content-Transfer-Encoding: base64" header content-transfer-encoding base64
check "  ... a certs-only CMS holding exactly the CA certificate" sh -c "$(declare -f b64der certs_of ncerts); T='$T'; certs_of '$T/body' '$T/cacerts.pem' && [ \$(ncerts '$T/cacerts.pem') = 1 ] && openssl x509 -in '$T/cacerts.pem' -outform DER | cmp - '$T/ca.der'"
status 200 "GET smime-enc/cacerts (labelled)" "${CA[@]}" "$EST/smime-enc/cacerts"
status 200 "GET csrattrs without credentials" "${CA[@]}" "$EST/csrattrs"
check "  ... Content-Type application/csrattrs" header content-type 'application/csrattrs'
check "  ... Content-Transfer-Encoding: base64" header content-transfer-encoding base64
check "  ... a DER SEQUENCE openssl asn1parse reads" sh -c "tr -d '\r\n' <'$T/body' | base64 -d >'$T/csrattrs.der' && openssl asn1parse -inform DER -in '$T/csrattrs.der' >'$T/csrattrs.txt' && head -n1 '$T/csrattrs.txt' | grep -q SEQUENCE"
check "  ... naming a key type and extensionRequest" sh -c "grep -qE 'id-ecPublicKey|rsaEncryption' '$T/csrattrs.txt' && grep -q 'Extension Request' '$T/csrattrs.txt'"

# --- simpleenroll by token ---------------------------------------------------------
token alice smime-sign,smime-enc
check "token for alice printed alone on the last line" grep -qE '^lbt-[A-Za-z0-9_-]{43}$' "$T/alice.tok"
csr alice "/CN=Mallory/emailAddress=mallory@evil.example" -addext subjectAltName=email:mallory@evil.example
status 200 "simpleenroll (smime-sign) by alice's token" "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
check "  ... Content-Type application/pkcs7-mime; smime-type=certs-only" header content-type 'application/pkcs7-mime; *smime-type=certs-only'
check "  ... Content-Transfer-Encoding: base64" header content-transfer-encoding base64
check "  ... one certificate" sh -c "$(declare -f b64der certs_of ncerts); T='$T'; certs_of '$T/body' '$T/alice.pem' && [ \$(ncerts '$T/alice.pem') = 1 ]"
check "  ... of the CSR's key" same_key "$T/alice.pem" "$T/alice.key"
check "  ... SAN is the token's e-mail, not the CSR's" test "$(san_of "$T/alice.pem")" = "email:alice@example.org"
check "  ... the subject names alice, not mallory" sh -c "s=\$(openssl x509 -in '$T/alice.pem' -noout -subject); echo \"\$s\" | grep -q 'alice@example.org' && ! echo \"\$s\" | grep -qi mallory"
check "  ... openssl verify -CAfile (S/MIME signing)" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/alice.pem"
ALICE1=$(serial_of "$T/alice.pem")
check "  ... stored as smime-sign for alice, valid" test "$(field "$ALICE1" profile)/$(field "$ALICE1" email)/$(field "$ALICE1" status)" = "smime-sign/alice@example.org/valid"
csr alice2 "/CN=x"
status 401 "the same token again for smime-sign: spent (401)" "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"
check "  ... with WWW-Authenticate: Basic realm=" header www-authenticate 'Basic realm=.*'
check "  ... text/plain" header content-type 'text/plain.*'

token bob smime-sign
status 401 "a wrong token (401)" --interface 127.0.0.2 "${CA[@]}" "${P10[@]}" -u "bob@example.org:lbt-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"
check "  ... with WWW-Authenticate: Basic realm=" header www-authenticate 'Basic realm="[^"]+".*'
check "  ... says only 'authentication failed'" grep -qx 'authentication failed' "$T/body"
check "  ... audited as enroll.auth_fail for bob, without the secret" sh -c "[ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM audit WHERE action = 'enroll.auth_fail' AND object = 'bob@example.org'\")\" = 1 ] && ! sqlite3 '$DIR/lockbox.db' .dump | grep -q lbt-AAAAAAAA"
status 401 "bob's token under another e-mail (401)" --interface 127.0.0.2 "${CA[@]}" "${P10[@]}" -u "zoe@example.org:$(tok bob)" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"
status 401 "no credentials at all (401)" --interface 127.0.0.3 "${CA[@]}" "${P10[@]}" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"
check "  ... with WWW-Authenticate: Basic realm=" header www-authenticate 'Basic realm="[^"]+".*'
status 401 "a malformed Authorization header (401)" --interface 127.0.0.3 "${CA[@]}" "${P10[@]}" -H 'Authorization: Basic !!!' --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"

# --- unlabelled path = smime-sign ---------------------------------------------------
csr bob "/CN=bob"
status 200 "unlabelled simpleenroll by bob's token" "${CA[@]}" "${P10[@]}" -u "bob@example.org:$(tok bob)" --data-binary @"$T/bob.b64" "$EST/simpleenroll"
check "  ... a certificate for bob" sh -c "$(declare -f b64der certs_of); T='$T'; certs_of '$T/body' '$T/bob.pem'"
BOB1=$(serial_of "$T/bob.pem" 2>/dev/null)
check "  ... stored under profile smime-sign" test "$(field "$BOB1" profile)" = smime-sign
status 401 "  ... which spent bob's smime-sign token (labelled path: 401)" "${CA[@]}" "${P10[@]}" -u "bob@example.org:$(tok bob)" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"

# --- a withdrawn token: refused, listed as withdrawn; token revoke is its alias ---
token wendy smime-sign
WID=$(sqlite3 "$DIR/lockbox.db" "SELECT id FROM enroll_tokens WHERE email = 'wendy@example.org'")
check "token withdraw ID" sh -c "$LOCKBOX token withdraw --dir '$DIR' $WID | grep -qx 'token $WID withdrawn'"
status 401 "  ... the withdrawn token cannot enroll (401)" --interface 127.0.0.4 "${CA[@]}" "${P10[@]}" -u "wendy@example.org:$(tok wendy)" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"
check "  ... token list says withdrawn, and by whom" sh -c "$LOCKBOX token list --dir '$DIR' | grep -E '^$WID	wendy@example.org	' | grep -qE '	withdrawn [0-9TZ:-]+ by local:'"
check "  ... audited as token.withdraw" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit WHERE action = 'token.withdraw' AND object = 'wendy@example.org'")" = 1
expect_code "  ... withdrawing it again fails" 1 $LOCKBOX token withdraw --dir "$DIR" "$WID"
check "  ... and changes nothing" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit WHERE action = 'token.withdraw' AND object = 'wendy@example.org'")" = 1
token walt smime-sign
WID=$(sqlite3 "$DIR/lockbox.db" "SELECT id FROM enroll_tokens WHERE email = 'walt@example.org'")
check "token revoke ID, the older name, withdraws too" sh -c "$LOCKBOX token revoke --dir '$DIR' $WID >/dev/null && $LOCKBOX token list --dir '$DIR' | grep -E '^$WID	' | grep -q '	withdrawn '"
status 401 "  ... and that token cannot enroll either (401)" --interface 127.0.0.4 "${CA[@]}" "${P10[@]}" -u "walt@example.org:$(tok walt)" --data-binary @"$T/alice2.b64" "$EST/smime-sign/simpleenroll"

# --- the per-user backoff ---------------------------------------------------------
token carol smime-sign
csr carol "/CN=carol"
for i in 1 2 3 4 5; do
    status 401 "carol, wrong token $i of 5 (401)" --interface 127.0.0.5 "${CA[@]}" "${P10[@]}" -u "carol@example.org:lbt-wrong$i" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
done
status 429 "6th try, even with the right token: 429" --interface 127.0.0.5 "${CA[@]}" "${P10[@]}" -u "carol@example.org:$(tok carol)" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
check "  ... with Retry-After: 1 (the first window)" header retry-after 1
check "  ... text/plain saying to wait" sh -c "grep -qi '^content-type: text/plain' '$T/headers' && grep -q 'too many failed attempts' '$T/body'"
sleep 1.2
status 401 "after the window one more wrong token is checked (401)" --interface 127.0.0.5 "${CA[@]}" "${P10[@]}" -u "carol@example.org:lbt-wrong6" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
status 429 "  ... and the window doubles: 429" --interface 127.0.0.5 "${CA[@]}" "${P10[@]}" -u "carol@example.org:$(tok carol)" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
check "  ... with Retry-After: 2" header retry-after 2
status 429 "  ... the count is per user: from another address too" --interface 127.0.0.6 "${CA[@]}" "${P10[@]}" -u "carol@example.org:$(tok carol)" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
sleep 2.5
status 200 "after Retry-After, the right token works" --interface 127.0.0.6 "${CA[@]}" "${P10[@]}" -u "carol@example.org:$(tok carol)" --data-binary @"$T/carol.b64" "$EST/smime-sign/simpleenroll"
check "  ... carol's certificate" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/body' '$T/carol.pem' && [ \"\$(san_of '$T/carol.pem')\" = email:carol@example.org ]"

# --- simplereenroll by the certificate over TLS --------------------------------------
ALICE_TLS=(--cert "$T/alice.pem" --key "$T/alice.key")
csr_with alice-renew "$T/alice.key" "/CN=alice@example.org"
status 200 "simplereenroll, same key (renew), by alice's certificate" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-renew.b64" "$EST/smime-sign/simplereenroll"
check "  ... certs-only, base64" sh -c "grep -qiE '^content-type: application/pkcs7-mime; *smime-type=certs-only$' '$T/headers' && grep -qiE '^content-transfer-encoding: base64$' '$T/headers'"
check "  ... a new certificate" sh -c "$(declare -f b64der certs_of); T='$T'; certs_of '$T/body' '$T/alice-r.pem'"
ALICE2=$(serial_of "$T/alice-r.pem" 2>/dev/null)
check "  ... a new serial, the same key, the same SAN and subject" sh -c "[ '$ALICE2' != '$ALICE1' ] && $(declare -f same_key san_of subject_of); same_key '$T/alice-r.pem' '$T/alice.key' && [ \"\$(san_of '$T/alice-r.pem')\" = \"\$(san_of '$T/alice.pem')\" ] && [ \"\$(subject_of '$T/alice-r.pem')\" = \"\$(subject_of '$T/alice.pem')\" ]"
check "  ... verifies against the CA" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/alice-r.pem"
check "  ... the old one is superseded in lockbox show" test "$(field "$ALICE1" status)" = superseded
check "  ... and in lockbox list" sh -c "$LOCKBOX list --dir '$DIR' --email alice@example.org | grep '$ALICE1' | grep -q superseded"
check "  ... lockbox list --status superseded finds it, and not its successor" sh -c "out=\$($LOCKBOX list --dir '$DIR' --status superseded) && echo \"\$out\" | grep -q '$ALICE1' && ! echo \"\$out\" | grep -q '$ALICE2'"
check "  ... --status valid finds the successor, not it" sh -c "out=\$($LOCKBOX list --dir '$DIR' --status valid) && echo \"\$out\" | grep -q '$ALICE2' && ! echo \"\$out\" | grep -q '$ALICE1'"
expect_code "lockbox list --status with an unknown status is a usage error" 2 $LOCKBOX list --dir "$DIR" --status bogus
check "  ... not revoked (no revocation time or reason)" test "$(sqlite3 "$DIR/lockbox.db" "SELECT COALESCE(revoked, '') || COALESCE(reason, '') FROM certificates WHERE serial = '$ALICE1'" 2>/dev/null)" = ""
check "  ... OCSP (openssl ocsp) still says good" sh -c "openssl ocsp -issuer '$DIR/ca.pem' -cert '$T/alice.pem' -url 'http://127.0.0.1:$P2/ocsp' -CAfile '$DIR/ca.pem' 2>&1 | grep -q '^$T/alice.pem: good'"
check "  ... linked to its successor" test "$(sqlite3 "$DIR/lockbox.db" "SELECT superseded_by FROM certificates WHERE serial = '$ALICE1'")" = "$ALICE2"
status 401 "the superseded certificate no longer authenticates (401)" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-renew.b64" "$EST/smime-sign/simplereenroll"

ALICE_TLS=(--cert "$T/alice-r.pem" --key "$T/alice.key")
csr alice-rekey "/"
status 200 "simplereenroll, new key (rekey), empty subject" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-rekey.b64" "$EST/smime-sign/simplereenroll"
check "  ... the new certificate has the new key and alice's identity" sh -c "$(declare -f b64der certs_of same_key san_of); T='$T'; certs_of '$T/body' '$T/alice-k.pem' && same_key '$T/alice-k.pem' '$T/alice-rekey.key' && [ \"\$(san_of '$T/alice-k.pem')\" = email:alice@example.org ]"
ALICE3=$(serial_of "$T/alice-k.pem" 2>/dev/null)
check "  ... the renewed one is superseded in its turn" test "$(field "$ALICE2" status)" = superseded
ALICE_TLS=(--cert "$T/alice-k.pem" --key "$T/alice-rekey.key")

csr_with alice-bobcn "$T/alice-rekey.key" "/CN=bob@example.org"
status 400 "simplereenroll with a CSR whose subject names bob (400)" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-bobcn.b64" "$EST/smime-sign/simplereenroll"
check "  ... text/plain, saying another identity" sh -c "grep -qi '^content-type: text/plain' '$T/headers' && grep -qi 'another identity' '$T/body'"
csr_with alice-bobsan "$T/alice-rekey.key" "/CN=alice@example.org" -addext subjectAltName=email:bob@example.org
status 400 "simplereenroll with a CSR whose SAN names bob (400)" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-bobsan.b64" "$EST/smime-sign/simplereenroll"
csr_with alice-mail "$T/alice-rekey.key" "/emailAddress=bob@example.org"
status 400 "simplereenroll with a CSR whose emailAddress names bob (400)" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-mail.b64" "$EST/smime-sign/simplereenroll"
check "alice's current certificate is still valid after the refusals" test "$(field "$ALICE3" status)" = valid

# another user's certificate without its key: curl presents bob's
# certificate and signs the handshake with alice's key (mismatched_key);
# only the server's check of that signature stands in the way.  It must
# end the handshake (curl exit 35 or 52/56, no HTTP status), issue
# nothing, and go on serving.  With bob's own certificate and key the
# renewal is bob's, whatever the CSR says.
check "a key file with alice's private key and bob's public key" mismatched_key "$T/bob.pem" "$T/alice-rekey.key" "$T/bob-alice.key"
BOBCERTS=$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'bob@example.org'")
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${CA[@]}" --cert "$T/bob.pem" --key "$T/bob-alice.key" "${P10[@]}" --data-binary @"$T/alice-rekey.b64" "$EST/smime-sign/simplereenroll"); crc=$?
case $crc in 35|52|56) refused=yes ;; *) refused=no ;; esac
if [ "$code" = 000 ] && [ $refused = yes ]; then ok "bob's certificate, the handshake signed with alice's key: the server ends the TLS handshake (curl exit $crc)"; else
    fail "bob's certificate, the handshake signed with alice's key: the server ends the TLS handshake (HTTP $code, curl exit $crc)"; fi
check "  ... the daemon lives on" kill -0 "$PID"
check "  ... nothing was issued to bob" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'bob@example.org'")" = "$BOBCERTS"
csr_with bob-as-alice "$T/bob.key" "/CN=alice@example.org" -addext subjectAltName=email:alice@example.org
status 400 "bob's certificate renewing into alice (CSR names alice): 400" "${CA[@]}" --cert "$T/bob.pem" --key "$T/bob.key" "${P10[@]}" --data-binary @"$T/bob-as-alice.b64" "$EST/smime-sign/simplereenroll"
csr_with bob-renew "$T/bob.key" "/"
status 200 "bob's certificate renews bob (empty-subject CSR)" "${CA[@]}" --cert "$T/bob.pem" --key "$T/bob.key" "${P10[@]}" --data-binary @"$T/bob-renew.b64" "$EST/smime-sign/simplereenroll"
check "  ... the new certificate is bob's" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/body' '$T/bob-r.pem' && [ \"\$(san_of '$T/bob-r.pem')\" = email:bob@example.org ] && openssl x509 -in '$T/bob-r.pem' -noout -subject | grep -q bob@example.org"
status 401 "simplereenroll without a client certificate (401)" --interface 127.0.0.7 "${CA[@]}" "${P10[@]}" --data-binary @"$T/alice-rekey.b64" "$EST/smime-sign/simplereenroll"
check "  ... with WWW-Authenticate: Basic realm=" header www-authenticate 'Basic realm=.*'
token dan smime-sign
status 401 "simplereenroll with a token instead of a certificate (401)" --interface 127.0.0.7 "${CA[@]}" "${P10[@]}" -u "dan@example.org:$(tok dan)" --data-binary @"$T/alice-rekey.b64" "$EST/smime-sign/simplereenroll"

# --- smime-enc: serverkeygen ---------------------------------------------------------
csr alice-enccsr "/CN=alice"
status 400 "simpleenroll on smime-enc (400)" "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice-enccsr.b64" "$EST/smime-enc/simpleenroll"
check "  ... the body points at serverkeygen" grep -q 'serverkeygen' "$T/body"

# parts FILE: splits the multipart/mixed answer ($T/headers, $T/body) into
# $T/part.N.hdr / $T/part.N.body; prints the number of parts.
parts() {
    python3 - "$T" <<'PY'
import re, sys
t = sys.argv[1]
h = open(t + "/headers").read()
m = re.search(r'(?im)^content-type:\s*multipart/mixed\s*;\s*boundary="?([^";\s]+)"?', h)
if not m:
    print(0); sys.exit(1)
b = ("--" + m.group(1)).encode()
body = open(t + "/body", "rb").read()
chunks = body.split(b)
n = 0
for c in chunks[1:]:
    if c.startswith(b"--"):
        break
    c = c.lstrip(b"\r\n") if c.startswith(b"\r\n") or c.startswith(b"\n") else c
    hdr, _, rest = c.replace(b"\r\n", b"\n").partition(b"\n\n")
    n += 1
    open("%s/part.%d.hdr" % (t, n), "wb").write(hdr + b"\n")
    open("%s/part.%d.body" % (t, n), "wb").write(rest)
print(n)
PY
}
phdr() { grep -qiE "^$2: $3\$" "$T/part.$1.hdr"; }

status 200 "serverkeygen on smime-enc by alice's token" "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice-enccsr.b64" "$EST/smime-enc/serverkeygen"
check "  ... Content-Type multipart/mixed with a boundary" header content-type 'multipart/mixed; *boundary=.+'
check "  ... two parts" test "$(parts)" = 2
check "  ... part 1: application/pkcs8, base64" sh -c "$(declare -f phdr); T='$T'; phdr 1 content-type 'application/pkcs8' && phdr 1 content-transfer-encoding base64"
check "  ... part 2: certs-only, base64" sh -c "$(declare -f phdr); T='$T'; phdr 2 content-type 'application/pkcs7-mime; *smime-type=certs-only' && phdr 2 content-transfer-encoding base64"
check "  ... the key is a PKCS#8 private key" sh -c "$(declare -f b64der); b64der '$T/part.1.body' '$T/alice-enc.p8' && openssl pkey -inform DER -in '$T/alice-enc.p8' -out '$T/alice-enc.key'"
check "  ... the certificate is alice's, for S/MIME encryption" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/part.2.body' '$T/alice-enc.pem' && [ \"\$(san_of '$T/alice-enc.pem')\" = email:alice@example.org ] && openssl verify -CAfile '$DIR/ca.pem' -purpose smimeencrypt '$T/alice-enc.pem'"
check "  ... the key is the certificate's (openssl pkey -pubout)" same_key "$T/alice-enc.pem" "$T/alice-enc.key"
check "  ... not the CSR's key" sh -c "$(declare -f same_key); ! same_key '$T/alice-enc.pem' '$T/alice-enccsr.key'"
ENC1=$(serial_of "$T/alice-enc.pem" 2>/dev/null)
check "  ... escrowed: an escrow record with one share per agent" test "$(sqlite3 "$DIR/lockbox.db" "SELECT r.nshares || '/' || count(s.agent_serial) FROM escrow_records r JOIN escrow_shares s ON s.record_id = r.id WHERE r.serial = '$ENC1' AND r.email = 'alice@example.org'")" = "3/3"
check "  ... stored as smime-enc" test "$(field "$ENC1" profile)" = smime-enc
check "  ... mail encrypted to the certificate opens with the key" sh -c "
    echo 'meet at noon' >'$T/msg' &&
    openssl cms -encrypt -binary -aes256 -in '$T/msg' -out '$T/msg.p7m' '$T/alice-enc.pem' &&
    openssl cms -decrypt -binary -in '$T/msg.p7m' -inkey '$T/alice-enc.key' -recip '$T/alice-enc.pem' | cmp - '$T/msg'"
status 401 "the token is spent for smime-enc now (401)" --interface 127.0.0.8 "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice-enccsr.b64" "$EST/smime-enc/serverkeygen"

# one key, one purpose: alice's escrowed key is not certified for signing
token eve smime-sign
csr_with eve-escrowed "$T/alice-enc.key" "/CN=eve"
ncerts_before=$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates")
status 400 "simpleenroll (smime-sign) with the escrowed key of alice's encryption certificate (400)" "${CA[@]}" "${P10[@]}" -u "eve@example.org:$(tok eve)" --data-binary @"$T/eve-escrowed.b64" "$EST/smime-sign/simpleenroll"
check "  ... naming the encryption certificate" grep -q "certificate $ENC1" "$T/body"
check "  ... nothing issued" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates")" = "$ncerts_before"
csr eve "/CN=eve"
status 200 "  ... and the token is not spent: a new key enrolls" "${CA[@]}" "${P10[@]}" -u "eve@example.org:$(tok eve)" --data-binary @"$T/eve.b64" "$EST/smime-sign/simpleenroll"

# serverkeygen whose CSR names alice's RSA encryption certificate by its
# subject key identifier (AsymmetricDecryptKeyIdentifier, RFC 7030 4.4.1.2).
# openssl req cannot add an attribute of an arbitrary OID, so the CSR is
# assembled from openssl req's own CSR: its CertificationRequestInfo gets
# the attribute and is signed again with openssl dgst.
SKID=$(openssl x509 -in "$T/alice-enc.pem" -noout -ext subjectKeyIdentifier | sed -n '2s/[ :]//gp')
# csr_kid NAME: $T/NAME.b64 with the attribute naming $SKID
csr_kid() {
    csr "$1-plain" "/CN=alice@example.org" || return 1
    # enc(tag, content): one DER TLV, for both steps below
    cat >"$T/der.py" <<'PY'
def enc(tag, content):
    l = len(content)
    if l < 0x80: ln = bytes([l])
    else:
        lb = l.to_bytes((l.bit_length() + 7) // 8, "big"); ln = bytes([0x80 | len(lb)]) + lb
    return bytes([tag]) + ln + content
PY
    PYTHONPATH=$T python3 - "$T/$1-plain.der" "$SKID" "$T/$1.cri" <<'PY' || return 1
import sys
from der import enc
der = open(sys.argv[1], "rb").read()
def tlv(b, i):
    tag = b[i]; l = b[i + 1]; i += 2
    if l & 0x80:
        n = l & 0x7f; l = int.from_bytes(b[i:i + n], "big"); i += n
    return tag, i, i + l          # tag, content start, end
_, s, e = tlv(der, 0)                       # CertificationRequest
_, cs, ce = tlv(der, s)                     # CertificationRequestInfo
parts = []; i = cs
while i < ce:
    tag, c, end = tlv(der, i); parts.append((tag, der[i:end])); i = end
keep = b"".join(raw for tag, raw in parts if tag != 0xa0)
oid = bytes.fromhex("060b2a864886f70d0109100236")
attr = enc(0x30, oid + enc(0x31, enc(0x04, bytes.fromhex(sys.argv[2]))))
open(sys.argv[3], "wb").write(enc(0x30, keep + enc(0xa0, attr)))
PY
    openssl dgst -sha256 -sign "$T/$1-plain.key" -out "$T/$1.sig" "$T/$1.cri" || return 1
    PYTHONPATH=$T python3 - "$T/$1.cri" "$T/$1.sig" "$T/$1.der" <<'PY' || return 1
import sys
from der import enc
cri = open(sys.argv[1], "rb").read(); sig = open(sys.argv[2], "rb").read()
alg = enc(0x30, bytes.fromhex("06082a8648ce3d040302"))   # ecdsa-with-SHA256
open(sys.argv[3], "wb").write(enc(0x30, cri + alg + enc(0x03, b"\0" + sig)))
PY
    openssl req -inform DER -in "$T/$1.der" -noout -verify 2>&1 | grep -q 'verify OK' || return 1
    base64 "$T/$1.der" >"$T/$1.b64"
}
check "a serverkeygen CSR with AsymmetricDecryptKeyIdentifier = alice's encryption SKID (openssl req -verify OK)" csr_kid alice-kid
check "  ... openssl asn1parse shows the attribute" sh -c "openssl asn1parse -inform DER -in '$T/alice-kid.der' | grep -q '1.2.840.113549.1.9.16.2.54'"
token alice smime-enc
status 200 "serverkeygen with the attribute, by a new smime-enc token" "${CA[@]}" "${P10[@]}" -u "alice@example.org:$(tok alice)" --data-binary @"$T/alice-kid.b64" "$EST/smime-enc/serverkeygen"
check "  ... two parts" test "$(parts)" = 2
check "  ... part 1: application/pkcs7-mime; smime-type=server-generated-key, base64" sh -c "$(declare -f phdr); T='$T'; phdr 1 content-type 'application/pkcs7-mime; *smime-type=server-generated-key' && phdr 1 content-transfer-encoding base64"
check "  ... openssl cms -decrypt opens it with the named certificate's key" sh -c "$(declare -f b64der); b64der '$T/part.1.body' '$T/kid.p7' && openssl cms -decrypt -inform DER -in '$T/kid.p7' -inkey '$T/alice-enc.key' -recip '$T/alice-enc.pem' -binary -out '$T/kid.p8' && openssl pkey -inform DER -in '$T/kid.p8' -out '$T/kid.key'"
check "  ... the PKCS#8 inside is the new certificate's key" sh -c "$(declare -f b64der certs_of same_key); T='$T'; certs_of '$T/part.2.body' '$T/alice-enc2.pem' && same_key '$T/alice-enc2.pem' '$T/kid.key'"
check "  ... escrowed too" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records WHERE serial = '$(serial_of "$T/alice-enc2.pem" 2>/dev/null)'")" = 1
# the same, authenticated by alice's signing certificate (the renewal an
# agent does): the certificate the key goes to must still be found
status 200 "serverkeygen with the attribute, authenticated by alice's signing certificate" "${CA[@]}" "${ALICE_TLS[@]}" "${P10[@]}" --data-binary @"$T/alice-kid.b64" "$EST/smime-enc/serverkeygen"
is "  ... alice's encryption certificates: the older ones superseded, none missing" "SELECT group_concat(status, ',') FROM (SELECT status FROM certificates WHERE email = 'alice@example.org' AND profile = 'smime-enc' ORDER BY rowid)" "superseded,superseded,valid"
check "  ... the key part is enveloped to alice's encryption certificate" sh -c "$(declare -f parts b64der); T='$T'; [ \"\$(parts)\" = 2 ] && b64der '$T/part.1.body' '$T/kid2.p7' && openssl cms -decrypt -inform DER -in '$T/kid2.p7' -inkey '$T/alice-enc.key' -recip '$T/alice-enc.pem' -binary -out '$T/kid2.p8'"
SKID_SAVED=$SKID
SKID=00112233445566778899aabbccddeeff00112233
check "a serverkeygen CSR naming an unknown SKID" csr_kid alice-badkid
SKID=$SKID_SAVED
token erin smime-enc
status 400 "serverkeygen naming no certificate of the user: 400" "${CA[@]}" "${P10[@]}" -u "erin@example.org:$(tok erin)" --data-binary @"$T/alice-badkid.b64" "$EST/smime-enc/serverkeygen"
check "  ... saying so" grep -q AsymmetricDecryptKeyIdentifier "$T/body"
is "  ... and issuing nothing (certificates/escrow records for erin)" "SELECT (SELECT count(*) FROM certificates WHERE email = 'erin@example.org') || '/' || (SELECT count(*) FROM escrow_records WHERE email = 'erin@example.org')" 0/0
is "  ... nor spending erin's token (profiles spent)" "SELECT count(*) FROM enroll_token_profiles p JOIN enroll_tokens t ON t.id = p.token_id WHERE t.email = 'erin@example.org' AND p.spent IS NOT NULL" 0
token erin smime-enc
status 400 "serverkeygen naming another user's certificate (alice's, by erin): 400" "${CA[@]}" "${P10[@]}" -u "erin@example.org:$(tok erin)" --data-binary @"$T/alice-kid.b64" "$EST/smime-enc/serverkeygen"

# --- bodies, types, labels, methods -----------------------------------------------------
token frank smime-sign,smime-enc
F=(-u "frank@example.org:$(tok frank)")
head -c 70000 /dev/zero | tr '\0' 'A' >"$T/big.b64"
status 413 "a body over the limit (413)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/big.b64" "$EST/smime-sign/simpleenroll"
printf 'this is %% not base64 !!\n' >"$T/junk.b64"
status 400 "malformed base64 (400)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/junk.b64" "$EST/smime-sign/simpleenroll"
check "  ... text/plain with a reason" sh -c "grep -qi '^content-type: text/plain' '$T/headers' && [ -s '$T/body' ]"
head -c 300 /dev/urandom | base64 >"$T/junk2.b64"
status 400 "valid base64 of junk (400)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/junk2.b64" "$EST/smime-sign/simpleenroll"
: >"$T/empty.b64"
status 400 "an empty body (400)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/empty.b64" "$EST/smime-sign/simpleenroll"
# a CSR whose signature does not verify: flip a byte of the signature
csr frank "/CN=frank"
python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[-3]^=0x55; open(sys.argv[2],'wb').write(b)" "$T/frank.der" "$T/badsig.der"
base64 "$T/badsig.der" >"$T/badsig.b64"
status 400 "a CSR with a broken signature (400)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/badsig.b64" "$EST/smime-sign/simpleenroll"
status 415 "Content-Type application/json (415)" "${CA[@]}" -H 'Content-Type: application/json' "${F[@]}" --data-binary @"$T/frank.b64" "$EST/smime-sign/simpleenroll"
status 415 "no Content-Type (415)" "${CA[@]}" -H 'Content-Type:' "${F[@]}" --data-binary @"$T/frank.b64" "$EST/smime-sign/simpleenroll"
status 404 "unknown label (404)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/frank.b64" "$EST/nosuchprofile/simpleenroll"
status 404 "a non-subscriber profile as a label (operator: 404)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/frank.b64" "$EST/operator/simpleenroll"
status 404 "unknown operation (404)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/frank.b64" "$EST/smime-sign/fullcmc"
status 405 "GET on simpleenroll (405)" "${CA[@]}" "${F[@]}" "$EST/smime-sign/simpleenroll"
check "  ... Allow: POST" header allow 'POST'
status 405 "POST on cacerts (405)" "${CA[@]}" "${P10[@]}" --data-binary @"$T/frank.b64" "$EST/cacerts"
check "  ... Allow: GET, HEAD" header allow 'GET, HEAD'
status 200 "after all that, frank's token still enrolls (200)" "${CA[@]}" "${P10[@]}" "${F[@]}" --data-binary @"$T/frank.b64" "$EST/smime-sign/simpleenroll"
check "  ... frank's certificate" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/body' '$T/frank.pem' && [ \"\$(san_of '$T/frank.pem')\" = email:frank@example.org ]"
FRANK1=$(serial_of "$T/frank.pem" 2>/dev/null)

# --- the policy ------------------------------------------------------------------------
json() { python3 -c "import json,sys; d=json.load(open('$T/body')); sys.exit(0 if ($1) else 1)"; }
status 200 "GET /api/v1/policy with frank's token" "${CA[@]}" "${F[@]}" "https://127.0.0.1:$P1/api/v1/policy"
check "  ... application/json" header content-type 'application/json.*'
check "  ... an ETag" header etag '"[^"]+"'
ETAG=$(sed -n 's/^[Ee][Tt][Aa][Gg]: //p' "$T/headers")
check "  ... for frank" json 'd["user"]["email"] == "frank@example.org"'
check "  ... lists smime-enc (the token's unspent profile) with its EST URLs, escrowed, server key generation" json '[p["name"] for p in d["profiles"]] == ["smime-enc"] and d["profiles"][0]["est"] == {op: "https://127.0.0.1:'"$P1"'/.well-known/est/smime-enc/" + op for op in ("cacerts", "csrattrs", "serverkeygen")} and d["profiles"][0]["escrow"] is True and d["profiles"][0]["key_generation"] == "server"'
status 304 "If-None-Match with the ETag: 304" "${CA[@]}" "${F[@]}" -H "If-None-Match: $ETAG" "https://127.0.0.1:$P1/api/v1/policy"
check "  ... empty body, same ETag" sh -c "[ ! -s '$T/body' ] && grep -qiF 'etag: $ETAG' '$T/headers'"
status 200 "the policy for frank's new certificate over TLS" "${CA[@]}" --cert "$T/frank.pem" --key "$T/frank.key" "https://127.0.0.1:$P1/api/v1/policy"
check "  ... lists it under smime-sign with renew_after before not_after" json '[(c["serial"], c["renew_after"] < c["not_after"]) for p in d["profiles"] if p["name"] == "smime-sign" for c in p["certificates"]] == [("'"$FRANK1"'", True)]'
check "  ... with a different ETag than the token's view" sh -c "! grep -qiF 'etag: $ETAG' '$T/headers'"
status 200 "If-None-Match with another ETag: 200" "${CA[@]}" "${F[@]}" -H 'If-None-Match: "0000"' "https://127.0.0.1:$P1/api/v1/policy"
status 200 "the policy for alice's signing certificate over TLS" "${CA[@]}" "${ALICE_TLS[@]}" "https://127.0.0.1:$P1/api/v1/policy"
check "  ... for alice" json 'd["user"]["email"] == "alice@example.org"'
check "  ... smime-sign and smime-enc, escrow only on smime-enc" json 'sorted((p["name"], p["escrow"]) for p in d["profiles"]) == [("smime-enc", True), ("smime-sign", False)]'
check "  ... smime-sign's EST URLs: the client-key operations" json '[p["est"] for p in d["profiles"] if p["name"] == "smime-sign"] == [{op: "https://127.0.0.1:'"$P1"'/.well-known/est/smime-sign/" + op for op in ("cacerts", "csrattrs", "simpleenroll", "simplereenroll")}]'
check "  ... her current signing certificate with renew_after between notBefore and notAfter" json 'any(c["serial"] == "'"$ALICE3"'" and c["not_after"] > c["renew_after"] for p in d["profiles"] if p["name"] == "smime-sign" for c in p["certificates"])'
check "  ... lists her current signing certificate, not the superseded ones" json 'any(c["serial"] == "'"$ALICE3"'" for p in d["profiles"] for c in p["certificates"]) and not any(c["serial"] in ("'"$ALICE1"'", "'"$ALICE2"'") for p in d["profiles"] for c in p["certificates"])'
status 401 "the policy without credentials: 401" --interface 127.0.0.9 "${CA[@]}" "https://127.0.0.1:$P1/api/v1/policy"

# --- approval = manual (a second CA) ----------------------------------------------------
D2=$T/ca2
Q1=$(free_port); Q2=$(free_port)
while [ "$Q2" = "$Q1" ] || [ "$Q1" = "$P1" ] || [ "$Q1" = "$P2" ]; do Q1=$(free_port); Q2=$(free_port); done
$LOCKBOX init --p12-pass-file $PW --dir "$D2" --key-type ec-p256 --name "EST Approval CA" --listen 127.0.0.1:$Q1 \
    --http-listen 127.0.0.1:$Q2 --base-url http://127.0.0.1:$Q2 >/dev/null 2>&1
if grep -q '^\[profile.smime-sign\]' "$D2/lockbox.conf"; then
    sed -i '/^\[profile.smime-sign\]/a approval = manual' "$D2/lockbox.conf"
else
    printf '\n[profile.smime-sign]\napproval = manual\n' >>"$D2/lockbox.conf"
fi
token gina smime-sign "$D2"
token hank smime-sign "$D2"
serve_up "$D2" "$Q1" "$T/serve2.log" "second daemon (approval = manual) listening"
PID2=$SERVE_PID
EST2=https://127.0.0.1:$Q1/.well-known/est
CA2=(--cacert "$D2/ca.pem")
csr gina "/CN=gina"
status 202 "simpleenroll on a manual profile: 202" "${CA2[@]}" "${P10[@]}" -u "gina@example.org:$(tok gina)" --data-binary @"$T/gina.b64" "$EST2/smime-sign/simpleenroll"
check "  ... with Retry-After" header retry-after '[1-9][0-9]*'
REQ=$(grep -oE '[0-9a-f]{32}' "$T/body" | head -n1)
check "  ... the body names the request" test -n "$REQ"
check "lockbox request list shows it pending for gina" sh -c "$LOCKBOX request list --dir '$D2' | grep '$REQ' | grep smime-sign | grep pending | grep -q gina@example.org"
status 202 "asking again before the decision: 202 again, same request" "${CA2[@]}" "${P10[@]}" -u "gina@example.org:$(tok gina)" --data-binary @"$T/gina.b64" "$EST2/smime-sign/simpleenroll"
check "  ... same request id" grep -q "$REQ" "$T/body"
check "no certificate for gina yet" test "$(sqlite3 "$D2/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'gina@example.org'")" = 0
check "lockbox request approve" $LOCKBOX request approve --dir "$D2" "$REQ"
status 200 "the same CSR again after approval: 200" "${CA2[@]}" "${P10[@]}" -u "gina@example.org:$(tok gina)" --data-binary @"$T/gina.b64" "$EST2/smime-sign/simpleenroll"
check "  ... gina's certificate of the CSR's key" sh -c "$(declare -f b64der certs_of same_key san_of); T='$T'; certs_of '$T/body' '$T/gina.pem' && same_key '$T/gina.pem' '$T/gina.key' && [ \"\$(san_of '$T/gina.pem')\" = email:gina@example.org ] && openssl verify -CAfile '$D2/ca.pem' '$T/gina.pem'"
check "  ... the request shows issued" sh -c "$LOCKBOX request list --dir '$D2' --all | grep '$REQ' | grep -q issued"
check "  ... and so under its new name, lockbox enrollment list" sh -c "$LOCKBOX enrollment list --dir '$D2' --all | grep '$REQ' | grep -q issued"
csr hank "/CN=hank"
status 202 "hank's request: 202" "${CA2[@]}" "${P10[@]}" -u "hank@example.org:$(tok hank)" --data-binary @"$T/hank.b64" "$EST2/smime-sign/simpleenroll"
REQ2=$(grep -oE '[0-9a-f]{32}' "$T/body" | head -n1)
check "lockbox request deny" $LOCKBOX request deny --dir "$D2" "$REQ2"
status 403 "the same CSR after the denial: 403" "${CA2[@]}" "${P10[@]}" -u "hank@example.org:$(tok hank)" --data-binary @"$T/hank.b64" "$EST2/smime-sign/simpleenroll"
check "  ... text/plain saying denied" sh -c "grep -qi '^content-type: text/plain' '$T/headers' && grep -qi denied '$T/body'"
check "no certificate for hank" test "$(sqlite3 "$D2/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'hank@example.org'")" = 0

# --- shutdown --------------------------------------------------------------------------
for p in $PID $PID2; do kill -TERM "$p" 2>/dev/null; done
for p in $PID $PID2; do wait "$p"; rc=$?; [ "$rc" = 0 ] || fail "daemon $p exits 0 on SIGTERM (exit $rc)"; done
no_sanitizer_reports "$T/serve.log" "$T/serve2.log"
exit 0
