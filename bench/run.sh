#!/bin/sh
# run.sh - runs every benchmark against its peers, from the repository root
# after `make bench` built build/bench/*.  Each benchmark prints what it
# did, one human-readable line per target saying whether it is met, and
# ends with one line per measurement:
#
#   bench NAME value=V unit=U peer=P peer_value=PV ratio=R
#
# where ratio = V / PV, both measured in this run.  Work files live in one
# temporary folder under ${TMPDIR:-/tmp}, removed on exit.  A missed
# target is reported, not an error; a failed step exits non-zero.
#
# Knobs (environment):
#   BENCH_CERTS    certificates per issuance run        (2000)
#   BENCH_THREADS  concurrent issuers in lockbox         (16)
#   BENCH_REPS     runs of each side; the median counts  (3)
#   BENCH_SPEED_SECONDS  `openssl speed -seconds`        (3)
#   BENCH_ESCROW_AGENTS  recovery agents (RSA-3072)       (5)
#   BENCH_ESCROW_P256_SECONDS    escrow rounds, P-256     (9)
#   BENCH_ESCROW_RSA2048_SECONDS escrow rounds, RSA-2048  (30)
#   BENCH_CRL_SIZES      CRL entry counts  (10000 100000 1000000)
#   BENCH_CRL_OCA_MAX    largest CRL openssl ca -gencrl builds (1000000)
#   BENCH_ONLY     which to run, e.g. "ocsp est"  (all: issue escrow crl ocsp est)
set -eu

BUILD=${BUILD:-build}
CERTS=${BENCH_CERTS:-2000}
THREADS=${BENCH_THREADS:-16}
REPS=${BENCH_REPS:-3}
SPEED_SECONDS=${BENCH_SPEED_SECONDS:-3}
ISSUE=$(pwd)/$BUILD/bench/issue
ESCROW_AGENTS=${BENCH_ESCROW_AGENTS:-5}
ESCROW_P256_SECONDS=${BENCH_ESCROW_P256_SECONDS:-9}
ESCROW_RSA2048_SECONDS=${BENCH_ESCROW_RSA2048_SECONDS:-30}
ESCROW=$(pwd)/$BUILD/bench/escrow

die() { echo "bench: $*" >&2; exit 1; }
# selected NAME: whether BENCH_ONLY (unset: all) lists the benchmark.
selected() {
    [ -z "${BENCH_ONLY:-}" ] && return 0
    case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

[ -x "$ISSUE" ] || die "$ISSUE is missing: run 'make bench'"
[ -x "$ESCROW" ] || die "$ESCROW is missing: run 'make bench'"
command -v openssl >/dev/null || die "the openssl command is missing"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-bench.XXXXXX")
# the passphrase of the credentials the benches' CAs make
PW=$TMP/pw
(umask 077 && echo "bench passphrase" >"$PW")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# now_ns: monotonic enough for runs of seconds (GNU date).
now_ns() { date +%s%N; }

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) exit 1
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# summary NAME VALUE UNIT PEER PEER_VALUE: the one machine-readable line.
summary() {
    awk -v n="$1" -v v="$2" -v u="$3" -v p="$4" -v pv="$5" 'BEGIN {
        printf "bench %s value=%.1f unit=%s peer=%s peer_value=%.1f ratio=%.2f\n",
            n, v, u, p, pv, v / pv }'
}

# target WHAT RATIO MIN x|%: "met" or "MISSED", with the numbers shown
# as a multiple (x) or a percentage (%).
target() {
    awk -v w="$1" -v r="$2" -v m="$3" -v f="$4" 'BEGIN {
        if (f == "%") { rs = sprintf("%.0f%%", 100 * r); ms = sprintf("%.0f%%", 100 * m) }
        else { rs = sprintf("%.2fx", r); ms = sprintf("%.2fx", m) }
        printf "target %-40s %-6s: %s, target >= %s\n",
            w, (r >= m ? "met" : "MISSED"), rs, ms }'
}

# ---------------------------------------------------------------------
# Issuance: lockbox's library path vs `openssl ca -infiles` vs the
# `openssl speed` ceiling, for a P-256 CA and an RSA-3072 CA.

# speed_line ALG PATTERN: the `openssl speed` result line of ALG.
speed_line() {
    openssl speed -seconds "$SPEED_SECONDS" "$1" 2>/dev/null |
        grep -E "$2" | tail -n 1
}

# oca_conf CADIR WORKDIR (relative to $TMP): an `openssl ca` config issuing what lockbox's
# smime-sign profile issues (mailbox-validated S/MIME BR, strict).
oca_conf() {
    cat <<EOF
[ ca ]
default_ca = bench_ca

[ bench_ca ]
dir = $2
database = \$dir/index.txt
new_certs_dir = \$dir/certs
serial = \$dir/serial
certificate = $1/ca.pem
private_key = $1/ca.key
default_md = sha256
default_days = 365
policy = policy_mailbox
unique_subject = no
copy_extensions = none
x509_extensions = smime_sign

[ policy_mailbox ]
commonName = supplied
emailAddress = optional

[ smime_sign ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = emailProtection
certificatePolicies = 2.23.140.1.5.1.3
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = email:copy
crlDistributionPoints = URI:http://127.0.0.1:8080/ca.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8080/ocsp,caIssuers;URI:http://127.0.0.1:8080/ca.crt
EOF
}

# oca_run CA: one `openssl ca -infiles` run over every CSR with a fresh
# index.txt and serial, in $TMP with relative paths (the CSR list is split
# into words: ours hold no spaces); prints certificates per second.
oca_run() {
    w=$TMP/oca
    rm -rf "$w"
    mkdir -p "$w/certs"
    : >"$w/index.txt"
    openssl rand -hex 16 >"$w/serial"
    oca_conf "$1" oca >"$w/ca.cnf"
    t0=$(now_ns)
    # shellcheck disable=SC2046
    (cd "$TMP" && openssl ca -config oca/ca.cnf -batch -notext \
        -passin "file:$1/ca.key.pass" -out oca/issued.pem \
        -infiles $(cat csrs/list)) >"$w/log" 2>&1 ||
        { tail -n 20 "$w/log" >&2; die "openssl ca failed"; }
    t1=$(now_ns)
    n=$(wc -l <"$w/index.txt")
    [ "$n" -eq "$CERTS" ] || die "openssl ca issued $n of $CERTS certificates"
    awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", n / (ns / 1e9) }'
}

# lockbox_run CADIR: one library-path run; prints certificates per second
# (and leaves the average certificate size in $TMP/lb-der).
lockbox_run() {
    out=$("$ISSUE" "${2:-run}" "$1" "$TMP/csrs" "$CERTS" "$THREADS") ||
        die "lockbox issuance failed"
    printf '%s\n' "$out" | sed -n 's/.* der_bytes=\([0-9]*\).*/\1/p' \
        >"$TMP/lb-der"
    printf '%s\n' "$out" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p'
}

# issue_ca TYPE NAME: REPS alternating runs of both sides for one CA;
# sets lb_rate and oca_rate to the medians.
issue_ca() {
    ca=ca-$1
    t0=$(now_ns)
    "$ISSUE" init "$1" "$TMP/$ca" || die "ca_init $1 failed"
    t1=$(now_ns)
    echo "  $2 CA: ca_init $(( (t1 - t0) / 1000000 )) ms (not timed below)"
    : >"$TMP/lb" ; : >"$TMP/oca-rates"
    r=1
    while [ "$r" -le "$REPS" ]; do
        lb=$(lockbox_run "$TMP/$ca")
        oc=$(oca_run "$ca")
        echo "  $2 run $r: lockbox $lb cert/s, openssl ca $oc cert/s"
        echo "$lb" >>"$TMP/lb"; echo "$oc" >>"$TMP/oca-rates"
        r=$((r + 1))
    done
    lb_rate=$(median <"$TMP/lb")
    oca_rate=$(median <"$TMP/oca-rates")
    oca_der=$(openssl x509 -in "$TMP/oca/issued.pem" -outform DER | wc -c)
    echo "  $2 certificate size: lockbox $(cat "$TMP/lb-der") bytes," \
        "openssl ca $oca_der bytes (DER; same extensions, openssl's" \
        "subject adds emailAddress)"
}

bench_issue() {
    echo "== issuance: $CERTS P-256 CSRs, lockbox ($THREADS threads, group" \
        "commit, SQLite WAL synchronous=FULL) vs openssl ca -infiles vs" \
        "the openssl speed ceiling; median of $REPS runs"
    t0=$(now_ns)
    # csrs/list names csrs/NNNNN.csr relative to $TMP
    (cd "$TMP" && "$ISSUE" csrs "$CERTS" csrs) || die "cannot make the CSRs"
    t1=$(now_ns)
    echo "  made $CERTS P-256 CSRs in $(( (t1 - t0) / 1000000 )) ms"

    ec=$(speed_line ecdsap256 'nistp256') || die "openssl speed ecdsap256 failed"
    ec_sign=$(echo "$ec" | awk '{ print $(NF - 1) }')
    ec_verify=$(echo "$ec" | awk '{ print $NF }')
    rsa=$(speed_line rsa3072 '^rsa +3072') || die "openssl speed rsa3072 failed"
    rsa_sign=$(echo "$rsa" | awk '{ print $(NF - 1) }')
    ceil_p256=$(awk -v s="$ec_sign" -v v="$ec_verify" \
        'BEGIN { printf "%.1f", 1 / (1 / s + 1 / v) }')
    ceil_rsa=$(awk -v s="$rsa_sign" -v v="$ec_verify" \
        'BEGIN { printf "%.1f", 1 / (1 / s + 1 / v) }')
    echo "  openssl speed: ecdsap256 sign $ec_sign/s verify $ec_verify/s," \
        "rsa3072 sign $rsa_sign/s"
    echo "  ceiling (one CA signature + one P-256 CSR verification, one" \
        "core): P-256 CA $ceil_p256 cert/s, RSA-3072 CA $ceil_rsa cert/s"

    issue_ca ec-p256 P-256
    p256_lb=$lb_rate; p256_oca=$oca_rate
    # the same, with the key in a signer process (as lockbox serve runs)
    : >"$TMP/lbs"; : >"$TMP/lbl"
    r=1
    while [ "$r" -le "$REPS" ]; do
        lbs=$(lockbox_run "$TMP/ca-ec-p256" run-signer)
        lbl=$(lockbox_run "$TMP/ca-ec-p256")
        echo "  P-256 run $r: through the signer process $lbs cert/s," \
            "key in process $lbl cert/s"
        echo "$lbs" >>"$TMP/lbs"; echo "$lbl" >>"$TMP/lbl"
        r=$((r + 1))
    done
    p256_signer=$(median <"$TMP/lbs"); p256_local=$(median <"$TMP/lbl")
    issue_ca rsa-3072 RSA-3072
    rsa_lb=$lb_rate; rsa_oca=$oca_rate

    r1=$(awk -v a="$p256_lb" -v b="$p256_oca" 'BEGIN { print a / b }')
    r2=$(awk -v a="$p256_lb" -v b="$ceil_p256" 'BEGIN { print a / b }')
    r3=$(awk -v a="$rsa_lb" -v b="$ceil_rsa" 'BEGIN { print a / b }')
    target "P-256 CA vs openssl ca -infiles" "$r1" 4 x
    target "P-256 CA vs its openssl speed ceiling" "$r2" 0.30 %
    target "RSA-3072 CA vs its openssl speed ceiling" "$r3" 0.80 %

    summary issue-p256-vs-openssl-ca "$p256_lb" cert/s openssl-ca "$p256_oca"
    summary issue-p256-signer-process-vs-in-process "$p256_signer" cert/s \
        in-process "$p256_local"
    summary issue-p256-vs-ceiling "$p256_lb" cert/s openssl-speed-ceiling \
        "$ceil_p256"
    summary issue-rsa3072-vs-openssl-ca "$rsa_lb" cert/s openssl-ca "$rsa_oca"
    summary issue-rsa3072-vs-ceiling "$rsa_lb" cert/s openssl-speed-ceiling \
        "$ceil_rsa"
}

# ---------------------------------------------------------------------
# Escrow: `lockbox issue --keygen` for smime-enc (archive_issue_enc) vs
# plain issuance and bare key generation of the same key type, for
# EC P-256 and RSA-2048 keys, from a P-256 CA with ESCROW_AGENTS agents.

# target_below WHAT VALUE MAX: "met" when VALUE < MAX, both fractions
# shown as percentages (the overhead form of `target`).
target_below() {
    awk -v w="$1" -v r="$2" -v m="$3" 'BEGIN {
        printf "target %-40s %-6s: %.1f%%, target < %.0f%%\n",
            w, (r < m ? "met" : "MISSED"), 100 * r, 100 * m }'
}

# field NAME LINE: the value of NAME=... in a line of `escrow run`.
field() { printf '%s\n' "$2" | sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p"; }

# target_errors WHAT LINE: "met" when the load generator's line says
# errors=0; any error, or a line without the count, is MISSED: a rate
# that includes failures measures nothing.
target_errors() {
    awk -v w="$1" -v e="$(field errors "$2")" 'BEGIN {
        good = (e ~ /^[0-9]+$/ && e + 0 == 0)
        printf "target %-40s %-6s: %s, target 0\n",
            w, (good ? "met" : "MISSED"), (e == "" ? "no count" : e) }'
}

# escrow_run KEYTYPE SECONDS: one `escrow run`; prints its line.
escrow_run() {
    "$ESCROW" run "$TMP/ca-escrow" "$1" 100000 "$2" ||
        die "escrowed issuance ($1) failed"
}

bench_escrow() {
    echo "== escrow: issue --keygen for smime-enc (ca_keygen +" \
        "archive_issue_enc: certificate, key check, AES-256-GCM, Shamir" \
        "split, one CMS share per agent, recombination check, CA receipt," \
        "one committed transaction) vs plain issuance (ca_keygen + ca_issue" \
        "smime-sign, one committed transaction) vs bare ca_keygen; one" \
        "thread, the three interleaved in each round, SQLite WAL" \
        "synchronous=FULL"
    out=$("$ESCROW" init "$TMP/ca-escrow" "$ESCROW_AGENTS" 2) ||
        die "cannot make the escrow CA"
    echo "  P-256 CA: ca_init $(field ca_init_ms "$out") ms;" \
        "$ESCROW_AGENTS recovery agents (RSA-3072 keys, ca_operator_add)," \
        "threshold 2: $(field agents_ms "$out") ms (not timed below)"

    ec=$(escrow_run ec-p256 "$ESCROW_P256_SECONDS")
    ec_esc=$(field escrow_rate "$ec"); ec_plain=$(field plain_rate "$ec")
    ec_kg=$(field keygen_all_rate "$ec")
    echo "  P-256 keys, $(field rounds "$ec") rounds: per certificate" \
        "escrowed $(field escrow_ms "$ec") ms, plain $(field plain_ms "$ec")" \
        "ms, bare keygen $(field keygen_ms "$ec") ms; without their keygen:" \
        "escrowed $(field escrow_rest_ms "$ec") ms, plain" \
        "$(field plain_rest_ms "$ec") ms"
    awk -v e="$ec_esc" -v p="$ec_plain" -v k="$ec_kg" \
        -v pr="$(field plain_rest_ms "$ec")" 'BEGIN {
        printf "  P-256 keys: escrowed %.1f cert/s, plain %.1f cert/s, " \
            "keygen %.1f key/s (all keys of the run); against plain " \
            "without keygen (%.1f cert/s) escrowed is %.0f%%\n", e, p, k,
            1000 / pr, 100 * e * pr / 1000 }'

    rsa=$(escrow_run rsa-2048 "$ESCROW_RSA2048_SECONDS")
    rsa_esc=$(field escrow_rate "$rsa"); rsa_plain=$(field plain_rate "$rsa")
    rsa_kg=$(field keygen_all_rate "$rsa")
    n=$(field rounds "$rsa")
    echo "  RSA-2048 keys, $n rounds: per certificate escrowed" \
        "$(field escrow_ms "$rsa") ms, plain $(field plain_ms "$rsa") ms," \
        "bare keygen $(field keygen_ms "$rsa") ms (mean of all $((3 * n))" \
        "keys of the run $(field keygen_all_ms "$rsa") ms); without their" \
        "keygen: escrowed $(field escrow_rest_ms "$rsa") ms, plain" \
        "$(field plain_rest_ms "$rsa") ms"
    # The overhead the target is about: the escrowed issuance's own time
    # beyond its keygen, over the mean keygen of every key of the run.
    # The plain difference of the two loops' means is shown too, but RSA
    # keygen times spread several-fold, so at these counts it is noise.
    rsa_over=$(awk -v r="$(field escrow_rest_ms "$rsa")" \
        -v k="$(field keygen_all_ms "$rsa")" 'BEGIN { print r / k }')
    awk -v o="$rsa_over" -v e="$rsa_esc" -v k="$(field keygen_rate "$rsa")" \
        'BEGIN {
        printf "  RSA-2048 escrow overhead over keygen: %.1f%% (escrowed " \
            "issuance minus its own keygen, over the mean keygen of the " \
            "run); from the escrow and bare keygen loops alone %.1f%%, " \
            "mostly keygen noise\n", 100 * o, 100 * (k / e - 1) }'
    echo "  note: in lockbox RSA key generation never runs on an HTTP" \
        "worker thread: --keygen is the CLI's (lockbox issue --keygen), so" \
        "these rates bound that command, not the daemon's request path"

    r1=$(awk -v a="$ec_esc" -v b="$ec_plain" 'BEGIN { print a / b }')
    target "P-256 escrowed vs plain (both keygen)" "$r1" 0.50 %
    target_below "RSA-2048 escrow overhead vs keygen" "$rsa_over" 0.05

    summary escrow-p256-vs-plain "$ec_esc" cert/s plain-issue-p256 "$ec_plain"
    summary escrow-p256-vs-keygen "$ec_esc" cert/s keygen-p256 "$ec_kg"
    summary escrow-rsa2048-vs-plain "$rsa_esc" cert/s plain-issue-rsa2048 \
        "$rsa_plain"
    summary escrow-rsa2048-vs-keygen "$rsa_esc" cert/s keygen-rsa2048 \
        "$rsa_kg"
}

if selected issue; then bench_issue; fi
if selected escrow; then bench_escrow; fi

# ---------------------------------------------------------------------
# CRLs: crl_issue (stream revoked rows from SQLite, build, sort, sign,
# encode, write pub/ca.crl) vs `openssl ca -gencrl` over an index file
# holding the same revocations, at 10,000 / 100,000 / 1,000,000 entries,
# from an RSA-3072 CA.  Each side runs as its own process so that its peak
# resident size is its own (lockbox: getrusage; openssl: GNU time).
#   BENCH_CRL_SIZES   entry counts            (10000 100000 1000000)
#   BENCH_CRL_OCA_MAX skip openssl ca above   (1000000)
CRL=$(pwd)/$BUILD/bench/crl

# oca_crl_conf CADIR: an `openssl ca` config for -gencrl.
oca_crl_conf() {
    cat <<EOF2
[ ca ]
default_ca = bench_ca
[ bench_ca ]
database = index.txt
certificate = $1/ca.pem
private_key = $1/ca.key
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF2
}

bench_crl() {
    sizes=${BENCH_CRL_SIZES:-10000 100000 1000000}
    oca_max=${BENCH_CRL_OCA_MAX:-1000000}
    [ -x "$CRL" ] || die "$CRL is missing: run 'make bench'"
    echo "== CRL: crl_issue from the database vs openssl ca -gencrl from" \
        "an index file with the same revocations (RSA-3072 CA; every" \
        "entry with a reasonCode, keyCompromise ones with an" \
        "invalidityDate)"
    "$CRL" init "$TMP/ca-crl" >/dev/null || die "cannot make the CRL CA"
    mkdir -p "$TMP/oca-crl"
    oca_crl_conf "$TMP/ca-crl" >"$TMP/oca-crl/ca.cnf"
    for n in $sizes; do
        t0=$(now_ns)
        "$CRL" fill "$TMP/ca-crl" "$n" "$TMP/oca-crl/index.txt" ||
            die "cannot fill $n revocations"
        t1=$(now_ns)
        out=$("$CRL" run "$TMP/ca-crl") || die "crl_issue failed at $n"
        lb_s=$(field seconds "$out"); lb_kb=$(field maxrss_kb "$out")
        der=$(field der_bytes "$out")
        # openssl crl exits 0 on a bad signature too: its words count
        v=$(openssl crl -inform DER -in "$TMP/ca-crl/pub/ca.crl" -noout \
            -CAfile "$TMP/ca-crl/ca.pem" 2>&1) || v="exit $?: $v"
        [ "$v" = "verify OK" ] ||
            die "openssl crl cannot verify lockbox's $n-entry CRL: $v"
        if [ "$n" -le 100000 ]; then
            got=$(openssl crl -inform DER -in "$TMP/ca-crl/pub/ca.crl" \
                -noout -text | grep -c 'Serial Number:')
            [ "$got" -eq "$n" ] || die "lockbox's CRL holds $got of $n entries"
        fi
        # a second, independent parser: Debian's python3-cryptography
        # (the system interpreter, whatever python3 is first on PATH)
        /usr/bin/python3 - "$TMP/ca-crl/pub/ca.crl" "$TMP/ca-crl/ca.pem" "$n" <<'PY' ||
import sys
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], "rb").read())
ca = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
assert crl.is_signature_valid(ca.public_key()), "signature"
assert len(crl) == int(sys.argv[3]), (len(crl), sys.argv[3])
assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0
PY
            die "python3-cryptography rejects lockbox's $n-entry CRL"
        echo "  $n entries: python3-cryptography verifies the signature and counts $n entries"
        if [ "$n" -le "$oca_max" ]; then
            t2=$(now_ns)
            (cd "$TMP/oca-crl" && /usr/bin/time -f '%M' -o time.out \
                openssl ca -config ca.cnf -gencrl -batch \
                -passin "file:$TMP/ca-crl/ca.key.pass" -out crl.pem) \
                >"$TMP/oca-crl/log" 2>&1 ||
                { tail -n 20 "$TMP/oca-crl/log" >&2; die "openssl ca -gencrl failed"; }
            t3=$(now_ns)
            oca_s=$(awk -v ns=$((t3 - t2)) 'BEGIN { printf "%.3f", ns / 1e9 }')
            oca_kb=$(tail -n 1 "$TMP/oca-crl/time.out")
        else
            oca_s=0; oca_kb=0
        fi
        echo "  $n entries: fill $(( (t1 - t0) / 1000000 )) ms (not timed);" \
            "lockbox $lb_s s, peak $((lb_kb / 1024)) MiB, $der bytes DER" \
            "(verified by openssl crl);" \
            "openssl ca -gencrl ${oca_s} s, peak $((oca_kb / 1024)) MiB"
        if [ "$oca_kb" -gt 0 ]; then
            r=$(awk -v a="$lb_s" -v b="$oca_s" 'BEGIN { print b / a }')
            target "CRL $n entries vs openssl ca -gencrl" "$r" 2 x
            # the summary's value is a rate, so that ratio > 1 is faster
            summary "crl-$n-vs-openssl-ca" \
                "$(awk -v n="$n" -v s="$lb_s" 'BEGIN { print n / s }')" \
                entries/s openssl-ca \
                "$(awk -v n="$n" -v s="$oca_s" 'BEGIN { print n / s }')"
        else
            echo "  openssl ca -gencrl skipped above $oca_max entries"
        fi
        if [ "$n" -eq 1000000 ]; then
            awk -v s="$lb_s" 'BEGIN { printf "target %-40s %-6s: %.2f s, target < 5 s\n",
                "CRL 1,000,000 entries time", (s < 5 ? "met" : "MISSED"), s }'
            awk -v k="$lb_kb" 'BEGIN { printf "target %-40s %-6s: %.0f MiB, target < 256 MiB\n",
                "CRL 1,000,000 entries peak memory", (k < 262144 ? "met" : "MISSED"), k / 1024 }'
        fi
    done
}

if selected crl; then bench_crl; fi

# ---------------------------------------------------------------------
# OCSP: responses/second of `lockbox serve` at BENCH_OCSP_CLIENTS
# concurrent keep-alive clients on loopback (build/bench/ocsp: libcurl,
# POST of one pre-built request, every answer checked to be a successful
# OCSPResponse): with a nonce (a fresh signature each: the target, >= 50%
# of the raw sign rate of the responder key (P-256) from `openssl speed`
# in the same run) and nonce-less (RFC 5019, answers reused, no signing:
# held to the signed rate, not to the sign rate).  Any error in either
# run misses a target.  Both sides share the machine's cores with the
# load generator.

OCSP_BENCH=$(pwd)/$BUILD/bench/ocsp
OCSP_CLIENTS=${BENCH_OCSP_CLIENTS:-8}
OCSP_SECONDS=${BENCH_OCSP_SECONDS:-10}  # per run; two runs
LOCKBOX_BIN=$(pwd)/$BUILD/lockbox

# free_port: a TCP port nothing listens on (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_ocsp() {
    [ -x "$OCSP_BENCH" ] || die "$OCSP_BENCH is missing: run 'make bench'"
    echo "== OCSP: responses/s at $OCSP_CLIENTS clients vs openssl speed ecdsap256 sign/s"
    d=$TMP/ocsp
    mkdir -p "$d"
    "$LOCKBOX_BIN" init --dir "$d/ca" --p12-pass-file "$PW" --key-type ec-p256 --name "Bench OCSP CA" \
        >/dev/null 2>&1 || die "lockbox init failed"
    # no serverkeygen keys made in the background while OCSP is measured
    printf '\n[enroll]\nkeypool = 0\n' >>"$d/ca/lockbox.conf"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/u.key" -out "$d/u.csr" -subj /CN=u 2>/dev/null
    "$LOCKBOX_BIN" issue --dir "$d/ca" --profile smime-sign --csr "$d/u.csr" \
        --email u@example.org --out "$d/u.pem" >/dev/null || die "issue failed"
    p1=$(free_port); p2=$(free_port)
    while [ "$p2" = "$p1" ]; do p2=$(free_port); done
    "$LOCKBOX_BIN" serve --dir "$d/ca" --listen "127.0.0.1:$p1" \
        --http-listen "127.0.0.1:$p2" 2>"$d/serve.log" &
    spid=$!
    i=0
    while ! curl -fs -o /dev/null "http://127.0.0.1:$p2/healthz"; do
        i=$((i + 1)); [ "$i" -lt 100 ] || { kill "$spid"; die "serve did not start"; }
        sleep 0.1
    done
    # the common RFC 5019 form (no nonce, answers reusable) and one with a
    # nonce (signed fresh every time: the same bytes, never reused)
    openssl ocsp -reqout "$d/req.der" -issuer "$d/ca/ca.pem" -cert "$d/u.pem" -no_nonce
    openssl ocsp -reqout "$d/req-nonce.der" -issuer "$d/ca/ca.pem" -cert "$d/u.pem"
    out=$("$OCSP_BENCH" "http://127.0.0.1:$p2/ocsp" "$d/req.der" "$OCSP_CLIENTS" \
        "$OCSP_SECONDS") || { kill "$spid"; die "ocsp load failed"; }
    outn=$("$OCSP_BENCH" "http://127.0.0.1:$p2/ocsp" "$d/req-nonce.der" "$OCSP_CLIENTS" \
        "$OCSP_SECONDS") || { kill "$spid"; die "ocsp load (nonce) failed"; }
    kill "$spid"; wait "$spid" || true
    echo "  lockbox serve, no nonce: $out"
    echo "  lockbox serve, nonce:    $outn"
    rate=$(printf '%s\n' "$out" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
    raten=$(printf '%s\n' "$outn" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
    sign=$(speed_line ecdsap256 'nistp256' | awk '{ print $(NF - 1) }')
    echo "  openssl speed ecdsap256: $sign sign/s (one core)"
    echo "  cores: $(nproc) (server and load generator share them)"
    target "OCSP signed (nonce) resp/s vs P-256 sign/s" \
        "$(awk -v a="$raten" -v b="$sign" 'BEGIN { print a / b }')" 0.50 %
    target "OCSP reused (no nonce) vs signed resp/s" \
        "$(awk -v a="$rate" -v b="$raten" 'BEGIN { print a / b }')" 1 x
    target_errors "OCSP errors, no nonce" "$out"
    target_errors "OCSP errors, nonce" "$outn"
    summary ocsp-vs-sign "$rate" resp/s openssl-speed-sign "$sign"
    summary ocsp-nonce-vs-sign "$raten" resp/s openssl-speed-sign "$sign"
}

if selected ocsp; then bench_ocsp; fi

# ---------------------------------------------------------------------
# EST enrollment: POST /.well-known/est/simpleenroll on `lockbox serve`
# (HTTPS keep-alive, TLS client certificate of a user: its smime-sign
# certificate from this CA) vs cfssl's POST /api/v1/cfssl/sign (`cfssl
# serve` from Debian's golang-cfssl, same P-256 CA key and certificate,
# its SQLite certificate database, HTTPS with the same TLS certificate),
# at 1, 8 and 32 concurrent clients, the same pre-made P-256 CSRs for both
# and the same load generator (build/bench/est, every answer checked to be
# a certificate for the request's key).  Then a serverkeygen burst on
# smime-enc (RSA-3072 keys, escrowed to three recovery agents) with the key
# pool filled and with no pool ([enroll] keypool = 0).
#   BENCH_EST_SECONDS  per run; each side once per client count   (5)
#   BENCH_EST_CLIENTS  concurrent clients                          (1 8 32)
#   BENCH_EST_CSRS     CSRs per client count (shared by both sides) (4000)
#   BENCH_EST_BURST    concurrent serverkeygen requests            (16)
EST_BENCH=$(pwd)/$BUILD/bench/est
EST_SECONDS=${BENCH_EST_SECONDS:-5}
EST_CLIENTS=${BENCH_EST_CLIENTS:-1 8 32}
EST_CSRS=${BENCH_EST_CSRS:-4000}
EST_BURST=${BENCH_EST_BURST:-16}

# est_keypool CONF N: sets [enroll] keypool = N in lockbox.conf.
est_keypool() {
    awk -v n="$2" '
        /^\[ *enroll *\]/ { print; print "keypool = " n; done = 1; sect = 1; next }
        /^\[/ { sect = 0 }
        sect && /^[ \t]*keypool[ \t]*=/ { next }
        { print }
        END { if (!done) { print ""; print "[enroll]"; print "keypool = " n } }
    ' "$1" >"$1.new" && mv "$1.new" "$1"
}

# est_serve DIR PORT HTTPPORT: starts `lockbox serve` (sets est_pid) and
# waits until EST's cacerts answers.
est_serve() {
    "$LOCKBOX_BIN" serve --dir "$1" --listen "127.0.0.1:$2" \
        --http-listen "127.0.0.1:$3" 2>>"$TMP/est/serve.log" &
    est_pid=$!
    i=0
    while ! curl -fs -o /dev/null --cacert "$1/ca.pem" \
        "https://127.0.0.1:$2/.well-known/est/cacerts"; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { kill "$est_pid"; die "lockbox serve (EST) did not start"; }
        sleep 0.1
    done
}

# est_stop PID: stops a server started here, quietly.
est_stop() { kill "$1"; { wait "$1"; } 2>/dev/null || true; }

# est_cpu PID: the process's CPU time so far (user + system), in ms.
est_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

# est_idle PID: waits (at most 600 s) until the daemon's key pool is
# full: its refilling thread (the one at niceness 10) has been asleep for
# half a second.  CPU time alone cannot tell: under load the niced thread
# may get no CPU for a second while it still has keys to make.
est_idle() {
    quiet=0; i=0
    while [ "$i" -lt 6000 ]; do
        st=$(for f in /proc/"$1"/task/*/stat; do
            sed 's/.*) //' "$f" | awk '$17 == 10 { print $1 }'; done)
        [ -n "$st" ] || die "no key pool thread (niceness 10) in the daemon"
        if [ "$st" = S ]; then
            quiet=$((quiet + 1))
            [ "$quiet" -ge 5 ] && return 0
        else
            quiet=0
        fi
        i=$((i + 1)); sleep 0.1
    done
    die "the key pool did not fill in 600 s"
}

bench_est() {
    [ -x "$EST_BENCH" ] || die "$EST_BENCH is missing: run 'make bench'"
    command -v cfssl >/dev/null ||
        die "cfssl is missing: 'sh scripts/deps.sh bench' installs golang-cfssl"
    echo "== EST: simpleenroll certificates/s and latency at $EST_CLIENTS" \
        "clients, $EST_SECONDS s each, lockbox serve vs cfssl serve" \
        "($(cfssl version | head -n 1)), HTTPS keep-alive, P-256 CA and CSRs"
    d=$TMP/est
    mkdir -p "$d/cfssl"
    "$LOCKBOX_BIN" init --dir "$d/ca" --p12-pass-file "$PW" --key-type ec-p256 --name "Bench EST CA" \
        >/dev/null 2>&1 || die "lockbox init failed"
    # the client: a user's smime-sign certificate from this CA
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/user.key" -out "$d/user.csr" -subj /CN=user 2>/dev/null
    "$LOCKBOX_BIN" issue --dir "$d/ca" --profile smime-sign --csr "$d/user.csr" \
        --email user@example.org --out "$d/user.pem" >/dev/null || die "issue failed"
    # smime-enc escrows to recovery agents (a 2-of-3 policy they signed)
    for a in 1 2 3; do
        { "$LOCKBOX_BIN" agent request --name "Agent $a" --email "agent$a@example.org" \
            --out-key "$d/agent$a.key" --out-csr "$d/agent$a.csr" --pass-file "$PW" &&
          "$LOCKBOX_BIN" agent add --dir "$d/ca" --csr "$d/agent$a.csr" \
            --name "Agent $a" --email "agent$a@example.org" --out "$d/agent$a.pem" &&
          "$LOCKBOX_BIN" agent install --cert "$d/agent$a.pem" --key "$d/agent$a.key" \
            --out-p12 "$d/agent$a.p12" --pass-file "$PW"; } \
            >/dev/null || die "agent add failed"
    done
    "$LOCKBOX_BIN" escrow policy propose --dir "$d/ca" --threshold 2 >"$d/policy" ||
        die "escrow policy propose failed"
    for a in 1 2 3; do
        "$LOCKBOX_BIN" escrow policy sign "$(tail -n1 "$d/policy")" --dir "$d/ca" \
            --cred "$d/agent$a.p12" --cred-pass-file "$PW" --home "$d/home$a" --yes \
            >/dev/null || die "escrow policy sign failed"
    done
    # cfssl: the same CA key (unencrypted for cfssl, 0600, removed at
    # exit), a signing policy, and its certdb SQLite schema (cfssl's
    # certdb/sqlite migration)
    (umask 077 && openssl pkey -in "$d/ca/ca.key" \
        -passin "file:$d/ca/ca.key.pass" -out "$d/cfssl/ca-key.pem") ||
        die "cannot export the CA key for cfssl"
    cat >"$d/cfssl/config.json" <<EOF2
{"signing": {"default": {"usages": ["digital signature", "email protection"],
  "expiry": "8760h"}}}
EOF2
    cat >"$d/cfssl/db.json" <<EOF2
{"driver": "sqlite3", "data_source": "$d/cfssl/certs.db"}
EOF2
    sqlite3 "$d/cfssl/certs.db" <<'EOF2' || die "cannot create cfssl's certdb"
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier),
  FOREIGN KEY(serial_number, authority_key_identifier)
    REFERENCES certificates(serial_number, authority_key_identifier)
);
EOF2

    p1=$(free_port); p2=$(free_port); p3=$(free_port)
    est_keypool "$d/ca/lockbox.conf" 0
    est_serve "$d/ca" "$p1" "$p2"
    cfssl serve -address 127.0.0.1 -port "$p3" -ca "$d/ca/ca.pem" \
        -ca-key "$d/cfssl/ca-key.pem" -config "$d/cfssl/config.json" \
        -db-config "$d/cfssl/db.json" -tls-cert "$d/ca/tls.pem" \
        -tls-key "$d/ca/tls.key" -loglevel 3 2>"$d/cfssl/log" &
    cpid=$!
    i=0
    while ! curl -s -o /dev/null --cacert "$d/ca/ca.pem" \
        "https://127.0.0.1:$p3/api/v1/cfssl/info" -d '{}'; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { kill "$est_pid" "$cpid"; die "cfssl serve did not start"; }
        sleep 0.1
    done

    lb_url=https://127.0.0.1:$p1/.well-known/est/simpleenroll
    warm=https://127.0.0.1:$p1/.well-known/est/cacerts
    cf_url=https://127.0.0.1:$p3/api/v1/cfssl/sign
    lb_total=0; cf_total=0
    for c in $EST_CLIENTS; do
        "$EST_BENCH" csrs "$EST_CSRS" "$d/csrs-$c" || die "cannot make the CSRs"
        u0=$(est_cpu "$est_pid")
        lb=$("$EST_BENCH" run -m est -C "$d/ca/ca.pem" -E "$d/user.pem" \
            -K "$d/user.key" -w "$warm" "$lb_url" "$d/csrs-$c" "$c" \
            "$EST_SECONDS" 2>"$d/lb-$c.err") ||
            { cat "$d/lb-$c.err" >&2; kill "$est_pid" "$cpid"; die "EST load failed"; }
        u1=$(est_cpu "$est_pid"); v0=$(est_cpu "$cpid")
        cf=$("$EST_BENCH" run -m cfssl -C "$d/ca/ca.pem" "$cf_url" \
            "$d/csrs-$c" "$c" "$EST_SECONDS" 2>"$d/cf-$c.err") ||
            { cat "$d/cf-$c.err" >&2; kill "$est_pid" "$cpid"; die "cfssl load failed"; }
        v1=$(est_cpu "$cpid")
        echo "  $c clients: lockbox $lb"
        sed 's/^/    /' "$d/lb-$c.err"
        echo "  $c clients: cfssl   $cf"
        sed 's/^/    /' "$d/cf-$c.err"
        # CPU per certificate: what each server spends, whatever else
        # runs on the machine
        awk -v c="$c" -v a=$((${u1%.*} - ${u0%.*})) -v na="$(field certs "$lb")" \
            -v b=$((${v1%.*} - ${v0%.*})) -v nb="$(field certs "$cf")" 'BEGIN {
            printf "  %s clients: server CPU per certificate: lockbox %.2f ms, cfssl %.2f ms\n",
                c, a / na, b / nb }'
        lb_total=$((lb_total + $(field certs "$lb")))
        cf_total=$((cf_total + $(field certs "$cf")))
        eval "lb_$c=\$lb; cf_$c=\$cf"
    done
    est_stop "$cpid"
    est_stop "$est_pid"
    # every answered certificate is in each side's database
    # (less the client's own certificate)
    n=$(sqlite3 "$d/ca/lockbox.db" \
        "SELECT count(*) - 1 FROM certificates WHERE profile = 'smime-sign'")
    [ "$n" -ge "$lb_total" ] || die "lockbox answered $lb_total certificates but stored $n"
    n2=$(sqlite3 "$d/cfssl/certs.db" "SELECT count(*) FROM certificates")
    [ "$n2" -ge "$cf_total" ] || die "cfssl answered $cf_total certificates but stored $n2"
    echo "  stored: lockbox $n certificates for $lb_total answered," \
        "cfssl $n2 for $cf_total"

    for c in $EST_CLIENTS; do
        eval "lb=\$lb_$c; cf=\$cf_$c"
        lr=$(field rate "$lb"); cr=$(field rate "$cf")
        awk -v c="$c" -v a="$lr" -v b="$cr" -v lp="$(field p99_ms "$lb")" \
            -v cp="$(field p99_ms "$cf")" 'BEGIN {
            printf "  %s clients: lockbox/cfssl %.2fx (p99 %.1f ms vs %.1f ms)\n",
                c, a / b, lp, cp }'
        if [ "$c" = 8 ]; then
            target "EST 8 clients vs cfssl" \
                "$(awk -v a="$lr" -v b="$cr" 'BEGIN { print a / b }')" 3 x
            awk -v p="$(field p99_ms "$lb")" 'BEGIN {
                printf "target %-40s %-6s: %.1f ms, target < 20 ms\n",
                    "EST 8 clients p99 latency", (p < 20 ? "met" : "MISSED"), p }'
        fi
        # the peer's errors too: a comparison with a failing peer is void
        target_errors "EST $c clients errors, lockbox" "$lb"
        target_errors "EST $c clients errors, cfssl" "$cf"
        summary "est-$c-vs-cfssl" "$lr" cert/s cfssl "$cr"
    done

    # serverkeygen burst: EST_BURST requests at once on smime-enc, the key
    # pool holding EST_BURST keys (filled before the burst) vs no pool
    echo "== EST serverkeygen burst: $EST_BURST concurrent requests on" \
        "smime-enc (RSA-3072, escrowed), key pool filled vs keypool = 0"
    skg_url=https://127.0.0.1:$p1/.well-known/est/smime-enc/serverkeygen
    "$EST_BENCH" csrs "$((2 * EST_BURST))" "$d/csrs-burst" || die "cannot make the CSRs"
    for pool in "$EST_BURST" 0; do
        est_keypool "$d/ca/lockbox.conf" "$pool"
        est_serve "$d/ca" "$p1" "$p2"
        t0=$(now_ns)
        [ "$pool" -gt 0 ] && est_idle "$est_pid"
        t1=$(now_ns)
        out=$("$EST_BENCH" burst -C "$d/ca/ca.pem" -E "$d/user.pem" \
            -K "$d/user.key" -w "$warm" "$skg_url" "$d/csrs-burst" \
            "$EST_BURST" 2>"$d/burst-$pool.err") ||
            { cat "$d/burst-$pool.err" >&2; kill "$est_pid"; die "serverkeygen burst failed"; }
        est_stop "$est_pid"
        if [ "$pool" -gt 0 ]; then
            echo "  keypool = $pool (filled in about" \
                "$(( (t1 - t0) / 1000000000 )) s): $out"
            warm_out=$out
        else
            echo "  keypool = 0: $out"
            cold_out=$out
        fi
        sed 's/^/    /' "$d/burst-$pool.err"
    done
    awk -v p="$(field p99_ms "$warm_out")" 'BEGIN {
        printf "target %-40s %-6s: %.1f ms, target < 100 ms\n",
            "serverkeygen burst p99, pool filled", (p < 100 ? "met" : "MISSED"), p }'
    target_errors "serverkeygen burst errors, pool filled" "$warm_out"
    target_errors "serverkeygen burst errors, keypool = 0" "$cold_out"
    # value: requests/s of the burst, pool vs no pool
    summary est-serverkeygen-pool-vs-nopool "$(field rate "$warm_out")" req/s \
        keypool-0 "$(field rate "$cold_out")"
}

if selected est; then bench_est; fi
