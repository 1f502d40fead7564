#!/bin/sh
# mkseeds.sh - (re)creates the seed inputs of the fuzz corpora that come
# from the openssl command line and from hand-written text: PKCS#10
# requests (RSA-2048, P-256, P-384, Ed25519, RSA-1024; PEM and DER; broken
# variants), certificates, lockbox.conf variants, and CMS EnvelopedData
# escrow shares to the fixed throwaway certificate of tests/fuzz/testkey.h.
# The seeds named lb-* were made by lockbox itself and are not touched here.
#   sh tests/fuzz/mkseeds.sh            all of them
#   sh tests/fuzz/mkseeds.sh share      only the escrow shares
#   sh tests/fuzz/mkseeds.sh signer     only the signer requests
set -eu
cd "$(dirname "$0")/corpus"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lockbox-seeds.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# escrow shares (ARCHIVE_SHARE_LEN = 33 bytes: x, then 32) as CMS
# EnvelopedData, as archive_cms_encrypt makes them, to the certificate
# whose key fuzz_share uses; and broken or foreign variants
share_seeds() {
    sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' ../testkey.h |
        sed 's/^[^"]*"//; s/\\n"$//' >"$tmp/fuzz.pem"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/other.key" \
        -subj "/CN=other agent" -days 30 -out "$tmp/other.pem" 2>/dev/null
    oaep="-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
        -keyopt rsa_mgf1_md:sha256"
    enc() { # name cipher recipient-options... <plaintext
        name=$1; cipher=$2; shift 2
        openssl cms -encrypt -binary -outform DER "-$cipher" "$@" \
            -out "share/$name"
    }
    { printf '\001'; head -c 32 /dev/urandom; } >"$tmp/x1"
    { printf '\377'; head -c 32 /dev/urandom; } >"$tmp/x255"
    enc ok.der aes256 -recip "$tmp/fuzz.pem" $oaep <"$tmp/x1"
    enc ok-x255.der aes256 -recip "$tmp/fuzz.pem" $oaep <"$tmp/x255"
    enc ok-pkcs1.der aes256 -recip "$tmp/fuzz.pem" <"$tmp/x1"
    enc ok-aes128.der aes128 -recip "$tmp/fuzz.pem" $oaep <"$tmp/x1"
    enc ok-gcm.der aes-256-gcm -recip "$tmp/fuzz.pem" $oaep <"$tmp/x1"
    enc ok-two-recipients.der aes256 -recip "$tmp/other.pem" $oaep \
        -recip "$tmp/fuzz.pem" $oaep <"$tmp/x1"
    { printf '\000'; head -c 32 /dev/urandom; } |
        enc bad-x0.der aes256 -recip "$tmp/fuzz.pem" $oaep
    head -c 32 "$tmp/x1" | enc bad-short.der aes256 -recip "$tmp/fuzz.pem" $oaep
    { cat "$tmp/x1"; printf '\001'; } |
        enc bad-long.der aes256 -recip "$tmp/fuzz.pem" $oaep
    head -c 4096 /dev/urandom |
        enc bad-huge.der aes256 -recip "$tmp/fuzz.pem" $oaep
    enc bad-other-recipient.der aes256 -recip "$tmp/other.pem" $oaep <"$tmp/x1"
    openssl cms -sign -binary -outform DER -signer "$tmp/other.pem" \
        -inkey "$tmp/other.key" -in "$tmp/x1" -out share/bad-signed-data.der
    openssl cms -encrypt -binary -aes256 -recip "$tmp/fuzz.pem" $oaep \
        -in "$tmp/x1" -out share/bad-pem.pem
    n=$(wc -c <share/ok.der)
    head -c $((n - 5)) share/ok.der >share/bad-truncated.der
    { cat share/ok.der; printf '\000'; } >share/bad-trailing.der
    # flipping the last byte of the last-but-one CBC block flips the last
    # padding byte of the plaintext: a padding error
    head -c $((n - 17)) share/ok.der >"$tmp/x"
    b=$(tail -c 17 share/ok.der | head -c 1 | od -An -tu1 | tr -d ' ')
    printf "\\$(printf '%03o' $(( (b ^ 1) & 255 )))" >>"$tmp/x"
    tail -c 16 share/ok.der >>"$tmp/x"
    mv "$tmp/x" share/bad-flip.der
    : >share/empty
}
# signer requests (ca/signer.c): a type byte, then SignerCert (P-256 and
# RSA-2048 keys, each profile), SignerCrl (a header signed by a throwaway
# key, with and without entries) or a receipt; and broken variants
signer_seeds() {
    mkdir -p signer
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
        openssl pkey -pubout -outform DER -out "$tmp/ec.spki"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
        openssl pkey -pubout -outform DER -out "$tmp/rsa.spki"
    python3 - "$tmp" signer <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

tmp, out = sys.argv[1], sys.argv[2]

def der(tag, body):
    n = len(body)
    if n < 128:
        hdr = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        hdr = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + hdr + body

def utf8(tag, s):
    return der(tag, s.encode())

def cert_req(profile, spki, days=0, email=None, given=None, sur=None,
             cn=None, dns=None, ip=None):
    body = utf8(0x0C, profile)
    for tag, v in ((0x80, email), (0x81, given), (0x82, sur), (0x83, cn),
                   (0x84, dns), (0x85, ip)):
        if v is not None:
            body += utf8(tag, v)
    body += spki + der(0x02, days.to_bytes(2, "big") if days > 127 else
                       bytes([days]))
    return der(0x30, body)

def put(name, type_byte, payload):
    with open(f"{out}/{name}", "wb") as f:
        f.write(bytes([type_byte]) + payload)

ec_spki = open(f"{tmp}/ec.spki", "rb").read()
rsa_spki = open(f"{tmp}/rsa.spki", "rb").read()
ok = cert_req("smime-sign", ec_spki, email="alice@example.com",
              given="Alice", sur="Example")
put("cert-smime-sign", 1, ok)
put("cert-smime-enc-rsa", 1, cert_req("smime-enc", rsa_spki, 365,
    email="alice@example.com"))
put("cert-operator", 1, cert_req("operator", ec_spki,
    email="admin@example.com", cn="Admin"))
put("cert-tls-server", 1, cert_req("tls-server", ec_spki, cn="ca.example",
    dns="ca.example", ip="127.0.0.1"))
put("cert-ocsp", 1, cert_req("ocsp-signing", ec_spki, 1, cn="OCSP"))
put("cert-unknown-profile", 1, cert_req("root-ca", ec_spki,
    email="a@example.com"))
put("cert-truncated", 1, ok[:-3])
put("cert-trailing", 1, ok + b"\0")
put("cert-nul-email", 1, cert_req("smime-sign", ec_spki,
    email="a\0@example.com"))
put("cert-as-crl", 2, ok)

key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime(2026, 1, 1)
def head(number, entries=(), extra=None):
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                    "carrier")]))
         .last_update(now).next_update(now + datetime.timedelta(days=7))
         .add_extension(x509.CRLNumber(number), critical=False))
    for serial in entries:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder()
            .serial_number(serial).revocation_date(now).build())
    if extra is not None:
        b = b.add_extension(extra, critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)

entry = der(0x30, der(0x02, bytes([5])) + der(0x17, b"260101000000Z"))
revoked = der(0x30, entry + der(0x30, der(0x02, bytes([6])) +
                                der(0x17, b"260102000000Z")))
put("crl-empty", 2, der(0x30, head(1) + der(0x04, b"")))
put("crl-two", 2, der(0x30, head(2) + der(0x04, revoked)))
put("crl-delta", 2, der(0x30, head(3, extra=x509.DeltaCRLIndicator(2)) +
                        der(0x04, revoked)))
put("crl-entries-in-head", 2, der(0x30, head(4, entries=(9,)) +
                                  der(0x04, b"")))
put("crl-bad-revoked", 2, der(0x30, head(5) + der(0x04, revoked[2:])))
put("crl-foreign-ext", 2, der(0x30, head(6, extra=x509.BasicConstraints(
    ca=True, path_length=None)) + der(0x04, b"")))
put("receipt", 3, b"escrowed: serial 0A for alice@example.com, 2 of 3")
put("receipt-too-long", 3, b"x" * 4097)
put("type-unknown", 9, ok)
PY
}

if [ "${1:-}" = signer ]; then
    signer_seeds
    exit 0
fi

if [ "${1:-}" = share ]; then
    mkdir -p share
    share_seeds
    exit 0
fi

req() { # name keyopts...
    name=$1; shift
    openssl req -new -newkey "$@" -nodes -keyout "$tmp/$name.key" \
        -subj "/CN=alice@example.org" -out "csr/$name.pem" 2>/dev/null
    openssl req -in "csr/$name.pem" -outform DER -out "csr/$name.der"
}
req rsa2048 rsa:2048
req p256 ec -pkeyopt ec_paramgen_curve:P-256
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
    -keyout /dev/null -subj "/CN=p384" -outform DER -out csr/p384.der 2>/dev/null
openssl req -new -newkey ed25519 -nodes -keyout /dev/null -subj "/CN=ed" \
    -outform DER -out csr/ed25519.der 2>/dev/null
openssl req -new -newkey rsa:1024 -nodes -keyout /dev/null -subj "/CN=weak" \
    -outform DER -out csr/rsa1024.der 2>/dev/null
openssl req -new -key "$tmp/p256.key" -subj "/CN=Bob/emailAddress=bob@example.org" \
    -addext "subjectAltName=email:bob@example.org" \
    -addext "keyUsage=critical,digitalSignature" \
    -out csr/p256-exts.pem
# broken variants of the P-256 request
der=csr/p256.der
n=$(wc -c <"$der")
head -c $((n / 2)) "$der" >csr/bad-truncated.der
{ cat "$der"; printf '\000'; } >csr/bad-trailing.der
head -c $((n - 1)) "$der" >"$tmp/x"
last=$(tail -c 1 "$der" | od -An -tu1 | tr -d ' ')
printf "\\$(printf '%03o' $(( (last ^ 1) & 255 )))" >>"$tmp/x"
mv "$tmp/x" csr/bad-signature.der
{ printf '\n \r\n'; cat csr/p256.pem; } >csr/blank-lines.pem
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGJhc2U2NCE=!!\n-----END CERTIFICATE REQUEST-----\n' \
    >csr/bad-base64.pem
: >csr/empty

# certificates
openssl req -x509 -key "$tmp/rsa2048.key" -subj "/CN=Self Signed RSA" \
    -days 30 -out cert/selfsigned-rsa.pem 2>/dev/null
openssl x509 -in cert/selfsigned-rsa.pem -outform DER -out cert/selfsigned-rsa.der
openssl req -x509 -key "$tmp/p256.key" -subj "/CN=Self Signed EC" \
    -addext "subjectAltName=email:alice@example.org" -days 30 \
    -set_serial 0x00ff -out cert/selfsigned-ec.pem 2>/dev/null
cat cert/selfsigned-ec.pem cert/selfsigned-rsa.pem >cert/chain.pem
n=$(wc -c <cert/selfsigned-rsa.der)
head -c $((n - 7)) cert/selfsigned-rsa.der >cert/bad-truncated.der
cp csr/p256.pem cert/bad-csr-not-cert.pem
printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' \
    >cert/bad-short.pem
: >cert/empty

# configurations (lb-lockbox.conf is ca_conf_template's output)
cat >conf/minimal.conf <<'X'
[ca]
name = Minimal CA
base_url = http://127.0.0.1:8080
X
cat >conf/profiles.conf <<'X'
[ca]
role_separation = off
[server]
threads = 8
body_limit = 64k
connection_timeout = 2m
[profile.smime-sign]
validity_days = 90
validation = individual
key_types = ec-p256, ec-p384
non_repudiation = no
[profile.smime-enc]
validity_days = 825
key_types = rsa-3072,rsa-4096
[profile.recovery-agent]
key_types = rsa-4096
[profile.ocsp-signing]
validity_days = 1d
X
cat >conf/variables.conf <<'X'
host = ca.example.org
[ca]
name = "Quoted # not a comment" \$literal
base_url = http://$host:8080/
alias = ${ca::name}
escaped = tab\there\nline \\ back
X
cat >conf/bad-values.conf <<'X'
[ca]
role_separation = sometimes
[server]
threads = -4
connection_timeout = 99999999999999999999d
[profile.smime-sign]
validity_days = 826
validation = organisation
key_types = dsa-1024,,
non_repudiation = maybe
X
printf '[ca]\nname = x\n[profile.smime-sign\nvalidity_days = 30\n' >conf/bad-section.conf
printf '[ca]\nname = $nosuch\n' >conf/bad-variable.conf
printf '[ca]\njust words without an equals sign\n' >conf/bad-noequals.conf
printf '[ca]\nname = a\000b\n' >conf/bad-nul.conf
: >conf/empty

mkdir -p share
share_seeds
signer_seeds
