#!/bin/bash
# 61_authz.sh - the authorization matrix: every HTTP route of the daemon
# (the route table of web/router.c, with each EST operation and the
# enrollment policy) asked by every kind of caller, and each answer held
# to the table below: the exact status each caller gets.
#
# 401 and 403 are the refusals; any other status is an allowed cell,
# answered past authorization by the route's handler.  The requests are
# well-formed where that is cheap (real CSRs, a real OCSP request, a real
# certificate to revoke), so most allowed cells get 200; a few are refused
# by the handler for what they ask, with that status in the table: a
# made-up recovery request id is 404 "no recovery request", a junk
# one-time certificate 400.  Such a 404 or 400 must come from the handler:
# the router's own 404 ("no such resource", "no such EST ...") fails the
# cell.  Any other status fails it too, a 5xx or no answer among them.
#
# One daemon, one set of credentials; fresh tokens, subscriber
# certificates and certificates to revoke where a cell uses one up.
# The daemon runs from the ASan build when one is there (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

asan_serve
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }

# --- the matrix ---------------------------------------------------------------
# Callers (columns):
#   none   HTTPS without a client certificate and without credentials
#   usrC   an enrolling subscriber: its smime-sign certificate of this CA as
#          the TLS client certificate
#   usrT   an enrolling subscriber: HTTP Basic with a one-time token
#   admin, offcr (officer), recO (recovery-officer), recA (recovery-agent),
#   audit (auditor): an operator's client certificate with that one role
#   remvd  an admin removed with `lockbox operator remove` (role withdrawn,
#          credential revoked)
#   revkd  an admin whose credential was revoked with `lockbox revoke`
#          (the operator row itself still active)
#   expd   an admin whose credential has expired: notAfter in the past in
#          the certificate and in the database
#   expdb  an admin whose certificate is still valid but whose database row
#          says it has expired: the database's expiry check on its own
# Cells: the HTTP status expected, exactly.
# Every caller asks the plain-HTTP rows too: without TLS no certificate is
# presented (Basic credentials are sent), and nothing there may refuse.
# Rows: listener, method, path; {serial} is a subscriber's certificate,
# {victim} a certificate issued for that cell alone, {id} a well-formed
# recovery request id nobody opened, {ocsp} a base64 OCSP request.
# Operators present no S/MIME certificate and no Basic credentials, so
# EST and the policy refuse them as they refuse anyone without
# credentials: 401.  A recovery officer may not approve nor fetch the
# package, a recovery agent may not open a request (archive/recovery.c's
# rules behind the router's role check): 403 as well.
MATRIX='
#     method path                                          none usrC usrT admin offcr recO recA audit remvd revkd expd expdb
https GET  /healthz                                        200  200  200  200   200   200  200  200   200   200   200  200
https GET  /ca.crt                                         200  200  200  200   200   200  200  200   200   200   200  200
https GET  /ca.crl                                         200  200  200  200   200   200  200  200   200   200   200  200
https GET  /delta.crl                                      200  200  200  200   200   200  200  200   200   200   200  200
https POST /ocsp                                           200  200  200  200   200   200  200  200   200   200   200  200
https GET  /ocsp/{ocsp}                                    200  200  200  200   200   200  200  200   200   200   200  200
http  GET  /healthz                                        200  200  200  200   200   200  200  200   200   200   200  200
http  GET  /ca.crt                                         200  200  200  200   200   200  200  200   200   200   200  200
http  GET  /ca.crl                                         200  200  200  200   200   200  200  200   200   200   200  200
http  GET  /delta.crl                                      200  200  200  200   200   200  200  200   200   200   200  200
http  POST /ocsp                                           200  200  200  200   200   200  200  200   200   200   200  200
http  GET  /ocsp/{ocsp}                                    200  200  200  200   200   200  200  200   200   200   200  200
https GET  /.well-known/est/cacerts                        200  200  200  200   200   200  200  200   200   200   200  200
https GET  /.well-known/est/smime-enc/cacerts              200  200  200  200   200   200  200  200   200   200   200  200
https GET  /.well-known/est/csrattrs                       200  200  200  200   200   200  200  200   200   200   200  200
https GET  /.well-known/est/smime-enc/csrattrs             200  200  200  200   200   200  200  200   200   200   200  200
https POST /.well-known/est/simpleenroll                   401  200  200  401   401   401  401  401   401   401   401  401
https POST /.well-known/est/smime-sign/simpleenroll        401  200  200  401   401   401  401  401   401   401   401  401
https POST /.well-known/est/smime-sign/simplereenroll      401  200  401  401   401   401  401  401   401   401   401  401
https POST /.well-known/est/smime-enc/serverkeygen         401  200  200  401   401   401  401  401   401   401   401  401
https GET  /api/v1/policy                                  401  200  200  401   401   401  401  401   401   401   401  401
https GET  /api/v1/certificates                            403  403  403  200   200   403  403  200   403   403   403  403
https GET  /api/v1/certificates/{serial}                   403  403  403  200   200   403  403  200   403   403   403  403
https POST /api/v1/certificates/{victim}/revoke            403  403  403  200   200   403  403  403   403   403   403  403
https GET  /api/v1/audit                                   403  403  403  200   403   403  403  200   403   403   403  403
https POST /api/v1/recovery/requests                       403  403  403  403   403   400  403  403   403   403   403  403
https GET  /api/v1/recovery/requests                       403  403  403  403   403   200  200  403   403   403   403  403
https GET  /api/v1/recovery/requests/{id}                  403  403  403  403   403   404  404  403   403   403   403  403
https POST /api/v1/recovery/requests/{id}/approve          403  403  403  403   403   403  404  403   403   403   403  403
https POST /api/v1/recovery/requests/{id}/deny             403  403  403  403   403   404  404  403   403   403   403  403
https GET  /api/v1/recovery/requests/{id}/package          403  403  403  403   403   404  403  403   403   403   403  403
'
CALLERS=(none usrC usrT admin offcr recO recA audit remvd revkd expd expdb)

# --- the CA and its callers ----------------------------------------------------
DIR=$T/ca
free_ports
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Authz Test CA" \
    --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 --base-url http://127.0.0.1:$P2
# /delta.crl exists only with delta CRLs on
sed -i 's/^# delta = no$/delta = yes/' "$DIR/lockbox.conf"
check "delta CRLs turned on" grep -qx 'delta = yes' "$DIR/lockbox.conf"

# pem P12 OUT: key and certificate of a PKCS#12 (passphrase in $PW) as PEM
pem() { openssl pkcs12 -in "$1" -passin "file:$PW" -nodes -out "$2" 2>/dev/null && grep -q 'BEGIN CERTIFICATE' "$2"; }
# serial_of_p12 P12: the serial of the certificate in a PKCS#12
serial_p12() { openssl pkcs12 -in "$1" -passin "file:$PW" -nokeys -clcerts 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2; }
sql() { sqlite3 "$DIR/lockbox.db" "$1"; }

check "admin credential of init as PEM" pem "$DIR/admin.p12" "$T/admin.pem"
opadd() { # CALLER ROLE EMAIL (a recovery role's key made on its side)
    if [ "$2" = recovery-officer ]; then
        check "operator $1 ($2) added" add_recovery_officer "$DIR" "$T/$1.p12" "$1" "$3"
    else
        check "operator $1 ($2) added" $LOCKBOX operator add --dir "$DIR" --role "$2" --keygen \
            --out-p12 "$T/$1.p12" --p12-pass-file $PW --name "$1" --email "$3"
    fi
    check "  ... its credential as PEM" pem "$T/$1.p12" "$T/$1.pem"
}
opadd offcr officer officer@example.org
opadd recO recovery-officer recofficer@example.org
opadd audit auditor auditor@example.org
opadd remvd admin removed@example.org
opadd revkd admin revoked@example.org
opadd expdb admin dbexpired@example.org
# the recovery agent, two more, and the 2-of-3 policy they and the
# recovery officer signed, for the escrow of serverkeygen's keys
check "recovery agent added" add_agent "$DIR" "$T/recA.p12" "Agent" agent@example.org
check "  ... its credential as PEM" pem "$T/recA.p12" "$T/recA.pem"
for i in 2 3; do
    check "recovery agent $i added" add_agent "$DIR" "$T/recA$i.p12" "Agent $i" agent$i@example.org
done
check "escrow policy 2 of 3 in force" policy_in_force "$DIR" 2 "$T/recA.p12" "$T/recA2.p12" "$T/recA3.p12" "$T/recO.p12"

# removed: the role withdrawn and the credential revoked by the CLI
REMVD=$(serial_p12 "$T/remvd.p12")
check "operator remvd removed" $LOCKBOX operator remove --dir "$DIR" "$REMVD"
check "  ... its row says removed, its certificate revoked" test \
    "$(sql "SELECT o.status || '/' || c.status FROM operators o JOIN certificates c USING (serial) WHERE serial = '$REMVD'")" = removed/revoked
# revoked: only the certificate revoked; the operator row stays active
REVKD=$(serial_p12 "$T/revkd.p12")
check "credential of revkd revoked (lockbox revoke)" $LOCKBOX revoke --dir "$DIR" "$REVKD" --reason privilegeWithdrawn
check "  ... its row still active, its certificate revoked" test \
    "$(sql "SELECT o.status || '/' || c.status FROM operators o JOIN certificates c USING (serial) WHERE serial = '$REVKD'")" = active/revoked
# expired in the database only: the certificate itself is valid for a year,
# so this cell shows the database's own expiry check
EXPDB=$(serial_p12 "$T/expdb.p12")
sql "UPDATE certificates SET not_after = strftime('%s', 'now') - 3600 WHERE serial = '$EXPDB'"
check "expdb: certificate valid, database row expired an hour ago" sh -c \
    "openssl x509 -in '$T/expdb.pem' -noout -checkend 3600 >/dev/null && [ \$(sqlite3 '$DIR/lockbox.db' \"SELECT not_after < strftime('%s', 'now') FROM certificates WHERE serial = '$EXPDB'\") = 1 ]"

# expired: the CLI issues only from now on (no --days in the past, and
# faketime is not among the test dependencies), so the CA signs an
# operator credential valid from 2020-01-01 to 2020-02-01 with openssl ca
# and its CA key, as `operator add` would (clientAuth, this CA's issuer
# name), and the two rows `operator add` writes are inserted by hand.
mkdir -p "$T/oca"
: >"$T/oca/index.txt"
echo 4A17E57000000001 >"$T/oca/serial"
cat >"$T/oca/ca.cnf" <<EOF
[ca]
default_ca = oca
[oca]
database = $T/oca/index.txt
new_certs_dir = $T/oca
serial = $T/oca/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = op_ext
[anything]
commonName = supplied
[op_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/expd.key" \
    -subj "/CN=Expired Admin" -out "$T/expd.csr" 2>/dev/null
check "an operator credential that expired in 2020 (openssl ca)" openssl ca -batch -notext \
    -config "$T/oca/ca.cnf" -cert "$DIR/ca.pem" -keyfile "$DIR/ca.key" -passin "file:$DIR/ca.key.pass" \
    -startdate 20200101000000Z -enddate 20200201000000Z -in "$T/expd.csr" -out "$T/expd.crt"
cat "$T/expd.key" "$T/expd.crt" >"$T/expd.pem"
check "  ... openssl says it has expired" sh -c "! openssl x509 -in '$T/expd.crt' -noout -checkend 0 >/dev/null"
check "  ... and that this CA issued it" sh -c "openssl verify -CAfile '$DIR/ca.pem' -no_check_time -purpose sslclient '$T/expd.crt' | grep -q ': OK'"
EXPD=$(serial_of "$T/expd.crt")
SPKI=$(openssl x509 -in "$T/expd.crt" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
DERHEX=$(openssl x509 -in "$T/expd.crt" -outform DER | od -An -v -tx1 | tr -d ' \n')
SUBJ=$(openssl x509 -in "$T/expd.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
sql "INSERT INTO certificates (serial, profile, email, subject, not_before, not_after, issued, status, spki_sha256, der)
     VALUES ('$EXPD', 'operator', 'expired@example.org', '$SUBJ', 1577836800, 1580515200, 1577836800, 'valid', '$SPKI', X'$DERHEX');
     INSERT INTO operators (name, email, role, serial, status, created)
     VALUES ('Expired Admin', 'expired@example.org', 'admin', '$EXPD', 'active', 1577836800);"
check "  ... stored as an active admin with that serial" test \
    "$(sql "SELECT o.role || '/' || o.status || '/' || c.not_after FROM operators o JOIN certificates c USING (serial) WHERE serial = '$EXPD'")" = admin/active/1580515200

# subscribers: a certificate (fresh ones where a cell uses it up) and tokens
NUSER=0
# new_user: issues an smime-sign certificate to a new subscriber; sets UC
# to its PEM (key and certificate) and USERIAL to its serial
new_user() {
    NUSER=$((NUSER + 1))
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/u$NUSER.key" \
        -subj "/CN=user$NUSER" -out "$T/u$NUSER.csr" 2>/dev/null
    USERIAL=$($LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/u$NUSER.csr" \
        --email "user$NUSER@example.org" --out "$T/u$NUSER.crt" | tail -n1)
    cat "$T/u$NUSER.key" "$T/u$NUSER.crt" >"$T/u$NUSER.pem"
    UC=$T/u$NUSER.pem
    # its renewal CSR: same names (simplereenroll refuses others)
    openssl req -new -key "$T/u$NUSER.key" -subj "/CN=user$NUSER@example.org" -outform DER \
        -out "$T/u$NUSER.der" 2>/dev/null && base64 "$T/u$NUSER.der" >"$T/u$NUSER.b64"
}
NTOK=0
# new_token: a one-time token for a new subscriber; sets UT to "email:secret"
new_token() {
    NTOK=$((NTOK + 1))
    UT="tok$NTOK@example.org:$($LOCKBOX token create --dir "$DIR" --email "tok$NTOK@example.org" \
        --profiles smime-sign,smime-enc | tail -n1)"
}
new_user; USER_PEM=$UC; USER_SERIAL=$USERIAL
check "a subscriber's smime-sign certificate" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/u1.crt"
new_token; USER_TOK=$UT
check "a one-time token" sh -c "echo '$USER_TOK' | grep -Eq ':lbt-[A-Za-z0-9_-]{43}$'"

# request bodies: a CSR for EST, an OCSP request about the subscriber
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/est.key" \
    -subj "/CN=est" -outform DER -out "$T/est.der" 2>/dev/null
base64 "$T/est.der" >"$T/est.b64"
check "an OCSP request" openssl ocsp -issuer "$DIR/ca.pem" -cert "$T/u1.crt" -no_nonce -reqout "$T/ocsp.der"
OCSP_B64=$(base64 -w0 "$T/ocsp.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
FAKE_ID=0123456789abcdef0123456789abcdef

# --- the daemon -------------------------------------------------------------------
$SERVE serve --dir "$DIR" 2>"$T/serve.log" &
PID=$!
at_exit "kill -KILL $PID 2>/dev/null"
if wait_port "$P1" && wait_port "$P2"; then ok "daemon listening"; else
    fail "daemon listening"; sed 's/^/       /' "$T/serve.log"; exit 1
fi

# creds CALLER FRESH: sets CRED to the curl arguments that present CALLER;
# FRESH=1: the cell may use up the subscriber's certificate or token
creds() {
    CRED=(--cacert "$DIR/ca.pem")
    case $1 in
    none) ;;
    usrC) if [ "$2" = 1 ]; then new_user; CRED+=(--cert "$UC"); else CRED+=(--cert "$USER_PEM"); fi ;;
    usrT) if [ "$2" = 1 ]; then new_token; CRED+=(-u "$UT"); else CRED+=(-u "$USER_TOK"); fi ;;
    admin) CRED+=(--cert "$T/admin.pem") ;;
    *) CRED+=(--cert "$T/$1.pem") ;;
    esac
}

# request METHOD PATH: sets REQ to the curl arguments (method, body) and
# URLPATH to the path with its placeholders filled
JSON=(-H 'Content-Type: application/json')
request() {
    local m=$1 p=$2
    REQ=()
    case $p in
    */revoke)
        new_user
        p=${p/\{victim\}/$USERIAL}
        REQ=("${JSON[@]}" --data-binary '{"reason": "superseded"}') ;;
    /ocsp) REQ=(-H 'Content-Type: application/ocsp-request' --data-binary @"$T/ocsp.der") ;;
    */simplereenroll)
        # the latest subscriber's (creds made a fresh one for usrC)
        REQ=(-H 'Content-Type: application/pkcs10' --data-binary @"$T/u$NUSER.b64") ;;
    /.well-known/est/*) [ "$m" = POST ] && REQ=(-H 'Content-Type: application/pkcs10' --data-binary @"$T/est.b64") ;;
    /api/v1/recovery/requests)
        [ "$m" = POST ] && REQ=("${JSON[@]}" --data-binary \
            '{"email": "someone@example.org", "reason": "authorization matrix", "request_cert": "not a certificate"}') ;;
    */approve) REQ=("${JSON[@]}" --data-binary '{"shares": []}') ;;
    */deny) REQ=("${JSON[@]}" --data-binary '{"reason": "authorization matrix"}') ;;
    esac
    p=${p/\{ocsp\}/$OCSP_B64}
    p=${p/\{serial\}/$USER_SERIAL}
    p=${p/\{id\}/$FAKE_ID}
    URLPATH=$p
    [ "$m" = POST ] && [ ${#REQ[@]} -eq 0 ] && REQ=(--data-binary '')
    REQ=(-X "$m" "${REQ[@]}")
}

# cell WANT DESC URL CURL-ARGS...: one cell of the matrix
cell() {
    local want=$1 desc=$2 url=$3 got verdict=allowed; shift 3
    got=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 20 "$@" "$url")
    case $want in 401|403) verdict=denied ;; esac
    if [ "$got" = "$want" ] && ! grep -qE 'no such (resource|EST)' "$T/body"; then
        ok "$desc: $verdict (HTTP $got)"; return
    fi
    fail "$desc: HTTP $got, want $want ($verdict)"
    head -c 300 "$T/body" | sed 's/^/       /'; echo
}

# --- every cell ---------------------------------------------------------------------
ALLOWED_REVOKES=0
while read -r lst method path cells; do
    case $lst in ''|'#'*) continue ;; esac
    read -r -a want <<<"$cells"
    if [ ${#want[@]} != ${#CALLERS[@]} ]; then fail "matrix row $method $path has ${#want[@]} cells"; continue; fi
    if [ "$lst" = https ]; then base=https://127.0.0.1:$P1; else base=http://127.0.0.1:$P2; fi
    fresh=0
    case "$method $path" in "POST /.well-known/est/"*) fresh=1 ;; esac
    for i in "${!CALLERS[@]}"; do
        who=${CALLERS[$i]}
        creds "$who" "$fresh"
        request "$method" "$path"
        case $path in */revoke) [ "${want[$i]}" = 200 ] && ALLOWED_REVOKES=$((ALLOWED_REVOKES + 1)) ;; esac
        cell "${want[$i]}" "$lst $method $path as $who" "$base$URLPATH" "${CRED[@]}" "${REQ[@]}"
    done
done <<<"$MATRIX"

# --- denied means nothing done ------------------------------------------------------
# every revoke row cell had a certificate of its own: exactly those of the
# allowed cells are revoked
check "only the allowed revocations happened ($ALLOWED_REVOKES)" test \
    "$(sql "SELECT count(*) FROM certificates WHERE profile = 'smime-sign' AND status = 'revoked'")" = "$ALLOWED_REVOKES"
check "no recovery request was opened" test "$(sql "SELECT count(*) FROM recovery_requests")" = 0
check "the refused operators are named in the log" sh -c \
    "grep -q '$REVKD is not an active operator' '$T/serve.log' && grep -q '$EXPDB is not an active operator' '$T/serve.log' && grep -q 'certificate has expired' '$T/serve.log'"

kill -TERM "$PID"
wait "$PID"; rc=$?
if [ "$rc" = 0 ]; then ok "daemon exits 0 on SIGTERM"; else fail "daemon exits 0 on SIGTERM: exit $rc"; fi
no_sanitizer_reports "$T/serve.log"
