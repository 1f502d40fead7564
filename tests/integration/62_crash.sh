#!/bin/bash
# 62_crash.sh - crash safety.  Eight EST clients enroll without pause
# (simpleenroll on smime-sign with a fresh CSR each time, three of them
# also serverkeygen on smime-enc, which escrows the key), authenticated by
# their signing certificates over TLS, while the daemon is killed with
# SIGKILL at random moments, 20 times, and restarted each time; between
# the crashes certificates are revoked and CRLs issued with the CLI.
# Every certificate a client received (HTTP 200, an answer curl got
# whole, one certificate in it, which openssl verify accepts) counts.  Afterwards: PRAGMA
# integrity_check and foreign_key_check are clean, `lockbox audit verify`
# passes, every certificate received is in the database with the same DER
# and audited as issued, no serial, DER or key was issued twice, every
# smime-enc certificate has its escrow record with all of its shares, the
# CRL number (in the database and in pub/ca.crl) never went backwards, and
# the daemon still enrolls after the last crash.
# The daemon is the normal build, for the load's sake (CRASH_ASAN=1 runs
# the ASan one, LOCKBOX_ASAN: some 10 s slower, a fifth fewer requests);
# CRASH_KILLS=N crashes it N times instead of 20.
. "$SRC/tests/integration/lib.sh"

SERVE=$LOCKBOX
if [ "${CRASH_ASAN:-0}" = 1 ]; then asan_serve; fi
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }
NCLIENTS=8
KILLS=${CRASH_KILLS:-20}

# --- the CA, its recovery agents, the clients' signing certificates ---------------
est_ca "Crash Test CA" "three recovery agents and their 2-of-3 escrow policy (for smime-enc)"
# listeners below the ephemeral port range (32768-60999): a port that is
# free at init could otherwise be the local end of some outgoing
# connection (ours: thousands of them) just when the daemon restarts
low_port() {
    local p
    while :; do
        p=$(shuf -i 20000-32767 -n 1)
        [ "$p" != "${P1:-}" ] || continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
}
P1=$(low_port); P2=$(low_port)
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$P1/" -e "s/^http_listen = .*/http_listen = 127.0.0.1:$P2/" "$DIR/lockbox.conf"
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
# part.py DIR: the certs-only CMS of the EST answer in DIR/hdr, DIR/body
# (alone, or the certs-only part of a multipart/mixed serverkeygen answer,
# which must also carry a key), base64; part.py -a: see received below.
cat >"$T/part.py" <<'PY'
import base64, os, re, sys

def answer(hdr, body):
    """The certs-only CMS (DER) of an EST answer; None when it lacks one."""
    hdr = hdr.decode("latin-1").replace("\r", "")
    body = body.replace(b"\r\n", b"\n")
    m = re.search(r"(?im)^content-type:\s*multipart/mixed;.*boundary=\"?([^\";\n]+)", hdr)
    if m:
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
            return None
        body = cert
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None

def tlv(b, i):
    tag, l = b[i], b[i + 1]; i += 2
    if l & 0x80:
        n = l & 0x7f; l = int.from_bytes(b[i:i + n], "big"); i += n
    return tag, i, i + l                    # tag, content start, end

def certs(p7):
    """The certificates (DER) of a certs-only SignedData."""
    _, s, _ = tlv(p7, 0)                    # ContentInfo
    _, _, e = tlv(p7, s)                    # contentType
    _, s, _ = tlv(p7, e)                    # [0] content
    _, s, end = tlv(p7, s)                  # SignedData
    out = []
    while s < end:
        tag, c, e = tlv(p7, s)
        if tag == 0xa0:                     # [0] certificates
            while c < e:
                _, _, ce = tlv(p7, c); out.append(p7[c:ce]); c = ce
        s = e
    return out

def serial(der):
    _, s, _ = tlv(der, 0)                   # Certificate
    _, s, _ = tlv(der, s)                   # TBSCertificate
    tag, c, e = tlv(der, s)
    if tag == 0xa0:                         # [0] version
        tag, c, e = tlv(der, e)
    return der[c:e].lstrip(b"\0").hex().upper()

if sys.argv[1] == "-a":                     # -a ANSDIR PEMDIR BADFILE
    src, pems = sys.argv[2], sys.argv[3]
    bad = open(sys.argv[4], "w")
    for f in sorted(os.listdir(src)):
        if not f.endswith(".body"):
            continue
        n = f[:-5]
        hdr = open(os.path.join(src, n + ".hdr"), "rb").read()
        try:
            c = certs(answer(hdr, open(os.path.join(src, f), "rb").read()))
        except (TypeError, IndexError):
            c = []
        if len(c) != 1:
            bad.write(n + "\n"); continue
        prof = "smime-enc" if re.search(rb"(?im)^content-type:\s*multipart", hdr) else "smime-sign"
        print(serial(c[0]), prof, c[0].hex().upper())
        with open(os.path.join(pems, n + ".pem"), "w") as o:
            b = base64.b64encode(c[0]).decode()
            o.write("-----BEGIN CERTIFICATE-----\n" +
                    "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) +
                    "\n-----END CERTIFICATE-----\n")
else:                                       # DIR: DIR/hdr, DIR/body to stdout
    p7 = answer(open(sys.argv[1] + "/hdr", "rb").read(), open(sys.argv[1] + "/body", "rb").read())
    if p7 is None:
        sys.exit(1)
    sys.stdout.buffer.write(base64.b64encode(p7))
PY
# getcert DIR: the certificate of the EST answer in DIR as DER in DIR/cert.der.
getcert() {
    python3 "$T/part.py" "$1" | tr -d '\r\n' | base64 -d >"$1/p7.der" 2>/dev/null &&
        openssl pkcs7 -inform DER -in "$1/p7.der" -print_certs 2>/dev/null |
        openssl x509 -outform DER -out "$1/cert.der" 2>/dev/null && [ -s "$1/cert.der" ]
}
# client N KIND: enrolls until $T/stop exists, KIND sign (simpleenroll
# only) or enc (every other request serverkeygen).  An answer with HTTP
# 200 that curl received whole is kept as $T/ans/N.I.{hdr,body} and
# looked at after the load (so that the clients spend the CPU on
# requests); other outcomes (curl exit code and HTTP status) go one a line
# to $T/miss.N.
client() {
    local n=$1 kind=$2 i=0 w=$T/w$1 code rc prof op
    mkdir -p "$w"
    : >"$T/miss.$n"
    # the daemon and the crashing loop come first on a small machine
    renice -n 10 -p $BASHPID >/dev/null
    while [ ! -e "$T/stop" ]; do
        i=$((i + 1))
        prof=smime-sign; op=simpleenroll
        if [ "$kind" = enc ] && [ $((i % 2)) = 0 ]; then prof=smime-enc; op=serverkeygen; fi
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$w/csr.key" \
            -subj "/CN=c$n@example.org" -outform DER -out "$w/csr.der" 2>/dev/null &&
            base64 "$w/csr.der" >"$w/csr.b64" || continue
        code=$(curl -s --max-time 5 --cacert "$DIR/ca.pem" --cert "$T/c$n.pem" --key "$T/c$n.key" \
            -H 'Content-Type: application/pkcs10' --data-binary @"$w/csr.b64" \
            -o "$w/body" -D "$w/hdr" -w '%{http_code}' "$EST/$prof/$op")
        rc=$?
        if [ "$rc" != 0 ] || [ "$code" != 200 ]; then
            echo "$op curl=$rc http=$code" >>"$T/miss.$n"
            sleep 0.05
            continue
        fi
        mv "$w/hdr" "$T/ans/$n.$i.hdr"; mv "$w/body" "$T/ans/$n.$i.body"
    done
}
# received: the answers kept, read in one go (part.py -a): a line
# "SERIAL PROFILE DER-HEX" in $T/got and $T/certs/ANSWER.pem for each
# certificate received, the name of an answer without one in $T/bad;
# fails when part.py does.
received() {
    mkdir -p "$T/certs"
    python3 "$T/part.py" -a "$T/ans" "$T/certs" "$T/bad" >"$T/got.unsorted" || return 1
    sort "$T/got.unsorted" >"$T/got"
}
mkdir -p "$T/ans"
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
        f=$(grep -Li '^content-type: *multipart' "$T"/ans/*.hdr 2>/dev/null | shuf -n 1)
        mkdir -p "$T/r"
        if [ -n "$f" ] && cp "$f" "$T/r/hdr" && cp "${f%.hdr}.body" "$T/r/body" && getcert "$T/r"; then
            s=$(openssl x509 -inform DER -in "$T/r/cert.der" -noout -serial | cut -d= -f2)
            echo "$s" >>"$T/revoke.tried"
            if $LOCKBOX revoke "$s" --dir "$DIR" >>"$T/revoke.log" 2>&1; then echo "$s" >>"$T/revoked"; else
                echo "revoke $s: exit $?" >>"$T/revoke.log"; fi
        fi
        ;;
    1)
        echo "up-crl $($LOCKBOX crl --now --dir "$DIR" 2>/dev/null | sed -n 's/^number: *//p')" >>"$T/crl.seq"
        ;;
    esac
done
t1=$(date +%s)
check "the daemon came back after each of the $KILLS kills (in $((t1 - t0)) s)" test "$restarts" = "$KILLS"
[ ! -e "$T/restart.err" ] || { sed 's/^/       /' "$T/restart.err"; tail -n 5 "$T/serve.log" | sed 's/^/       /'; }

touch "$T/stop"
for p in $CPIDS; do wait "$p"; done
CPIDS=""
sleep 1.5     # a last CRL for the last revocation
kill -KILL "$SPID"; wait "$SPID" 2>/dev/null
echo "db $(crlnum_db)" >>"$T/crl.seq"
echo "pub $(crlnum_pub)" >>"$T/crl.seq"

# --- what the clients saw -------------------------------------------------------------
check "every answer kept was read (part.py -a)" received
cat "$T"/miss.[0-9]* >"$T/miss"
NGOT=$(wc -l <"$T/got")
NENC=$(awk '$2 == "smime-enc"' "$T/got" | wc -l)
echo "       received $NGOT certificates ($NENC smime-enc), $(wc -l <"$T/miss") requests failed" \
    "($(grep -c 'curl=0' "$T/miss") of them with an HTTP answer)"
check "the clients received certificates under the load (>= 100, >= 10 smime-enc)" \
    test "$NGOT" -ge 100 -a "$NENC" -ge 10
check "some requests failed (the crashes hit the load)" test -s "$T/miss"
check "every whole HTTP 200 answer carried one certificate" sh -c "! grep . '$T/bad'"
check "  ... which openssl verify accepts as issued by the CA" sh -c \
    "[ \$(openssl verify -CAfile '$DIR/ca.pem' '$T'/certs/*.pem | grep -c ': OK\$') = $NGOT ]"
# a request that got a whole answer other than 200 may only have met a
# daemon starting or stopping (503); a 401 would mean a client's own
# certificate was lost, a 500 a failure inside
check "every complete answer other than 200 was a 503" sh -c "! grep 'curl=0 ' '$T/miss' | grep -v 'http=503\$'"

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
    "SELECT DISTINCT r.threshold || '/' || r.nshares FROM escrow_records r JOIN certificates c ON c.serial = r.serial WHERE c.profile = 'smime-enc'")" = 2/3
check "no escrow record without its certificate" test "$(sqlite3 "$DIR/lockbox.db" \
    "SELECT count(*) FROM escrow_records r WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = r.serial AND c.profile = 'smime-enc')")" = 0
NTRIED=$(sort -u "$T/revoke.tried" 2>/dev/null | wc -l)
NREVOKED=$(sort -u "$T/revoked" 2>/dev/null | wc -l)
check "certificates were revoked under the load: each of the $NTRIED tried (>= 1), $NREVOKED done" \
    sh -c "[ $NTRIED -ge 1 ] && [ $NREVOKED = $NTRIED ] || { tail -n 5 '$T/revoke.log'; exit 1; }"
check "  ... and the revocations stayed (status revoked)" test -z "$(
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
if wait_port "$P1" || wait_port "$P1"; then ok "the daemon starts after the last crash"; else
    fail "the daemon starts after the last crash"; tail -n 5 "$T/serve.log" | sed 's/^/       /'
fi
csr last "/CN=c1@example.org"
code=$(curl -s --max-time 20 --cacert "$DIR/ca.pem" --cert "$T/c1.pem" --key "$T/c1.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$T/last.b64" -o "$T/body" -w '%{http_code}' \
    "$EST/smime-sign/simpleenroll")
check "  ... and enrolls (HTTP $code, a certificate stored)" sh -c "[ '$code' = 200 ] && $(declare -f b64der certs_of); T='$T'; certs_of '$T/body' '$T/last.pem' && [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT count(*) FROM certificates WHERE serial = '\$(openssl x509 -in '$T/last.pem' -noout -serial | cut -d= -f2)'\")\" = 1 ]"
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=""
check "  ... and exits 0 on SIGTERM" test "$rc" = 0
# the sanitizers watched only when the ASan build ran (CRASH_ASAN=1)
if [ "${CRASH_ASAN:-0}" = 1 ]; then no_sanitizer_reports "$T/serve.log"; fi
exit 0
