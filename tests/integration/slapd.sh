#!/usr/bin/env bash
# slapd.sh - a throwaway OpenLDAP server for lockbox's integration tests.
#
# Nothing of the system's slapd is used or touched (no /etc/ldap/slapd.d, no
# service): the configuration (cn=config, built offline with slapadd -n0)
# and the database live in one temp folder, and slapd listens on
# ldap://127.0.0.1:<random port>/ only.  Schemas: core (pkiCA,
# cRLDistributionPoint, deltaCRL), cosine and inetorgperson.  The suffix
# dc=example,dc=org holds ou=PKI, ou=People and ou=Groups.
#
#   eval "$(tests/integration/slapd.sh start [DIR])"
#       exports SLAPD_DIR SLAPD_PID LDAP_URI LDAP_PORT LDAP_BASE
#               LDAP_BINDDN LDAP_BINDPW
#   tests/integration/slapd.sh stop DIR     # TERM (then KILL), remove DIR
#
# Needs slapd and ldap-utils (scripts/deps.sh test installs them).
# Environment: SLAPD_SUFFIX, SLAPD_PORT (fixed port), SLAPD_ROOTPW (default
# random), SLAPD_DEBUG (-d level), SLAPD_TLS_CERT and SLAPD_TLS_KEY (PEM
# files: StartTLS offered with that certificate; copied into the folder).
set -euo pipefail

SLAPD=${SLAPD:-/usr/sbin/slapd}
SLAPADD=${SLAPADD:-/usr/sbin/slapadd}
SLAPPASSWD=${SLAPPASSWD:-/usr/sbin/slappasswd}
SCHEMAS=${SLAPD_SCHEMA_DIR:-/etc/ldap/schema}
MODULES=${SLAPD_MODULE_DIR:-/usr/lib/ldap}
SUFFIX=${SLAPD_SUFFIX:-dc=example,dc=org}

die() { echo "slapd.sh: $*" >&2; exit 1; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

configure() { # DIR PASSWORD
    local dir=$1 hash rdn tls=""
    hash=$("$SLAPPASSWD" -s "$2")
    if [ -n "${SLAPD_TLS_CERT:-}" ]; then
        cp "$SLAPD_TLS_CERT" "$dir/tls.pem"
        cp "$SLAPD_TLS_KEY" "$dir/tls.key"
        chmod 600 "$dir/tls.key"
        tls="olcTLSCertificateFile: $dir/tls.pem
olcTLSCertificateKeyFile: $dir/tls.key
"
    fi
    rdn=${SUFFIX%%,*}; rdn=${rdn#*=}
    mkdir -p "$dir/slapd.d" "$dir/db"
    cat >"$dir/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/slapd.pid
olcArgsFile: $dir/slapd.args
$tls
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODULES
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMAS/core.ldif
include: file://$SCHEMAS/cosine.ldif
include: file://$SCHEMAS/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=config
olcRootPW: $hash

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $dir/db
olcDbMaxSize: 268435456
olcSuffix: $SUFFIX
olcRootDN: cn=admin,$SUFFIX
olcRootPW: $hash
olcDbIndex: objectClass eq
olcDbIndex: cn,uid,mail,member eq
olcAccess: to attrs=userPassword by self write by anonymous auth by * none
olcAccess: to * by * read
EOF
    cat >"$dir/base.ldif" <<EOF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: $rdn
o: $rdn

dn: ou=PKI,$SUFFIX
objectClass: organizationalUnit
ou: PKI

dn: ou=People,$SUFFIX
objectClass: organizationalUnit
ou: People

dn: ou=Groups,$SUFFIX
objectClass: organizationalUnit
ou: Groups
EOF
    "$SLAPADD" -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 ||
        { cat "$dir/slapadd.log" >&2; die "slapadd of cn=config failed"; }
    "$SLAPADD" -n1 -F "$dir/slapd.d" -l "$dir/base.ldif" >>"$dir/slapadd.log" 2>&1 ||
        { cat "$dir/slapadd.log" >&2; die "slapadd of the base entries failed"; }
}

start() {
    local dir=${1:-} pw port pid uri try i
    [ -x "$SLAPD" ] || die "$SLAPD missing: install slapd (sh scripts/deps.sh test)"
    command -v ldapsearch >/dev/null || die "ldapsearch missing: install ldap-utils"
    [ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-slapd.XXXXXX")
    pw=${SLAPD_ROOTPW:-$(openssl rand -hex 16)}
    configure "$dir" "$pw"
    for try in 1 2 3 4 5; do
        port=${SLAPD_PORT:-$(shuf -i 20000-60999 -n 1)}
        if listening "$port"; then
            [ -n "${SLAPD_PORT:-}" ] && die "port $port is taken"
            continue
        fi
        uri="ldap://127.0.0.1:$port/"
        # -d keeps slapd in the foreground, so $! is slapd itself.
        "$SLAPD" -h "$uri" -F "$dir/slapd.d" -d "${SLAPD_DEBUG:-0}" \
            </dev/null >"$dir/slapd.log" 2>&1 &
        pid=$!
        echo "$pid" >"$dir/run.pid"
        for i in $(seq 1 200); do
            if ldapsearch -x -H "$uri" -b "" -s base -LLL namingContexts \
                >/dev/null 2>&1; then
                cat <<EOF
export SLAPD_DIR='$dir'
export SLAPD_PID=$pid
export LDAP_URI='$uri'
export LDAP_PORT=$port
export LDAP_BASE='$SUFFIX'
export LDAP_BINDDN='cn=admin,$SUFFIX'
export LDAP_BINDPW='$pw'
EOF
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        [ -n "${SLAPD_PORT:-}" ] && break
    done
    cat "$dir/slapd.log" >&2
    die "slapd did not come up (kept $dir)"
}

stop() {
    local dir=${1:?usage: slapd.sh stop DIR} pid i
    [ -f "$dir/run.pid" ] || { rm -rf -- "$dir"; return 0; }
    pid=$(cat "$dir/run.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for i in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slapd.sh: slapd $pid ignored TERM, killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    [ "${SLAPD_KEEP:-0}" = 1 ] || rm -rf -- "$dir"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
