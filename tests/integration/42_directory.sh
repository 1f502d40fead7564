#!/bin/bash
# 42_directory.sh - publishing the CA certificate and CRLs to a real
# (throwaway) slapd through directory/, driven by tests/tools/ldap_publish
# and read back with ldapsearch as a relying party would (anonymously):
# the entry (and its ou) created when absent, byte-identical DER, a new CRL
# replacing the old one, a delta CRL added and removed, wrong credentials
# and a loose password file refused as permanent failures, a stopped or
# frozen server reported as transient (exit 3), publication working again
# once the server is back on the same URI (also through a long-lived
# context whose connection died), and StartTLS verified against ca_file.
# Then the enrollment side: user look-up by uid or e-mail, password check
# by a user bind, group membership, userCertificate;binary added/removed.
. "$SRC/tests/integration/lib.sh"

TOOL=$(dirname "$LOCKBOX")/tools/ldap_publish
SLAPD_SH=$SRC/tests/integration/slapd.sh
[ -x "$TOOL" ] || { fail "ldap_publish built (make unit)"; exit 1; }
command -v ldapsearch >/dev/null || { fail "ldap-utils installed"; exit 1; }

DIR=$T/ca
$LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 >/dev/null || { fail "init"; exit 1; }

# slapd offers StartTLS with the certificate lockbox init made for its own
# listener (issued by the CA, SAN 127.0.0.1).
SLAPD_DIR=""
stop_slapd() {
    [ -n "$SLAPD_DIR" ] || return 0
    kill -CONT "$SLAPD_PID" 2>/dev/null
    bash "$SLAPD_SH" stop "$SLAPD_DIR"
    SLAPD_DIR=""
}
at_exit stop_slapd
export SLAPD_TLS_CERT=$DIR/tls.pem SLAPD_TLS_KEY=$DIR/tls.key
env=$(bash "$SLAPD_SH" start) || { fail "throwaway slapd starts"; exit 1; }
eval "$env"
ok "throwaway slapd on $LDAP_URI"
ROOTPW=$LDAP_BINDPW

CADN="cn=Example S/MIME CA,ou=PKI,$LDAP_BASE"
printf '%s\n' "$LDAP_BINDPW" >"$DIR/ldap.pass"
chmod 600 "$DIR/ldap.pass"
cp "$DIR/lockbox.conf" "$T/lockbox.conf.orig"
# dirconf [LINE...]: lockbox.conf with the [directory] section below, plus LINEs.
dirconf() {
    { cat "$T/lockbox.conf.orig"; printf '%s\n' "$DIRCONF" "$@"; } >"$DIR/lockbox.conf"
}
DIRCONF=$(cat <<EOF

[directory]
uri = $LDAP_URI
bind_dn = $LDAP_BINDDN
bind_password_file = ldap.pass
base_dn = $LDAP_BASE
ca_dn = $CADN
timeout = 2
network_timeout = 2
EOF
)
dirconf

# The CA certificate and two CRLs of this CA (openssl ca -gencrl with the
# CA's key), in DER.
openssl x509 -in "$DIR/ca.pem" -outform DER -out "$T/ca.der"
mkdir -p "$T/oca"
: >"$T/oca/index.txt"
echo 01 >"$T/oca/crlnumber"
cat >"$T/oca/ca.cnf" <<EOF
[ ca ]
default_ca = d
[ d ]
database = $T/oca/index.txt
crlnumber = $T/oca/crlnumber
default_md = sha256
default_crl_days = 7
EOF
openssl pkey -in "$DIR/ca.key" -passin "file:$DIR/ca.key.pass" -out "$T/oca/key.pem" 2>/dev/null
for n in 1 2; do
    openssl ca -config "$T/oca/ca.cnf" -gencrl -keyfile "$T/oca/key.pem" \
        -cert "$DIR/ca.pem" -out "$T/crl$n.pem" 2>/dev/null &&
        openssl crl -in "$T/crl$n.pem" -outform DER -out "$T/crl$n.der"
done
check "two DER CRLs made with openssl ca" sh -c "[ -s '$T/crl1.der' ] && [ -s '$T/crl2.der' ] && ! cmp -s '$T/crl1.der' '$T/crl2.der'"

# values ATTR: the values of ATTR on the CA entry, one file each, read
# anonymously; prints the number of values and leaves them in $T/got/.
values() {
    rm -rf "$T/got"; mkdir -p "$T/got"
    ldapsearch -x -H "$LDAP_URI" -b "$CADN" -s base -LLL -tt -T "$T/got" \
        '(objectClass=*)' "$1" >"$T/got.ldif" 2>&1 || { echo error; return; }
    find "$T/got" -type f | wc -l
}
# same ATTR FILE: ATTR has exactly one value, byte-identical to FILE.
same() {
    [ "$(values "$1")" = 1 ] && cmp "$(find "$T/got" -type f)" "$2"
}
classes() {
    ldapsearch -x -H "$LDAP_URI" -b "$CADN" -s base -LLL objectClass 2>/dev/null |
        sed -n 's/^objectClass: //p' | sort | tr '\n' ' '
}
publish() { "$TOOL" "$DIR" "$@"; }
classes_are() { [ "$(classes)" = "$1" ]; }
has_class() { classes | grep -qw "$1"; }
absent() { [ "$(values "$1")" = 0 ]; }

check "no CA entry yet" sh -c "ldapsearch -x -H '$LDAP_URI' -b '$CADN' -s base 2>&1 | grep -q 'No such object'"
check "publish CA certificate + CRL (entry absent)" publish "$T/ca.der" "$T/crl1.der" --arl "$T/crl1.der"
check "  ... entry created: cRLDistributionPoint + pkiCA" classes_are 'cRLDistributionPoint pkiCA '
check "  ... cACertificate;binary byte-identical" same 'cACertificate;binary' "$T/ca.der"
check "  ... certificateRevocationList;binary byte-identical" same 'certificateRevocationList;binary' "$T/crl1.der"
check "  ... authorityRevocationList;binary byte-identical" same 'authorityRevocationList;binary' "$T/crl1.der"
check "  ... the CRL read back verifies against the CA" crl_verifies "$(find "$T/got" -type f 2>/dev/null | head -n1)" "$DIR/ca.pem"

check "publish a second CRL" publish "$T/ca.der" "$T/crl2.der" --arl "$T/crl2.der"
check "  ... replaced: one value, the new bytes" same 'certificateRevocationList;binary' "$T/crl2.der"
check "  ... ARL replaced too" same 'authorityRevocationList;binary' "$T/crl2.der"
check "  ... still one CA certificate" same 'cACertificate;binary' "$T/ca.der"

check "publish with a delta CRL" publish "$T/ca.der" "$T/crl2.der" --arl "$T/crl2.der" --delta "$T/crl1.der"
check "  ... deltaCRL class added" has_class deltaCRL
check "  ... deltaRevocationList;binary byte-identical" same 'deltaRevocationList;binary' "$T/crl1.der"
check "publish without delta or ARL" publish "$T/ca.der" "$T/crl1.der"
check "  ... the stale delta is removed" absent 'deltaRevocationList;binary'
check "  ... the stale ARL is removed" absent 'authorityRevocationList;binary'
check "  ... the full CRL is the new one" same 'certificateRevocationList;binary' "$T/crl1.der"

ldapdelete -x -H "$LDAP_URI" -D "$LDAP_BINDDN" -w "$ROOTPW" "$CADN" "ou=PKI,$LDAP_BASE" >/dev/null 2>&1
check "entry and ou=PKI deleted" sh -c "ldapsearch -x -H '$LDAP_URI' -b 'ou=PKI,$LDAP_BASE' -s base 2>&1 | grep -q 'No such object'"
check "publish recreates ou=PKI and the entry" publish "$T/ca.der" "$T/crl2.der" --delta "$T/crl1.der"
check "  ... with cRLDistributionPoint + deltaCRL + pkiCA" classes_are 'cRLDistributionPoint deltaCRL pkiCA '
check "  ... byte-identical CRL" same 'certificateRevocationList;binary' "$T/crl2.der"
check "  ... byte-identical delta CRL" same 'deltaRevocationList;binary' "$T/crl1.der"

# Enrollment side: users in ou=People, a group in ou=Groups.
ALICE="uid=alice,ou=People,$LDAP_BASE"
{
    ldif_person alice "Alice Liddell" Liddell Alice
    ldif_person bob "Bob Builder" Builder
    cat <<EOF
dn: cn=mail-users,ou=Groups,$LDAP_BASE
objectClass: groupOfNames
cn: mail-users
member: $ALICE
EOF
} | ldapadd -x -H "$LDAP_URI" -D "$LDAP_BINDDN" -w "$ROOTPW" >/dev/null 2>&1
user() { "$TOOL" "$DIR" --user "$@"; }
printf 'alice-secret\n' >"$T/alice.pw"
printf 'not-her-password\n' >"$T/wrong.pw"
check "user look-up by uid" user alice
check "  ... finds her DN, mail, givenName and sn" sh -c "grep -qx 'dn: $ALICE' '$T/.out' && grep -qx 'mail: alice@example.org' '$T/.out' && grep -qx 'givenName: Alice' '$T/.out' && grep -qx 'sn: Liddell' '$T/.out'"
check "user look-up by e-mail" user alice@example.org
check "  ... the same entry" grep -qx "dn: $ALICE" "$T/.out"
expect_code "an unknown login: permanent failure" 1 user carol
check "  ... 'no user'" grep -q "no user 'carol'" "$T/.out"
expect_code "a filter-injection login (*) matches nobody" 1 user '*'
check "  ... 'no user'" grep -q "no user" "$T/.out"
check "password check: the right password" user alice --password-file "$T/alice.pw"
expect_code "password check: a wrong password is refused" 1 user alice --password-file "$T/wrong.pw"
check "  ... 'wrong password'" grep -q "wrong password for $ALICE" "$T/.out"
check "group member: alice in mail-users" user alice --group "cn=mail-users,ou=Groups,$LDAP_BASE"
check "  ... yes" grep -qx "member: yes" "$T/.out"
check "group member: bob not in mail-users" user bob --group "cn=mail-users,ou=Groups,$LDAP_BASE"
check "  ... no" grep -qx "member: no" "$T/.out"
expect_code "an absent group: permanent failure" 1 user bob --group "cn=nobody,ou=Groups,$LDAP_BASE"
uvalues() {
    rm -rf "$T/ugot"; mkdir -p "$T/ugot"
    ldapsearch -x -H "$LDAP_URI" -b "$ALICE" -s base -LLL -tt -T "$T/ugot" \
        '(objectClass=*)' 'userCertificate;binary' >/dev/null 2>&1 || { echo error; return; }
    find "$T/ugot" -type f | wc -l
}
user_cert_is() { [ "$(uvalues)" = 1 ] && cmp "$(find "$T/ugot" -type f)" "$1"; }
user_cert_none() { [ "$(uvalues)" = 0 ]; }
check "publish a certificate to alice's entry" user alice --add-cert "$T/ca.der"
check "  ... userCertificate;binary byte-identical" user_cert_is "$T/ca.der"
check "  ... publishing it again is a no-op" user alice --add-cert "$T/ca.der"
check "  ... still one value" user_cert_is "$T/ca.der"
check "remove it" user alice --remove-cert "$T/ca.der"
check "  ... gone" user_cert_none
check "  ... removing it again is a no-op" user alice --remove-cert "$T/ca.der"

# Permanent failures: exit 1, naming the URI and the DN.
printf 'wrong-password\n' >"$DIR/ldap.pass"
expect_code "wrong bind password: permanent failure (exit 1)" 1 publish "$T/ca.der" "$T/crl1.der"
check "  ... says invalid credentials, naming the URI and the bind DN" sh -c "grep -q 'Invalid credentials' '$T/.out' && grep -qF '$LDAP_URI' '$T/.out' && grep -qF '$LDAP_BINDDN' '$T/.out' && grep -q permanent '$T/.out'"
check "  ... nothing changed" same 'certificateRevocationList;binary' "$T/crl2.der"
printf '%s\n' "$ROOTPW" >"$DIR/ldap.pass"
chmod 644 "$DIR/ldap.pass"
expect_code "a password file others can read is refused" 1 publish "$T/ca.der" "$T/crl1.der"
check "  ... saying chmod 600" grep -q 'chmod 600' "$T/.out"
chmod 600 "$DIR/ldap.pass"
printf 'not DER' >"$T/junk.der"
expect_code "a CRL that is not DER is refused by the server: permanent" 1 publish "$T/ca.der" "$T/junk.der"
check "  ... naming the CA entry" grep -qF "$CADN" "$T/.out"

# Transient failures: exit 3.
kill -STOP "$SLAPD_PID"
start=$(date +%s)
expect_code "slapd frozen: transient failure (exit 3) within the timeout" 3 publish "$T/ca.der" "$T/crl1.der"
elapsed=$(( $(date +%s) - start ))
check "  ... reported as a timeout" sh -c "grep -qi 'timed out' '$T/.out' && grep -q transient '$T/.out'"
check "  ... after about 2 s (timeout = 2), not forever" test "$elapsed" -le 6
kill -CONT "$SLAPD_PID"

port=$LDAP_PORT
SLAPD_KEEP=0 bash "$SLAPD_SH" stop "$SLAPD_DIR"
SLAPD_DIR=""
expect_code "slapd stopped: transient failure (exit 3)" 3 publish "$T/ca.der" "$T/crl1.der"
check "  ... saying the server cannot be reached, naming the URI" sh -c "grep -q \"Can't contact LDAP server\" '$T/.out' && grep -qF '$LDAP_URI' '$T/.out' && grep -q transient '$T/.out'"

env=$(SLAPD_PORT=$port SLAPD_ROOTPW=$ROOTPW bash "$SLAPD_SH" start) || { fail "slapd restarts on port $port"; exit 1; }
eval "$env"
ok "a new slapd on the same URI"
check "publish succeeds again (entry recreated in the new directory)" publish "$T/ca.der" "$T/crl2.der" --arl "$T/crl2.der"
check "  ... byte-identical CRL" same 'certificateRevocationList;binary' "$T/crl2.der"

# StartTLS, the server's certificate verified against ca_file.
dirconf "starttls = yes" "ca_file = ca.pem"
check "publish over StartTLS (server certificate verified with ca_file)" publish "$T/ca.der" "$T/crl1.der"
check "  ... byte-identical CRL" same 'certificateRevocationList;binary' "$T/crl1.der"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -out "$T/other-ca.pem" -days 1 -subj "/CN=Some Other CA" 2>/dev/null
dirconf "starttls = yes" "ca_file = $T/other-ca.pem"
expect_code "StartTLS to a server this ca_file does not vouch for: permanent" 1 publish "$T/ca.der" "$T/crl2.der"
check "  ... the TLS handshake failed, naming ca_file" sh -c "grep -q 'TLS handshake failed' '$T/.out' && grep -qF '$T/other-ca.pem' '$T/.out'"
check "  ... nothing changed" same 'certificateRevocationList;binary' "$T/crl1.der"
dirconf

# A long-lived context (as in the daemon) whose connection dies when slapd
# restarts: the next publication reopens it once and succeeds.
mkfifo "$T/go"
"$TOOL" "$DIR" "$T/ca.der" "$T/crl2.der" --again <"$T/go" >"$T/again.out" 2>&1 &
apid=$!
exec 7>"$T/go"
for i in $(seq 1 100); do grep -q '^published$' "$T/again.out" && break; sleep 0.1; done
check "long-lived context: first publication" grep -q '^published$' "$T/again.out"
port=$LDAP_PORT
bash "$SLAPD_SH" stop "$SLAPD_DIR"
SLAPD_DIR=""
env=$(SLAPD_PORT=$port SLAPD_ROOTPW=$ROOTPW bash "$SLAPD_SH" start) || { fail "slapd restarts on port $port"; exit 1; }
eval "$env"
echo go >&7
exec 7>&-
wait "$apid"; arc=$?
check "  ... after a slapd restart, the same context publishes again (reconnects)" test "$arc" = 0
check "  ... byte-identical CRL in the new directory" same 'certificateRevocationList;binary' "$T/crl2.der"

# No [directory] section: a clear, permanent 'no directory configured'.
mkdir -p "$T/nodir"
cp "$T/lockbox.conf.orig" "$T/nodir/lockbox.conf"
expect_code "no [directory] section: permanent failure" 1 "$TOOL" "$T/nodir" "$T/ca.der" "$T/crl1.der"
check "  ... 'no directory configured'" grep -q 'no directory configured' "$T/.out"
