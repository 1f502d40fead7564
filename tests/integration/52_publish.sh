#!/bin/bash
# 52_publish.sh - the directory publication queue (enroll/publish.c)
# against a throwaway slapd, driven by tests/tools/publish_worker (which
# runs the publisher thread as the daemon will) and read back with
# ldapsearch as a mail client would: a certificate issued with `lockbox
# issue` and queued appears on the user's entry (found by e-mail) as
# userCertificate;binary, byte-identical; once revoked with `lockbox
# revoke` it is removed.  With slapd stopped the row stays pending with
# its error (`lockbox publish status`); with slapd back it is published.
# A user missing from the directory ends 'failed' after repeated tries;
# `lockbox publish retry` queues it again and, the user added, it goes out.
. "$SRC/tests/integration/lib.sh"

TOOL=$(dirname "$LOCKBOX")/tools/publish_worker
SLAPD_SH=$SRC/tests/integration/slapd.sh
[ -x "$TOOL" ] || { fail "publish_worker built (make unit)"; exit 1; }
command -v ldapsearch >/dev/null || { fail "ldap-utils installed"; exit 1; }
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }

slapd_up
PORT_LDAP=$LDAP_PORT

# add_user UID: an inetOrgPerson UID@example.org in ou=People.
add_user() {
    ldapadd -x -H "$LDAP_URI" -D "$LDAP_BINDDN" -w "$ROOTPW" >/dev/null <<EOF
dn: uid=$1,ou=People,$LDAP_BASE
objectClass: inetOrgPerson
uid: $1
cn: $1
sn: $1
mail: $1@example.org
EOF
}
check "users alice and bob in ou=People" sh -c "$(declare -f add_user); LDAP_URI='$LDAP_URI' LDAP_BINDDN='$LDAP_BINDDN' ROOTPW='$ROOTPW' LDAP_BASE='$LDAP_BASE'; add_user alice && add_user bob"

DIR=$T/ca
$LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 >/dev/null || { fail "init"; exit 1; }
directory_conf

# issue WHO: a smime-sign certificate for WHO@example.org; $T/WHO.der, .serial
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -out "$T/$1.csr" -subj "/CN=$1" 2>/dev/null &&
    $LOCKBOX issue --dir "$DIR" --profile smime-sign --csr "$T/$1.csr" \
        --email "$1@example.org" --out "$T/$1.pem" >"$T/$1.serial" &&
    openssl x509 -in "$T/$1.pem" -outform DER -out "$T/$1.der"
}
# certs UID: how many userCertificate;binary values the entry holds (files
# left in $T/ucert/), read anonymously.
certs() {
    rm -rf "$T/ucert"; mkdir -p "$T/ucert"
    ldapsearch -x -H "$LDAP_URI" -b "uid=$1,ou=People,$LDAP_BASE" -s base -LLL -tt \
        -T "$T/ucert" '(objectClass=*)' 'userCertificate;binary' >/dev/null 2>&1 || { echo error; return; }
    find "$T/ucert" -type f | wc -l
}
# has_cert UID FILE: exactly one value, byte-identical to FILE.
has_cert() { [ "$(certs "$1")" = 1 ] && cmp "$(find "$T/ucert" -type f)" "$2"; }
no_cert() { [ "$(certs "$1")" = 0 ]; }
q() { sqlite3 "$DIR/lockbox.db" "$1"; }
status_has() { $LOCKBOX publish status --dir "$DIR" | grep -q "$1"; }

# --- the CLI on an empty queue ------------------------------------------------
check "publish status on an empty queue" $LOCKBOX publish status --dir "$DIR"
check "  ... pending 0, failed 0, done 0, no oldest" sh -c "grep -qx 'pending: 0' '$T/.out' && grep -qx 'failed:  0' '$T/.out' && grep -qx 'done:    0' '$T/.out' && grep -qx 'oldest pending: -' '$T/.out'"
check "  ... and, no CRL issued yet, says so for the CRL" sh -c "$LOCKBOX publish status --dir '$DIR' | grep -qx 'no CRL published yet'"
check "publish --help" $LOCKBOX publish --help
check "publish status --help" $LOCKBOX publish status --help
check "  ... says what it shows" grep -q "pending, failed" "$T/.out"
check "publish retry --help" $LOCKBOX publish retry --help
expect_code "publish without a subcommand: usage (2)" 2 $LOCKBOX publish
expect_code "publish bogus: usage (2)" 2 $LOCKBOX publish bogus
expect_code "publish status with an extra argument: usage (2)" 2 $LOCKBOX publish status extra --dir "$DIR"
expect_code "publish status --bogus: usage (2)" 2 $LOCKBOX publish status --bogus
expect_code "publish status on a missing CA: failure (1)" 1 $LOCKBOX publish status --dir "$T/nowhere"

# --- publication, found by e-mail ---------------------------------------------
check "issue alice's signing certificate" issue alice
ALICE=$(cat "$T/alice.serial")
check "alice's entry has no certificate yet" no_cert alice
check "queue it (user looked up by e-mail)" "$TOOL" "$DIR" enqueue "$ALICE" alice@example.org
check "  ... status: pending 1 with alice's add row" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'pending: 1' '$T/st' && grep -q '^pending add .*$ALICE alice@example.org attempts 0' '$T/st' && grep -q '^oldest pending: .* s ago)$' '$T/st'"
check "queueing it again changes nothing" "$TOOL" "$DIR" enqueue "$ALICE" alice@example.org
check "  ... one row" test "$(q "SELECT COUNT(*) FROM publish_queue")" = 1
check "the worker empties the queue" "$TOOL" "$DIR" run 20
check "  ... logging the publication" grep -q "certificate $ALICE published to uid=alice,ou=People,$LDAP_BASE" "$T/.out"
check "ldapsearch: userCertificate;binary is the issued DER, byte for byte" has_cert alice "$T/alice.der"
check "  ... and it is alice's certificate" sh -c "openssl x509 -inform DER -in '$(find "$T/ucert" -type f | head -n1)' -noout -ext subjectAltName | grep -q 'email:alice@example.org'"
check "  ... the DN found is stored on the row" test "$(q "SELECT user_dn FROM publish_queue WHERE serial = '$ALICE'")" = "uid=alice,ou=People,$LDAP_BASE"
check "status: done 1, pending 0" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'done:    1' '$T/st' && grep -qx 'pending: 0' '$T/st' && ! grep -q '^pending ' '$T/st'"

# --- revocation removes it ------------------------------------------------------
check "revoke alice's certificate with the CLI" $LOCKBOX revoke --dir "$DIR" "$ALICE" --reason keyCompromise
check "the worker queues and performs the removal" "$TOOL" "$DIR" run 20
check "  ... logging it" grep -q "certificate $ALICE removed from uid=alice" "$T/.out"
check "ldapsearch: the value is gone" no_cert alice
check "  ... the delete row is done" test "$(q "SELECT state FROM publish_queue WHERE serial = '$ALICE' AND action = 'delete'")" = done
check "a second run does nothing more" "$TOOL" "$DIR" run 5
check "  ... still two rows for alice" test "$(q "SELECT COUNT(*) FROM publish_queue WHERE serial = '$ALICE'")" = 2

# --- slapd stopped: pending with the error; back: published -----------------------
check "issue bob's signing certificate" issue bob
BOB=$(cat "$T/bob.serial")
stop_slapd
check "slapd stopped" sh -c "! ldapsearch -x -H '$LDAP_URI' -b '' -s base >/dev/null 2>&1"
check "queue bob's (DN given)" "$TOOL" "$DIR" enqueue "$BOB" bob@example.org "uid=bob,ou=People,$LDAP_BASE"
expect_code "the worker cannot empty the queue (exit 3)" 3 "$TOOL" "$DIR" run 3
check "  ... logging the failure and its retry" grep -q "publication of certificate $BOB .*Can't contact LDAP server.*retrying in" "$T/.out"
check "status: bob's row pending, attempts grown, with the error" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'pending: 1' '$T/st' && grep '^pending add .*$BOB bob@example.org' '$T/st' | grep -v 'attempts 0' | grep -q \"last error: .*Can't contact LDAP server\""
env=$(SLAPD_PORT=$PORT_LDAP SLAPD_ROOTPW=$ROOTPW bash "$SLAPD_SH" start) || { fail "slapd restarts on port $PORT_LDAP"; exit 1; }
eval "$env"
ok "a fresh slapd on the same URI"
check "bob (and alice) added again to the fresh directory" sh -c "$(declare -f add_user); LDAP_URI='$LDAP_URI' LDAP_BINDDN='$LDAP_BINDDN' ROOTPW='$ROOTPW' LDAP_BASE='$LDAP_BASE'; add_user alice && add_user bob"
check "the worker now empties the queue" "$TOOL" "$DIR" run 20
check "ldapsearch: bob's certificate, byte for byte" has_cert bob "$T/bob.der"
check "  ... alice's revoked one was not put back" no_cert alice
check "  ... the row is done without an error" test "$(q "SELECT state || ',' || COALESCE(last_error, '') FROM publish_queue WHERE serial = '$BOB'")" = "done,"

# --- a user missing from the directory: failed, then retried ----------------------
check "issue carol's signing certificate (carol is not in the directory)" issue carol
CAROL=$(cat "$T/carol.serial")
check "queue it" "$TOOL" "$DIR" enqueue "$CAROL" carol@example.org
expect_code "the worker cannot publish it (exit 3)" 3 "$TOOL" "$DIR" run 2
check "  ... the row is pending with 'no user'" sh -c "$LOCKBOX publish status --dir '$DIR' | grep '^pending add .*$CAROL' | grep -q \"last error: .*no user 'carol@example.org'\""
q "UPDATE publish_queue SET attempts = 9, next_try = strftime('%s', 'now') WHERE serial = '$CAROL'"
expect_code "the tenth permanent failure gives up" 0 "$TOOL" "$DIR" run 10
check "  ... logging it" grep -q "giving up on publication of certificate $CAROL" "$T/.out"
check "status: failed 1, carol's row 'failed' after 10 attempts" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'failed:  1' '$T/st' && grep -q '^failed  add .*$CAROL carol@example.org attempts 10, next try -, last error: ' '$T/st'"
check "add carol to the directory" sh -c "$(declare -f add_user); LDAP_URI='$LDAP_URI' LDAP_BINDDN='$LDAP_BINDDN' ROOTPW='$ROOTPW' LDAP_BASE='$LDAP_BASE'; add_user carol"
check "a worker run alone leaves a failed row alone" "$TOOL" "$DIR" run 2
check "  ... still not published" no_cert carol
check "publish retry" $LOCKBOX publish retry --dir "$DIR"
check "  ... says one was queued again" grep -qx "1 failed publication queued again" "$T/.out"
check "  ... status: pending 1, failed 0" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'pending: 1' '$T/st' && grep -qx 'failed:  0' '$T/st'"
check "  ... audited" test "$(q "SELECT COUNT(*) FROM audit WHERE action = 'publish.retry'")" = 1
check "the worker publishes it" "$TOOL" "$DIR" run 20
check "ldapsearch: carol's certificate, byte for byte" has_cert carol "$T/carol.der"
check "publish retry with nothing failed" $LOCKBOX publish retry --dir "$DIR"
check "  ... says none" grep -qx "0 failed publications queued again" "$T/.out"
check "status: 4 done, 0 pending, 0 failed" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'done:    4' '$T/st' && grep -qx 'pending: 0' '$T/st' && grep -qx 'failed:  0' '$T/st'"
check "the audit chain is intact" $LOCKBOX audit verify --dir "$DIR"
