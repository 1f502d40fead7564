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
#    on a second daemon: what a client beyond the cap gets.
# 3. Slowloris: request headers dribbled one byte a second with [server]
#    connection_timeout = 3, while a normal client asks for /healthz.
# The load daemon is the normal build: the ASan build's shadow memory and
# free-quarantine make its resident memory meaningless.  The second daemon
# (parts 2 and 3) is the ASan build when there is one (LOCKBOX_ASAN).
#
# Known gaps this scenario documents (asserting what happens today; the
# fixes belong in web/server.c, and the checks marked "today" flip then):
# - beyond connection_limit nobody answers 503: with MHD_USE_ITC the
#   workers stop accepting at their limit, so the excess connections wait
#   in the kernel's listen backlog until a slot frees (at worst
#   connection_timeout later, never if the holders keep talking); beyond
#   per_ip_connection_limit MHD accepts and closes at once, no HTTP
#   answer.  MHD's accept policy callback runs after the limit check and
#   can only refuse, not answer.
# - connection_timeout is an inactivity timeout: a header dribbled one
#   byte a second is not cut off (not before the 32 KiB connection memory
#   limit fills: hours at that rate).
. "$SRC/tests/integration/lib.sh"

SERVE=$LOCKBOX
SERVE2=$LOCKBOX
if [ -x "${LOCKBOX_ASAN:-}" ]; then SERVE2=$LOCKBOX_ASAN; fi
LOAD=$(dirname "$LOCKBOX")/tools/load_mix
ROUND=${LOAD_SECONDS:-6}
for t in sqlite3 python3; do
    command -v $t >/dev/null || { fail "$t installed"; exit 1; }
done
[ -x "$LOAD" ] || { fail "load generator $LOAD built (make unit)"; exit 1; }

# two distinct free ports in P1 P2
two_ports() {
    P1=$(free_port); P2=$(free_port)
    while [ "$P2" = "$P1" ]; do P2=$(free_port); done
}
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
two_ports
check "init a CA (ec-p256)" $LOCKBOX init --dir "$DIR" --key-type ec-p256 --name "Load Test CA" \
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
check "the CRL is served" sh -c "curl -sf --max-time 30 -o '$T/crl.der' '$HTTP/ca.crl' && \
    openssl crl -inform DER -in '$T/crl.der' -noout -CAfile '$DIR/ca.pem'"

# --- 1. 64 clients: warm-up, then two identical rounds ------------------------
# Each round is ROUND seconds (the warm-up twice that) of 64 clients
# spread over four loopback addresses (so that per_ip_connection_limit,
# 64 by default, is not the limit under test here: one address opening
# more than 64 connections to a listener has the excess closed unanswered,
# see part 2); RSS is read 2 s after the round, when idle.
round() { # NAME
    local secs=$ROUND
    [ "$1" = warm ] && secs=$((2 * ROUND))
    "$LOAD" --https "$HTTPS" --http "$HTTP" --cacert "$DIR/ca.pem" --cert "$T/load.pem" \
        --key "$T/load.key" --ocsp-req "$T/ocsp.der" --clients 64 --seconds "$secs" \
        --sources 4 "${CSRS[@]}" >"$T/$1.sum" 2>"$T/$1.err"
}
ENROLLED=0
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
    ENROLLED=$((ENROLLED + $(counter enroll "$T/$r.sum")))
    sleep 2
    RSS[$r]=$(rss "$PID")
done
check "the daemon survived the load" kill -0 "$PID"
check "every certificate handed out is in the database, none twice" test \
    "$(db_count "SELECT count(*) || '/' || count(DISTINCT serial) FROM certificates WHERE email = 'load@example.org'")" \
    = "$((ENROLLED + 1))/$((ENROLLED + 1))"
echo "  VmRSS (kB): after warm-up ${RSS[warm]}, round 1 ${RSS[r1]}, round 2 ${RSS[r2]}"
check "resident memory grows by less than 5% from round 1 to round 2 (${RSS[r1]} -> ${RSS[r2]} kB)" \
    test "$(( (${RSS[r2]:-0} - ${RSS[r1]:-0}) * 100 ))" -lt "$(( 5 * ${RSS[r1]:-0} ))"
kill -TERM "$PID"; wait "$PID"; rc=$?
check "daemon exits 0 on SIGTERM after the load" test "$rc" = 0

# --- the socket helper for parts 2 and 3 -------------------------------------
cat >"$T/net.py" <<'EOF'
import socket, sys, threading, time

PORT = int(sys.argv[2])
REQ = b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\nConnection: close\r\n\r\n"

def connect(src, timeout=10):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", PORT))
    return s

def ask(src, timeout=15):
    """GET /healthz on a new connection: (how, seconds); how is the HTTP
    status, 'closed' (EOF or reset without an answer) or 'timeout'."""
    t = time.time()
    try:
        s = connect(src, timeout)
        s.sendall(REQ)
        d = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            d += b
    except socket.timeout:
        return "timeout", time.time() - t
    except OSError:
        d = b""
    if d.startswith(b"HTTP/1.1 "):
        return d[9:12].decode(), time.time() - t
    return "closed", time.time() - t

def cap(per_ip, limit, extra):
    # per-IP: per_ip idle connections from one address, then one more
    hold = [connect("127.0.0.20") for _ in range(per_ip)]
    time.sleep(0.5)
    how, secs = ask("127.0.0.20")
    print("perip %s %.2f" % (how, secs))
    for s in hold:
        s.close()
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
    print("excess %s" % " ".join(sorted(set(h for h, _ in res))))
    print("excess_min %.2f" % min(s for _, s in res))
    print("excess_max %.2f" % max(s for _, s in res))
    for s in hold:
        s.close()
    how, secs = ask("127.0.0.1")
    print("after %s %.2f" % (how, secs))

def slow(n, silent, dribble):
    """n connections dribble a header one byte a second for dribble
    seconds, then fall silent; silent more send a partial header once."""
    head = b"GET /healthz HTTP/1.1\r\nHost: lockbox\r\nX-Slow: " + b"a" * 4000
    alive = [None] * n      # None: still open after the dribble
    cut = [None] * (n + silent)   # seconds to EOF/reset after last byte
    def reader(i, s, since):
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        cut[i] = time.time() - since[0]
    def dribbler(i):
        s = connect("127.0.0.%d" % (30 + i % 4), 60)
        since = [time.time()]
        r = threading.Thread(target=reader, args=(i, s, since))
        r.start()
        t0 = time.time()
        k = 0
        while time.time() - t0 < dribble:
            try:
                s.send(head[k:k + 1])
            except OSError:
                alive[i] = "send failed at %.1f s" % (time.time() - t0)
                break
            since[0] = time.time()
            k += 1
            time.sleep(1)
            if cut[i] is not None:
                alive[i] = "cut at %.1f s" % (time.time() - t0)
                break
        r.join(60)
        s.close()
    def quiet(i):
        s = connect("127.0.0.%d" % (34 + i % 2), 60)
        since = [time.time()]
        s.send(head[:30])
        reader(i, s, since)
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
        how, secs = ask("127.0.0.1", 10)
        codes.add(how)
        worst = max(worst, secs)
    print("healthz %s" % " ".join(sorted(codes)))
    print("healthz_max %.2f" % worst)
    for x in th:
        x.join(90)
    print("dribblers_alive %d" % sum(1 for a in alive if a is None))
    print("dribblers_cut_early %s" % ([a for a in alive if a is not None] or "none"))
    print("dribblers_closed_after_silence %d" % sum(1 for c in cut[:n] if c is not None))
    print("dribblers_silence_max %.2f" % max(c if c is not None else 999 for c in cut[:n]))
    print("silent_closed %d" % sum(1 for c in cut[n:] if c is not None))
    print("silent_max %.2f" % max(c if c is not None else 999 for c in cut[n:]))

if sys.argv[1] == "cap":
    cap(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
else:
    slow(int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
EOF

# --- 2. the connection cap ----------------------------------------------------
# Two worker threads, 16 connections (MHD gives each worker 8), at most 8
# from one address, idle connections cut after 3 s.
TMO=3
two_ports
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
# The per-IP cap: MHD accepts the ninth connection from an address and
# closes it at once, before any HTTP.  (Wanted: 503.)
check "beyond per_ip_connection_limit: no hang, the connection ends within 2 s" \
    python3 -c "import sys; sys.exit(0 if float('$(val perip "$T/cap.out" | cut -d' ' -f2)' or 99) < 2 else 1)"
check "  ... today closed without an HTTP answer, not 503 (MHD closes it; see the header)" \
    test "$(val perip "$T/cap.out" | cut -d' ' -f1)" = closed
# The global cap: the workers stop accepting, the excess waits in the
# listen backlog and is served when an idle holder times out.
check "beyond connection_limit: no attempt hangs, each is answered within connection_timeout + 3 s" \
    sh -c "[ '$(val excess "$T/cap.out")' = 200 ] && python3 -c \"import sys; sys.exit(0 if $(val excess_max "$T/cap.out" || echo 99) < $TMO + 3 else 1)\""
check "  ... today queued, not answered 503: none before 1 s (the holders' slots free at the timeout)" \
    python3 -c "import sys; sys.exit(0 if $(val excess_min "$T/cap.out" || echo 0) >= 1 else 1)"
check "  ... and the daemon serves normally afterwards" test "$(val after "$T/cap.out" | cut -d' ' -f1)" = 200

# --- 3. slowloris ---------------------------------------------------------------
# 20 connections (below the cap of 64, at most 5 an address) dribble a
# header one byte a second for 2 x timeout + 2 s, then fall silent; 4 more
# send a partial header once and fall silent at once.
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
# The gap: a byte a second is activity, so MHD's inactivity timeout never
# fires; a fix (web/server.c) would bound the time to a complete header.
check "today: headers dribbled a byte a second outlive connection_timeout ($DRIBBLE s > $TMO s; 20 of 20 open)" \
    test "$(val dribblers_alive "$T/slow.out")" = 20
check "  ... and are cut off within connection_timeout + 3 s once they fall silent (20 of 20)" \
    sh -c "[ '$(val dribblers_closed_after_silence "$T/slow.out")' = 20 ] && python3 -c \"import sys; sys.exit(0 if $(val dribblers_silence_max "$T/slow.out" || echo 99) < $TMO + 3 else 1)\""
kill -TERM "$PID3"; wait "$PID3"; rc=$?
check "third daemon exits 0 on SIGTERM" test "$rc" = 0

if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$T/serve.log" "$T/serve2.log" "$T/serve3.log"; then
    fail "no sanitizer reports"
    grep -h -A20 "Sanitizer\|runtime error" "$T/serve.log" "$T/serve2.log" "$T/serve3.log" | head -40 | sed 's/^/       /'
else
    ok "no sanitizer reports"
fi
exit 0
