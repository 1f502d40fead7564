#!/bin/bash
# 12_profiles.sh - every profile's output, as `openssl x509 -text` shows
# it, equals its reviewed fixture in tests/data/profile-*.txt (serials,
# dates, key bytes and signatures masked by normalise-x509.sed); and every
# one verifies against the CA with openssl for its purpose.
. "$SRC/tests/integration/lib.sh"

TOOL=$(dirname "$LOCKBOX")/tools/profile_sample
DIR=$T/ca
$LOCKBOX init --p12-pass-file $PW --dir "$DIR" --name "Example S/MIME CA" --base-url http://pki.example.org >/dev/null \
    || { fail "init (rsa-3072)"; exit 1; }
check "sample one certificate of every profile" "$TOOL" "$DIR" "$T"
for fixture in "$SRC"/tests/data/profile-*.txt; do
    n=$(basename "$fixture" .txt); n=${n#profile-}
    openssl x509 -in "$T/$n.pem" -noout -text | sed -f "$SRC/tests/data/normalise-x509.sed" > "$T/$n.txt"
    if diff -u "$fixture" "$T/$n.txt" > "$T/$n.diff"; then
        ok "profile $n matches its reviewed fixture"
    else
        fail "profile $n differs from its fixture"; sed 's/^/       /' "$T/$n.diff" | head -30
    fi
done
# cdp_ldap = yes: the CDP names the CA entry's LDAP URL after the HTTP URI
cp -r "$DIR" "$T/ca-ldap"
sed -i '/^\[profile\.smime-sign\]$/a cdp_ldap = yes' "$T/ca-ldap/lockbox.conf"
cp -r "$T/ca-ldap" "$T/ca-nobase"
printf '\n[directory]\nbase_dn = dc=example,dc=org\n' >>"$T/ca-ldap/lockbox.conf"
mkdir -p "$T/ldap" "$T/nobase"
check "sample with cdp_ldap = yes and a [directory] base_dn" "$TOOL" "$T/ca-ldap" "$T/ldap"
cdp_uris() { openssl x509 -in "$1" -noout -ext crlDistributionPoints | sed -n 's/^ *URI://p' | tr '\n' ' '; }
check "cdp_ldap = yes: the CDP has the HTTP URI, then the LDAP URL of the CA entry" test "$(cdp_uris "$T/ldap/smime-sign-ec.pem")" = \
    "http://pki.example.org/ca.crl ldap:///cn=Example%20S%2FMIME%20CA,ou=PKI,dc=example,dc=org?certificateRevocationList;binary "
check "  ... and it verifies for S/MIME signing" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/ldap/smime-sign-ec.pem"
check "  ... other profiles keep the HTTP URI only" test "$(cdp_uris "$T/ldap/smime-enc-ec.pem")" = "http://pki.example.org/ca.crl "
check "by default the CDP is the HTTP URI only" test "$(cdp_uris "$T/smime-sign-ec.pem")" = "http://pki.example.org/ca.crl "
expect_fail "cdp_ldap = yes without a [directory] base_dn is refused" "cdp_ldap = yes needs the CA's directory entry" "$TOOL" "$T/ca-nobase" "$T/nobase"
check "  ... naming the setting and the fix" grep -q "cdp_ldap = yes needs the CA's directory entry: set base_dn" "$T/.out"
check "smime-sign verifies for S/MIME signing" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/smime-sign-ec.pem" "$T/smime-sign-rsa.pem"
check "smime-enc (RSA) verifies for S/MIME encryption" openssl verify -CAfile "$DIR/ca.pem" -purpose smimeencrypt "$T/smime-enc-rsa.pem"
# OpenSSL's smimeencrypt purpose insists on keyEncipherment, which the S/MIME
# BR forbid for EC keys (keyAgreement): check the chain and usage by hand.
check "smime-enc (EC) verifies, keyAgreement only" sh -c "openssl verify -CAfile '$DIR/ca.pem' '$T/smime-enc-ec.pem' &&
    openssl x509 -in '$T/smime-enc-ec.pem' -noout -ext keyUsage | grep -qx ' *Key Agreement'"
check "operator and recovery-agent verify as TLS clients" openssl verify -CAfile "$DIR/ca.pem" -purpose sslclient "$T/operator.pem" "$T/recovery-agent.pem"
check "tls-server verifies as a TLS server" openssl verify -CAfile "$DIR/ca.pem" -purpose sslserver "$T/tls-server.pem"
check "ocsp-signing verifies as an OCSP helper" openssl verify -CAfile "$DIR/ca.pem" -purpose ocsphelper "$T/ocsp-signing.pem"
check "RSA-3072 CA signs with sha256WithRSAEncryption" sh -c "openssl x509 -in '$T/operator.pem' -noout -text | grep -q 'Signature Algorithm: sha256WithRSAEncryption'"

# S/MIME BR limits on every subscriber certificate
for n in smime-sign-ec smime-sign-rsa smime-enc-ec smime-enc-rsa; do
    python3 - "$T/$n.pem" <<'PY' && ok "$n: 16-byte positive serial, <= 825 days inclusive" || fail "$n: serial or validity"
import subprocess, sys, datetime
t = subprocess.run(["openssl", "x509", "-in", sys.argv[1], "-noout", "-serial", "-startdate", "-enddate"],
                   capture_output=True, text=True, check=True).stdout.splitlines()
v = dict(l.split("=", 1) for l in t)
serial = bytes.fromhex(v["serial"])
assert len(serial) == 16 and serial[0] < 0x80, v["serial"]
f = "%b %d %H:%M:%S %Y GMT"
nb = datetime.datetime.strptime(v["notBefore"].replace("  ", " "), f)
na = datetime.datetime.strptime(v["notAfter"].replace("  ", " "), f)
assert (na - nb).total_seconds() + 1 <= 825 * 86400
assert (na - nb).total_seconds() + 1 == 365 * 86400, na - nb
PY
done
exit 0
