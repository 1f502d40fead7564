#!/bin/bash
# 53_est_directory.sh - EST in directory mode against a throwaway slapd,
# driven by curl and openssl as an EST client would, read back with
# ldapsearch as a mail client would: first enrollment by directory password
# (the e-mail from the user's entry, never from the CSR), log-in by uid or
# e-mail, a wrong password or unknown user refused (401), a user outside
# the profile's group refused (403), the policy per user; serverkeygen on
# smime-enc published to the user's entry as userCertificate;binary
# (byte-identical; `lockbox publish status`); renewal by certificate, and
# refused once the user left the directory; the directory down: password
# log-ins fail as a server error (not as wrong passwords), a token
# enrollment of a directory user still succeeds, its publication waits
# pending with its error and goes out once slapd is back; a revoked
# certificate is removed from the entry.
. "$SRC/tests/integration/lib.sh"

asan_serve
SLAPD_SH=$SRC/tests/integration/slapd.sh
command -v ldapsearch >/dev/null || { fail "ldap-utils installed"; exit 1; }
command -v sqlite3 >/dev/null || { fail "sqlite3 installed"; exit 1; }

# status, header, b64der, certs_of, serial_of, san_of, csr: lib.sh
json() { python3 -c "import json,sys; d=json.load(open('$T/body')); sys.exit(0 if ($1) else 1)"; }
# parts: splits the multipart/mixed answer into $T/part.N.hdr/.body; prints N.
parts() {
    python3 - "$T" <<'PY'
import re, sys
t = sys.argv[1]
m = re.search(r'(?im)^content-type:\s*multipart/mixed\s*;\s*boundary="?([^";\s]+)"?', open(t + "/headers").read())
if not m:
    print(0); sys.exit(1)
n = 0
for c in open(t + "/body", "rb").read().split(("--" + m.group(1)).encode())[1:]:
    if c.startswith(b"--"):
        break
    hdr, _, rest = c.replace(b"\r\n", b"\n").lstrip(b"\n").partition(b"\n\n")
    n += 1
    open("%s/part.%d.hdr" % (t, n), "wb").write(hdr + b"\n")
    open("%s/part.%d.body" % (t, n), "wb").write(rest)
print(n)
PY
}

# --- slapd with users and a group ---------------------------------------------------
slapd_up
LDAP_PORT0=$LDAP_PORT
GROUP="cn=mail-users,ou=Groups,$LDAP_BASE"
# seed: alice, carol and dave in mail-users, bob outside it.
seed() {
    {
        ldif_person alice "Alice Liddell" Liddell Alice
        ldif_person bob "Bob Builder" Builder Bob
        ldif_person carol "Carol Danvers" Danvers Carol
        ldif_person dave "Dave Bowman" Bowman Dave
        cat <<EOF
dn: $GROUP
objectClass: groupOfNames
cn: mail-users
member: uid=alice,ou=People,$LDAP_BASE
member: uid=carol,ou=People,$LDAP_BASE
member: uid=dave,ou=People,$LDAP_BASE
EOF
    } | ldapadd -x -H "$LDAP_URI" -D "$LDAP_BINDDN" -w "$ROOTPW" >/dev/null
}
check "users alice, bob, carol, dave in ou=People; mail-users in ou=Groups" seed

# certs UID: how many userCertificate;binary values the entry has (files in $T/ucert/)
certs() {
    rm -rf "$T/ucert"; mkdir -p "$T/ucert"
    ldapsearch -x -H "$LDAP_URI" -b "uid=$1,ou=People,$LDAP_BASE" -s base -LLL -tt \
        -T "$T/ucert" '(objectClass=*)' 'userCertificate;binary' >/dev/null 2>&1 || { echo error; return; }
    find "$T/ucert" -type f | wc -l
}
has_cert() { [ "$(certs "$1")" = 1 ] && cmp -s "$(find "$T/ucert" -type f)" "$2"; }
no_cert() { [ "$(certs "$1")" = 0 ]; }
# wait_for SECONDS CMD...: polls CMD every 0.5 s; prints the seconds it took.
wait_for() {
    local n=$(( $1 * 2 )) i; shift
    for i in $(seq 0 "$n"); do
        if "$@"; then echo $(( i / 2 )); return 0; fi
        sleep 0.5
    done
    return 1
}

# --- the CA ------------------------------------------------------------------------
est_ca "EST Directory CA" "three recovery agents and their 2-of-3 escrow policy"
sed -i "/^\[profile.smime-sign\]/a groups = $GROUP" "$DIR/lockbox.conf"
directory_conf "user_base = ou=People,$LDAP_BASE"
serve_up "$DIR" "$P1" "$T/serve.log" "daemon listening"
PID=$SERVE_PID
EST=https://127.0.0.1:$P1/.well-known/est
POLICY=https://127.0.0.1:$P1/api/v1/policy
CA=(--cacert "$DIR/ca.pem")
P10=(-H 'Content-Type: application/pkcs10')

# --- first enrollment by directory password ----------------------------------------------
csr alice "/CN=Mallory/emailAddress=mallory@evil.example" -addext subjectAltName=email:mallory@evil.example
status 200 "simpleenroll (smime-sign) as alice with her directory password" "${CA[@]}" "${P10[@]}" -u alice:alice-secret --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
check "  ... certs-only, base64" sh -c "grep -qiE '^content-type: application/pkcs7-mime; *smime-type=certs-only$' '$T/headers' && grep -qiE '^content-transfer-encoding: base64$' '$T/headers'"
check "  ... a certificate" certs_of "$T/body" "$T/alice.pem"
check "  ... SAN: the directory's mail, not the CSR's" test "$(san_of "$T/alice.pem")" = "email:alice@example.org"
check "  ... subject: alice's, nothing of mallory" sh -c "s=\$(openssl x509 -in '$T/alice.pem' -noout -subject); echo \"\$s\" | grep -q alice@example.org && ! echo \"\$s\" | grep -qi mallory"
check "  ... verifies for S/MIME signing" openssl verify -CAfile "$DIR/ca.pem" -purpose smimesign "$T/alice.pem"
ALICE1=$(serial_of "$T/alice.pem" 2>/dev/null)
check "  ... audited as the directory user" test "$(sqlite3 "$DIR/lockbox.db" "SELECT actor FROM audit WHERE action = 'enroll.issue' AND object = '$ALICE1'")" = "directory:uid=alice,ou=People,$LDAP_BASE"
csr dave "/CN=dave"
status 200 "log-in by e-mail: dave@example.org with his password" "${CA[@]}" "${P10[@]}" -u dave@example.org:dave-secret --data-binary @"$T/dave.b64" "$EST/smime-sign/simpleenroll"
check "  ... dave's certificate" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/body' '$T/dave.pem' && [ \"\$(san_of '$T/dave.pem')\" = email:dave@example.org ]"

status 401 "a wrong password (401)" --interface 127.0.0.2 "${CA[@]}" "${P10[@]}" -u alice:not-her-password --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
check "  ... WWW-Authenticate: Basic realm=" header www-authenticate 'Basic realm="[^"]+".*'
check "  ... saying only 'authentication failed'" grep -qx 'authentication failed' "$T/body"
status 401 "an unknown user (401, the same answer)" --interface 127.0.0.2 "${CA[@]}" "${P10[@]}" -u mallory:alice-secret --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
check "  ... saying only 'authentication failed'" grep -qx 'authentication failed' "$T/body"
status 401 "a filter-injection login (*) (401)" --interface 127.0.0.2 "${CA[@]}" "${P10[@]}" -u '*:alice-secret' --data-binary @"$T/alice.b64" "$EST/smime-sign/simpleenroll"
csr bob "/CN=bob"
status 403 "bob is not in mail-users: smime-sign refused (403)" "${CA[@]}" "${P10[@]}" -u bob:bob-secret --data-binary @"$T/bob.b64" "$EST/smime-sign/simpleenroll"
check "  ... text/plain naming the group rule" sh -c "grep -qi '^content-type: text/plain' '$T/headers' && grep -qi group '$T/body'"
check "  ... no certificate for bob" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM certificates WHERE email = 'bob@example.org'")" = 0

status 200 "the policy for bob (password)" "${CA[@]}" -u bob:bob-secret "$POLICY"
check "  ... smime-enc only (no group on it), with his DN" json '[p["name"] for p in d["profiles"]] == ["smime-enc"] and d["user"]["dn"] == "uid=bob,ou=People,'"$LDAP_BASE"'" and d["user"]["email"] == "bob@example.org"'
status 200 "the policy for alice (password)" "${CA[@]}" -u alice:alice-secret "$POLICY"
check "  ... smime-sign with her certificate and renew_after, and smime-enc" json 'sorted(p["name"] for p in d["profiles"]) == ["smime-enc", "smime-sign"] and any(c["serial"] == "'"$ALICE1"'" and c.get("renew_after") for p in d["profiles"] for c in p["certificates"])'

# --- serverkeygen, published to the address book --------------------------------------------
check "alice's entry has no certificate yet" no_cert alice
csr alice-enc "/CN=alice"
status 200 "serverkeygen on smime-enc as alice (password)" "${CA[@]}" "${P10[@]}" -u alice:alice-secret --data-binary @"$T/alice-enc.b64" "$EST/smime-enc/serverkeygen"
check "  ... multipart/mixed: a PKCS#8 part and a certs-only part" sh -c "$(declare -f parts); T='$T'; [ \"\$(parts)\" = 2 ] && grep -qi '^content-type: application/pkcs8' '$T/part.1.hdr' && grep -qi '^content-type: application/pkcs7-mime; *smime-type=certs-only' '$T/part.2.hdr'"
check "  ... the key is the certificate's" sh -c "$(declare -f b64der certs_of); T='$T'; b64der '$T/part.1.body' '$T/alice-enc.p8' && certs_of '$T/part.2.body' '$T/alice-enc.pem' && [ \"\$(openssl x509 -in '$T/alice-enc.pem' -noout -pubkey)\" = \"\$(openssl pkey -inform DER -in '$T/alice-enc.p8' -pubout)\" ]"
check "  ... alice's, from the directory" test "$(san_of "$T/alice-enc.pem")" = "email:alice@example.org"
openssl x509 -in "$T/alice-enc.pem" -outform DER -out "$T/alice-enc.der" 2>/dev/null
ENC=$(serial_of "$T/alice-enc.pem" 2>/dev/null)
check "  ... escrowed" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM escrow_records WHERE serial = '$ENC'")" = 1
if took=$(wait_for 10 has_cert alice "$T/alice-enc.der"); then
    ok "ldapsearch: userCertificate;binary on alice's entry, byte-identical, within ${took} s"
else
    fail "ldapsearch: userCertificate;binary on alice's entry, byte-identical, within 10 s (values: $(certs alice))"
fi
check "  ... the signing certificate is not published (publish_signing = no)" test "$(certs alice)" = 1
check "lockbox publish status: done, nothing pending" sh -c "$LOCKBOX publish status --dir '$DIR' >'$T/st' && grep -qx 'pending: 0' '$T/st' && grep -qE '^done: +1$' '$T/st'"
check "  ... the row is done for alice's DN" test "$(sqlite3 "$DIR/lockbox.db" "SELECT state || ',' || user_dn FROM publish_queue WHERE serial = '$ENC' AND action = 'add'")" = "done,uid=alice,ou=People,$LDAP_BASE"

# --- renewal by certificate ------------------------------------------------------------------
openssl req -new -key "$T/alice.key" -subj "/CN=alice@example.org" -outform DER 2>/dev/null | base64 >"$T/alice-renew.b64"
status 200 "simplereenroll by alice's certificate" "${CA[@]}" --cert "$T/alice.pem" --key "$T/alice.key" "${P10[@]}" --data-binary @"$T/alice-renew.b64" "$EST/smime-sign/simplereenroll"
check "  ... alice's new certificate" sh -c "$(declare -f b64der certs_of san_of); T='$T'; certs_of '$T/body' '$T/alice2.pem' && [ \"\$(san_of '$T/alice2.pem')\" = email:alice@example.org ] && [ \"\$(openssl x509 -in '$T/alice2.pem' -noout -serial)\" != \"\$(openssl x509 -in '$T/alice.pem' -noout -serial)\" ]"
check "  ... the old one superseded" test "$(sqlite3 "$DIR/lockbox.db" "SELECT status FROM certificates WHERE serial = '$ALICE1'")" = superseded
ldapdelete -x -H "$LDAP_URI" -D "$LDAP_BINDDN" -w "$ROOTPW" "uid=dave,ou=People,$LDAP_BASE" >/dev/null 2>&1
openssl req -new -key "$T/dave.key" -subj "/" -outform DER 2>/dev/null | base64 >"$T/dave-renew.b64"
status 401 "dave left the directory: his certificate no longer renews (401)" "${CA[@]}" --cert "$T/dave.pem" --key "$T/dave.key" "${P10[@]}" --data-binary @"$T/dave-renew.b64" "$EST/smime-sign/simplereenroll"

# --- the directory down ------------------------------------------------------------------------
$LOCKBOX token create --dir "$DIR" --email carol@example.org --profiles smime-enc | tail -n1 >"$T/carol.tok"
FAILS=$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit WHERE action = 'enroll.auth_fail'")
stop_slapd
check "slapd stopped" sh -c "! ldapsearch -x -H '$LDAP_URI' -b '' -s base >/dev/null 2>&1"
status 503 "a password log-in with the directory down: 503, not 401" --interface 127.0.0.3 "${CA[@]}" "${P10[@]}" -u alice:alice-secret --data-binary @"$T/alice-enc.b64" "$EST/smime-enc/serverkeygen"
check "  ... with no WWW-Authenticate" sh -c "! grep -qi '^www-authenticate' '$T/headers'"
check "  ... with Retry-After" grep -qi '^retry-after: [1-9]' "$T/headers"
check "  ... not audited as a failed log-in" test "$(sqlite3 "$DIR/lockbox.db" "SELECT count(*) FROM audit WHERE action = 'enroll.auth_fail'")" = "$FAILS"
csr carol-enc "/CN=carol"
status 200 "serverkeygen for carol by token with the directory down" "${CA[@]}" "${P10[@]}" -u "carol@example.org:$(cat "$T/carol.tok")" --data-binary @"$T/carol-enc.b64" "$EST/smime-enc/serverkeygen"
check "  ... carol's encryption certificate" sh -c "$(declare -f parts b64der certs_of san_of); T='$T'; [ \"\$(parts)\" = 2 ] && certs_of '$T/part.2.body' '$T/carol-enc.pem' && [ \"\$(san_of '$T/carol-enc.pem')\" = email:carol@example.org ]"
openssl x509 -in "$T/carol-enc.pem" -outform DER -out "$T/carol-enc.der" 2>/dev/null
CAROL=$(serial_of "$T/carol-enc.pem" 2>/dev/null)
pending_with_error() {
    $LOCKBOX publish status --dir "$DIR" >"$T/st" 2>&1 && grep -qx 'pending: 1' "$T/st" &&
        grep "^pending add .*$CAROL carol@example.org" "$T/st" | grep -v 'attempts 0' | grep -q "last error: .*Can't contact LDAP server"
}
if wait_for 10 pending_with_error >/dev/null; then ok "lockbox publish status: carol's row pending, tried, with the error"; else
    fail "lockbox publish status: carol's row pending, tried, with the error"; sed 's/^/       /' "$T/st"
fi
env=$(SLAPD_PORT=$LDAP_PORT0 SLAPD_ROOTPW=$ROOTPW bash "$SLAPD_SH" start) || { fail "slapd restarts on port $LDAP_PORT0"; exit 1; }
eval "$env"
ok "slapd back on the same URI"
check "users seeded again" seed
if took=$(wait_for 15 has_cert carol "$T/carol-enc.der"); then
    ok "carol's certificate published once the directory is back (within ${took} s)"
else
    fail "carol's certificate published once the directory is back (within 15 s; values: $(certs carol))"
fi
check "lockbox publish status: nothing pending, carol's row done without an error" sh -c "$LOCKBOX publish status --dir '$DIR' | grep -qx 'pending: 0' && [ \"\$(sqlite3 '$DIR/lockbox.db' \"SELECT state || ',' || COALESCE(last_error, '') FROM publish_queue WHERE serial = '$CAROL' AND action = 'add'\")\" = 'done,' ]"
status 200 "password log-ins work again" "${CA[@]}" -u alice:alice-secret "$POLICY"

# --- revocation removes it -----------------------------------------------------------------------
check "lockbox revoke carol's encryption certificate" $LOCKBOX revoke --dir "$DIR" "$CAROL" --reason keyCompromise
# the CLI cannot wake the daemon's publisher: it finds the revocation on its
# next round (every 30 s)
if took=$(wait_for 45 no_cert carol); then
    ok "the certificate is removed from carol's entry (after ${took} s)"
else
    fail "the certificate is removed from carol's entry within 45 s (values: $(certs carol))"
fi
check "  ... the delete row is done" test "$(sqlite3 "$DIR/lockbox.db" "SELECT state FROM publish_queue WHERE serial = '$CAROL' AND action = 'delete'")" = "done"

kill -TERM "$PID"
wait "$PID"; rc=$?
if [ "$rc" = 0 ]; then ok "daemon exits 0 on SIGTERM"; else fail "daemon exits 0 on SIGTERM (exit $rc)"; fi
no_sanitizer_reports "$T/serve.log"
exit 0
