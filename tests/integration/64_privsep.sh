#!/bin/bash
# 64_privsep.sh - privilege separation of `lockbox serve`.
# The CA key lives in signer processes of their own ([server] signers =
# 2): the network process (the daemon) holds no copy of the key's private
# scalar in its memory while each signer does (read through
# /proc/PID/mem, which also shows that the search finds it where it is),
# the signers have no network socket, no database and no file open and
# may not open one (RLIMIT_NOFILE), all are non-dumpable (their /proc
# files belong to root), and certificates (EST), CRLs (openssl crl
# -verify) and OCSP answers still verify against the CA.
# Started as root with [server] user = nobody, both processes run as that
# uid (/proc/PID/status) and an open of ca.key with the daemon's uid and
# groups fails while lockbox.conf opens; the state directory must belong
# to the user, otherwise serve refuses to start, naming the fix.  A killed
# signer makes signing fail closed (EST 500, /healthz 503 naming it); a
# killed daemon takes its signers with it.
# Without root the user parts, and without CAP_SYS_PTRACE (which reading
# a non-dumpable process's /proc/PID/mem needs) the memory scans, are
# recorded as skipped (tests/run.sh counts them apart; under
# LOCKBOX_NO_SKIP=1, as in CI, they fail).
. "$SRC/tests/integration/lib.sh"

SERVE=$LOCKBOX
for t in python3 openssl curl sqlite3 setpriv; do
    command -v $t >/dev/null || { fail "$t installed"; exit 1; }
done
ROOT=false
[ "$(id -u)" = 0 ] && ROOT=true
RUNAS=nobody

# --- the CA, given to the unprivileged user except its key ---------------------
DIR=$T/ca
free_ports
check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 \
    --name "Privsep Test CA" --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 \
    --base-url http://127.0.0.1:$P2
# the CA key's private scalar, as bytes (hex)
openssl pkey -in "$DIR/ca.key" -passin "file:$DIR/ca.key.pass" -noout -text 2>/dev/null |
    sed -n '/^priv:/,/^pub:/{/^ /p}' | tr -d ' :\n' |
    python3 -c "import sys; h = sys.stdin.read().strip(); print(h[-64:].rjust(64, '0'))" >"$T/scalar.hex"
check "the CA key's private scalar read (32 bytes)" grep -qxE '[0-9a-f]{64}' "$T/scalar.hex"

sed -i 's/^# signers = 2$/signers = 2/' "$DIR/lockbox.conf"
check "[server] signers = 2 set" grep -qx "signers = 2" "$DIR/lockbox.conf"
if $ROOT; then
    UID_RUN=$(id -u $RUNAS); GID_RUN=$(id -g $RUNAS)
    chmod 755 "$T"
    # not yet the user's: serve must refuse, naming the fix
    sed -i "s/^# user = lockbox\$/user = $RUNAS/" "$DIR/lockbox.conf"
    check "[server] user = $RUNAS set" grep -qx "user = $RUNAS" "$DIR/lockbox.conf"
    expect_fail "serve refuses a state directory that is not $RUNAS's, naming the directory and the chown to run" \
        "belongs to uid 0, not to user '$RUNAS'.*chown -R $RUNAS" timeout 20 $SERVE serve --dir "$DIR"
    chown -R "$RUNAS:" "$DIR"
    chown root:root "$DIR/ca.key" "$DIR/ca.key.pass"
    chmod 600 "$DIR/ca.key" "$DIR/ca.key.pass"
else
    skip "not root" "the drop to [server] user: uids, groups, capabilities, the files it creates, ca.key unreadable to it"
fi

serve_up "$DIR" "$P1" "$T/serve.log" "daemon listening"
PID=$SERVE_PID
SIGNERS=$(cat /proc/$PID/task/*/children 2>/dev/null)
SIGNER=$(echo $SIGNERS | cut -d' ' -f1)
SIGNER2=$(echo $SIGNERS | cut -d' ' -f2)
check "the daemon has two children, the signers" sh -c "[ \$(echo $SIGNERS | wc -w) = 2 ] && [ -d /proc/$SIGNER ] && [ -d /proc/$SIGNER2 ]"

# status_ids PID FIELD: the four ids of Uid: or Gid: in /proc/PID/status
status_ids() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s ' \t' ' '; }
if $ROOT; then
    check "daemon runs as $RUNAS: Uid $UID_RUN (real, effective, saved, fs)" \
        test "$(status_ids $PID Uid)" = "$UID_RUN $UID_RUN $UID_RUN $UID_RUN"
    check "  ... Gid $GID_RUN, and no other group" sh -c "[ '$(status_ids $PID Gid)' = '$GID_RUN $GID_RUN $GID_RUN $GID_RUN' ] && [ \"\$(sed -n 's/^Groups:[[:space:]]*//p' /proc/$PID/status | tr -d ' ')\" = '$GID_RUN' ]"
    check "  ... no capabilities left (CapEff 0, CapPrm 0)" sh -c "grep -qx 'CapEff:[[:space:]]*0*' /proc/$PID/status && grep -qx 'CapPrm:[[:space:]]*0*' /proc/$PID/status"
    check "  ... from before it opened anything: the OCSP key and the database's WAL it created are $RUNAS's" \
        sh -c "for f in ocsp.key ocsp.pem lockbox.db-wal lockbox.db-shm; do [ \$(stat -c %u '$DIR'/\$f) = $UID_RUN ] || { echo \$f; exit 1; }; done"
    check "signers run as $RUNAS too" \
        sh -c "[ '$(status_ids $SIGNER Uid)' = '$UID_RUN $UID_RUN $UID_RUN $UID_RUN' ] && [ '$(status_ids $SIGNER2 Uid)' = '$UID_RUN $UID_RUN $UID_RUN $UID_RUN' ]"
    # an open of the key file with the daemon's credentials
    CRED=(setpriv --reuid="$UID_RUN" --regid="$GID_RUN" --clear-groups)
    check "with the daemon's uid and groups, lockbox.conf opens (control)" \
        "${CRED[@]}" cat "$DIR/lockbox.conf"
    expect_fail "with the daemon's uid and groups, an open of ca.key fails: Permission denied" \
        "ca\.key: Permission denied" "${CRED[@]}" cat "$DIR/ca.key"
    expect_fail "  ... and of ca.key.pass" "ca\.key\.pass: Permission denied" "${CRED[@]}" cat "$DIR/ca.key.pass"
fi
# non-dumpable: the kernel gives the /proc files of such a process to root
check "daemon is not dumpable (its /proc files belong to root)" \
    sh -c "[ \$(stat -c %u /proc/$PID/environ) = 0 ] && ( ! $ROOT || [ \$(stat -c %u /proc/$PID/status) = 0 ] )"
check "signers are not dumpable" sh -c "[ \$(stat -c %u /proc/$SIGNER/environ) = 0 ] && [ \$(stat -c %u /proc/$SIGNER2/environ) = 0 ]"
# the descriptors (/proc/PID/fd, like /proc/PID/mem below) of a
# non-dumpable process can be read only with CAP_SYS_PTRACE
PROCFD=yes
ls -l "/proc/$PID/fd" >"$T/daemon.fd" 2>/dev/null && ls -l "/proc/$SIGNER/fd" >"$T/signer.fd" 2>/dev/null &&
    ls -l "/proc/$SIGNER2/fd" >"$T/signer2.fd" 2>/dev/null || PROCFD=no
if [ $PROCFD = yes ]; then
    check "the daemon has no descriptor on ca.key" sh -c "grep -q ' -> ' '$T/daemon.fd' && ! grep -q 'ca\\.key' '$T/daemon.fd'"
# the signer: stdio, its socket, nothing else; no further descriptor
cat >"$T/fds.py" <<'PY'
import os, re, sys
fds = {}
for line in open(sys.argv[1]):
    m = re.search(r' (\d+) -> (.*)$', line.strip())
    if m:
        fds[int(m.group(1))] = m.group(2)
extra = {fd: t for fd, t in fds.items() if fd > 2}
# one unix socket as descriptor 3 (and, with syslog, its connection)
socks = [t for t in extra.values() if t.startswith("socket:")]
tcp = "".join(open(f).read() for f in ("/proc/net/tcp", "/proc/net/tcp6",
                                       "/proc/net/udp", "/proc/net/udp6")
              if os.path.exists(f))
bad = [t for t in extra.values() if not t.startswith("socket:")]
bad += [t for t in socks if re.search(r'\b%s\b' % t[8:-1], tcp)]
print(fds)
sys.exit(1 if bad or len(socks) == 0 or len(extra) > 2 else 0)
PY
    check "the signers hold no file, database or network socket (only stdio and their socketpair)" \
        sh -c "python3 '$T/fds.py' '$T/signer.fd' && python3 '$T/fds.py' '$T/signer2.fd'"
else
    skip "process descriptors unreadable here: no CAP_SYS_PTRACE" "the daemon's descriptors (none on ca.key) and the signers' (stdio and their socketpair only)"
fi
check "the signers may open no descriptor (RLIMIT_NOFILE at the highest descriptor + 1)" \
    sh -c "for p in $SIGNER $SIGNER2; do n=\$(awk '/^Max open files/ {print \$4}' /proc/\$p/limits); [ \"\$n\" -le 5 ] && [ \"\$n\" -ge 4 ] || exit 1; done"

# the key's scalar in memory: in the signer (control), not in the daemon
cat >"$T/memscan.py" <<'PY'
import re, sys
pid, hexkey = sys.argv[1], open(sys.argv[2]).read().strip()
be = bytes.fromhex(hexkey)
needles = [be, be[::-1]]           # big-endian, and BIGNUM's little-endian words
found = 0
read = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r'([0-9a-f]+)-([0-9a-f]+) (\S+)', line)
        lo, hi, perm = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if perm[0] != 'r' or '[vvar]' in line or '[vsyscall]' in line:
            continue
        try:
            mem.seek(lo)
            chunk = mem.read(hi - lo)
        except (OSError, ValueError, OverflowError):
            continue
        read += len(chunk)
        found += sum(chunk.count(n) for n in needles)
# nothing readable (no CAP_SYS_PTRACE here): say so rather than count 0
print(found if read > 0 else "unreadable")
PY
# memscan PID: the count, or "unreadable" (also when /proc/PID/mem does
# not open at all)
memscan() { python3 "$T/memscan.py" "$1" "$T/scalar.hex" 2>/dev/null || echo unreadable; }
MEMSCAN=yes
[ "$(memscan $SIGNER)" = unreadable ] && MEMSCAN=no
if [ $MEMSCAN = yes ]; then
    check "each signer's memory holds the CA key's scalar (control for the scan)" \
        sh -c "[ '$(memscan $SIGNER)' -ge 1 ] && [ '$(memscan $SIGNER2)' -ge 1 ]"
else
    skip "process memory unreadable here: no CAP_SYS_PTRACE" "the CA key's scalar in each signer's memory (control) and not in the daemon's"
fi

# --- it still signs --------------------------------------------------------------------
$LOCKBOX token create --dir "$DIR" --email alice@example.org --profiles smime-sign | tail -n1 >"$T/alice.tok"
csr alice "/CN=alice"
EST=https://127.0.0.1:$P1/.well-known/est
status 200 "EST simpleenroll through the signer" --cacert "$DIR/ca.pem" \
    -H 'Content-Type: application/pkcs10' -u "alice@example.org:$(cat "$T/alice.tok")" \
    --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
check "  ... a certificate that verifies against the CA" sh -c "$(declare -f b64der certs_of); T='$T'; certs_of '$T/body' '$T/alice.pem' && openssl verify -CAfile '$DIR/ca.pem' -purpose smimesign '$T/alice.pem'"
check "revoke it (CLI)" $LOCKBOX revoke --dir "$DIR" "$(serial_of "$T/alice.pem")" --reason keyCompromise
# the daemon notices within seconds and signs a new CRL through the signer
for i in $(seq 1 50); do
    curl -s -o "$T/ca.crl" "http://127.0.0.1:$P2/ca.crl"
    openssl crl -inform DER -in "$T/ca.crl" -noout -text 2>/dev/null | grep -q "$(serial_of "$T/alice.pem")" && break
    sleep 0.2
done
check "a new CRL names it" sh -c "openssl crl -inform DER -in '$T/ca.crl' -noout -text 2>&1 | grep -q '$(serial_of "$T/alice.pem")'"
check "  ... and verifies against the CA" crl_verifies "$T/ca.crl" "$DIR/ca.pem"
if $ROOT; then
    check "  ... written by the daemon as $RUNAS" test "$(stat -c %u "$DIR/pub/ca.crl")" = "$UID_RUN"
fi
openssl ocsp -issuer "$DIR/ca.pem" -cert "$T/alice.pem" -url "http://127.0.0.1:$P2/ocsp" \
    -CAfile "$DIR/ca.pem" >"$T/ocsp.out" 2>&1
check "OCSP answers revoked, and the answer verifies" sh -c "grep -q ': revoked' '$T/ocsp.out' && grep -q 'Response verify OK' '$T/ocsp.out'"
status 200 "/healthz reports the signer ok" "http://127.0.0.1:$P2/healthz"
check "  ... \"signer\": \"ok\"" grep -q '"signer": *"ok"' "$T/body"

# now that the daemon has signed, issued and served: still no key in it
if [ $MEMSCAN = yes ]; then
    check "the daemon's memory holds no copy of the CA key's scalar" \
        test "$(memscan $PID)" = 0
fi

# --- fail closed ---------------------------------------------------------------------
kill -KILL "$SIGNER2"
sleep 0.3
csr bob "/CN=bob"
$LOCKBOX token create --dir "$DIR" --email bob@example.org --profiles smime-sign | tail -n1 >"$T/bob.tok"
status 500 "with the signer killed, enrollment fails (500)" --cacert "$DIR/ca.pem" \
    -H 'Content-Type: application/pkcs10' -u "bob@example.org:$(cat "$T/bob.tok")" \
    --data-binary @"$T/bob.b64" "$EST/smime-sign/simpleenroll"
status 503 "  ... /healthz answers 503" "http://127.0.0.1:$P2/healthz"
check "  ... naming the signer" grep -q "signer process has stopped" "$T/body"
check "  ... and the log says so" grep -q "signer process (pid $SIGNER2) is gone" "$T/serve.log"
check "  ... no certificate was stored for bob" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'bob@example.org'")" = 0
kill -TERM "$PID"; wait "$PID"; rc=$?
check "the daemon still stops on SIGTERM (exit 0)" test "$rc" = 0

# a killed daemon takes its signer along
serve_up "$DIR" "$P1" "$T/serve2.log" "restarted"
PID=$SERVE_PID
SIGNERS=$(cat /proc/$PID/task/*/children 2>/dev/null)
check "  ... with new signers" test "$(echo $SIGNERS | wc -w)" = 2
kill -KILL "$PID"; wait "$PID" 2>/dev/null
for i in $(seq 1 50); do
    left=0; for p in $SIGNERS; do [ -d "/proc/$p" ] && left=1; done
    [ $left = 0 ] && break; sleep 0.1
done
check "kill -9 of the daemon ends its signers too" test "$left" = 0
exit 0
