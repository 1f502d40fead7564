#!/bin/bash
# 62_crash.sh - crash safety.  Eight EST clients enroll without pause
# (simpleenroll on smime-sign with a fresh CSR each time, three of them
# also serverkeygen on smime-enc, which escrows the key), authenticated by
# their signing certificates over TLS, while the daemon is killed with
# SIGKILL at random moments, 20 times, and restarted each time; between
# the crashes certificates are revoked and CRLs issued with the CLI.
# Every certificate a client received (HTTP 200, a complete answer, a
# certificate openssl parses) is written down.  Afterwards: PRAGMA
# integrity_check and foreign_key_check are clean, `lockbox audit verify`
# passes, every certificate received is in the database with the same DER
# and audited as issued, no serial, DER or key was issued twice, every
# smime-enc certificate has its escrow record with all of its shares, the
# CRL number (in the database and in pub/ca.crl) never went backwards, and
# the daemon still enrolls after the last crash.
# The daemon is the normal build: the ASan one slows the load down (set
# CRASH_ASAN=1 to run it under ASan, LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

SERVE=$LOCKBOX
if [ "${CRASH_ASAN:-0}" = 1 ] && [ -x "${LOCKBOX_ASAN:-}" ]; then SERVE=$LOCKBOX_ASAN; fi
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }
NCLIENTS=8
KILLS=${CRASH_KILLS:-20}

# --- the CA, its recovery agents, the clients' signing certificates ---------------
est_ca "Crash Test CA" "two recovery agents (escrow for smime-enc)"
# server-generated keys of type ec-p256, so that serverkeygen keeps pace
# with the load; revocations within 1 s make one CRL
sed -i -e '/^\[profile.smime-enc\]/a keygen_type = ec-p256' \
    -e '/^\[crl\]/a coalesce = 1' "$DIR/lockbox.conf"
for n in $(seq 1 $NCLIENTS); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/c$n.key" \
        -subj "/CN=c$n@example.org" -out "$T/c$n.csr" 2>/dev/null
    $LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/c$n.csr" --email "c$n@example.org" \
        --out "$T/c$n.pem" >/dev/null 2>&1
done
check "a signing certificate for each of the $NCLIENTS clients" sh -c \
    "for n in \$(seq 1 $NCLIENTS); do openssl verify -CAfile '$DIR/ca.pem' '$T/c'\$n.pem >/dev/null || exit 1; done"

EST=https://127.0.0.1:$P1/.well-known/est
SPID=""
at_exit '[ -z "$SPID" ] || kill -KILL $SPID 2>/dev/null'
# daemon: starts it (stderr appended to serve.log); its pid in SPID.
daemon() {
    $SERVE serve --dir "$DIR" 2>>"$T/serve.log" &
    SPID=$!
}
daemon
if wait_port "$P1"; then ok "daemon listening"; else fail "daemon listening"; sed 's/^/       /' "$T/serve.log"; exit 1; fi

# --- the clients --------------------------------------------------------------------
# getcert DIR: the certificate of the EST answer in DIR/hdr, DIR/body (a
# certs-only CMS, alone or as the certs-only part of a multipart/mixed
# serverkeygen answer, which must also carry a key) as DER in DIR/cert.der.
cat >"$T/part.py" <<'PY'
import re, sys
d = sys.argv[1]
hdr = open(d + "/hdr", "rb").read().decode("latin-1").replace("\r", "")
body = open(d + "/body", "rb").read().replace(b"\r\n", b"\n")
m = re.search(r"(?im)^content-type:\s*multipart/mixed;.*boundary=\"?([^\";\n]+)", hdr)
if not m:
    sys.stdout.buffer.write(body); sys.exit(0)
cert = key = None
for p in body.split(b"--" + m.group(1).encode())[1:]:
    if p.startswith(b"--"):
        break
    h, _, b = p.lstrip(b"\n").partition(b"\n\n")
    h = h.decode("latin-1").lower()
    if "certs-only" in h:
        cert = b
    elif "pkcs8" in h or "server-generated-key" in h:
        key = b
if cert is None or key is None or not key.strip():
    sys.exit(1)
sys.stdout.buffer.write(cert)
PY
getcert() {
    python3 "$T/part.py" "$1" | tr -d '\r\n' | base64 -d >"$1/p7.der" 2>/dev/null &&
        openssl pkcs7 -inform DER -in "$1/p7.der" -print_certs 2>/dev/null |
        openssl x509 -outform DER -out "$1/cert.der" 2>/dev/null && [ -s "$1/cert.der" ]
}
# client N KIND: enrolls until $T/stop exists, KIND sign (simpleenroll
# only) or enc (every other request serverkeygen).  Each certificate
# received: a line "SERIAL PROFILE DER-HEX" in $T/got.N; other outcomes
# (curl exit code and HTTP status) one a line in $T/miss.N; a 200 with a
# complete body but no certificate in $T/bad.N.
client() {
    local n=$1 kind=$2 i=0 w=$T/w$1 code rc prof op s
    mkdir -p "$w"
    : >"$T/got.$n"; : >"$T/miss.$n"; : >"$T/bad.$n"
    while [ ! -e "$T/stop" ]; do
        i=$((i + 1))
        prof=smime-sign; op=simpleenroll
        if [ "$kind" = enc ] && [ $((i % 2)) = 0 ]; then prof=smime-enc; op=serverkeygen; fi
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$w/csr.key" \
            -subj "/CN=c$n@example.org" -outform DER -out "$w/csr.der" 2>/dev/null &&
            base64 "$w/csr.der" >"$w/csr.b64" || continue
        rm -f "$w/body" "$w/hdr" "$w/cert.der"
        code=$(curl -s --max-time 5 --cacert "$DIR/ca.pem" --cert "$T/c$n.pem" --key "$T/c$n.key" \
            -H 'Content-Type: application/pkcs10' --data-binary @"$w/csr.b64" \
            -o "$w/body" -D "$w/hdr" -w '%{http_code}' "$EST/$prof/$op")
        rc=$?
        if [ "$rc" != 0 ] || [ "$code" != 200 ]; then
            echo "$op curl=$rc http=$code" >>"$T/miss.$n"
            sleep 0.05
            continue
        fi
        if ! getcert "$w"; then
            echo "$op request $i: 200 without a certificate" >>"$T/bad.$n"
            cp "$w/body" "$T/bad.$n.$i.body" 2>/dev/null
            continue
        fi
        s=$(openssl x509 -inform DER -in "$w/cert.der" -noout -serial | cut -d= -f2)
        echo "$s $prof $(od -An -v -tx1 "$w/cert.der" | tr -d ' \n' | tr a-f A-F)" >>"$T/got.$n"
    done
}
CPIDS=""
at_exit 'touch "$T/stop"; for p in $CPIDS; do kill -KILL -- -$p 2>/dev/null; done'
set -m    # each client in a process group of its own: killed with its curl
for n in $(seq 1 $NCLIENTS); do
    kind=sign
    [ $((n % 3)) = 0 ] || [ "$n" = 1 ] && kind=enc
    client "$n" "$kind" &
    CPIDS="$CPIDS $!"
done
set +m

# --- crashes ------------------------------------------------------------------------
# crlnum_db: the last CRL number issued according to the database (0: none)
crlnum_db() { $LOCKBOX crl status --dir "$DIR" 2>/dev/null | sed -n 's/^number: *//p' | head -n1 | grep . || echo 0; }
# crlnum_pub: the CRL number of pub/ca.crl (0: none yet, X: unreadable)
crlnum_pub() {
    local h
    [ -e "$DIR/pub/ca.crl" ] || { echo 0; return; }
    h=$(openssl crl -inform DER -in "$DIR/pub/ca.crl" -noout -crlnumber 2>/dev/null | sed -n 's/^crlNumber=0x//p')
    if [ -n "$h" ]; then echo $((16#$h)); else echo X; fi
}
: >"$T/crl.seq"
restarts=0
t0=$(date +%s)
for k in $(seq 1 $KILLS); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 1.2 * r / 32767 }')"
    kill -KILL "$SPID"
    wait "$SPID" 2>/dev/null
    # now and then the CLI changes the CRL while the daemon is down
    if [ $((k % 5)) = 2 ]; then
        echo "down-crl $($LOCKBOX crl --now --dir "$DIR" 2>/dev/null | sed -n 's/^number: *//p')" >>"$T/crl.seq"
    fi
    daemon
    if wait_port "$P1"; then restarts=$((restarts + 1)); else echo "restart $k: no listener" >>"$T/restart.err"; fi
    echo "db $(crlnum_db)" >>"$T/crl.seq"
    echo "pub $(crlnum_pub)" >>"$T/crl.seq"
    # revoke a certificate a client received (not the clients' own), or
    # issue a CRL, while the daemon runs
    case $((k % 3)) in
    0)
        s=$(cat "$T"/got.* 2>/dev/null | awk '$2 == "smime-sign" { print $1 }' | shuf -n 1)
        [ -z "$s" ] || $LOCKBOX revoke "$s" --dir "$DIR" >>"$T/revoke.log" 2>&1 &&
            echo "$s" >>"$T/revoked"
        ;;
    1)
        echo "up-crl $($LOCKBOX crl --now --dir "$DIR" 2>/dev/null | sed -n 's/^number: *//p')" >>"$T/crl.seq"
        ;;
    esac
done
t1=$(date +%s)
check "the daemon came back after each of the $KILLS kills (in $((t1 - t0)) s)" test "$restarts" = "$KILLS"

touch "$T/stop"
for p in $CPIDS; do wait "$p"; done
CPIDS=""
sleep 1.5     # a last CRL for the last revocation
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null
echo "db $(crlnum_db)" >>"$T/crl.seq"
echo "pub $(crlnum_pub)" >>"$T/crl.seq"

# --- what the clients saw -------------------------------------------------------------
cat "$T"/got.[0-9]* | sort >"$T/got"
cat "$T"/miss.[0-9]* >"$T/miss"
NGOT=$(wc -l <"$T/got")
NENC=$(awk '$2 == "smime-enc"' "$T/got" | wc -l)
echo "       received $NGOT certificates ($NENC smime-enc), $(wc -l <"$T/miss") requests failed" \
    "($(grep -c 'curl=0' "$T/miss") of them with an HTTP answer)"
check "the clients received certificates under the load (>= 100, >= 10 smime-enc)" \
    test "$NGOT" -ge 100 -a "$NENC" -ge 10
check "some requests failed (the crashes hit the load)" test -s "$T/miss"
check "every HTTP 200 carried a certificate" sh -c "! cat '$T'/bad.[0-9]* | grep ."
# a request that got a whole answer other than 200 may only have met a
# daemon starting or stopping (503); a 401 would mean a client's own
# certificate was lost, a 500 a failure inside
check "every complete answer other than 200 was a 503" sh -c "! grep 'curl=0 ' '$T/miss' | grep -v 'http=503\$'"
[ "$LAST_OK" = 1 ] || grep 'curl=0 ' "$T/miss" | sort | uniq -c | sed 's/^/       /' | head -n 5

# --- the database after the crashes ---------------------------------------------------
check "PRAGMA integrity_check: ok" test "$(sqlite3 "$DIR/lockbox.db" 'PRAGMA integrity_check')" = ok
check "PRAGMA foreign_key_check: nothing" test -z "$(sqlite3 "$DIR/lockbox.db" 'PRAGMA foreign_key_check')"
check "lockbox audit verify" $LOCKBOX audit verify --dir "$DIR"

sqlite3 "$DIR/lockbox.db" "SELECT serial || ' ' || profile || ' ' || hex(der) FROM certificates" | sort >"$T/db"
comm -23 "$T/got" "$T/db" >"$T/lost"
if [ ! -s "$T/lost" ]; then ok "every certificate a client received is in the database, the same DER"; else
    fail "every certificate a client received is in the database, the same DER ($(wc -l <"$T/lost") of $NGOT not)"
    while read -r s p _; do
        echo "       $s ($p): database has $(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates WHERE serial = '$s'") row(s) under this serial"
    done < <(head -n 5 "$T/lost")
fi
sqlite3 "$DIR/lockbox.db" "SELECT object FROM audit WHERE action = 'enroll.issue'" | sort >"$T/audited"
check "every certificate received was audited once as issued (enroll.issue)" test -z "$(awk '{ print $1 }' "$T/got" | comm -23 - "$T/audited" | head -n 5)"
check "  ... and no issue audited twice" test -z "$(uniq -d "$T/audited" | head -n 5)"
check "no serial was received twice" test -z "$(awk '{ print $1 }' "$T/got" | uniq -d | head -n 5)"
check "no serial twice in the database" test -z "$(sqlite3 "$DIR/lockbox.db" 'SELECT serial, count(*) FROM certificates GROUP BY serial HAVING count(*) > 1')"
check "no certificate (DER) twice in the database" test -z "$(sqlite3 "$DIR/lockbox.db" 'SELECT hex(der), count(*) FROM certificates GROUP BY der HAVING count(*) > 1')"
check "no subscriber key certified twice (every CSR and server key was new)" test -z "$(sqlite3 "$DIR/lockbox.db" \
    "SELECT spki_sha256, group_concat(serial) FROM certificates WHERE profile IN ('smime-sign', 'smime-enc') GROUP BY spki_sha256 HAVING count(*) > 1")"
check "every smime-enc certificate has its escrow record with all nshares shares" test -z "$(sqlite3 "$DIR/lockbox.db" \
    "SELECT c.serial, r.id, r.nshares, (SELECT count(*) FROM escrow_shares s WHERE s.record_id = r.id)
     FROM certificates c LEFT JOIN escrow_records r ON r.serial = c.serial
     WHERE c.profile = 'smime-enc' AND (r.id IS NULL OR r.nshares <> (SELECT count(*) FROM escrow_shares s WHERE s.record_id = r.id))")"
check "  ... 2 of 2 shares each (the two agents)" test "$(sqlite3 "$DIR/lockbox.db" \
    "SELECT DISTINCT r.threshold || '/' || r.nshares FROM escrow_records r JOIN certificates c ON c.serial = r.serial WHERE c.profile = 'smime-enc'")" = 2/2
check "no escrow record without its certificate" test "$(sqlite3 "$DIR/lockbox.db" \
    "SELECT count(*) FROM escrow_records r WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = r.serial AND c.profile = 'smime-enc')")" = 0
check "the revocations made stayed (status revoked)" test -z "$(
    sort -u "$T/revoked" 2>/dev/null | while read -r s; do
        [ "$(sqlite3 "$DIR/lockbox.db" "SELECT status FROM certificates WHERE serial = '$s'")" = revoked ] || echo "$s"
    done)"

# --- the CRL number never went backwards -----------------------------------------------
# crl.seq in time order: "db N" (crl status), "pub N" (pub/ca.crl), and
# "up-crl N" / "down-crl N" (lockbox crl --now, daemon up or down)
check "every CRL read back was readable (pub/ca.crl parses, crl --now printed a number)" \
    sh -c "! grep -E ' X\$| \$' '$T/crl.seq'"
check "the CRL number in the database never went backwards" awk '
    $1 != "pub" { if ($2 + 0 < last) { print "went from " last " to " $2 " at line " NR; bad = 1 }; last = $2 + 0 }
    END { exit bad }' "$T/crl.seq"
check "  ... each lockbox crl --now took a number above every number seen before" awk '
    $1 ~ /crl$/ { if ($2 + 0 <= hi) { print $1 " " $2 " after " hi " at line " NR; bad = 1 } }
    $1 != "pub" && $2 + 0 > hi { hi = $2 + 0 }
    END { exit bad }' "$T/crl.seq"
check "the CRL number of pub/ca.crl never went backwards" awk '
    $1 == "pub" { if ($2 + 0 < last) { print "went from " last " to " $2 " at line " NR; bad = 1 }; last = $2 + 0 }
    END { exit bad }' "$T/crl.seq"
check "  ... and CRLs were issued during the run (number >= $((KILLS / 3)))" \
    test "$(awk '$1 == "db" { n = $2 } END { print n + 0 }' "$T/crl.seq")" -ge $((KILLS / 3))

# --- and the daemon still works ----------------------------------------------------------
daemon
if wait_port "$P1"; then ok "the daemon starts after the last crash"; else fail "the daemon starts after the last crash"; fi
csr last "/CN=c1@example.org"
code=$(curl -s --max-time 20 --cacert "$DIR/ca.pem" --cert "$T/c1.pem" --key "$T/c1.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$T/last.b64" -o "$T/body" -w '%{http_code}' \
    "$EST/smime-sign/simpleenroll")
check "  ... and enrolls (HTTP $code, a certificate stored)" sh -c "[ '$code' = 200 ] && $(declare -f b64der certs_of); T='$T'; certs_of '$T/body' '$T/last.pem' && [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM certificates WHERE serial = '\$(openssl x509 -in '$T/last.pem' -noout -serial | cut -d= -f2)'\")\" = 1 ]"
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=""
check "  ... and exits 0 on SIGTERM" test "$rc" = 0
if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$T/serve.log"; then
    fail "no sanitizer reports"; grep -A20 "Sanitizer\|runtime error" "$T/serve.log" | head -40 | sed 's/^/       /'
else
    ok "no sanitizer reports"
fi
exit 0
