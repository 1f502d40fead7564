#!/bin/bash
# 63_load.sh - load and resources.
# 1. 64 concurrent clients (tests/tools/load_mix) mix, for a bounded time,
#    EST simpleenroll (HTTPS, authenticated by a smime-sign client
#    certificate, pre-made P-256 CSRs), OCSP queries (POST /ocsp, a request
#    made by `openssl ocsp -reqout`) and CRL fetches (GET /ca.crl) on the
#    plain-HTTP listener: no 5xx, no dropped connection (every request got
#    a complete HTTP answer), every enrollment answer carries a
#    certificate of its CSR's key, every certificate handed out is in the
#    database.  After a warm-up of two rounds' length, two identical
#    rounds: the daemon's resident memory (VmRSS, sampled once idle) grows
#    by less than 5% from the end of the first to the end of the second.
#    (The warm-up fills what is meant to fill: a SQLite page cache per
#    worker thread and listener, up to 2 MB each, and malloc's arenas;
#    without it the first rounds grow by 2-4% each, after it by 0-2%.)
# 2. The connection cap ([server] connection_limit, per_ip_connection_limit)
#    on a second daemon: a connection beyond either cap, on the plain-HTTP
#    and on the HTTPS listener, is answered 503 with Retry-After and
#    Connection: close within 2 s; the connections under the cap are
#    served as before, and so is everyone once the excess is gone.
#    (lockbox counts connections itself and gives libmicrohttpd limits a
#    margin above the configured ones, so that MHD accepts the excess
#    instead of leaving it in the listen backlog or closing it unanswered.)
# 3. Slowloris: request headers dribbled one byte a second with [server]
#    connection_timeout = 3, while a normal client asks for /healthz: the
#    dribblers are cut off within connection_timeout + 3 s of connecting
#    (a deadline for the whole header, not only MHD's inactivity timeout),
#    and /healthz is answered within 2 s throughout.
# The load daemon is the normal build: the ASan build's shadow memory and
# free-quarantine make its resident memory meaningless.  The second daemon
# (parts 2 and 3) is the ASan build when there is one (LOCKBOX_ASAN).
. "$SRC/tests/integration/lib.sh"

asan_serve
SERVE2=$SERVE
SERVE=$LOCKBOX
LOAD=$(dirname "$LOCKBOX")/tools/load_mix
ROUND=${LOAD_SECONDS:-6}
for t in sqlite3 python3; do
    command -v $t >/dev/null || { fail "$t installed"; exit 1; }
done
[ -x "$LOAD" ] || { fail "load generator $LOAD built (make unit)"; exit 1; }

# rss PID: the resident memory of PID in kB
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"; }
# counter NAME FILE: a counter of load_mix's summary line
counter() { tr ' ' '\n' <"$2" | sed -n "s/^$1=//p"; }
# val KEY FILE: a "KEY VALUE" line of the socket helper's output
val() { sed -n "s/^$1 //p" "$2"; }
# set_server DIR NAME VALUE: a [server] setting of DIR/lockbox.conf
set_server() { sed -i "s/^$2 = .*/$2 = $3/" "$1/lockbox.conf"; grep -qx "$2 = $3" "$1/lockbox.conf"; }

# --- the CA, the daemon, the client certificate ------------------------------
DIR=$T/ca
free_ports
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "Load Test CA" \
    --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 --base-url http://127.0.0.1:$P2
serve_up "$DIR" "$P1" "$T/serve.log" "daemon listening"
PID=$SERVE_PID
HTTPS=https://127.0.0.1:$P1
HTTP=http://127.0.0.1:$P2
wait_port "$P2" || { fail "plain-HTTP listener up"; exit 1; }

TOKEN=$($LOCKBOX token create --dir "$DIR" --email load@example.org --profiles smime-sign | tail -n1)
csr load "/CN=load"
status 200 "the load client's smime-sign certificate by token" --cacert "$DIR/ca.pem" \
    -H 'Content-Type: application/pkcs10' -u "load@example.org:$TOKEN" \
    --data-binary @"$T/load.b64" "$HTTPS/.well-known/est/smime-sign/simpleenroll"
check "  ... a certificate" certs_of "$T/body" "$T/load.pem"
CSRS=()
for i in 1 2 3 4 5 6 7 8; do csr "c$i" "/CN=c$i"; CSRS+=("$T/c$i.der"); done
check "eight P-256 CSRs" test "${#CSRS[@]}" = 8 -a -s "$T/c8.der"
check "an OCSP request for the client certificate (openssl ocsp -reqout)" \
    openssl ocsp -issuer "$DIR/ca.pem" -cert "$T/load.pem" -no_nonce -reqout "$T/ocsp.der"
check "  ... answered 'good' by the responder" sh -c "openssl ocsp -issuer '$DIR/ca.pem' \
    -cert '$T/load.pem' -no_nonce -url '$HTTP/ocsp' -CAfile '$DIR/ca.pem' 2>&1 | grep -q ': good'"
check "the CRL is served" curl -sf --max-time 30 -o "$T/crl.der" "$HTTP/ca.crl"
check "  ... and verifies against the CA" crl_verifies "$T/crl.der" "$DIR/ca.pem"

# --- 1. 64 clients: warm-up, then two identical rounds ------------------------
# Each round is ROUND seconds (the warm-up twice that) of 64 clients
# spread over four loopback addresses (so that per_ip_connection_limit,
# 64 by default, is not the limit under test here: one address opening
# more than 64 connections to a listener has the excess answered 503,
# see part 2); RSS is read 2 s after the round, when idle.
round() { # NAME
    local secs=$ROUND
    [ "$1" = warm ] && secs=$((2 * ROUND))
    "$LOAD" --https "$HTTPS" --http "$HTTP" --cacert "$DIR/ca.pem" --cert "$T/load.pem" \
        --key "$T/load.key" --ocsp-req "$T/ocsp.der" --clients 64 --seconds "$secs" \
        --sources 4 --serials "$T/$1.serials" "${CSRS[@]}" >"$T/$1.sum" 2>"$T/$1.err"
}
declare -A RSS
for r in warm r1 r2; do
    round $r; rc=$?
    if [ "$rc" = 0 ]; then ok "load round $r: every request answered as asked ($(cat "$T/$r.sum"))"; else
        fail "load round $r: every request answered as asked (exit $rc: $(cat "$T/$r.sum"))"
        sed 's/^/       /' "$T/$r.err" | head -12
    fi
    check "  ... no 5xx" test "$(counter status5xx "$T/$r.sum")" = 0
    check "  ... no dropped connection (no request without a complete HTTP answer)" \
        test "$(counter dropped "$T/$r.sum")" = 0
    check "  ... every enrollment answer carried a certificate of its CSR's key" \
        test "$(counter bad_answer "$T/$r.sum")" = 0 -a "$(counter status_other "$T/$r.sum")" = 0
    check "  ... all three kinds of request made (enroll, ocsp, crl > 0)" \
        test "$(counter enroll "$T/$r.sum")" -gt 0 -a "$(counter ocsp "$T/$r.sum")" -gt 0 -a \
        "$(counter crl "$T/$r.sum")" -gt 0
    sleep 2
    RSS[$r]=$(rss "$PID")
done
check "the daemon survived the load" kill -0 "$PID"
# the serials the clients received against the database's: the same set
# (the load client's own certificate aside), none received twice
cat "$T"/{warm,r1,r2}.serials 2>/dev/null | sort >"$T/received"
db_count "SELECT serial FROM certificates WHERE email = 'load@example.org' AND serial <> '$(serial_of "$T/load.pem")'" |
    sort >"$T/stored"
check "every certificate handed out ($(wc -l <"$T/received")) is in the database, none twice, and no other" \
    sh -c "[ -s '$T/received' ] && [ -z \"\$(uniq -d '$T/received')\" ] && cmp -s '$T/received' '$T/stored'"
echo "  VmRSS (kB): after warm-up ${RSS[warm]}, round 1 ${RSS[r1]}, round 2 ${RSS[r2]}"
# both samples must be there: a missing one would otherwise read as 0
grows_below() { # PCT A B: B is less than PCT % above A, both numbers
    [[ "$2" =~ ^[0-9]+$ && "$3" =~ ^[0-9]+$ ]] || { echo "missing sample: '$2' '$3'"; return 1; }
    [ $(( ($3 - $2) * 100 )) -lt $(( $1 * $2 )) ]
}
check "resident memory grows by less than 5% from round 1 to round 2 (${RSS[r1]} -> ${RSS[r2]} kB)" \
    grows_below 5 "${RSS[r1]}" "${RSS[r2]}"
kill -TERM "$PID"; wait "$PID"; rc=$?
check "daemon exits 0 on SIGTERM after the load" test "$rc" = 0

# --- the socket helper for parts 2 and 3 -------------------------------------
cat >"$T/net.py" <<'EOF'
import socket, ssl, sys, threading, time

PORT = int(sys.argv[2])
REQ = b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\nConnection: close\r\n\r\n"

def connect(src, timeout=10, port=None):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port or PORT))
    return s

def answer(s, t):
    """Sends REQ on s, reads to EOF: (how, seconds, headers); how is the
    HTTP status, 'closed' (EOF or reset without an answer) or 'timeout'."""
    try:
        s.sendall(REQ)
        d = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            d += b
    except socket.timeout:
        return "timeout", time.time() - t, {}
    except (OSError, ssl.SSLError):
        d = b""
    if not d.startswith(b"HTTP/1.1 "):
        return "closed", time.time() - t, {}
    hdrs = {}
    for line in d.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return d[9:12].decode(), time.time() - t, hdrs

def ask(src, timeout=15, port=None, tls=None):
    """GET /healthz on a new connection (TLS with the context tls)."""
    t = time.time()
    try:
        s = connect(src, timeout, port)
        if tls is not None:
            s = tls.wrap_socket(s)
    except socket.timeout:
        return "timeout", time.time() - t, {}
    except (OSError, ssl.SSLError):
        return "closed", time.time() - t, {}
    return answer(s, t)

def show(name, res):
    """One line per kind of answer: status, worst seconds, Retry-After and
    Connection headers seen."""
    print("%s %s" % (name, " ".join(sorted(set(h for h, _, _ in res)))))
    print("%s_max %.2f" % (name, max(s for _, s, _ in res)))
    print("%s_retry %s" % (name, " ".join(sorted(set(
        x.get("retry-after", "-") for _, _, x in res)))))
    print("%s_conn %s" % (name, " ".join(sorted(set(
        x.get("connection", "-").lower() for _, _, x in res)))))

def holders_ask(hold):
    """Each held connection now asks for /healthz."""
    res = [None] * len(hold)
    def one(i):
        res[i] = answer(hold[i], time.time())
    th = [threading.Thread(target=one, args=(i,)) for i in range(len(hold))]
    for x in th:
        x.start()
    for x in th:
        x.join()
    for s in hold:
        s.close()
    return res

def cap(per_ip, limit, extra):
    # per-IP: per_ip idle connections from one address, then one more
    hold = [connect("127.0.0.20") for _ in range(per_ip)]
    time.sleep(0.5)
    show("perip", [ask("127.0.0.20")])
    show("perip_holders", holders_ask(hold))
    time.sleep(1)
    # global: limit idle connections from four addresses, then extra more
    hold = [connect("127.0.0.%d" % (21 + i % 4)) for i in range(limit)]
    time.sleep(0.5)
    res = []
    def one(i):
        res.append(ask("127.0.0.%d" % (25 + i % 4)))
    th = [threading.Thread(target=one, args=(i,)) for i in range(extra)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    show("excess", res)
    show("holders", holders_ask(hold))
    time.sleep(1)
    show("after", [ask("127.0.0.1")])

def tls_cap(per_ip, cafile):
    """The HTTPS listener (PORT): per_ip connections from one address, then
    a TLS request from it and one from another address."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    hold = [connect("127.0.0.40") for _ in range(per_ip)]
    time.sleep(0.5)
    show("tls_over", [ask("127.0.0.40", tls=ctx)])
    show("tls_other", [ask("127.0.0.41", tls=ctx)])
    for s in hold:
        s.close()
    time.sleep(1)
    show("tls_after", [ask("127.0.0.40", tls=ctx)])

def slow(n, silent, dribble):
    """n connections dribble a header one byte a second for dribble
    seconds; silent more send a partial header once and fall silent."""
    head = b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\nX-Slow: " + b"a" * 4000
    cut = [None] * (n + silent)   # seconds from connecting to EOF/reset
    def reader(i, s, t0):
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        cut[i] = time.time() - t0
    def dribbler(i):
        s = connect("127.0.0.%d" % (30 + i % 4), 60)
        t0 = time.time()
        r = threading.Thread(target=reader, args=(i, s, t0))
        r.start()
        k = 0
        while time.time() - t0 < dribble and cut[i] is None:
            try:
                s.send(head[k:k + 1])
            except OSError:
                break
            k += 1
            time.sleep(1)
        r.join(60)
        s.close()
    def quiet(i):
        s = connect("127.0.0.%d" % (34 + i % 2), 60)
        t0 = time.time()
        s.send(head[:30])
        reader(i, s, t0)
        s.close()
    th = [threading.Thread(target=dribbler, args=(i,)) for i in range(n)]
    th += [threading.Thread(target=quiet, args=(n + i,)) for i in range(silent)]
    for x in th:
        x.start()
    # a normal client, now and then, while they dribble
    worst, codes = 0.0, set()
    t0 = time.time()
    while time.time() - t0 < dribble - 1:
        time.sleep(1)
        how, secs, _ = ask("127.0.0.1", 10)
        codes.add(how)
        worst = max(worst, secs)
    print("healthz %s" % " ".join(sorted(codes)))
    print("healthz_max %.2f" % worst)
    for x in th:
        x.join(90)
    print("dribblers_cut %d" % sum(1 for c in cut[:n] if c is not None))
    print("dribblers_cut_min %.2f" % min(c if c is not None else 999 for c in cut[:n]))
    print("dribblers_cut_max %.2f" % max(c if c is not None else 999 for c in cut[:n]))
    print("silent_closed %d" % sum(1 for c in cut[n:] if c is not None))
    print("silent_max %.2f" % max(c if c is not None else 999 for c in cut[n:]))

def tls_slow(n, cafile, dribble):
    """n TLS connections complete the handshake, then dribble a header
    one byte a second: seconds from connecting to being cut off."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    head = b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\nX-Slow: " + b"a" * 4000
    cut = [None] * n
    def one(i):
        t0 = time.time()
        try:
            s = ctx.wrap_socket(connect("127.0.0.%d" % (36 + i), 60))
        except (OSError, ssl.SSLError):
            return
        s.settimeout(1)
        k = 0
        while time.time() - t0 < dribble:
            try:
                s.send(head[k:k + 1])
                k += 1
                if not s.recv(4096):
                    cut[i] = time.time() - t0
                    break
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                cut[i] = time.time() - t0
                break
        s.close()
    th = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    print("tls_cut %d" % sum(1 for c in cut if c is not None))
    print("tls_cut_max %.2f" % max(c if c is not None else 999 for c in cut))

if sys.argv[1] == "cap":
    cap(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
elif sys.argv[1] == "tls":
    tls_cap(int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "tls_slow":
    tls_slow(int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
else:
    slow(int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
EOF

# --- 2. the connection cap ----------------------------------------------------
# Two worker threads, 16 connections (MHD gives each worker 8), at most 8
# from one address, idle connections cut after 3 s.
TMO=3
free_ports
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$P1/" -e "s/^http_listen = .*/http_listen = 127.0.0.1:$P2/" \
    "$DIR/lockbox.conf"
check "a second configuration: threads 2, connection_limit 16, per_ip_connection_limit 8, connection_timeout $TMO" \
    sh -c "$(declare -f set_server); set_server '$DIR' threads 2 && set_server '$DIR' connection_limit 16 && \
    set_server '$DIR' per_ip_connection_limit 8 && set_server '$DIR' connection_timeout $TMO"
SERVE=$SERVE2
serve_up "$DIR" "$P2" "$T/serve2.log" "second daemon listening"
PID2=$SERVE_PID
python3 "$T/net.py" cap "$P2" 8 16 8 >"$T/cap.out" 2>&1
sed 's/^/       /' "$T/cap.out"
# lt A B: the number A is below B (false when A is missing)
lt() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1] or 99) < float(sys.argv[2]) else 1)" "$1" "$2"; }
# refused NAME FILE: NAME's answers were all 503 with Retry-After and
# Connection: close, each within 2 s
refused() {
    [ "$(val "$1" "$2")" = 503 ] && [ "$(val "$1_retry" "$2")" = 5 ] &&
        [ "$(val "$1_conn" "$2")" = close ] && lt "$(val "$1_max" "$2")" 2
}
check "beyond per_ip_connection_limit (8): the ninth connection from an address is answered 503, Retry-After, Connection: close, within 2 s" \
    refused perip "$T/cap.out"
check "  ... the eight under the cap are served (200)" test "$(val perip_holders "$T/cap.out")" = 200
check "beyond connection_limit (16): each of 8 more connections is answered 503, Retry-After, Connection: close, within 2 s" \
    refused excess "$T/cap.out"
check "  ... the sixteen under the cap are served (200)" test "$(val holders "$T/cap.out")" = 200
check "  ... and the daemon serves normally afterwards" test "$(val after "$T/cap.out")" = 200
python3 "$T/net.py" tls "$P1" 8 "$DIR/ca.pem" >"$T/tls.out" 2>&1
sed 's/^/       /' "$T/tls.out"
check "HTTPS listener: beyond per_ip_connection_limit, the TLS request is answered 503, Retry-After, Connection: close, within 2 s" \
    refused tls_over "$T/tls.out"
check "  ... another address is served meanwhile (200), and the first once its connections closed (200)" \
    test "$(val tls_other "$T/tls.out")/$(val tls_after "$T/tls.out")" = 200/200
check "  ... the refusals are logged" grep -q "connection(s) over the cap refused with 503" "$T/serve2.log"

# --- 3. slowloris ---------------------------------------------------------------
# 20 connections (below the cap of 64, at most 5 an address) dribble a
# header one byte a second for up to 2 x timeout + 2 s; 4 more send a
# partial header once and fall silent at once.  Then 4 TLS connections
# dribble a header after their handshake on the HTTPS listener.
kill -TERM "$PID2"; wait "$PID2"; rc=$?
check "second daemon exits 0 on SIGTERM" test "$rc" = 0
check "third configuration: connection_limit 64, per_ip_connection_limit 16" \
    sh -c "$(declare -f set_server); set_server '$DIR' connection_limit 64 && set_server '$DIR' per_ip_connection_limit 16"
serve_up "$DIR" "$P2" "$T/serve3.log" "third daemon listening"
PID3=$SERVE_PID
DRIBBLE=$((2 * TMO + 2))
python3 "$T/net.py" slow "$P2" 20 4 "$DRIBBLE" >"$T/slow.out" 2>&1
sed 's/^/       /' "$T/slow.out"
check "while 20 clients dribble headers, /healthz is answered 200" test "$(val healthz "$T/slow.out")" = 200
check "  ... each time within 2 s" python3 -c "import sys; sys.exit(0 if $(val healthz_max "$T/slow.out" || echo 99) < 2 else 1)"
check "a partial header then silence: cut off within connection_timeout + 3 s (4 of 4)" \
    sh -c "[ '$(val silent_closed "$T/slow.out")' = 4 ] && python3 -c \"import sys; sys.exit(0 if $(val silent_max "$T/slow.out" || echo 99) < $TMO + 3 else 1)\""
# A byte a second is activity to MHD's inactivity timeout; the deadline
# for the whole header (web/guard.c) cuts them off.
check "headers dribbled a byte a second: cut off within connection_timeout + 3 s of connecting (20 of 20)" \
    sh -c "[ '$(val dribblers_cut "$T/slow.out")' = 20 ] && python3 -c \"import sys; sys.exit(0 if $(val dribblers_cut_max "$T/slow.out" || echo 99) < $TMO + 3 else 1)\""
check "  ... and not before connection_timeout" \
    python3 -c "import sys; sys.exit(0 if $(val dribblers_cut_min "$T/slow.out" || echo 0) >= $TMO - 0.5 else 1)"
check "  ... the cut-offs are logged" grep -q "without a complete request header" "$T/serve3.log"
python3 "$T/net.py" tls_slow "$P1" 4 "$DIR/ca.pem" "$DRIBBLE" >"$T/tls_slow.out" 2>&1
sed 's/^/       /' "$T/tls_slow.out"
check "HTTPS listener: headers dribbled after the TLS handshake are cut off within connection_timeout + 3 s (4 of 4)" \
    sh -c "[ '$(val tls_cut "$T/tls_slow.out")' = 4 ] && python3 -c \"import sys; sys.exit(0 if $(val tls_cut_max "$T/tls_slow.out" || echo 99) < $TMO + 3 else 1)\""
kill -TERM "$PID3"; wait "$PID3"; rc=$?
check "third daemon exits 0 on SIGTERM" test "$rc" = 0

# the second and third daemons are the ASan build (the first, part 1's,
# the normal one)
no_sanitizer_reports "$T/serve2.log" "$T/serve3.log"
exit 0
