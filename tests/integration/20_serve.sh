#!/bin/bash
# 20_serve.sh - the daemon through real clients (curl, openssl): both
# listeners, /healthz and /ca.crt, operators' client certificates (missing,
# foreign, forged, removed), roles, the JSON API (list, show, revoke,
# audit), limits and errors (413, 400, 415, 405, 404), and a graceful
# SIGTERM that lets an in-flight request finish and exits 0.
# The daemon runs from the ASan build when one is there (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve

# status WANT DESC CURL-ARGS...: passes when curl gets HTTP status WANT;
# the body is left in $T/body and the headers in $T/headers.
status() {
    local want=$1 desc=$2 got; shift 2
    got=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 20 "$@")
    if [ "$got" = "$want" ]; then ok "$desc"; else
        fail "$desc (HTTP $got, want $want)"; head -c 400 "$T/body" | sed 's/^/       /'; echo
    fi
}
# json EXPR: evaluates a Python expression over the last body as d.
json() { python3 -c "import json,sys; d=json.load(open('$T/body')); sys.exit(0 if ($1) else 1)"; }
# field SERIAL NAME: a field of `lockbox show --json`.
field() { $LOCKBOX show --dir "$DIR" --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Serve Test CA"
serve_both "$DIR" "both listeners open"
for i in $(seq 1 50); do grep -q "^lockbox: serving" "$T/serve.log" && break; sleep 0.1; done
check "announces both URLs on stderr" grep -qx "lockbox: serving $HTTPS and $HTTP" "$T/serve.log"

# --- no credentials needed -------------------------------------------------
CA=(--cacert "$DIR/ca.pem")
status 200 "healthz over plain HTTP" "$HTTP/healthz"
check "healthz says ok" json 'd["status"] == "ok"'
status 200 "healthz over HTTPS without a client certificate" "${CA[@]}" "$HTTPS/healthz"
check "healthz over HTTPS says ok" json 'd["status"] == "ok"'
status 200 "GET /ca.crt" "$HTTP/ca.crt"
check "/ca.crt is the CA certificate in DER" sh -c "openssl x509 -in '$DIR/ca.pem' -outform DER | cmp - '$T/body'"
check "/ca.crt is application/pkix-cert" grep -qi '^content-type: application/pkix-cert' "$T/headers"
status 200 "HEAD /ca.crt" -I "$HTTP/ca.crt"
status 404 "unknown path on plain HTTP is 404" "$HTTP/nothing"
status 404 "the API is not on plain HTTP" "$HTTP/api/v1/certificates"
check "404 is a JSON error" json '"error" in d and "detail" in d'
status 405 "POST /healthz is 405" -X POST "$HTTP/healthz"
check "405 carries Allow: GET, HEAD" grep -qi '^allow: GET, HEAD' "$T/headers"

# --- client certificates ---------------------------------------------------
openssl pkcs12 -in "$DIR/admin.p12" -passin "file:$PW" -nodes -out "$T/admin.pem" 2>/dev/null
ADMIN=(--cacert "$DIR/ca.pem" --cert "$T/admin.pem")
status 200 "admin lists certificates" "${ADMIN[@]}" "$HTTPS/api/v1/certificates"
check "listing is JSON with the admin credential" json 'any(c["profile"] == "operator" and c["email"] == "admin@localhost" for c in d["certificates"]) and d["count"] == len(d["certificates"])'
status 403 "no client certificate: 403" "${CA[@]}" "$HTTPS/api/v1/certificates"
check "403 is a JSON error" json 'd["error"] == "forbidden"'

# a client certificate from another CA, and one from a forged CA that has
# this CA's name but not its key
mkca() { # NAME DIR
    mkdir -p "$2"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$2/ca.key" -out "$2/ca.pem" -subj "/CN=$1" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2/op.key" \
        -out "$2/op.csr" -subj "/CN=Administrator" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$2/ext"
    openssl x509 -req -in "$2/op.csr" -CA "$2/ca.pem" -CAkey "$2/ca.key" -days 1 \
        -extfile "$2/ext" -out "$2/op.pem" 2>/dev/null
}
mkca "Other CA" "$T/other"
status 403 "client certificate of another CA: 403" "${CA[@]}" --cert "$T/other/op.pem" --key "$T/other/op.key" "$HTTPS/api/v1/certificates"
mkca "Serve Test CA" "$T/forged"
status 403 "client certificate of a forged same-name CA: 403" "${CA[@]}" --cert "$T/forged/op.pem" --key "$T/forged/op.key" "$HTTPS/api/v1/certificates"
status 403 "a subscriber certificate of this CA is no operator credential" "${CA[@]}" --cert "$DIR/tls.pem" --key "$DIR/tls.key" "$HTTPS/api/v1/certificates"

# --- certificates to act on ------------------------------------------------
issue_signing alice bob carol
ALICE=$(cat "$T/alice.serial"); BOB=$(cat "$T/bob.serial"); CAROL=$(cat "$T/carol.serial")
check "three certificates issued" test -n "$ALICE" -a -n "$BOB" -a -n "$CAROL"

status 200 "GET one certificate" "${ADMIN[@]}" "$HTTPS/api/v1/certificates/$ALICE"
check "it has every field" json 'all(k in d for k in ("serial","profile","email","subject","status","not_before","not_after","issued","issued_at","pem")) and d["issued"] == d["issued_at"] and d["status"] == "valid" and d["email"] == "alice@example.org"'
check "its pem is the issued certificate" sh -c "python3 -c 'import json; print(json.load(open(\"$T/body\"))[\"pem\"], end=\"\")' | openssl x509 | cmp - '$T/alice.pem'"
check "times are ISO 8601 UTC" json '__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["not_after"])'
status 200 "filter by email and profile" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?email=bob@example.org&profile=smime-sign"
check "filter finds exactly bob" json '[c["serial"] for c in d["certificates"]] == ["'"$BOB"'"]'
status 200 "limit=1 says there is more" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?limit=1"
check "one entry and more=true" json 'd["count"] == 1 and d["more"] is True'
status 400 "unknown status filter is 400" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?status=sleepy"
status 400 "unknown query parameter is 400" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?emial=x"
status 400 "limit=0 is 400" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?limit=0"
status 400 "unknown profile is 400" "${ADMIN[@]}" "$HTTPS/api/v1/certificates?profile=nope"
status 400 "malformed serial is 400" "${ADMIN[@]}" "$HTTPS/api/v1/certificates/not-hex"
status 404 "unknown serial is 404" "${ADMIN[@]}" "$HTTPS/api/v1/certificates/0123456789ABCDEF"
status 405 "DELETE on a certificate is 405" "${ADMIN[@]}" -X DELETE "$HTTPS/api/v1/certificates/$ALICE"
check "405 names the allowed methods" grep -qi '^allow: GET, HEAD' "$T/headers"
status 405 "GET on revoke is 405" "${ADMIN[@]}" "$HTTPS/api/v1/certificates/$ALICE/revoke"
check "405 on revoke allows POST" grep -qi '^allow: POST' "$T/headers"
status 404 "unknown API path is 404" "${ADMIN[@]}" "$HTTPS/api/v1/nothing"

# --- revocation --------------------------------------------------------------
J=(-H "Content-Type: application/json")
status 200 "admin revokes alice over the API" "${ADMIN[@]}" "${J[@]}" -X POST \
    -d '{"reason": "keyCompromise", "invalidity_date": "2020-01-02T03:04:05Z"}' "$HTTPS/api/v1/certificates/$ALICE/revoke"
check "the answer shows revoked with its reason" json 'd["status"] == "revoked" and d["reason"] == "keyCompromise" and "revoked_at" in d and d["revoked"] == d["revoked_at"]'
check "lockbox show sees it revoked" test "$(field "$ALICE" status)" = revoked
check "the audit log names the operator" test "$(sqlite3 "$DIR/lockbox.db" "SELECT actor FROM audit WHERE action = 'cert.revoke' AND object = '$ALICE'")" = "api:admin@localhost"
check "invalidity date stored" test "$(sqlite3 "$DIR/lockbox.db" "SELECT invalidity FROM certificates WHERE serial = '$ALICE'")" = 1577934245
status 409 "second revoke is 409" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/$ALICE/revoke"
check "409 is a JSON error" json 'd["error"] == "conflict"'
status 404 "revoking an unknown serial is 404" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/0123456789ABCDEF/revoke"

# the daemon's CRL publisher audits each CRL it issues: not a request's doing
audit_rows() { sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit WHERE action <> 'crl.issue'"; }
ROWS=$(audit_rows)
status 400 "malformed JSON is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": ' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "unknown reason is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "unspecified"}' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "unknown field is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "superseded", "why": 1}' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "empty body is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "a JSON array is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '["superseded"]' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "invalidity date in the future is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "keyCompromise", "invalidity_date": "2999-01-01T00:00:00Z"}' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "invalidity date without keyCompromise is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "superseded", "invalidity_date": 1}' "$HTTPS/api/v1/certificates/$BOB/revoke"
status 400 "malformed serial in revoke is 400" "${ADMIN[@]}" "${J[@]}" -X POST -d '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/xyz/revoke"
status 415 "a body that is not JSON is 415" "${ADMIN[@]}" -X POST -d 'reason=superseded' "$HTTPS/api/v1/certificates/$BOB/revoke"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big.json"
sed -i '1s/^/{"reason": "superseded"}/' "$T/big.json"
status 413 "body over 64 KiB is 413" "${ADMIN[@]}" "${J[@]}" -X POST --data-binary @"$T/big.json" "$HTTPS/api/v1/certificates/$BOB/revoke"
check "413 is a JSON error" json 'd["error"] == "payload_too_large"'
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${ADMIN[@]}" "${J[@]}" -H 'Transfer-Encoding: chunked' \
    -X POST --data-binary @"$T/big.json" "$HTTPS/api/v1/certificates/$BOB/revoke")
if [ "$code" = 413 ]; then ok "chunked body over the limit is 413"; else fail "chunked body over the limit is 413 (HTTP $code)"; fi
status 413 "over the limit with Expect: 100-continue is 413 before the body" "${ADMIN[@]}" "${J[@]}" -H 'Expect: 100-continue' -X POST --data-binary @"$T/big.json" "$HTTPS/api/v1/certificates/$BOB/revoke"
head -c 6000000 /dev/zero | tr '\0' ' ' >"$T/huge.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${ADMIN[@]}" "${J[@]}" -H 'Expect:' \
    -X POST --data-binary @"$T/huge.json" "$HTTPS/api/v1/certificates/$BOB/revoke"); crc=$?
# The daemon answers 413 once the body passes the limit and closes the
# connection; curl, still sending, may see only the close (exit 52, 55 or
# 56, no status).  That counts as cut off only while the daemon lives on
# and answers: a crashed daemon closes connections too.
alive() { kill -0 "$PID" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$HTTP/healthz")" = 200 ]; }
cut_off() { [ "$code" = 000 ] && case $crc in 52|55|56) true ;; *) false ;; esac; }
if { [ "$code" = 413 ] || cut_off; } && alive; then ok "a 6 MB body is refused or cut off (HTTP $code, curl exit $crc), the daemon still answering"
else fail "a 6 MB body is refused or cut off (HTTP $code, curl exit $crc), the daemon still answering"; fi
check "bob is still valid after all that" test "$(field "$BOB" status)" = valid
check "refused requests wrote no audit rows" test "$(audit_rows)" = "$ROWS"
status 200 "the daemon still answers" "$HTTP/healthz"

# --- roles -------------------------------------------------------------------
check "add an officer" $LOCKBOX operator add --dir "$DIR" --role officer --keygen --out-p12 "$T/officer.p12" --p12-pass-file $PW --name Officer --email officer@example.org
check "add an auditor" $LOCKBOX operator add --dir "$DIR" --role auditor --keygen --out-p12 "$T/auditor.p12" --p12-pass-file $PW --name Auditor --email auditor@example.org
for who in officer auditor; do
    openssl pkcs12 -in "$T/$who.p12" -passin "file:$PW" -nodes -out "$T/$who.pem" 2>/dev/null
done
OFFICER=(--cacert "$DIR/ca.pem" --cert "$T/officer.pem")
AUDITOR=(--cacert "$DIR/ca.pem" --cert "$T/auditor.pem")
status 200 "auditor lists certificates" "${AUDITOR[@]}" "$HTTPS/api/v1/certificates"
status 200 "auditor reads the audit log" "${AUDITOR[@]}" "$HTTPS/api/v1/audit?limit=1000"
check "audit entries are chained" json 'all(d["entries"][i]["prev_hash"] == d["entries"][i-1]["hash"] for i in range(1, len(d["entries"])))'
check "audit shows the API revocation" json 'any(e["action"] == "cert.revoke" and e["actor"] == "api:admin@localhost" for e in d["entries"])'
status 200 "audit paging with after" "${AUDITOR[@]}" "$HTTPS/api/v1/audit?after=2&limit=2"
check "paging starts after the given id" json '[e["id"] for e in d["entries"]] == [3, 4] and d["next_after"] == 4'
status 403 "auditor cannot revoke" "${AUDITOR[@]}" "${J[@]}" -X POST -d '{"reason": "superseded"}' "$HTTPS/api/v1/certificates/$BOB/revoke"
check "the refusal names the roles needed" json '"admin or officer" in d["detail"]'
check "bob is still valid" test "$(field "$BOB" status)" = valid
status 403 "officer cannot read the audit log" "${OFFICER[@]}" "$HTTPS/api/v1/audit"
status 200 "officer revokes bob" "${OFFICER[@]}" "${J[@]}" -X POST -d '{"reason": "affiliationChanged"}' "$HTTPS/api/v1/certificates/$BOB/revoke"
check "bob is revoked by the officer" test "$(sqlite3 "$DIR/lockbox.db" "SELECT actor FROM audit WHERE action = 'cert.revoke' AND object = '$BOB'")" = "api:officer@example.org"
OSERIAL=$(openssl x509 -in "$T/officer.pem" -noout -serial | cut -d= -f2)
check "remove the officer" $LOCKBOX operator remove --dir "$DIR" "$OSERIAL"
status 403 "a removed operator's certificate is refused" "${OFFICER[@]}" "$HTTPS/api/v1/certificates"
check "carol is still valid" test "$(field "$CAROL" status)" = valid

# --- graceful shutdown -------------------------------------------------------
# a request whose body trickles in while SIGTERM arrives must still finish
python3 -c 'print("{\"reason\": \"superseded\"" + " " * 2500 + "}")' >"$T/slow.json"
curl -s -o "$T/slow.body" -w '%{http_code}' --max-time 30 --limit-rate 1000 "${ADMIN[@]}" "${J[@]}" \
    -X POST --data-binary @"$T/slow.json" "$HTTPS/api/v1/certificates/$CAROL/revoke" >"$T/slow.code" &
CURL=$!
sleep 1
kill -TERM "$PID"
for i in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then fail "daemon exits within 10 s of SIGTERM"; kill -KILL "$PID"; else ok "daemon exits within 10 s of SIGTERM"; fi
wait "$PID"; rc=$?
if [ "$rc" = 0 ]; then ok "daemon exits 0 on SIGTERM"; else fail "daemon exits 0 on SIGTERM (exit $rc)"; tail -30 "$T/serve.log" | sed 's/^/       /'; fi
wait "$CURL"
check "the in-flight request finished with 200" test "$(cat "$T/slow.code")" = 200
check "and its revocation is durable" test "$(field "$CAROL" status)" = revoked
if (exec 3<>"/dev/tcp/127.0.0.1/$P1") 2>/dev/null; then fail "HTTPS port closed after shutdown"; else ok "HTTPS port closed after shutdown"; fi
# SQLite removes the WAL when the last handle closes cleanly
check "every database handle closed (no WAL left)" test ! -e "$DIR/lockbox.db-wal"
no_sanitizer_reports "$T/serve.log"
