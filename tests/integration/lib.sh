# lib.sh - shared by the integration scenarios in tests/integration/.
#
# Each scenario is a shell script run by tests/run.sh with:
#   LOCKBOX   the binary under test (normal build; ASan build via LOCKBOX_ASAN)
#   RESULTS   a file: one line "pass NAME" or "fail NAME" per check
#   SRC       the source tree (for fixtures in tests/data/)
# A scenario sources this file, makes its checks with check/expect_fail/ok/
# fail, and cleans up with the trap that lib.sh installs.
set -u

: "${LOCKBOX:=build/lockbox}"
: "${SRC:=$(pwd)}"
: "${RESULTS:=/dev/null}"
SCENARIO=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-$SCENARIO.XXXXXX")
CLEANUP=""

cleanup() {
    eval "$CLEANUP"
    rm -rf "$T"
}
trap cleanup EXIT

# at_exit CMD: run CMD (a string) when the scenario ends.
at_exit() { CLEANUP="$1; $CLEANUP"; }

ok()   { echo "pass $SCENARIO: $*" >>"$RESULTS"; echo "  ok   $*"; }
fail() { echo "fail $SCENARIO: $*" >>"$RESULTS"; echo "  FAIL $*"; }

# The output (stdout and stderr) of the last check/expect_* command is in
# $T/.out once it has finished, so the next check may grep it.

# check DESC CMD...: passes when CMD exits 0; shows its output otherwise.
check() {
    local desc=$1; shift
    if "$@" >"$T/.run" 2>&1; then ok "$desc"; else fail "$desc"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
}

# expect_fail DESC CMD...: passes when CMD exits non-zero.
expect_fail() {
    local desc=$1; shift
    if "$@" >"$T/.run" 2>&1; then fail "$desc (unexpectedly succeeded)"; sed 's/^/       /' "$T/.run" | head -20; else ok "$desc"; fi
    mv "$T/.run" "$T/.out"
}

# expect_code DESC CODE CMD...: passes when CMD exits with CODE.
expect_code() {
    local desc=$1 want=$2 got; shift 2
    "$@" >"$T/.run" 2>&1; got=$?
    if [ "$got" = "$want" ]; then ok "$desc"; else fail "$desc (exit $got, want $want)"; sed 's/^/       /' "$T/.run" | head -20; fi
    mv "$T/.run" "$T/.out"
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
# ports P1 (HTTPS) and P2 (HTTP), with two recovery agents (keys in
# $T/agent1.p12, $T/agent2.p12); DESC is the check that both are active.
est_ca() {
    local a
    DIR=$T/ca
    P1=$(free_port); P2=$(free_port)
    while [ "$P2" = "$P1" ]; do P2=$(free_port); done
    check "init a CA (ec-p256)" $LOCKBOX init --dir "$DIR" --key-type ec-p256 --name "$1" \
        --listen 127.0.0.1:$P1 --http-listen 127.0.0.1:$P2 --base-url http://127.0.0.1:$P2
    for a in 1 2; do
        $LOCKBOX agent add --dir "$DIR" --keygen --out-p12 "$T/agent$a.p12" --name "Agent $a" --email agent$a@example.org >/dev/null 2>&1
    done
    check "$2" sh -c "$LOCKBOX agent list --dir '$DIR' | grep -c ' active ' | grep -qx 2"
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
