# lib.sh - shared by the integration scenarios in tests/integration/.
#
# Each scenario is a shell script run by tests/run.sh with:
#   LOCKBOX   the binary under test (normal build; ASan build via LOCKBOX_ASAN)
#   RESULTS   a file: one line "pass NAME", "fail NAME" or "skip NAME" per check
#   SRC       the source tree (for fixtures in tests/data/)
# A scenario sources this file, makes its checks with check/expect_fail/ok/
# fail, records what it cannot run here with skip, and cleans up with the
# trap that lib.sh installs.  A skip is never a pass: tests/run.sh counts
# and lists it apart, and with LOCKBOX_NO_SKIP=1 (CI) it is a failure.
set -u

: "${LOCKBOX:=build/lockbox}"
: "${SRC:=$(pwd)}"
: "${RESULTS:=/dev/null}"
SCENARIO=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-$SCENARIO.XXXXXX")
CLEANUP=""
# PW: the passphrase file (0600) every credential and PKCS#12 of a
# scenario is protected with; lockbox never writes one beside them.
PW=$T/pw
(umask 077; printf 'scenario passphrase %s\n' "$SCENARIO" >"$PW")
export PW

cleanup() {
    eval "$CLEANUP"
    rm -rf "$T"
}
trap cleanup EXIT

# at_exit CMD: run CMD (a string) when the scenario ends.
at_exit() { CLEANUP="$1; $CLEANUP"; }

ok()   { echo "pass $SCENARIO: $*" >>"$RESULTS"; echo "  ok   $*"; }
fail() { echo "fail $SCENARIO: $*" >>"$RESULTS"; echo "  FAIL $*"; }
# skip WHY WHAT: the checks WHAT do not run here, because WHY.  Recorded
# as a skip ("skip NAME" in RESULTS), or as a failure under
# LOCKBOX_NO_SKIP=1, where everything must run.
skip() {
    if [ "${LOCKBOX_NO_SKIP:-0}" = 1 ]; then
        fail "$2: cannot run here ($1), and LOCKBOX_NO_SKIP=1 requires it"
    else
        echo "skip $SCENARIO: $2 ($1)" >>"$RESULTS"; echo "  SKIP $2 ($1)"
    fi
}

# The output (stdout and stderr) of the last check/expect_* command is in
# $T/.out once it has finished, so the next check may grep it.

# check DESC CMD...: passes when CMD exits 0; shows its output otherwise.
check() {
    local desc=$1; shift
    if "$@" >"$T/.run" 2>&1; then ok "$desc"; else fail "$desc"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
}

# expect_fail DESC REGEX CMD...: passes when CMD fails for the reason
# that REGEX (grep -E) finds in its output: it exits non-zero, but not by
# a signal or a sanitizer report (exit status 1-125, no "Sanitizer" or
# "runtime error" in its output), and its output matches REGEX.
expect_fail() {
    local desc=$1 re=$2 rc; shift 2
    "$@" >"$T/.run" 2>&1; rc=$?
    if [ "$rc" = 0 ]; then fail "$desc (unexpectedly succeeded)"
    elif [ "$rc" -gt 125 ] || grep -qE 'Sanitizer|runtime error' "$T/.run"; then fail "$desc (crashed: exit $rc)"
    elif ! grep -qE -- "$re" "$T/.run"; then fail "$desc (exit $rc, but not for the reason /$re/)"
    else ok "$desc"; mv "$T/.run" "$T/.out"; return; fi
    sed 's/^/       /' "$T/.run" | head -20
    mv "$T/.run" "$T/.out"
}

# expect_code DESC CODE CMD...: passes when CMD exits with CODE.
expect_code() {
    local desc=$1 want=$2 got; shift 2
    "$@" >"$T/.run" 2>&1; got=$?
    if [ "$got" = "$want" ]; then ok "$desc"; else fail "$desc (exit $got, want $want)"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
}

# --- the daemon under the sanitizers -------------------------------------------
# asan_serve: sets SERVE, the daemon under test, to the ASan/UBSan build
# ($LOCKBOX_ASAN).  Without that build SERVE is the normal one, and that
# is recorded as a skip: the sanitizers then watch nothing.
asan_serve() {
    if [ -n "${LOCKBOX_ASAN:-}" ] && [ -x "$LOCKBOX_ASAN" ]; then SERVE=$LOCKBOX_ASAN; else
        SERVE=$LOCKBOX
        skip "no ASan build at '${LOCKBOX_ASAN:-}': make asan" "the daemon under ASan/UBSan"
    fi
}
# no_sanitizer_reports LOG...: the logs of daemons ($SERVE) that have
# exited hold no ASan, LeakSanitizer or UBSan report.  A check only when
# SERVE is the ASan build (LeakSanitizer reports at exit: call it after
# the daemon's exit, not before); otherwise recorded as a skip.
no_sanitizer_reports() {
    if [ -z "${LOCKBOX_ASAN:-}" ] || [ "$SERVE" != "$LOCKBOX_ASAN" ]; then
        skip "the daemon ran the normal build" "no sanitizer reports"; return
    fi
    if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$@"; then
        fail "no sanitizer reports (ASan/UBSan build)"
        grep -h -A20 "Sanitizer\|runtime error" "$@" | head -40 | sed 's/^/       /'
    else
        ok "no sanitizer reports (ASan/UBSan build)"
    fi
}

# crl_verifies CRL CAFILE: the DER CRL's signature verifies with CAFILE.
# `openssl crl -CAfile` exits 0 on a bad signature too (OpenSSL 3.0: it
# prints "verify failure"), so its words are what count: "verify OK".
crl_verifies() {
    local out
    out=$(openssl crl -inform DER -in "$1" -CAfile "$2" -noout 2>&1) && [ "$out" = "verify OK" ] && return 0
    echo "$out"
    return 1
}

# lookalike_ca CAFILE OUT: CAFILE's certificate (same subject, same key
# identifier) re-signed with a P-256 key of its own (OUT.key): the control
# that shows a signature check refusing what this CA did not sign.
lookalike_ca() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2.key" &&
        openssl x509 -in "$1" -key "$2.key" -out "$2"
}

# mismatched_key CERT KEY OUT: a P-256 private key file OUT holding KEY's
# private scalar beside CERT's public key.  TLS clients check only that a
# key's public half matches the certificate, so with OUT they present CERT
# and sign the handshake with KEY: what a thief of CERT without its key
# can do.  Only the server's check of that signature can refuse it.
mismatched_key() {
    local priv pub
    priv=$(openssl pkey -in "$2" -noout -text | sed -n '/^priv:/,/^pub:/{/^ /p}' | tr -d ' :\n')
    pub=$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -noout -text |
        sed -n '/^pub:/,/^ASN1/{/^ /p}' | tr -d ' :\n')
    printf 'asn1 = SEQUENCE:k\n[k]\nv = INTEGER:1\npriv = FORMAT:HEX,OCTETSTRING:%s\n' "${priv: -64}" >"$3.cnf"
    printf 'curve = EXPLICIT:0,OID:prime256v1\npub = EXPLICIT:1,FORMAT:HEX,BITSTRING:%s\n' "$pub" >>"$3.cnf"
    openssl asn1parse -genconf "$3.cnf" -noout -out "$3.der" >/dev/null &&
        openssl pkey -inform DER -in "$3.der" -out "$3" 2>/dev/null
}

# free_port: prints a TCP port nothing listens on, below the kernel's
# range for outgoing connections' local ports (32768-60999 on Linux), so
# that a client socket cannot hold it when the daemon binds.
free_port() {
    local p
    while :; do
        p=$(shuf -i 20000-32767 -n 1)
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
}

# free_ports: sets P1 and P2 to two different free ports.
free_ports() {
    P1=$(free_port); P2=$(free_port)
    while [ "$P2" = "$P1" ]; do P2=$(free_port); done
}

# wait_port PORT: waits up to 10 s for a listener on 127.0.0.1:PORT.
wait_port() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# db_count SQL: prints the single number a query returns on $DIR/lockbox.db.
db_count() { sqlite3 "$DIR/lockbox.db" "$1"; }

# --- a throwaway slapd (slapd.sh) --------------------------------------------
# slapd_up: starts slapd.sh ($SLAPD_SH) for this scenario and stops it at
# exit (stop_slapd); sets LDAP_URI, LDAP_PORT, LDAP_BASE, LDAP_BINDDN,
# LDAP_BINDPW, SLAPD_DIR and ROOTPW (the bind password).  Exits the
# scenario when slapd does not start.
SLAPD_DIR=""
stop_slapd() {
    [ -n "$SLAPD_DIR" ] || return 0
    bash "$SLAPD_SH" stop "$SLAPD_DIR"
    SLAPD_DIR=""
}
slapd_up() {
    local env
    at_exit stop_slapd
    env=$(bash "$SLAPD_SH" start) || { fail "throwaway slapd starts"; exit 1; }
    eval "$env"
    ok "throwaway slapd on $LDAP_URI"
    ROOTPW=$LDAP_BINDPW
}

# directory_conf [LINE...]: gives the CA in $DIR a [directory] section for
# that slapd (bind password in ldap.pass, mode 0600), with the LINEs after
# base_dn and short timeouts and retries.
directory_conf() {
    local l
    printf '%s\n' "$LDAP_BINDPW" >"$DIR/ldap.pass"
    chmod 600 "$DIR/ldap.pass"
    {
        printf '\n[directory]\nuri = %s\nbind_dn = %s\n' "$LDAP_URI" "$LDAP_BINDDN"
        printf 'bind_password_file = ldap.pass\nbase_dn = %s\n' "$LDAP_BASE"
        for l in "$@"; do printf '%s\n' "$l"; done
        printf 'timeout = 2\nnetwork_timeout = 2\nretry = 1\nretry_max = 2\n'
    } >>"$DIR/lockbox.conf"
}

# --- HTTP answers (EST and the web API) ---------------------------------------
# status WANT DESC CURL-ARGS...: passes when curl gets HTTP status WANT;
# the body is left in $T/body and the headers (CR stripped) in $T/headers.
status() {
    local want=$1 desc=$2 got; shift 2
    rm -f "$T/body" "$T/headers.raw"
    got=$(curl -s -o "$T/body" -D "$T/headers.raw" -w '%{http_code}' --max-time 60 "$@")
    touch "$T/body" "$T/headers.raw"
    tr -d '\r' <"$T/headers.raw" >"$T/headers"
    if [ "$got" = "$want" ]; then ok "$desc"; else
        fail "$desc (HTTP $got, want $want)"; head -c 400 "$T/body" | sed 's/^/       /'; echo
    fi
}
# header NAME REGEX: the last answer has header NAME matching REGEX (whole value).
header() { grep -qiE "^$1: $2\$" "$T/headers"; }
# b64der IN OUT: base64 with CRLF lines to DER.
b64der() { tr -d '\r\n' <"$1" | base64 -d >"$2"; }
# certs_of FILE OUT: the certificates of a base64 certs-only CMS, as PEM.
certs_of() { b64der "$1" "$T/certs.der" && openssl pkcs7 -inform DER -in "$T/certs.der" -print_certs -out "$2" && grep -q 'BEGIN CERTIFICATE' "$2"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
san_of() { openssl x509 -in "$1" -noout -ext subjectAltName | sed -n 's/^ *//p' | tail -n1; }

# ldif_person UID CN SN [GIVENNAME]: prints the LDIF entry (and a blank
# line) of an inetOrgPerson uid=UID in ou=People of $LDAP_BASE, mail
# UID@example.org, password UID-secret.
ldif_person() {
    printf 'dn: uid=%s,ou=People,%s\nobjectClass: inetOrgPerson\n' "$1" "$LDAP_BASE"
    printf 'uid: %s\ncn: %s\n' "$1" "$2"
    [ $# -lt 4 ] || printf 'givenName: %s\n' "$4"
    printf 'sn: %s\nmail: %s@example.org\nuserPassword: %s-secret\n\n' "$3" "$1" "$1"
}

# csr NAME SUBJ [REQ-ARGS...]: a P-256 key $T/NAME.key and $T/NAME.b64
# (base64 DER CSR).
csr() {
    local n=$1 s=$2; shift 2
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$n.key" \
        -subj "$s" -outform DER -out "$T/$n.der" "$@" 2>/dev/null && base64 "$T/$n.der" >"$T/$n.b64"
}

# --- a CA and its daemon ------------------------------------------------------
# est_ca NAME DESC: a P-256 CA "NAME" in DIR=$T/ca listening on two free
# ports P1 (HTTPS) and P2 (HTTP), with three recovery agents (keys in
# $T/agent1.p12 ... $T/agent3.p12) and a 2-of-3 escrow policy they
# signed; DESC is the check that the policy is in force.
est_ca() {
    local a
    DIR=$T/ca
    free_ports
    check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "$1" \
        --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 --base-url http://127.0.0.1:$P2
    for a in 1 2 3; do
        add_agent "$DIR" "$T/agent$a.p12" "Agent $a" agent$a@example.org >/dev/null 2>&1
    done
    policy_in_force "$DIR" 2 "$T/agent1.p12" "$T/agent2.p12" "$T/agent3.p12" >/dev/null 2>&1
    check "$2" sh -c "$LOCKBOX escrow policy --dir '$DIR' | grep -q '^policy v1: threshold 2 of 3 agents'"
}

# add_agent DIR P12 NAME EMAIL: a recovery agent made as an agent makes
# one: key and request on the agent's side (P12.key, encrypted under $PW,
# and P12.csr), the certificate from the CA in DIR (P12.crt), the
# credential P12 (under $PW).  add_recovery_officer: the same for a
# recovery officer.
cred_made() {
    local kind=$1 dir=$2 p12=$3 name=$4 email=$5 role=${6:-}
    $LOCKBOX "$kind" request --name "$name" --email "$email" --out-key "$p12.key" \
        --out-csr "$p12.csr" --pass-file "$PW" >/dev/null &&
    $LOCKBOX "$kind" add --dir "$dir" ${role:+--role "$role"} --csr "$p12.csr" --name "$name" \
        --email "$email" --out "$p12.crt" &&
    $LOCKBOX "$kind" install --cert "$p12.crt" --key "$p12.key" --out-p12 "$p12" \
        --pass-file "$PW" >/dev/null
}
add_agent() { cred_made agent "$@"; }
add_recovery_officer() { cred_made operator "$1" "$2" "$3" "$4" recovery-officer; }

# policy_in_force DIR M P12...: proposes an escrow policy of threshold M
# in DIR (every active agent and recovery officer) and has each P12 sign
# it on the CA's host (--dir), each client with its own pin in P12.home;
# the proposal's hash in $T/policy.hash.  Succeeds when it is in force.
# POLICY_OPTS: more options for propose (--agents, --officers).
policy_in_force() {
    local dir=$1 m=$2 p12
    shift 2
    $LOCKBOX escrow policy propose --dir "$dir" --threshold "$m" ${POLICY_OPTS:-} >"$T/policy.out" || return 1
    tail -n1 "$T/policy.out" >"$T/policy.hash"
    for p12 in "$@"; do
        $LOCKBOX escrow policy sign "$(cat "$T/policy.hash")" --dir "$dir" --cred "$p12" \
            --cred-pass-file "$PW" --home "$p12.home" --yes >"$T/policy.sign" || return 1
    done
    grep -q "now in force" "$T/policy.sign"
}

# issue_signing WHO...: for each WHO a P-256 key $T/WHO.key, a CSR
# $T/WHO.csr ("/CN=WHO") and an smime-sign certificate $T/WHO.pem for
# WHO@example.org from the CA in $DIR, its serial in $T/WHO.serial.  The
# scenario checks what it needs of them.
issue_signing() {
    local who
    for who in "$@"; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$who.key" \
            -out "$T/$who.csr" -subj "/CN=$who" 2>/dev/null
        $LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/$who.csr" --email "$who@example.org" --out "$T/$who.pem" >"$T/$who.serial"
    done
}

# serve_both DIR DESC: starts the daemon ($SERVE) on the state directory
# DIR listening on two free ports, P1 (HTTPS, URL in HTTPS) and P2 (HTTP,
# URL in HTTP), stderr appended to $T/serve.log, killed at exit; its pid
# in PID.  Passes DESC once both listen, otherwise shows the log and ends
# the scenario.
serve_both() {
    free_ports
    HTTPS=https://127.0.0.1:$P1
    HTTP=http://127.0.0.1:$P2
    $SERVE serve --dir "$1" --listen "127.0.0.1:$P1" --http-listen "127.0.0.1:$P2" 2>>"$T/serve.log" &
    PID=$!
    at_exit "kill -KILL $PID 2>/dev/null"
    if wait_port "$P1" && wait_port "$P2"; then ok "$2"; else
        fail "$2"; sed 's/^/       /' "$T/serve.log"; exit 1
    fi
}
# stop_serve DESC: SIGTERM to the daemon $PID; passes "daemon exits 0 on
# SIGTERM (DESC)" when it exits 0.
stop_serve() {
    local rc
    kill -TERM "$PID"
    wait "$PID"; rc=$?
    if [ "$rc" = 0 ]; then ok "daemon exits 0 on SIGTERM ($1)"; else fail "daemon exits 0 on SIGTERM ($1): exit $rc"; fi
}

# serve_up DIR PORT LOG DESC: starts the daemon ($SERVE) on the state
# directory DIR, stderr to LOG, killed at exit; passes DESC once PORT
# listens, otherwise shows LOG and ends the scenario.  Its pid: SERVE_PID.
serve_up() {
    $SERVE serve --dir "$1" 2>"$3" &
    SERVE_PID=$!
    at_exit "kill -KILL $SERVE_PID 2>/dev/null"
    if wait_port "$2"; then ok "$4"; else
        fail "$4"; sed 's/^/       /' "$3"; exit 1
    fi
}
