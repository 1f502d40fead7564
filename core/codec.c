/*
 * codec.c - the small encodings every module shares, each written once:
 * hex (and the hex SHA-256 that names keys, CRLs, audit rows and ETags),
 * random hex identifiers, base64 in both directions (strict or
 * whitespace-tolerant, every scratch copy cleansed since the bytes may be
 * a key or a share), and times: the ISO 8601 form lockbox prints and
 * reads, and ASN.1 times as seconds since the epoch; and the escaping of
 * a value for a DN string, which the CA's CRL distribution point and the
 * directory's CA entry must agree on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/core.h"

static void
hex_to(const unsigned char *buf, size_t len, const char *digits, char *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 0xf];
	}
	out[2 * len] = '\0';
}

char *
core_hex(const unsigned char *buf, size_t len)
{
	char *s;

	if (len > SIZE_MAX / 2 - 1 || (s = malloc(len * 2 + 1)) == NULL)
		return NULL;
	hex_to(buf, len, "0123456789ABCDEF", s);
	return s;
}

void
core_hex_lower(const unsigned char *buf, size_t len, char *out)
{
	hex_to(buf, len, "0123456789abcdef", out);
}

int
core_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return log_openssl("SHA-256");
	core_hex_lower(md, sizeof(md), out);
	return 0;
}

int
core_random_hex(char *out, size_t nbytes)
{
	unsigned char rnd[64];

	out[0] = '\0';
	if (nbytes == 0 || nbytes > sizeof(rnd) ||
	    RAND_bytes(rnd, (int)nbytes) != 1)
		return log_openssl("RAND_bytes");
	core_hex_lower(rnd, nbytes, out);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Base64                                                              */

static bool
b64_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

int
core_b64_decode(const char *s, size_t slen, size_t max, unsigned flags,
    unsigned char **out, size_t *len)
{
	unsigned char *flat = NULL, *buf = NULL;
	size_t i, n = 0, pad, cap = 0;
	int dn, rc = -1;

	*out = NULL;
	*len = 0;
	if (s == NULL || slen == 0 || slen > max ||
	    slen > (size_t)INT32_MAX / 2 || (flat = malloc(slen)) == NULL)
		return -1;
	for (i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((flags & CORE_B64_WS) && b64_space(c))
			continue;
		if (!b64_char(c))
			goto out;
		flat[n++] = c;
	}
	if (n == 0 || n % 4 != 0)
		goto out;
	/* '=' only as one or two characters of final padding */
	for (i = 0; i + 2 < n; i++)
		if (flat[i] == '=')
			goto out;
	if (flat[n - 2] == '=' && flat[n - 1] != '=')
		goto out;
	pad = (size_t)(flat[n - 1] == '=') + (flat[n - 2] == '=');
	cap = n / 4 * 3 + 1;
	if ((buf = malloc(cap)) == NULL)
		goto out;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if ((dn = EVP_DecodeBlock(buf, flat, (int)n)) < 0 || (size_t)dn <= pad)
		goto out;
	*out = buf;
	*len = (size_t)dn - pad;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL)
		OPENSSL_clear_free(buf, cap);
	OPENSSL_clear_free(flat, slen);
	return rc;
}

int
core_b64_encode(const void *buf, size_t len, unsigned flags, char **out,
    size_t *outlen)
{
	unsigned char *flat = NULL;
	char *s = NULL;
	size_t flen, lines, i, o = 0;
	int rc = -1;

	*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (len > (size_t)INT32_MAX / 2)
		return -1;
	flen = (len + 2) / 3 * 4;
	lines = (flags & CORE_B64_LINES) ? (flen + 63) / 64 : 0;
	if ((flat = malloc(flen + 1)) == NULL ||
	    (s = malloc(flen + 2 * lines + 1)) == NULL)
		goto out;
	if (EVP_EncodeBlock(flat, buf, (int)len) != (int)flen) {
		log_openssl("EVP_EncodeBlock");
		goto out;
	}
	if (!(flags & CORE_B64_LINES)) {
		memcpy(s, flat, flen);
		o = flen;
	}
	for (i = 0; (flags & CORE_B64_LINES) && i < flen; i += 64) {
		size_t k = flen - i < 64 ? flen - i : 64;

		memcpy(s + o, flat + i, k);
		o += k;
		s[o++] = '\r';
		s[o++] = '\n';
	}
	s[o] = '\0';
	*out = s;
	if (outlen != NULL)
		*outlen = o;
	s = NULL;
	rc = 0;
out:
	if (flat != NULL)
		OPENSSL_clear_free(flat, flen + 1);
	free(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Distinguished names                                                 */

char *
core_dn_escape(const char *v)
{
	size_t n = strlen(v), i, o = 0;
	char *out;

	if (n > 1024 || (out = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (strchr(",+\"\\<>;=", c) != NULL ||
		    (i == 0 && (c == ' ' || c == '#')) ||
		    (i == n - 1 && c == ' ')) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(out + o, 4, "\\%02X", c);
			o += 3;
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* ------------------------------------------------------------------ */
/* Times                                                               */

void
core_time_fmt(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whether s begins with shape: 'd' a digit, anything else itself. */
static bool
shaped(const char *s, const char *shape)
{
	for (; *shape != '\0'; s++, shape++)
		if (*shape == 'd' ? (*s < '0' || *s > '9') : *s != *shape)
			return false;
	return true;
}

int
core_time_parse(const char *s, unsigned flags, time_t *t)
{
	bool lenient = (flags & CORE_TIME_LENIENT) != 0;
	struct tm tm, back;
	time_t v;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL)
		return -1;
	if (shaped(s, "dddd-dd-ddTdd:dd:dd") && (strcmp(s + 19, "Z") == 0 ||
	    (lenient && strcmp(s + 19, "+00:00") == 0))) {
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
		    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		    &tm.tm_sec) != 6)
			return -1;
	} else if (lenient && shaped(s, "dddd-dd-dd") && s[10] == '\0') {
		/* a date alone: its midnight, UTC */
		if (sscanf(s, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon,
		    &tm.tm_mday) != 3)
			return -1;
	} else {
		return -1;
	}
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	if ((v = timegm(&tm)) == (time_t)-1)
		return -1;
	/* timegm rolls 31 February into March: such a date is no date */
	if (tm.tm_mday != back.tm_mday || tm.tm_mon != back.tm_mon)
		return -1;
	*t = v;
	return 0;
}

time_t
core_asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
		return 0;
	return timegm(&tm);
}
