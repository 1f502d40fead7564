#!/bin/bash
# 43_crl_ldap.sh - CRLs published to LDAP by the daemon's CRL publisher: a
# throwaway slapd, a CA whose lockbox.conf has a [directory] section, a
# revocation by the CLI, and within seconds ldapsearch reads back from the
# CA entry the very bytes curl gets from /ca.crl; `lockbox crl status`
# shows both targets at the same number.  Then slapd is stopped during a
# revocation: the web CRL is still published, the ldap target shows its
# error, and once a fresh slapd is back on the same port (the CA entry
# gone: recreated) the LDAP CRL catches up, byte-identical.  `lockbox crl`
# without the daemon publishes to LDAP too, with delta = yes also the delta
# CRL as deltaRevocationList;binary.  The audit chain stays intact.
. "$SRC/tests/integration/lib.sh"

SLAPD_SH=$SRC/tests/integration/slapd.sh
command -v ldapsearch >/dev/null || { fail "ldap-utils installed"; exit 1; }
DIR=$T/ca
asan_serve

slapd_up
PORT_LDAP=$LDAP_PORT

check "init a CA (ec-p256)" $LOCKBOX init --p12-pass-file $PW --dir "$DIR" --key-type ec-p256 --name "LDAP CRL CA"
check "the template has a commented [directory] section (LDAP off)" grep -qx '# \[directory\]' "$DIR/lockbox.conf"
CADN="cn=LDAP CRL CA,ou=PKI,$LDAP_BASE"
directory_conf
cat >>"$DIR/lockbox.conf" <<EOF

[crl]
coalesce = 1
EOF

issue_signing alice bob carol
check "three signing certificates issued" test -s "$T/alice.serial" -a -s "$T/bob.serial" -a -s "$T/carol.serial"

hexnum() { local n; n=$(openssl crl -inform DER -in "$1" -noout -crlnumber 2>/dev/null | sed 's/.*=//' | tr -d '\n'); [ -n "$n" ] && echo $((16#${n#0x})); }
# webcrl: GET /ca.crl into $T/web.crl; prints its number.
webcrl() { curl -s -o "$T/web.crl" --max-time 10 "$HTTP/ca.crl" && hexnum "$T/web.crl"; }
# ldapcrl: the CA entry's certificateRevocationList;binary into $T/ldap.crl;
# prints its number (nothing when absent).
ldapcrl() {
    rm -rf "$T/got" "$T/ldap.crl"; mkdir -p "$T/got"
    ldapsearch -x -H "$LDAP_URI" -b "$CADN" -s base -LLL -tt -T "$T/got" \
        '(objectClass=*)' 'certificateRevocationList;binary' >/dev/null 2>&1 || return 0
    [ "$(find "$T/got" -type f | wc -l)" = 1 ] || return 0
    cp "$(find "$T/got" -type f)" "$T/ldap.crl"
    hexnum "$T/ldap.crl"
}
# wait_web N / wait_ldap N: up to 15 s for that CRL number (or higher).
wait_web() { local i n; for i in $(seq 1 150); do n=$(webcrl); [ -n "$n" ] && [ "$n" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_ldap() { local i n; for i in $(seq 1 "${2:-150}"); do n=$(ldapcrl); [ -n "$n" ] && [ "$n" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
# status TARGET: that target's line of `lockbox crl status`.
status() { $LOCKBOX crl status --dir "$DIR" | grep "^target $1 "; }

# --- without the daemon: lockbox crl publishes to LDAP too ------------------------
check "lockbox crl (no daemon) issues CRL 1" $LOCKBOX crl --dir "$DIR"
check "  ... and says it published to the CA entry" grep -qF "ldap:        $CADN" "$T/.out"
ldap_is() { [ "$(ldapcrl)" = "$1" ]; }
check "  ... the CA entry (absent before) holds CRL 1" ldap_is 1
ldapcrl >/dev/null
check "  ... byte-identical" cmp "$T/ldap.crl" "$DIR/pub/ca.crl"

# --- the daemon ------------------------------------------------------------------
serve_both "$DIR" "daemon listening"
N0=$(webcrl)
check "the web serves CRL 1" test "$N0" = 1

check "revoke alice with the CLI" $LOCKBOX revoke --dir "$DIR" "$(cat "$T/alice.serial")" --reason keyCompromise
t0=$(date +%s)
if wait_web 2; then ok "the web CRL 2 within seconds"; else fail "the web CRL 2 within seconds"; tail -5 "$T/serve.log"; fi
if wait_ldap 2; then ok "LDAP holds CRL 2 within seconds ($(( $(date +%s) - t0 )) s)"; else fail "LDAP holds CRL 2 within seconds"; tail -5 "$T/serve.log"; fi
webcrl >/dev/null
check "ldapsearch returns exactly the bytes curl gets from /ca.crl" cmp "$T/ldap.crl" "$T/web.crl"
check "  ... which lists alice" sh -c "openssl crl -inform DER -in '$T/ldap.crl' -noout -text | grep -q 'Serial Number: $(cat "$T/alice.serial")'"
arl_is() {
    rm -rf "$T/arl"; mkdir -p "$T/arl"
    ldapsearch -x -H "$LDAP_URI" -b "$CADN" -s base -LLL -tt -T "$T/arl" \
        '(objectClass=*)' 'authorityRevocationList;binary' >/dev/null 2>&1 &&
        [ "$(find "$T/arl" -type f | wc -l)" = 1 ] && cmp "$(find "$T/arl" -type f)" "$1"
}
check "  ... the ARL is the same bytes" arl_is "$T/web.crl"
check "crl status shows web published at 2" sh -c "$LOCKBOX crl status --dir '$DIR' | grep '^target web ' | grep -q 'number 2,.* ok$'"
check "crl status shows ldap published at 2, the same number" sh -c "$LOCKBOX crl status --dir '$DIR' | grep '^target ldap ' | grep -q 'number 2,.* ok$'"
check "lockbox publish status covers both CRL targets too (web and ldap at 2)" sh -c "out=\$($LOCKBOX publish status --dir '$DIR') && echo \"\$out\" | grep -q '^CRL publication' && echo \"\$out\" | grep '^target web ' | grep -q 'number 2,.* ok$' && echo \"\$out\" | grep '^target ldap ' | grep -q 'number 2,.* ok$'"

# --- slapd stopped during a revocation ------------------------------------------------
bash "$SLAPD_SH" stop "$SLAPD_DIR"
SLAPD_DIR=""
check "slapd stopped" sh -c "! ldapsearch -x -H '$LDAP_URI' -b '' -s base >/dev/null 2>&1"
check "revoke bob with the CLI" $LOCKBOX revoke --dir "$DIR" "$(cat "$T/bob.serial")" --reason superseded
if wait_web 3; then ok "the web CRL 3 is still published within seconds"; else fail "the web CRL 3 is still published within seconds"; tail -5 "$T/serve.log"; fi
for i in $(seq 1 50); do status ldap 2>/dev/null | grep -q "last error" && break; sleep 0.1; done
check "crl status: web at 3" sh -c "$LOCKBOX crl status --dir '$DIR' | grep '^target web ' | grep -q 'number 3,.* ok$'"
check "crl status: ldap still at 2, with the error" sh -c "$LOCKBOX crl status --dir '$DIR' | grep '^target ldap ' | grep 'number 2,' | grep -q \"last error: .*Can't contact LDAP server\""
check "crl status --json: ldap last_error set" python3 -c "
import json,subprocess
d=json.loads(subprocess.check_output(['$LOCKBOX','crl','status','--dir','$DIR','--json']))
t={x['target']: x for x in d['targets']}
assert d['number'] == 3 and t['web']['number'] == 3 and t['ldap']['number'] == 2 and t['ldap']['last_error']"
check "/healthz: degraded (still 200), naming the LDAP error" python3 -c "
import json,urllib.request
r=urllib.request.urlopen('$HTTP/healthz', timeout=10); d=json.load(r)
t={x['name']: x for x in d['crl']['targets']}
assert r.status == 200 and d['status'] == 'degraded' and d['database'] == 'ok'
assert t['web']['ok'] is True and t['web']['published_number'] == 3
assert t['ldap']['ok'] is False and t['ldap']['published_number'] == 2 and \"Can't contact LDAP server\" in t['ldap']['last_error']"
check "the daemon logs the LDAP failure and its retry" grep -q "CRL publisher (LDAP): .*retrying in" "$T/serve.log"
check "revoke carol too while slapd is down" $LOCKBOX revoke --dir "$DIR" "$(cat "$T/carol.serial")" --reason cessationOfOperation
check "the web CRL 4 is published" wait_web 4

# a fresh slapd (empty: the CA entry is gone) on the same port
env=$(SLAPD_PORT=$PORT_LDAP SLAPD_ROOTPW=$ROOTPW bash "$SLAPD_SH" start) || { fail "slapd restarts on port $PORT_LDAP"; exit 1; }
eval "$env"
ok "a fresh slapd on the same URI"
t0=$(date +%s)
if wait_ldap 4 100; then ok "LDAP catches up within the retry window ($(( $(date +%s) - t0 )) s)"; else fail "LDAP catches up within the retry window"; tail -5 "$T/serve.log"; fi
webcrl >/dev/null
check "  ... the CA entry recreated with the web CRL, byte for byte" cmp "$T/ldap.crl" "$T/web.crl"
check "  ... nothing lost: alice, bob and carol are on it" sh -c "t=\$(openssl crl -inform DER -in '$T/ldap.crl' -noout -text); for s in $(cat "$T/alice.serial") $(cat "$T/bob.serial") $(cat "$T/carol.serial"); do echo \"\$t\" | grep -q \"Serial Number: \$s\" || exit 1; done"
check "  ... it verifies against the CA" crl_verifies "$T/ldap.crl" "$DIR/ca.pem"
check "  ... the CA certificate is on the entry too" sh -c "ldapsearch -x -H '$LDAP_URI' -b '$CADN' -s base -LLL 'cACertificate;binary' | grep -q '^cACertificate;binary::'"
for i in $(seq 1 30); do status ldap | grep -q ' ok$' && break; sleep 0.1; done
check "crl status: ldap at 4 and ok, like web" sh -c "$LOCKBOX crl status --dir '$DIR' >'$T/st' && grep '^target ldap ' '$T/st' | grep -q 'number 4,.* ok$' && grep '^target web ' '$T/st' | grep -q 'number 4,.* ok$'"

check "/healthz: ok again once LDAP caught up" python3 -c "
import json,urllib.request
d=json.load(urllib.request.urlopen('$HTTP/healthz', timeout=10))
t={x['name']: x for x in d['crl']['targets']}
assert d['status'] == 'ok' and d['crl']['number'] == 4
assert t['ldap']['ok'] is True and t['ldap']['published_number'] == 4 and t['ldap']['last_error'] is None"

# --- shutdown ------------------------------------------------------------------------
kill -TERM "$PID"
for i in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID"; rc=$?
check "daemon exits 0 on SIGTERM" test "$rc" = 0
no_sanitizer_reports "$T/serve.log"

# --- delta CRLs: deltaRevocationList;binary ---------------------------------------------
echo "delta = yes" >>"$DIR/lockbox.conf"
check "lockbox crl with delta = yes issues CRL 5 and its delta" $LOCKBOX crl --dir "$DIR"
rm -rf "$T/dgot"; mkdir -p "$T/dgot"
ldapsearch -x -H "$LDAP_URI" -b "$CADN" -s base -LLL -tt -T "$T/dgot" '(objectClass=*)' 'deltaRevocationList;binary' >/dev/null 2>&1
check "  ... ldapsearch returns pub/delta.crl as deltaRevocationList;binary" cmp "$(find "$T/dgot" -type f | head -n1)" "$DIR/pub/delta.crl"
check "  ... it is delta CRL 5 on base 4" sh -c "openssl crl -inform DER -in '$DIR/pub/delta.crl' -noout -text | grep -A1 'Delta CRL Indicator: critical' | tail -n1 | grep -qx ' *4'"
check "  ... the entry is a deltaCRL" sh -c "ldapsearch -x -H '$LDAP_URI' -b '$CADN' -s base -LLL objectClass | grep -qi '^objectClass: deltaCRL'"
sed -i '/^delta = yes$/d' "$DIR/lockbox.conf"

# --- lockbox crl with slapd down: the web CRL still goes out ---------------------------
stop_slapd
check "lockbox crl with slapd down still issues and publishes to the web" $LOCKBOX crl --dir "$DIR"
check "  ... warning that LDAP failed" grep -q "warning: CRL not published to LDAP" "$T/.out"
check "  ... pub/ca.crl is CRL 6" test "$(hexnum "$DIR/pub/ca.crl")" = 6
check "  ... crl status: ldap still at 5 with the error" sh -c "$LOCKBOX crl status --dir '$DIR' | grep '^target ldap ' | grep 'number 5,' | grep -q 'last error'"
check "  ... and delta = no removed pub/delta.crl" test ! -e "$DIR/pub/delta.crl"
check "the audit chain is intact" $LOCKBOX audit verify --dir "$DIR"
