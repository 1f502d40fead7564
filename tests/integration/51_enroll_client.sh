#!/bin/bash
# 51_enroll_client.sh - the enrollment client (`lockbox enroll`) against a real daemon:
# first enrollment by one-time token (signing key made locally, encryption
# key by serverkeygen and escrowed), the files and their modes, the
# certificates checked with openssl (verify, key match, PKCS#12 password,
# S/MIME sign and encrypt round trips), a wrong and a spent token, then
# `--auto`: nothing due, and, with renew_days beyond the validity, both
# renewed by the signing certificate with the old encryption key kept.
# Last, a fake EST server (python3 ssl) feeds the client malformed and
# hostile answers: nothing may be written, credentials go nowhere else.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
A=$T/home/.lockbox
EMAIL=alice@example.org
asan_serve

# --- a CA with three recovery agents and their policy (smime-enc escrows) ---
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Enroll Client Test CA"
for i in 1 2 3; do
    add_agent "$DIR" "$T/ra$i.p12" "Agent $i" "ra$i@example.org" >/dev/null 2>&1 || fail "recovery agent $i"
done
check "a 2-of-3 escrow policy the agents signed" policy_in_force "$DIR" 2 "$T/ra1.p12" "$T/ra2.p12" "$T/ra3.p12"

free_ports
HTTPS=https://127.0.0.1:$P1
PID=
start() {
    $SERVE serve --dir "$DIR" --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 2>>"$T/serve.log" &
    PID=$!
    if ! wait_port "$P1"; then fail "daemon listens"; sed 's/^/       /' "$T/serve.log"; exit 1; fi
}
stop() { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=; }
at_exit '[ -n "$PID" ] && kill -KILL $PID 2>/dev/null'
start

TOKEN=$($LOCKBOX token create --dir "$DIR" --email "$EMAIL" --profiles smime-sign,smime-enc | tail -n1)
check "token create prints the secret last" test -n "$TOKEN"
printf '%s\n' "$TOKEN" >"$T/token"
printf 'lbt-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n' >"$T/badtoken"
ENROLL=(enroll --server "$HTTPS" --ca-cert "$DIR/ca.pem" --user "$EMAIL")

# --- usage -------------------------------------------------------------------
expect_code "no credential file: usage error" 2 $LOCKBOX "${ENROLL[@]}" --dir "$A"
expect_code "both credential files: usage error" 2 $LOCKBOX "${ENROLL[@]}" --token-file "$T/token" --password-file "$T/token" --dir "$A"
expect_code "--auto with --server: usage error" 2 $LOCKBOX enroll --auto --server "$HTTPS" --dir "$A"
expect_code "http:// server refused" 2 $LOCKBOX enroll --server "http://127.0.0.1:$P2" --ca-cert "$DIR/ca.pem" --user "$EMAIL" --token-file "$T/token" --dir "$A"
expect_code "--auto before any enrollment fails" 1 $LOCKBOX enroll --auto --dir "$T/nothing"
check "  ... telling how to enroll first" grep -q "enroll first" "$T/.out"

# --- wrong token ---------------------------------------------------------------
expect_code "a wrong token: exit 1" 1 $LOCKBOX "${ENROLL[@]}" --token-file "$T/badtoken" --dir "$T/wrong"
check "  ... saying the server refused the credentials (401)" grep -q "refused the credentials.*401" "$T/.out"
check "  ... writing no key or certificate" sh -c "! ls '$T/wrong' | grep -q '\\.key\$\\|\\.crt\$'"

# --- first enrollment by token -------------------------------------------------
check "enroll by token (HOME as the default directory)" env HOME="$T/home" $LOCKBOX "${ENROLL[@]}" --token-file "$T/token"
cp "$T/.out" "$T/first.out"
check "  ... smime-sign enrolled" grep -q "^smime-sign: enrolled, serial [0-9A-F]*$" "$T/first.out"
check "  ... smime-enc enrolled" grep -q "^smime-enc: enrolled, serial [0-9A-F]*$" "$T/first.out"
for f in smime-sign.key smime-sign.crt smime-sign.p12 smime-sign.p12.pass smime-enc.key \
    smime-enc.crt smime-enc.p12 smime-enc.p12.pass ca.pem server-ca.pem state.json; do
    [ -f "$A/$f" ] && ok "  ... $f written" || fail "  ... $f written"
done
check "  ... the directory is 0700" test "$(stat -c %a "$A")" = 700
for f in smime-sign.key smime-enc.key smime-sign.p12 smime-sign.p12.pass smime-enc.p12 smime-enc.p12.pass state.json; do
    m=$(stat -c %a "$A/$f" 2>/dev/null)
    [ "$m" = 600 ] && ok "  ... $f is 0600" || fail "  ... $f is 0600 (is $m)"
done
check "  ... no staged or pending file left" sh -c "! ls '$A' | grep -q '\\.new\\|pending'"
check "signing certificate verifies (smimesign) against the CA" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$A/smime-sign.crt"
check "encryption certificate verifies (smimeencrypt)" openssl verify -CAfile "$DIR/ca.pem" -purpose smimeencrypt "$A/smime-enc.crt"
check "ca.pem from cacerts is the CA certificate" bash -c "openssl x509 -in '$A/ca.pem' -outform DER | cmp - <(openssl x509 -in '$DIR/ca.pem' -outform DER)"
samekey() { # KEY CERT
    cmp <(openssl pkey -in "$1" -pubout -outform DER) <(openssl x509 -in "$2" -noout -pubkey | openssl pkey -pubin -outform DER)
}
check "smime-sign.key matches its certificate" samekey "$A/smime-sign.key" "$A/smime-sign.crt"
check "smime-enc.key matches its certificate" samekey "$A/smime-enc.key" "$A/smime-enc.crt"
check "the signing key is EC P-256 (preferred type)" sh -c "openssl pkey -in '$A/smime-sign.key' -noout -text | grep -q 'prime256v1'"
check "the signing certificate names the e-mail" sh -c "openssl x509 -in '$A/smime-sign.crt' -noout -ext subjectAltName | grep -q 'email:$EMAIL'"
for p in smime-sign smime-enc; do
    check "$p.p12 opens with its password and holds the certificate" bash -c "
        openssl pkcs12 -in '$A/$p.p12' -passin 'file:$A/$p.p12.pass' -nokeys -clcerts 2>/dev/null |
        openssl x509 -outform DER | cmp - <(openssl x509 -in '$A/$p.crt' -outform DER)"
done
check "$EMAIL signs with the enrolled pair (openssl cms)" sh -c "
    echo 'signed hello' >'$T/msg' &&
    openssl cms -sign -in '$T/msg' -signer '$A/smime-sign.crt' -inkey '$A/smime-sign.key' -out '$T/msg.sig' &&
    openssl cms -verify -in '$T/msg.sig' -CAfile '$A/ca.pem' -purpose smimesign -out /dev/null"
check "mail encrypted to the enrolled certificate decrypts (openssl cms)" sh -c "
    echo 'old secret' >'$T/old.txt' &&
    openssl cms -encrypt -binary -aes256 -in '$T/old.txt' -out '$T/old.p7m' '$A/smime-enc.crt' &&
    openssl cms -decrypt -binary -in '$T/old.p7m' -inkey '$A/smime-enc.key' -recip '$A/smime-enc.crt' | cmp - '$T/old.txt'"
ENC1=$(openssl x509 -in "$A/smime-enc.crt" -noout -serial | cut -d= -f2)
SIGN1=$(openssl x509 -in "$A/smime-sign.crt" -noout -serial | cut -d= -f2)
check "the encryption key is escrowed on the server" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records WHERE serial = '$ENC1'")" = 1
check "state.json names the server, the copied CA file and the user" python3 -c "
import json,os,sys; d=json.load(open('$A/state.json'))
sys.exit(0 if d['server'] == '$HTTPS' and d['user'] == '$EMAIL' and d['ca_cert'] == os.path.realpath('$A/server-ca.pem') else 1)"

expect_code "the spent token is refused" 1 $LOCKBOX "${ENROLL[@]}" --token-file "$T/token" --dir "$T/again"
check "  ... with a clear 401 message" grep -q "refused the credentials.*401" "$T/.out"

# --- --auto: nothing due ----------------------------------------------------------
cp "$A/smime-sign.crt" "$T/sign1.crt"; cp "$A/smime-enc.crt" "$T/enc1.crt"
check "--auto with nothing due exits 0" env HOME="$T/home" $LOCKBOX enroll --auto
cp "$T/.out" "$T/auto1.out"
check "  ... smime-sign up to date" grep -q "^smime-sign: up to date until 20" "$T/auto1.out"
check "  ... smime-enc up to date" grep -q "^smime-enc: up to date until 20" "$T/auto1.out"
check "  ... and changes nothing" sh -c "cmp -s '$A/smime-sign.crt' '$T/sign1.crt' && cmp -s '$A/smime-enc.crt' '$T/enc1.crt'"

# --- --auto: renewal due (renew_days beyond the validity) -----------------------
stop
sed -i -e '/^\[profile\.smime-sign\]/a renew_days = 400' -e '/^\[profile\.smime-enc\]/a renew_days = 400' "$DIR/lockbox.conf"
start
check "--auto renews what is due" $LOCKBOX enroll --auto --dir "$A"
cp "$T/.out" "$T/auto2.out"
check "  ... smime-sign renewed" grep -q "^smime-sign: renewed, serial [0-9A-F]*$" "$T/auto2.out"
check "  ... smime-enc renewed (authenticated by the new signing certificate)" grep -q "^smime-enc: renewed, serial [0-9A-F]*$" "$T/auto2.out"
SIGN2=$(openssl x509 -in "$A/smime-sign.crt" -noout -serial | cut -d= -f2)
ENC2=$(openssl x509 -in "$A/smime-enc.crt" -noout -serial | cut -d= -f2)
check "  ... new serials" sh -c "[ -n '$SIGN2' ] && [ '$SIGN2' != '$SIGN1' ] && [ -n '$ENC2' ] && [ '$ENC2' != '$ENC1' ]"
check "  ... a new signing key, matching the new certificate" bash -c "samekey() { cmp <(openssl pkey -in \"\$1\" -pubout -outform DER) <(openssl x509 -in \"\$2\" -noout -pubkey | openssl pkey -pubin -outform DER); }; samekey '$A/smime-sign.key' '$A/smime-sign.crt' && ! samekey '$A/smime-sign.key' '$T/sign1.crt'" 
check "  ... the new signing certificate keeps the subject" test "$(openssl x509 -in "$A/smime-sign.crt" -noout -subject)" = "$(openssl x509 -in "$T/sign1.crt" -noout -subject)"
check "  ... the new encryption pair matches and verifies" sh -c "openssl verify -CAfile '$DIR/ca.pem' -purpose smimeencrypt '$A/smime-enc.crt' >/dev/null"
check "  ... smime-enc.key matches the new certificate" samekey "$A/smime-enc.key" "$A/smime-enc.crt"
check "  ... the new smime-enc.p12 opens" openssl pkcs12 -in "$A/smime-enc.p12" -passin "file:$A/smime-enc.p12.pass" -noout
for s in key crt p12 p12.pass; do
    [ -f "$A/smime-enc-$ENC1.$s" ] && ok "  ... old smime-enc-$ENC1.$s kept" || fail "  ... old smime-enc-$ENC1.$s kept"
done
check "  ... the old key is still 0600" test "$(stat -c %a "$A/smime-enc-$ENC1.key")" = 600
check "  ... old mail still decrypts with the kept key" sh -c "
    openssl cms -decrypt -binary -in '$T/old.p7m' -inkey '$A/smime-enc-$ENC1.key' -recip '$A/smime-enc-$ENC1.crt' | cmp - '$T/old.txt'"
check "  ... the old signing certificate is superseded on the server" sh -c "$LOCKBOX show --dir '$DIR' --json '$SIGN1' | grep -q '\"status\": *\"superseded\"'"
check "  ... the new encryption key is escrowed" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records WHERE serial = '$ENC2'")" = 1
check "  ... no signing key kept under the old serial (only encryption keys are)" sh -c "! ls '$A' | grep -q '^smime-sign-'"

# an interrupted update: a staged pair is finished by the next run
stop
sed -i '/^renew_days = 400$/d' "$DIR/lockbox.conf"
start
cp "$A/smime-enc.key" "$T/enc2.key"
mv "$A/smime-enc.key" "$A/smime-enc.key.new"; mv "$A/smime-enc.crt" "$A/smime-enc.crt.new"
check "--auto finishes an interrupted update and is then up to date" $LOCKBOX enroll --auto --dir "$A"
cp "$T/.out" "$T/auto3.out"
check "  ... both up to date" sh -c "grep -q '^smime-sign: up to date' '$T/auto3.out' && grep -q '^smime-enc: up to date' '$T/auto3.out'"
check "  ... the staged pair is in place" sh -c "cmp -s '$A/smime-enc.key' '$T/enc2.key' && [ ! -e '$A/smime-enc.key.new' ]"
cp "$A/smime-sign.key" "$T/sign2.key"
echo junk >"$A/smime-sign.key.new"; echo junk >"$A/smime-sign.p12.new"
check "--auto drops a half-staged update (no certificate staged)" $LOCKBOX enroll --auto --dir "$A"
check "  ... the leftovers are gone, the pair unchanged" sh -c "[ ! -e '$A/smime-sign.key.new' ] && [ ! -e '$A/smime-sign.p12.new' ] && cmp -s '$A/smime-sign.key' '$T/sign2.key'"
stop

# --- approval = manual: 202, approve, the next run gets it with the same key ----
sed -i '/^\[profile\.smime-sign\]/a approval = manual' "$DIR/lockbox.conf"
start
B=$T/bob
$LOCKBOX token create --dir "$DIR" --email bob@example.org | tail -n1 >"$T/bobtoken"
BOB=(enroll --server "$HTTPS" --ca-cert "$DIR/ca.pem" --user bob@example.org --token-file "$T/bobtoken" --dir "$B")
check "approval pending: enroll exits 0" $LOCKBOX "${BOB[@]}"
cp "$T/.out" "$T/bob1.out"
check "  ... smime-sign awaits approval, with the server's Retry-After" grep -q "^smime-sign: the request awaits an operator's approval; run again after [0-9]* seconds" "$T/bob1.out"
check "  ... smime-enc (automatic approval) enrolled" grep -q "^smime-enc: enrolled" "$T/bob1.out"
check "  ... no signing certificate yet, the request's key kept 0600" sh -c "[ ! -e '$B/smime-sign.crt' ] && [ \"\$(stat -c %a '$B/smime-sign.pending.key')\" = 600 ]"
cp "$B/smime-sign.pending.key" "$T/bob-pending.key"
check "running again before the decision: still pending, exit 0" $LOCKBOX "${BOB[@]}"
check "  ... still awaiting approval" sh -c "grep -q '^smime-sign: the request awaits' '$T/.out' && [ ! -e '$B/smime-sign.crt' ]"
RID=$($LOCKBOX enrollment list --dir "$DIR" | awk '/bob@example.org/ { print $1; exit }')
check "the operator approves the request (lockbox enrollment approve)" $LOCKBOX enrollment approve "$RID" --dir "$DIR"
check "the next run gets the certificate" $LOCKBOX "${BOB[@]}"
check "  ... smime-sign enrolled" grep -q "^smime-sign: enrolled, serial" "$T/.out"
check "  ... for the key of the request, now smime-sign.key, pending key gone" sh -c "
    cmp -s '$B/smime-sign.key' '$T/bob-pending.key' && [ ! -e '$B/smime-sign.pending.key' ] &&
    openssl verify -CAfile '$DIR/ca.pem' -purpose smimesign '$B/smime-sign.crt' >/dev/null"
check "  ... the key matches the certificate" samekey "$B/smime-sign.key" "$B/smime-sign.crt"
stop
no_sanitizer_reports "$T/serve.log"

# --- a fake EST server: malformed and hostile answers -----------------------------
F=$T/fake
mkdir -p "$F"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$F/key.pem" \
    -out "$F/cert.pem" -subj "/CN=127.0.0.1" -addext subjectAltName=IP:127.0.0.1 2>/dev/null
openssl crl2pkcs7 -nocrl -certfile "$DIR/ca.pem" -outform DER | base64 >"$F/cacerts"
cat >"$F/fake.py" <<'EOF'
import http.server, json, os, ssl, sys
root, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(os.path.join(root, 'log'), 'a') as f:
            f.write('%s %s %s\n' % (self.command, self.path, self.headers.get('Authorization', '-')))
        spec = json.load(open(os.path.join(root, 'routes.json'))).get(self.path)
        if spec is None:
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers(); return
        body = open(os.path.join(root, spec['file']), 'rb').read()
        self.send_response(spec.get('status', 200))
        for k, v in spec.get('headers', {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.answer()
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0))); self.answer()
    def log_message(self, *a): pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(root, 'cert.pem'), os.path.join(root, 'key.pem'))
s = http.server.ThreadingHTTPServer(('127.0.0.1', port), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
EOF
P3=$(free_port)
python3 "$F/fake.py" "$F" "$P3" 2>"$T/fake.log" &
FPID=$!
at_exit "kill $FPID 2>/dev/null"
# policy FILE: a policy with one profile NAME (escrow yes|no), EST URLs at BASE
policy() { # NAME ESCROW BASE
    python3 -c "
import json,sys
n,e,b=sys.argv[1],sys.argv[2]=='yes',sys.argv[3]
print(json.dumps({'user':{'email':'$EMAIL'},'profiles':[{'name':n,'enroll':True,'escrow':e,
 'key_types':['ec-p256'],'validity_days':365,'renew_percent':80,'renew_days':30,
 'est':{op:b+'/'+op for op in ['simpleenroll','simplereenroll','serverkeygen','cacerts','csrattrs']},
 'certificates':[]}]}))" "$@"
}
# routes JSON: the answers for each path
routes() { printf '%s' "$1" >"$F/routes.json"; }
CACERTS='"/.well-known/est/cacerts": {"file": "cacerts", "headers": {"Content-Type": "application/pkcs7-mime"}}'
FAKE=(enroll --server "https://127.0.0.1:$P3" --ca-cert "$F/cert.pem" --user "$EMAIL" --token-file "$T/badtoken")
if wait_port "$P3"; then ok "fake EST server up"; else fail "fake EST server up"; cat "$T/fake.log"; fi

printf 'this is not json' >"$F/notjson"
routes '{"/api/v1/policy": {"file": "notjson", "headers": {"Content-Type": "application/json"}}}'
expect_code "a policy that is not JSON: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f1"
check "  ... saying so" grep -q "not a policy document" "$T/.out"

printf '{"user": {"email": "%s"}, "profiles": [{"name": "smime-sign", "enroll": false}]}' "$EMAIL" >"$F/none"
routes '{"/api/v1/policy": {"file": "none"}, '"$CACERTS"'}'
expect_code "a policy entitling to no profile: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f0"
check "  ... saying so" grep -q "entitles $EMAIL to no profile" "$T/.out"

head -c 2000000 /dev/zero | tr '\0' ' ' >"$F/huge"
routes '{"/api/v1/policy": {"file": "huge", "headers": {"Content-Type": "application/json"}}}'
expect_code "an oversized policy (2 MB): exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f2"
check "  ... 'too large'" grep -q "too large" "$T/.out"

policy "../../evil" no "https://127.0.0.1:$P3/.well-known/est" >"$F/p-evil"
routes '{"/api/v1/policy": {"file": "p-evil"}, '"$CACERTS"'}'
expect_code "a profile named ../../evil: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f3/a/b"
check "  ... nothing written outside the directory" sh -c "! ls -R '$T/f3' | grep -q evil"

# EST URLs on another host: followed by path on the server given, never elsewhere
policy smime-sign no "https://elsewhere.invalid:1/est" >"$F/p-else"
printf 'not base64 at all!\n' >"$F/garbage"
: >"$F/log"
routes '{"/api/v1/policy": {"file": "p-else"}, "/est/cacerts": {"file": "cacerts"}, "/est/simpleenroll": {"file": "garbage", "headers": {"Content-Type": "application/pkcs7-mime"}}}'
expect_code "a simpleenroll answer that is not a certificate: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f4"
check "  ... the policy's foreign URL was asked of the given server" grep -q "^POST /est/simpleenroll Basic " "$F/log"
check "  ... nothing installed" sh -c "[ ! -e '$T/f4/smime-sign.crt' ] && [ ! -e '$T/f4/smime-sign.key' ]"

policy smime-enc yes "https://127.0.0.1:$P3/.well-known/est" >"$F/p-enc"
printf -- '--xyz\r\nContent-Type: application/pkcs8\r\n\r\nAAAA\r\n' >"$F/badmulti"
routes '{"/api/v1/policy": {"file": "p-enc"}, '"$CACERTS"', "/.well-known/est/serverkeygen": {"file": "badmulti", "headers": {"Content-Type": "multipart/mixed; boundary=xyz"}}}'
expect_code "a truncated serverkeygen multipart: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f5"
check "  ... nothing installed" sh -c "[ ! -e '$T/f5/smime-enc.crt' ] && [ ! -e '$T/f5/smime-enc.key' ] && ! ls '$T/f5' | grep -q new"

printf 'text/html instead\n' >"$F/html"
routes '{"/api/v1/policy": {"file": "p-enc"}, '"$CACERTS"', "/.well-known/est/serverkeygen": {"file": "html", "headers": {"Content-Type": "text/html"}}}'
expect_code "serverkeygen answering text/html: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f6"
check "  ... naming the content type" grep -q "text/html instead of multipart/mixed" "$T/.out"

policy smime-sign no "https://127.0.0.1:$P3/.well-known/est" >"$F/p-sign"
printf 'awaiting approval by an operator\n' >"$F/wait"
routes '{"/api/v1/policy": {"file": "p-sign"}, '"$CACERTS"', "/.well-known/est/simpleenroll": {"status": 202, "file": "wait", "headers": {"Content-Type": "text/plain", "Retry-After": "3600"}}}'
check "202 approval pending: exit 0" $LOCKBOX "${FAKE[@]}" --dir "$T/f7"
check "  ... says it awaits approval with the Retry-After" grep -q "^smime-sign: the request awaits an operator's approval; run again after 3600 seconds" "$T/.out"
check "  ... no certificate, the request's key kept 0600 for the retry" sh -c "[ ! -e '$T/f7/smime-sign.crt' ] && [ \"\$(stat -c %a '$T/f7/smime-sign.pending.key')\" = 600 ]"

printf 'bad password\n' >"$F/unauth"
routes '{"/api/v1/policy": {"status": 401, "file": "unauth", "headers": {"Content-Type": "text/plain", "WWW-Authenticate": "Basic realm=\"x\""}}}'
expect_code "401 on the policy: exit 1" 1 $LOCKBOX "${FAKE[@]}" --dir "$T/f8"
check "  ... a clear message" grep -q "refused the credentials for the policy (HTTP 401): bad password: check --user" "$T/.out"

# --auto against the fake server: the policy's renew_after decides
mkdir -p "$T/fa"; cp "$A"/smime-sign.* "$A"/ca.pem "$T/fa/"
printf '{"server": "https://127.0.0.1:%s", "ca_cert": "%s", "user": "%s"}' "$P3" "$F/cert.pem" "$EMAIL" >"$T/fa/state.json"
autopolicy() { # RENEW_AFTER
    printf '{"user": {"email": "%s"}, "profiles": [{"name": "smime-sign", "enroll": true, "escrow": false, "key_types": ["ec-p256"], "renew_percent": 80, "renew_days": 30, "est": {"simplereenroll": "/.well-known/est/simplereenroll", "simpleenroll": "/.well-known/est/simpleenroll", "cacerts": "/.well-known/est/cacerts"}, "certificates": [{"serial": "%s", "renew_after": "%s", "status": "valid"}]}]}' \
        "$EMAIL" "$SIGN2" "$1" >"$F/p-auto"
}
autopolicy 2099-01-02T03:04:05Z
routes '{"/api/v1/policy": {"file": "p-auto"}, '"$CACERTS"'}'
check "--auto: the policy's renew_after in the future: up to date" $LOCKBOX enroll --auto --dir "$T/fa"
check "  ... until exactly that date" grep -qx "smime-sign: up to date until 2099-01-02T03:04:05Z" "$T/.out"
for bad in garbage 2026-13-01T00:00:00Z "2026-01-01 00:00:00" 2026-01-01T00:00:00Zjunk ""; do
    autopolicy "$bad"
    expect_code "--auto: a malformed renew_after '$bad': exit 1" 1 $LOCKBOX enroll --auto --dir "$T/fa"
done
check "  ... saying so, renewing nothing" sh -c "grep -q 'malformed renew_after' '$T/.out' && cmp -s '$T/fa/smime-sign.crt' '$A/smime-sign.crt'"

n=$(wc -l <"$F/log")
expect_code "a server whose certificate does not chain to --ca-cert: exit 1" 1 $LOCKBOX enroll --server "https://127.0.0.1:$P3" --ca-cert "$DIR/ca.pem" --user "$EMAIL" --token-file "$T/badtoken" --dir "$T/f9"
check "  ... and no request reached it (the token was not sent)" test "$(wc -l <"$F/log")" = "$n"
