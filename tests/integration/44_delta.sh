#!/bin/bash
# 44_delta.sh - delta CRLs ([crl] delta = yes): with every full CRL a delta
# CRL at /delta.crl (critical Delta CRL Indicator naming the previous full
# CRL, the revocations since), advertised by the full CRL's Freshest CRL;
# `openssl verify -use_deltas` with an older full CRL and the new delta
# refuses a certificate revoked after that full CRL.  A revoked certificate
# that expires after a full CRL listed it drops off the next full CRL and
# is on that delta as Remove From CRL, so that base + delta pass it.  With
# the default (delta = no): no /delta.crl and no Freshest CRL.
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve

hexnum() { local n; n=$(openssl crl -inform DER -in "$1" -noout -crlnumber | sed 's/.*=//' | tr -d '\n'); echo $((16#${n#0x})); }
# get PATH OUT [CURL-ARGS...]: GET PATH into OUT, headers into OUT.h; prints the status.
get() { local p=$1 o=$2; shift 2; curl -s -o "$o" -D "$o.h" -w '%{http_code}' --max-time 20 "$@" "$HTTP$p"; }
hdr() { grep -i "^$2:" "$1.h" | head -n1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
# wait_full MIN: waits up to 15 s for /ca.crl's number to reach MIN.
wait_full() {
    local i
    for i in $(seq 1 150); do
        if [ "$(get /ca.crl "$T/full")" = 200 ] && [ "$(hexnum "$T/full")" -ge "$1" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}
start() { serve_both "$1" "daemon listening"; } # DIR
stop() {
    kill -TERM "$PID"
    for i in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    wait "$PID"; rc=$?
    check "daemon exits 0 on SIGTERM" test "$rc" = 0
}

check "init a CA" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Delta Test CA"
check "the config template documents [crl] delta" grep -q "^# delta = no" "$DIR/lockbox.conf"
printf '\n[crl]\ncoalesce = 1\ndelta = yes\n' >>"$DIR/lockbox.conf"
issue_signing alice bob
ALICE=$(cat "$T/alice.serial")
check "lockbox crl issues a full and a delta CRL" $LOCKBOX crl --dir "$DIR"
check "pub/delta.crl is 0644" test "$(stat -c %a "$DIR/pub/delta.crl")" = 644

start "$DIR"
check "GET /ca.crl is 200" test "$(get /ca.crl "$T/base")" = 200
N0=$(hexnum "$T/base")
openssl crl -inform DER -in "$T/base" -noout -text >"$T/base.txt"
check "the full CRL carries Freshest CRL" grep -q "Freshest CRL" "$T/base.txt"
check "pointing at /delta.crl" grep -q "URI:http://127.0.0.1:8080/delta.crl" "$T/base.txt"
check "the full CRL has no Delta CRL Indicator" sh -c "! grep -q 'Delta CRL Indicator' '$T/base.txt'"

check "revoke alice" $LOCKBOX revoke --dir "$DIR" "$ALICE" --reason keyCompromise
check "a new full CRL within seconds" wait_full $((N0 + 1))
N1=$(hexnum "$T/full")
check "GET /delta.crl is 200" test "$(get /delta.crl "$T/delta")" = 200
check "served as application/pkix-crl" test "$(hdr "$T/delta" content-type)" = application/pkix-crl
check "the served delta is pub/delta.crl" cmp "$T/delta" "$DIR/pub/delta.crl"
ETAG=$(hdr "$T/delta" etag)
check "with the SHA-256 ETag" test "$ETAG" = "\"$(sha256sum "$T/delta" | cut -d' ' -f1)\""
check "and Cache-Control" sh -c "echo '$(hdr "$T/delta" cache-control)' | grep -qE '^public, no-transform, max-age=[0-9]+$'"
check "and Expires, Last-Modified" test -n "$(hdr "$T/delta" expires)" -a -n "$(hdr "$T/delta" last-modified)"
check "304 for a matching If-None-Match" test "$(get /delta.crl "$T/d304" -H "If-None-Match: $ETAG")" = 304
check "the delta shares the full CRL's number" test "$(hexnum "$T/delta")" = "$N1"
openssl crl -inform DER -in "$T/delta" -noout -text >"$T/delta.txt"
check "openssl shows a critical Delta CRL Indicator" grep -q "Delta CRL Indicator: critical" "$T/delta.txt"
base=$(grep -A1 "Delta CRL Indicator" "$T/delta.txt" | tail -n1 | tr -d ' ')
check "naming the base CRL number $N0" test "$((base))" = "$N0"
check "alice is on the delta" grep -q "Serial Number: $ALICE" "$T/delta.txt"
check "the delta verifies with the CA certificate" crl_verifies "$T/delta" "$DIR/ca.pem"
check "the delta has no Freshest CRL" sh -c "! grep -q 'Freshest CRL' '$T/delta.txt'"

openssl crl -inform DER -in "$T/base" -out "$T/base.pem"
openssl crl -inform DER -in "$T/delta" -out "$T/delta.pem"
check "the base CRL alone passes alice" openssl verify -crl_check -CAfile "$DIR/ca.pem" -CRLfile "$T/base.pem" -purpose smimesign "$T/alice.pem"
expect_fail "base + delta with -use_deltas refuse alice" 'error 23 at 0 depth lookup: certificate revoked' openssl verify -crl_check -use_deltas -CAfile "$DIR/ca.pem" -CRLfile "$T/base.pem" -CRLfile "$T/delta.pem" -purpose smimesign "$T/alice.pem"
check "and pass bob" openssl verify -crl_check -use_deltas -CAfile "$DIR/ca.pem" -CRLfile "$T/base.pem" -CRLfile "$T/delta.pem" -purpose smimesign "$T/bob.pem"
openssl crl -inform DER -in "$T/full" -out "$T/full.pem"
expect_fail "the new full CRL alone refuses alice too" 'error 23 at 0 depth lookup: certificate revoked' openssl verify -crl_check -CAfile "$DIR/ca.pem" -CRLfile "$T/full.pem" -purpose smimesign "$T/alice.pem"
check "audit records the delta" test -n "$(db_count "SELECT id FROM audit WHERE action = 'crl.issue' AND object = '$N1' AND detail LIKE '%delta=1 base=$N0'")"
stop

# --- expired after the base: removeFromCRL ---------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/carol.key" \
    -out "$T/carol.csr" -subj "/CN=carol" 2>/dev/null
$LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/carol.csr" --email carol@example.org --out "$T/carol.pem" >"$T/carol.serial"
CAROL=$(cat "$T/carol.serial")
check "revoke carol" $LOCKBOX revoke --dir "$DIR" "$CAROL" --reason superseded
# carol's certificate runs out two seconds from now (the store's view of it)
sqlite3 "$DIR/lockbox.db" "UPDATE certificates SET not_after = $(($(date +%s) + 2)) WHERE serial = '$CAROL'"
check "lockbox crl: a base that lists carol" $LOCKBOX crl --dir "$DIR"
openssl crl -inform DER -in "$DIR/pub/ca.crl" -out "$T/base2.pem"
N2=$(hexnum "$DIR/pub/ca.crl")
check "carol is on that full CRL" sh -c "openssl crl -in '$T/base2.pem' -noout -text | grep -q 'Serial Number: $CAROL'"
sleep 3
check "lockbox crl after carol expired" $LOCKBOX crl --dir "$DIR"
openssl crl -inform DER -in "$DIR/pub/ca.crl" -noout -text >"$T/full3.txt"
openssl crl -inform DER -in "$DIR/pub/delta.crl" -noout -text >"$T/delta3.txt"
openssl crl -inform DER -in "$DIR/pub/delta.crl" -out "$T/delta3.pem"
check "carol is off the new full CRL" sh -c "! grep -q 'Serial Number: $CAROL' '$T/full3.txt'"
base=$(grep -A1 "Delta CRL Indicator" "$T/delta3.txt" | tail -n1 | tr -d ' ')
check "the delta names base $N2" test "$((base))" = "$N2"
check "the delta lists carol as Remove From CRL" sh -c "grep -A4 'Serial Number: $CAROL' '$T/delta3.txt' | grep -q 'Remove From CRL'"
# alice is still revoked: within the base's backdated thisUpdate she may be
# on the delta again, but never as Remove From CRL
check "alice is not Remove From CRL" sh -c "! grep -A4 'Serial Number: $ALICE' '$T/delta3.txt' | grep -q 'Remove From CRL'"
expect_fail "the base alone refuses carol" 'error 23 at 0 depth lookup: certificate revoked' openssl verify -crl_check -CAfile "$DIR/ca.pem" -CRLfile "$T/base2.pem" -purpose smimesign "$T/carol.pem"
check "base + delta with -use_deltas drop carol" openssl verify -crl_check -use_deltas -CAfile "$DIR/ca.pem" -CRLfile "$T/base2.pem" -CRLfile "$T/delta3.pem" -purpose smimesign "$T/carol.pem"
expect_fail "and still refuse alice" 'error 23 at 0 depth lookup: certificate revoked' openssl verify -crl_check -use_deltas -CAfile "$DIR/ca.pem" -CRLfile "$T/base2.pem" -CRLfile "$T/delta3.pem" -purpose smimesign "$T/alice.pem"

# --- the default: no delta ---------------------------------------------------------
NDIR=$T/nodelta
check "init a CA with the default [crl]" $LOCKBOX init --p12-pass-file $PW --dir "$NDIR" --key-type ec-p256 --name "No Delta CA"
check "lockbox crl" $LOCKBOX crl --dir "$NDIR"
check "no pub/delta.crl" test ! -e "$NDIR/pub/delta.crl"
start "$NDIR"
check "GET /delta.crl is 404" test "$(get /delta.crl "$T/nd")" = 404
check "GET /ca.crl is 200" test "$(get /ca.crl "$T/nf")" = 200
check "the full CRL has no Freshest CRL" sh -c "! openssl crl -inform DER -in '$T/nf' -noout -text | grep -q 'Freshest CRL'"
stop
no_sanitizer_reports "$T/serve.log"
