#!/bin/bash
# 41_ocsp.sh - the OCSP responder through `openssl ocsp` and curl against a
# running `lockbox serve`: the delegated responder certificate (ocsp.pem,
# ocsp.key 0600, profile ocsp-signing, stored), revoked with its reason and
# good over POST and GET, SHA-1 and SHA-256 CertIDs, the nonce echoed,
# "Response verify OK" against ca.pem alone, unauthorized for another CA's
# certificate, malformedRequest for junk, 415 for a wrong content type,
# RFC 5019 caching headers on GET (and none when a nonce is echoed),
# nonce-less answers reused byte for byte but never stale after a revocation.
# The daemon runs from the ASan build when one is there (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

DIR=$T/ca
asan_serve

check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "OCSP Test CA"
for who in alice bob; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$who.key" \
        -out "$T/$who.csr" -subj "/CN=$who" 2>/dev/null
    check "issue $who's signing certificate" $LOCKBOX issue --dir "$DIR" --profile smime-sign \
        --csr "$T/$who.csr" --email "$who@example.org" --out "$T/$who.pem"
done
ALICE=$(openssl x509 -in "$T/alice.pem" -noout -serial | cut -d= -f2)
check "revoke alice (keyCompromise)" $LOCKBOX revoke --dir "$DIR" "$ALICE" --reason keyCompromise
check "certificates carry the AIA OCSP URL" sh -c "openssl x509 -in '$T/bob.pem' -noout -ext authorityInfoAccess | grep -q 'OCSP - URI:.*/ocsp'"

serve_both "$DIR" "daemon listening"
URL=$HTTP/ocsp

# --- the delegated responder -------------------------------------------------
check "ocsp.pem and ocsp.key written" test -s "$DIR/ocsp.pem" -a -s "$DIR/ocsp.key"
check "ocsp.key is 0600" test "$(stat -c %a "$DIR/ocsp.key")" = 600
check "responder cert verifies against the CA with purpose ocsphelper" \
    openssl verify -CAfile "$DIR/ca.pem" -purpose ocsphelper "$DIR/ocsp.pem"
check "responder cert has EKU OCSPSigning and ocsp-nocheck" sh -c \
    "openssl x509 -in '$DIR/ocsp.pem' -noout -text | grep -q 'OCSP Signing' && openssl x509 -in '$DIR/ocsp.pem' -noout -text | grep -q 'OCSP No Check'"
RSER=$(openssl x509 -in "$DIR/ocsp.pem" -noout -serial | cut -d= -f2)
check "responder cert is stored (profile ocsp-signing)" sh -c \
    "$LOCKBOX show --dir '$DIR' --json '$RSER' | grep -q '\"ocsp-signing\"'"
check "responder cert lives about 7 days (profile validity)" sh -c \
    "! openssl x509 -in '$DIR/ocsp.pem' -noout -checkend $((7 * 86400 + 600)) >/dev/null && openssl x509 -in '$DIR/ocsp.pem' -noout -checkend $((6 * 86400)) >/dev/null"

# ocsp OUT CERT [ARGS...]: openssl ocsp over POST (ARGS before -cert, as
# -sha256 must be), its output in OUT
ocsp() { local out=$1 c=$2; shift 2; openssl ocsp -issuer "$DIR/ca.pem" "$@" -cert "$c" -url "$URL" \
    -CAfile "$DIR/ca.pem" -resp_text >"$out" 2>&1; }

# --- POST --------------------------------------------------------------------
check "POST: openssl ocsp asks for alice" ocsp "$T/p1" "$T/alice.pem"
check "POST: revoked, reason keyCompromise" sh -c "grep -q 'alice.pem: revoked' '$T/p1' && grep -q 'Reason: keyCompromise' '$T/p1'"
check "POST: Response verify OK (delegated responder)" grep -q "Response verify OK" "$T/p1"
check "POST: nonce echoed (and checked by openssl)" sh -c "grep -q 'OCSP Nonce' '$T/p1' && ! grep -qi 'nonce verify error' '$T/p1'"
check "POST: responder ID by key hash" sh -c "grep 'Responder Id:' '$T/p1' | grep -Eq 'Responder Id: [0-9A-F]{40}$'"
check "POST: thisUpdate and nextUpdate" sh -c "grep -q 'This Update' '$T/p1' && grep -q 'Next Update' '$T/p1'"
check "POST: openssl ocsp asks for bob" ocsp "$T/p2" "$T/bob.pem"
check "POST: bob is good, verified" sh -c "grep -q 'bob.pem: good' '$T/p2' && grep -q 'Response verify OK' '$T/p2'"
check "POST: SHA-256 CertID" ocsp "$T/p3" "$T/alice.pem" -sha256
check "POST: SHA-256 CertID answered revoked, verified" sh -c "grep -q 'alice.pem: revoked' '$T/p3' && grep -q 'Response verify OK' '$T/p3' && grep -q 'Hash Algorithm: sha256' '$T/p3'"
check "POST: two CertIDs in one request" sh -c "openssl ocsp -issuer '$DIR/ca.pem' -cert '$T/alice.pem' -cert '$T/bob.pem' -url '$URL' -CAfile '$DIR/ca.pem' >'$T/p4' 2>&1"
check "POST: both answered" sh -c "grep -q 'alice.pem: revoked' '$T/p4' && grep -q 'bob.pem: good' '$T/p4'"

# a certificate of another CA: unauthorized
mkdir -p "$T/other"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/other/ca.key" \
    -out "$T/other/ca.pem" -subj "/CN=Other CA" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$T/other/x.key" \
    -out "$T/other/x.pem" -subj "/CN=x" -CA "$T/other/ca.pem" -CAkey "$T/other/ca.key" 2>/dev/null
openssl ocsp -issuer "$T/other/ca.pem" -cert "$T/other/x.pem" -url "$URL" -resp_text >"$T/other.out" 2>&1
check "another CA's certificate: unauthorized" grep -q "unauthorized" "$T/other.out"

# a serial this CA never issued: unknown
openssl x509 -in "$T/bob.pem" -outform DER -out "$T/bob.der"
check "serial never issued: unknown" sh -c "openssl ocsp -issuer '$DIR/ca.pem' -serial 0x0123456789ABCDEF -url '$URL' -CAfile '$DIR/ca.pem' 2>&1 | grep -q '0x0123456789ABCDEF: unknown'"

# junk and wrong content types
code=$(curl -s -o "$T/junk.der" -w '%{http_code}' --data-binary 'not an OCSP request' \
    -H 'Content-Type: application/ocsp-request' "$URL")
check "junk POST: HTTP 200 with an OCSP response" test "$code" = 200
check "junk POST: malformedRequest" sh -c "openssl ocsp -respin '$T/junk.der' -resp_text 2>&1 | grep -qi malformedrequest"
openssl ocsp -reqout "$T/req.der" -issuer "$DIR/ca.pem" -cert "$T/alice.pem" -no_nonce 2>/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/req.der" -H 'Content-Type: text/plain' "$URL")
check "wrong content type: 415" test "$code" = 415
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/req.der" "$URL")
check "form content type (curl's default): 415" test "$code" = 415
head -c 20000 /dev/zero >"$T/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/big" -H 'Content-Type: application/ocsp-request' "$URL")
check "request over 16 KiB: 413" test "$code" = 413

# --- GET ---------------------------------------------------------------------
B64=$(base64 -w0 "$T/req.der")
ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$B64")
code=$(curl -s -D "$T/h" -o "$T/get.der" -w '%{http_code}' "$URL/$ENC")
check "GET (url-encoded base64): 200" test "$code" = 200
check "GET: revoked with reason, verified" sh -c "openssl ocsp -respin '$T/get.der' -CAfile '$DIR/ca.pem' -issuer '$DIR/ca.pem' -cert '$T/alice.pem' -resp_text >'$T/get.out' 2>&1; grep -q 'alice.pem: revoked' '$T/get.out' && grep -q 'Reason: keyCompromise' '$T/get.out' && grep -q 'Response verify OK' '$T/get.out'"
check "GET: application/ocsp-response" grep -qi '^content-type: application/ocsp-response' "$T/h"
check "GET: Cache-Control max-age, public, no-transform, must-revalidate" \
    grep -Eqi '^cache-control: max-age=[0-9]+, public, no-transform, must-revalidate' "$T/h"
check "GET: Last-Modified, Expires, ETag" sh -c "grep -qi '^last-modified: ' '$T/h' && grep -qi '^expires: ' '$T/h' && grep -Eqi '^etag: \"[0-9a-f]{64}\"' '$T/h'"
check "GET: ETag is the SHA-256 of the response" sh -c "grep -i '^etag:' '$T/h' | grep -q \"\$(sha256sum '$T/get.der' | cut -c1-64)\""
code=$(curl -s -o "$T/get2.der" -w '%{http_code}' "$URL/$B64")
check "GET with raw '+' '/' base64: 200" test "$code" = 200
check "GET raw: revoked" sh -c "openssl ocsp -respin '$T/get2.der' -CAfile '$DIR/ca.pem' -issuer '$DIR/ca.pem' -cert '$T/alice.pem' 2>&1 | grep -q 'alice.pem: revoked'"
openssl ocsp -reqout "$T/reqb.der" -issuer "$DIR/ca.pem" -cert "$T/bob.pem" -no_nonce 2>/dev/null
ENCB=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$(base64 -w0 "$T/reqb.der")")
curl -s -o "$T/getb.der" "$URL/$ENCB"
check "GET: bob is good" sh -c "openssl ocsp -respin '$T/getb.der' -CAfile '$DIR/ca.pem' -issuer '$DIR/ca.pem' -cert '$T/bob.pem' 2>&1 | grep -q 'bob.pem: good'"
# RFC 5019 reuse: the same nonce-less request, the same bytes; a
# revocation by another process is answered at once, never a stale good
curl -s -o "$T/getb2.der" "$URL/$ENCB"
check "GET again: byte-identical (answer reused)" cmp -s "$T/getb.der" "$T/getb2.der"
BOB=$(openssl x509 -in "$T/bob.pem" -noout -serial | cut -d= -f2)
check "revoke bob (another process)" $LOCKBOX revoke --dir "$DIR" "$BOB" --reason superseded
curl -s -o "$T/getb3.der" "$URL/$ENCB"
check "GET after the revocation: bob is revoked" sh -c "openssl ocsp -respin '$T/getb3.der' -CAfile '$DIR/ca.pem' -issuer '$DIR/ca.pem' -cert '$T/bob.pem' 2>&1 | grep -q 'bob.pem: revoked'"
openssl ocsp -reqout "$T/reqn.der" -issuer "$DIR/ca.pem" -cert "$T/bob.pem" 2>/dev/null
ENCN=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$(base64 -w0 "$T/reqn.der")")
curl -s -D "$T/hn" -o /dev/null "$URL/$ENCN"
check "GET with a nonce: not cacheable" sh -c "grep -qi '^cache-control: no-store' '$T/hn' && ! grep -qi '^etag:' '$T/hn'"
curl -s -o "$T/getj.der" "$URL/%%%zz"
check "GET of junk: malformedRequest" sh -c "openssl ocsp -respin '$T/getj.der' -resp_text 2>&1 | grep -qi malformedrequest"

kill -TERM $PID
wait $PID
check "daemon stops cleanly" test $? -eq 0
no_sanitizer_reports "$T/serve.log"
