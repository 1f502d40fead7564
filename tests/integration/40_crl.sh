#!/bin/bash
# 40_crl.sh - CRLs through real clients: `lockbox crl` and `crl status`,
# the daemon's publisher (a CRL at start, a new one within seconds of a
# revocation by the CLI and by the API), GET /ca.crl with its caching
# headers and 304s, `openssl crl` and `openssl verify -crl_check`, NSS's
# crlutil and GnuTLS's certtool, an RSA-3072 CA's CRL, and the audit chain.
# The daemon runs from the ASan build when one is there (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve

# crlnum FILE: the CRL number of a DER CRL.
crlnum() { openssl crl -inform DER -in "$1" -noout -crlnumber | sed 's/.*=//'; }
# crltext FILE: the text form of a DER CRL.
crltext() { openssl crl -inform DER -in "$1" -noout -text; }
# fetch [CURL-ARGS...]: GET /ca.crl into $T/body, headers into $T/headers;
# prints the status.
fetch() { curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 20 "$@" "$HTTP/ca.crl"; }
hdr() { grep -i "^$1:" "$T/headers" | head -n1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
# wait_crl MIN: waits up to 15 s for the served CRL's number to reach MIN.
wait_crl() {
    local i n
    for i in $(seq 1 150); do
        if [ "$(fetch)" = 200 ]; then
            n=$(crlnum "$T/body" 2>/dev/null | tr -d '\n')
            n=$((16#${n#0x}))
            [ "$n" -ge "$1" ] && return 0
        fi
        sleep 0.1
    done
    return 1
}
hexnum() { local n; n=$(crlnum "$1" | tr -d '\n'); echo $((16#${n#0x})); }

check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "CRL Test CA"
for h in "" " status"; do
    expect_code "crl$h --help exits 0" 0 $LOCKBOX crl$h --help
    check "crl$h --help shows usage" grep -q "usage: lockbox crl" "$T/.out"
done
expect_code "crl with a stray argument exits 2" 2 $LOCKBOX crl --dir "$DIR" bogus
expect_code "crl status with an unknown option exits 2" 2 $LOCKBOX crl status --dir "$DIR" --bogus
expect_code "crl on a missing state directory exits 1" 1 $LOCKBOX crl --dir "$T/none"
check "status before any CRL" $LOCKBOX crl status --dir "$DIR"
check "status says none issued yet" grep -q "no CRL issued yet" "$T/.out"

check "lockbox crl issues one without the daemon" $LOCKBOX crl --dir "$DIR"
check "it prints number 1, times and entries" sh -c "grep -q '^number: *1$' '$T/.out' && grep -q '^thisUpdate: ' '$T/.out' && grep -q '^nextUpdate: ' '$T/.out' && grep -q '^entries: *0$' '$T/.out'"
check "pub/ca.crl is 0644" test "$(stat -c %a "$DIR/pub/ca.crl")" = 644
check "openssl reads it with CRL number 1" test "$(hexnum "$DIR/pub/ca.crl")" = 1
crltext "$DIR/pub/ca.crl" >"$T/crl1.txt"
check "it is version 2 with an AKI" sh -c "grep -q 'Version 2' '$T/crl1.txt' && grep -q 'Authority Key Identifier' '$T/crl1.txt'"
check "no Issuing Distribution Point" sh -c "! grep -q 'Issuing Distribution Point' '$T/crl1.txt'"
check "its signature verifies with the CA certificate" crl_verifies "$DIR/pub/ca.crl" "$DIR/ca.pem"
# the control: the same check refuses a CRL this CA's key did not sign
refused_by_lookalike() { lookalike_ca "$DIR/ca.pem" "$T/lookalike.pem" && ! crl_verifies "$DIR/pub/ca.crl" "$T/lookalike.pem"; }
check "  ... and not with a look-alike CA certificate (same name and key identifier, other key)" refused_by_lookalike
lu=$(date -d "$(openssl crl -inform DER -in "$DIR/pub/ca.crl" -noout -lastupdate | cut -d= -f2)" +%s)
nu=$(date -d "$(openssl crl -inform DER -in "$DIR/pub/ca.crl" -noout -nextupdate | cut -d= -f2)" +%s)
check "nextUpdate - thisUpdate is 7 days" test $((nu - lu)) = 604800
now=$(date +%s)
check "thisUpdate is backdated by about 10 minutes" test $((now - lu)) -ge 595 -a $((now - lu)) -le 660

# --- certificates to revoke ------------------------------------------------
issue_signing alice bob carol dave
ALICE=$(cat "$T/alice.serial"); BOB=$(cat "$T/bob.serial"); CAROL=$(cat "$T/carol.serial")
check "four signing certificates issued" test -n "$ALICE" -a -n "$BOB" -a -n "$CAROL"

# --- the daemon --------------------------------------------------------------
# revocations within 1 s make one CRL
printf '\n[crl]\ncoalesce = 1\n' >>"$DIR/lockbox.conf"
serve_both "$DIR" "daemon listening"
code=$(fetch)
check "GET /ca.crl is 200" test "$code" = 200
check "the CRL is served as application/pkix-crl" test "$(hdr content-type)" = application/pkix-crl
check "the served CRL is pub/ca.crl" cmp "$T/body" "$DIR/pub/ca.crl"
check "a fresh CRL is not re-issued at start" test "$(hexnum "$T/body")" = 1

N0=$(hexnum "$T/body")
check "revoke alice (keyCompromise) with the CLI" $LOCKBOX revoke --dir "$DIR" "$ALICE" --reason keyCompromise --invalidity-date 1577934245
t0=$(date +%s)
if wait_crl $((N0 + 1)); then ok "a new CRL within seconds of a CLI revocation ($(( $(date +%s) - t0 )) s)"; else fail "a new CRL within seconds of a CLI revocation"; tail -5 "$T/serve.log"; fi
crltext "$T/body" >"$T/crl2.txt"
check "alice is on it" grep -q "Serial Number: $ALICE" "$T/crl2.txt"
check "with reason Key Compromise" grep -A4 "Serial Number: $ALICE" "$T/crl2.txt" -q -e "Key Compromise"
check "and her invalidity date" sh -c "grep -A8 'Serial Number: $ALICE' '$T/crl2.txt' | grep -q 'Jan  2 03:04:05 2020 GMT'"

openssl pkcs12 -in "$DIR/admin.p12" -passin "file:$PW" -nodes -out "$T/admin.pem" 2>/dev/null
ADMIN=(--cacert "$DIR/ca.pem" --cert "$T/admin.pem")
N1=$(hexnum "$T/body")
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${ADMIN[@]}" -H "Content-Type: application/json" \
    -X POST -d '{"reason": "affiliationChanged"}' "$HTTPS/api/v1/certificates/$BOB/revoke")
check "revoke bob over the API" test "$code" = 200
t0=$(date +%s)
if wait_crl $((N1 + 1)); then ok "a new CRL within seconds of an API revocation ($(( $(date +%s) - t0 )) s)"; else fail "a new CRL within seconds of an API revocation"; fi
crltext "$T/body" >"$T/crl3.txt"
check "bob is on it with affiliationChanged" sh -c "grep -A4 'Serial Number: $BOB' '$T/crl3.txt' | grep -q 'Affiliation Changed'"
check "the CRL number increased" test "$(hexnum "$T/body")" -gt "$N1"
check "no entry says unspecified" sh -c "! grep -qi unspecified '$T/crl3.txt'"

# two revocations in quick succession: one CRL
N2=$(hexnum "$T/body")
$LOCKBOX revoke --dir "$DIR" "$CAROL" --reason superseded >/dev/null
$LOCKBOX revoke --dir "$DIR" "$(cat "$T/dave.serial")" --reason cessationOfOperation >/dev/null
wait_crl $((N2 + 1)); sleep 3; fetch >/dev/null
check "two quick revocations coalesce into one CRL" test "$(hexnum "$T/body")" = $((N2 + 1))
check "which lists both" sh -c "crl=\$(openssl crl -inform DER -in '$T/body' -noout -text); echo \"\$crl\" | grep -q '$CAROL' && echo \"\$crl\" | grep -q '$(cat "$T/dave.serial")'"

# --- HTTP caching --------------------------------------------------------------
fetch >/dev/null
ETAG=$(hdr etag); LM=$(hdr last-modified)
check "ETag is the quoted SHA-256 of the DER" test "$ETAG" = "\"$(sha256sum "$T/body" | cut -d' ' -f1)\""
check "Last-Modified is set" test -n "$LM"
nu=$(date -d "$(openssl crl -inform DER -in "$T/body" -noout -nextupdate | cut -d= -f2)" +%s)
check "Expires is nextUpdate" test "$(date -d "$(hdr expires)" +%s)" = "$nu"
cc=$(hdr cache-control)
check "Cache-Control: public, no-transform, max-age" sh -c "echo '$cc' | grep -qE '^public, no-transform, max-age=[0-9]+$'"
ma=${cc##*max-age=}; left=$((nu - $(date +%s)))
check "max-age is the time left until nextUpdate" test $((left - ma)) -ge -2 -a $((left - ma)) -le 2
check "304 for a matching If-None-Match" test "$(fetch -H "If-None-Match: $ETAG")" = 304
check "304 carries the ETag" test "$(hdr etag)" = "$ETAG"
check "304 for If-Modified-Since = Last-Modified" test "$(fetch -H "If-Modified-Since: $LM")" = 304
check "200 for another ETag" test "$(fetch -H 'If-None-Match: "00"')" = 200
check "200 for an older If-Modified-Since" test "$(fetch -H 'If-Modified-Since: Mon, 01 Jan 2001 00:00:00 GMT')" = 200
check "HEAD /ca.crl is 200" test "$(curl -s -I -o /dev/null -w '%{http_code}' "$HTTP/ca.crl")" = 200
check "/ca.crl over HTTPS too" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DIR/ca.pem" "$HTTPS/ca.crl")" = 200
check "/ca.crt carries an ETag" test -n "$(curl -s -D - -o /dev/null "$HTTP/ca.crt" | grep -i '^etag:')"
check "/ca.crt 304 on If-None-Match" test "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$(openssl x509 -in "$DIR/ca.pem" -outform DER | sha256sum | cut -d' ' -f1)\"" "$HTTP/ca.crt")" = 304
check "the CDP URL of alice's certificate is this CRL" sh -c "openssl x509 -in '$T/alice.pem' -noout -ext crlDistributionPoints | grep -q 'URI:http://127.0.0.1:8080/ca.crl'"

# --- relying parties -----------------------------------------------------------
cp "$T/body" "$T/ca.crl"
openssl crl -inform DER -in "$T/ca.crl" -out "$T/ca.crl.pem"
expect_fail "openssl verify -crl_check refuses alice" 'error 23 at 0 depth lookup: certificate revoked' openssl verify -crl_check -CAfile "$DIR/ca.pem" -CRLfile "$T/ca.crl.pem" -purpose smimesign "$T/alice.pem"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/erin.key" -out "$T/erin.csr" -subj "/CN=erin" 2>/dev/null
$LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/erin.csr" --email erin@example.org --out "$T/erin.pem" >/dev/null
check "openssl verify -crl_check passes an unrevoked certificate" openssl verify -crl_check -CAfile "$DIR/ca.pem" -CRLfile "$T/ca.crl.pem" -purpose smimesign "$T/erin.pem"
NSS=$T/nss; mkdir -p "$NSS"
check "NSS database" certutil -N --empty-password -d "sql:$NSS"
check "NSS trusts the CA" certutil -A -n ca -t C,, -i "$DIR/ca.pem" -d "sql:$NSS"
check "crlutil imports the CRL" crlutil -I -i "$T/ca.crl" -d "sql:$NSS"
check "crlutil lists it" sh -c "crlutil -L -d 'sql:$NSS' | grep -q '^ca '"
check "certtool --verify-crl passes" certtool --verify-crl --load-ca-certificate "$DIR/ca.pem" --infile "$T/ca.crl.pem"
check "certtool says Verified" grep -q "Verified" "$T/.out"

# --- lockbox crl --now while the daemon runs -----------------------------------
N3=$(hexnum "$T/ca.crl")
check "lockbox crl --now" $LOCKBOX crl --now --dir "$DIR"
check "bumps the number" grep -q "^number: *$((N3 + 1))$" "$T/.out"
check "and the daemon serves it" wait_crl $((N3 + 1))
check "crl status" $LOCKBOX crl status --dir "$DIR"
cp "$T/.out" "$T/status.txt"
check "status shows the number and entries" sh -c "grep -q '^number: *$((N3 + 1))$' '$T/status.txt' && grep -q '^entries: *4$' '$T/status.txt'"
check "status shows the web target published" sh -c "grep '^target web' '$T/status.txt' | grep -q 'number '$((N3 + 1))',.* ok$'"
check "crl status --json" $LOCKBOX crl status --dir "$DIR" --json
check "JSON has number, times, entries and targets" python3 -c "
import json,sys; d=json.load(open('$T/.out'))
assert d['number'] == $((N3 + 1)) and d['entries'] == 4 and d['this_update'] and d['next_update']
t=[x for x in d['targets'] if x['target'] == 'web'][0]
assert t['number'] == $((N3 + 1)) and t['last_error'] is None
assert t['published'] and t['published'] == t['published_at'] and t['attempted'] == t['attempted_at']"
check "/healthz shows the web target at the current CRL number" python3 -c "
import json,urllib.request
d=json.load(urllib.request.urlopen('$HTTP/healthz', timeout=10))
c=d['crl']; t=[x for x in c['targets'] if x['name'] == 'web'][0]
assert d['status'] == 'ok' and c['number'] == $((N3 + 1)) and c['this_update'] and c['next_update']
assert t['published_number'] == $((N3 + 1)) and t['ok'] is True and t['last_error'] is None and t['published_at'] and t['published'] == t['published_at']"

# --- audit ----------------------------------------------------------------------
check "each CRL is an audit row" test "$(db_count "SELECT count(*) FROM audit WHERE action = 'crl.issue'")" -ge $((N3 + 1))
check "with the number as object and thisUpdate/entries" test -n "$(db_count "SELECT id FROM audit WHERE action = 'crl.issue' AND object = '$((N3 + 1))' AND detail LIKE 'thisUpdate=%entries=4'")"
check "the audit chain is intact" $LOCKBOX audit verify --dir "$DIR"

# --- shutdown -------------------------------------------------------------------
kill -TERM "$PID"
for i in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID"; rc=$?
check "daemon exits 0 on SIGTERM" test "$rc" = 0
check "every database handle closed (no WAL left)" test ! -e "$DIR/lockbox.db-wal"
no_sanitizer_reports "$T/serve.log"

# --- an RSA-3072 CA (gpgsm/dirmngr need RSA-signed CRLs) -------------------------
RDIR=$T/rsa
check "init an RSA-3072 CA" $LOCKBOX init --p12-pass-file $PW --dir "$RDIR" --key-type rsa-3072 --name "CRL RSA CA"
check "lockbox crl on it" $LOCKBOX crl --dir "$RDIR"
check "its CRL is RSA-signed" sh -c "openssl crl -inform DER -in '$RDIR/pub/ca.crl' -noout -text | grep -q 'Signature Algorithm: sha256WithRSAEncryption'"
check "  ... and verifies with the CA certificate" crl_verifies "$RDIR/pub/ca.crl" "$RDIR/ca.pem"
