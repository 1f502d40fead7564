/*
 * test_core.c - unit tests of core/: the lb_err contract, e-mail syntax,
 * durations, the encodings (hex, SHA-256, base64, ISO 8601 and ASN.1
 * times), the background-thread lifecycle, the NCONF-backed configuration
 * and its typed getters, atomic
 * file writes and capped reads, database open/migrate, and the hash-chained
 * audit log including tampering found by core_audit_verify.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>

#include "core/core.h"
#include "tests/unit/testutil.h"

struct fixture {
	char *dir;
};

static int
group_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL || (fx->dir = tu_mkdtemp("core")) == NULL) {
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *fx = *state;

	tu_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* ------------------------------------------------------------------ */
/* lb_err                                                              */

static void
test_err_first_wins(void **state)
{
	lb_err err = { 0 };

	(void)state;
	assert_int_equal(lb_err_set(&err, LB_EINVAL, "first %d", 1), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_string_equal(err.msg, "first 1");
	/* a later, less specific failure must not overwrite the first */
	assert_int_equal(lb_err_set(&err, LB_EINTERNAL, "second"), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_string_equal(err.msg, "first 1");
	/* NULL is allowed and still returns -1 */
	assert_int_equal(lb_err_set(NULL, LB_EINVAL, "ignored"), -1);
	lb_err_clear(&err);
	assert_int_equal(err.code, LB_OK);
	assert_string_equal(err.msg, "");
	lb_err_set(&err, LB_ENOTFOUND, "third");
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_string_equal(err.msg, "third");
	lb_err_clear(NULL);
}

static void
test_err_truncates(void **state)
{
	lb_err err = { 0 };
	char big[2048];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	lb_err_set(&err, LB_EINVAL, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
}

static void
test_err_http_status(void **state)
{
	(void)state;
	assert_int_equal(lb_err_http_status(LB_OK), 200);
	assert_int_equal(lb_err_http_status(LB_EINVAL), 400);
	assert_int_equal(lb_err_http_status(LB_EFORBIDDEN), 403);
	assert_int_equal(lb_err_http_status(LB_ENOTFOUND), 404);
	assert_int_equal(lb_err_http_status(LB_ECONFLICT), 409);
	assert_int_equal(lb_err_http_status(LB_ETOOBIG), 413);
	assert_int_equal(lb_err_http_status(LB_EINTERNAL), 500);
	assert_int_equal(lb_err_http_status(LB_EUNAUTH), 401);
	assert_int_equal(lb_err_http_status(LB_ETHROTTLED), 429);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static void
test_email_valid(void **state)
{
	static const char *const good[] = {
		"a@b", "alice@example.com", "first.last+tag@mail.example-1.org",
		"x_y-z@localhost", "UPPER@EXAMPLE.COM", "o'neil@example.ie",
		"a!#$%&*/=?^`{|}~@x.y",
	};
	static const char *const bad[] = {
		"", "plain", "@example.com", "alice@", "a@@b", "a@b@c",
		"a b@example.com", "alice@exa mple.com", ".alice@x.y",
		"alice.@x.y", "al..ice@x.y", "alice@-x.y", "alice@x.y-",
		"alice@.x.y", "alice@x.y.", "alice@x_y.com", "\"a\"@x.y",
		"a(b)@x.y", "a,b@x.y", "a;b@x.y", "a<b>@x.y", "a[b]@x.y",
		"a\\b@x.y", "a:b@x.y", "al\tice@x.y", "\xc3\xa9t\xc3\xa9@x.y",
		"alice@\xc3\xa9x.y", "a\x7f@x.y",
	};
	char addr[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!core_email_valid(good[i]))
			fail_msg("'%s' should be valid", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (core_email_valid(bad[i]))
			fail_msg("'%s' should be invalid", bad[i]);
	assert_false(core_email_valid(NULL));

	/* local part: 64 bytes allowed, 65 refused */
	memset(addr, 'l', 64);
	strcpy(addr + 64, "@example.com");
	assert_true(core_email_valid(addr));
	memset(addr, 'l', 65);
	strcpy(addr + 65, "@example.com");
	assert_false(core_email_valid(addr));

	/* whole address: 254 bytes allowed, 255 refused */
	memset(addr, 'l', 64);
	addr[64] = '@';
	memset(addr + 65, 'd', 185);
	strcpy(addr + 250, ".com");
	assert_int_equal(strlen(addr), 254);
	assert_true(core_email_valid(addr));
	memset(addr + 65, 'd', 186);
	strcpy(addr + 251, ".com");
	assert_int_equal(strlen(addr), 255);
	assert_false(core_email_valid(addr));
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char *in;
		long out;
	} good[] = {
		{ "0", 0 }, { "30", 30 }, { "90s", 90 }, { "15m", 900 },
		{ "24h", 86400 }, { "7d", 604800 }, { "007", 7 },
	};
	static const char *const bad[] = {
		"", "s", "-5", "+5", " 5", "5 ", "5x", "5mm", "5ms", "1.5h",
		"0x10", "5S", "99999999999999999999999",
		"999999999999999999d", /* overflows after the multiplication */
	};
	long v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -42;
		if (core_parse_duration(good[i].in, &v) != 0)
			fail_msg("'%s' should parse", good[i].in);
		assert_int_equal(v, good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -42;
		if (core_parse_duration(bad[i], &v) != -1)
			fail_msg("'%s' should not parse (got %ld)", bad[i], v);
		/* the output is untouched on failure */
		assert_int_equal(v, -42);
	}
	assert_int_equal(core_parse_duration(NULL, &v), -1);
}

static void
test_hex_and_password(void **state)
{
	static const unsigned char b[] = { 0x00, 0x7f, 0xab, 0xff };
	char *h;
	char pw[65];
	size_t i;

	(void)state;
	h = core_hex(b, sizeof(b));
	assert_non_null(h);
	assert_string_equal(h, "007FABFF");
	free(h);
	memset(pw, '#', sizeof(pw));
	assert_int_equal(core_random_password(pw, 64), 0);
	assert_int_equal(strlen(pw), 64);
	for (i = 0; i < 64; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
		    "klmnopqrstuvwxyz0123456789-_", pw[i]));
}

static void
test_time_fmt(void **state)
{
	char out[32];

	(void)state;
	core_time_fmt((time_t)1795898080, out, sizeof(out));
	assert_string_equal(out, "2026-11-28T20:34:40Z");
	core_time_fmt(0, out, sizeof(out));
	assert_string_equal(out, "1970-01-01T00:00:00Z");
}

/* hex, the hex SHA-256 and random identifiers */
static void
test_hex_lower_sha256_random(void **state)
{
	static const unsigned char b[] = { 0x00, 0x7f, 0xab, 0xff };
	char h[9], sha[65], r1[33], r2[33];
	size_t i;

	(void)state;
	core_hex_lower(b, sizeof(b), h);
	assert_string_equal(h, "007fabff");
	core_hex_lower(b, 0, h);
	assert_string_equal(h, "");
	/* FIPS 180-2 example: SHA-256("abc") */
	assert_int_equal(core_sha256_hex("abc", 3, sha), 0);
	assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(core_sha256_hex("", 0, sha), 0);
	assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	assert_int_equal(core_random_hex(r1, 16), 0);
	assert_int_equal(core_random_hex(r2, 16), 0);
	assert_int_equal(strlen(r1), 32);
	for (i = 0; i < 32; i++)
		assert_non_null(strchr("0123456789abcdef", r1[i]));
	assert_string_not_equal(r1, r2);
	/* out of range: refused, and out is a valid empty string */
	assert_int_equal(core_random_hex(r1, 0), -1);
	assert_string_equal(r1, "");
	assert_int_equal(core_random_hex(r1, 65), -1);
}

/* b64 S FLAGS: core_b64_decode of S with a generous cap */
static int
b64(const char *s, unsigned flags, unsigned char **out, size_t *len)
{
	return core_b64_decode(s, strlen(s), 4096, flags, out, len);
}

static void
test_b64_decode(void **state)
{
	static const char *const bad[] = {
		"", "A", "AB", "ABC", "QUJD=", "QU=D", "Q===", "=QUJ",
		"QUJD====", "QUJ-", "QUJ_", "QU JD", "QUJD\n", "Q\0JD",
		"QUJDRA=\n=", "QUJDR===",
	};
	unsigned char *out = NULL;
	size_t len = 0, i;

	(void)state;
	assert_int_equal(b64("QUJD", 0, &out, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "ABC", 3);
	free(out);
	assert_int_equal(b64("QUI=", 0, &out, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(out, "AB", 2);
	free(out);
	assert_int_equal(b64("QQ==", 0, &out, &len), 0);
	assert_int_equal(len, 1);
	assert_memory_equal(out, "A", 1);
	free(out);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = (unsigned char *)"x";
		len = 99;
		assert_int_equal(b64(bad[i], 0, &out, &len), -1);
		assert_null(out);
		assert_int_equal(len, 0);
	}
	/* whitespace: refused strictly, skipped with CORE_B64_WS */
	assert_int_equal(b64(" QU\r\nJ\tD \n", 0, &out, &len), -1);
	assert_int_equal(b64(" QU\r\nJ\tD \n", CORE_B64_WS, &out, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "ABC", 3);
	free(out);
	assert_int_equal(b64(" \r\n ", CORE_B64_WS, &out, &len), -1);
	assert_int_equal(b64("QU=\nD", CORE_B64_WS, &out, &len), -1);
	/* the cap counts encoded characters, whitespace included */
	assert_int_equal(core_b64_decode("QUJD", 4, 3, 0, &out, &len), -1);
	assert_int_equal(core_b64_decode("QUJD", 4, 4, 0, &out, &len), 0);
	free(out);
	assert_int_equal(core_b64_decode(NULL, 4, 4, 0, &out, &len), -1);
}

static void
test_b64_encode(void **state)
{
	unsigned char buf[200];
	unsigned char *back = NULL;
	char *s = NULL;
	size_t n = 0, blen = 0, i;

	(void)state;
	assert_int_equal(core_b64_encode("ABC", 3, 0, &s, &n), 0);
	assert_string_equal(s, "QUJD");
	assert_int_equal(n, 4);
	free(s);
	assert_int_equal(core_b64_encode("A", 1, 0, &s, NULL), 0);
	assert_string_equal(s, "QQ==");
	free(s);
	assert_int_equal(core_b64_encode("", 0, 0, &s, &n), 0);
	assert_string_equal(s, "");
	assert_int_equal(n, 0);
	free(s);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 37);
	/* 200 bytes: 268 characters, lines of 64 with CRLF, the last 12 */
	assert_int_equal(core_b64_encode(buf, sizeof(buf), CORE_B64_LINES, &s,
	    &n), 0);
	assert_int_equal(n, 268 + 5 * 2);
	assert_int_equal(strlen(s), n);
	for (i = 0; i < 4; i++)
		assert_memory_equal(s + 66 * i + 64, "\r\n", 2);
	assert_memory_equal(s + n - 2, "\r\n", 2);
	/* what one writes the other reads, byte for byte */
	assert_int_equal(core_b64_decode(s, n, n, CORE_B64_WS, &back, &blen),
	    0);
	assert_int_equal(blen, sizeof(buf));
	assert_memory_equal(back, buf, sizeof(buf));
	free(back);
	assert_int_equal(core_b64_decode(s, n, n, 0, &back, &blen), -1);
	free(s);
}

static void
test_time_parse(void **state)
{
	static const char *const bad[] = {
		"", "garbage", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
		"2026-02-29T00:00:00Z", "2026-01-01 00:00:00",
		"2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00",
		"2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
		"1969-12-31T23:59:59Z", "+026-01-01T00:00:00Z",
		"2026-1-01T00:00:00Z", "2026-01-01T0 :00:00Z",
		"2026-01-01T00:00:00+01:00", " 2026-01-01T00:00:00Z",
	};
	time_t t = 42;
	char out[32];
	size_t i;

	(void)state;
	assert_int_equal(core_time_parse("2026-11-28T20:34:40Z", 0, &t), 0);
	assert_int_equal((long long)t, 1795898080LL);
	core_time_fmt(t, out, sizeof(out));
	assert_string_equal(out, "2026-11-28T20:34:40Z");
	assert_int_equal(core_time_parse("2024-02-29T00:00:00Z", 0, &t), 0);
	assert_int_equal(core_time_parse("1970-01-01T00:00:00Z", 0, &t), 0);
	assert_int_equal((long long)t, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 42;
		assert_int_equal(core_time_parse(bad[i], CORE_TIME_LENIENT,
		    &t), -1);
		assert_int_equal((long long)t, 42);
	}
	assert_int_equal(core_time_parse(NULL, 0, &t), -1);
	/* the lenient forms, refused without the flag */
	assert_int_equal(core_time_parse("2026-11-28T20:34:40+00:00", 0, &t),
	    -1);
	assert_int_equal(core_time_parse("2026-11-28T20:34:40+00:00",
	    CORE_TIME_LENIENT, &t), 0);
	assert_int_equal((long long)t, 1795898080LL);
	assert_int_equal(core_time_parse("2026-11-28", 0, &t), -1);
	assert_int_equal(core_time_parse("2026-11-28", CORE_TIME_LENIENT, &t),
	    0);
	assert_int_equal((long long)t, 1795898080LL - (20 * 3600 + 34 * 60 +
	    40));
	assert_int_equal(core_time_parse("2026-11-28junk", CORE_TIME_LENIENT,
	    &t), -1);
}

static void
test_asn1_time(void **state)
{
	ASN1_TIME *a;

	(void)state;
	assert_int_equal((long long)core_asn1_time(NULL), 0);
	assert_non_null(a = ASN1_TIME_set(NULL, (time_t)1795898080));
	assert_int_equal((long long)core_asn1_time(a), 1795898080LL);
	/* GeneralizedTime past 2049 */
	assert_int_equal(ASN1_TIME_set_string(a, "20991231235959Z"), 1);
	assert_int_equal((long long)core_asn1_time(a), 4102444799LL);
	assert_int_equal(ASN1_TIME_set_string(a, "not a time"), 0);
	ASN1_TIME_free(a);
}

/* ------------------------------------------------------------------ */
/* Background threads                                                  */

struct wk {
	core_worker w;
	int ticks, wakes;
	bool saw_stop;
};

static void *
wk_main(void *arg)
{
	struct wk *k = arg;
	int r;

	/* a long timeout: only wakes and the stop end a wait */
	while ((r = core_worker_wait(&k->w, time(NULL) + 60)) != -1) {
		pthread_mutex_lock(&k->w.lock);
		if (r == 1)
			k->wakes++;
		k->ticks++;
		pthread_mutex_unlock(&k->w.lock);
	}
	k->saw_stop = true;
	return NULL;
}

static void
test_worker(void **state)
{
	struct wk k;
	lb_err err = { 0 };
	int i, wakes = 0;

	(void)state;
	memset(&k, 0, sizeof(k));
	/* stopping what never started is nothing */
	core_worker_stop(&k.w);
	assert_int_equal(core_worker_start(&k.w, wk_main, &k, "test worker",
	    &err), 0);
	assert_false(core_worker_stopping(&k.w));
	core_worker_wake(&k.w);
	for (i = 0; i < 500 && wakes == 0; i++) {
		usleep(10000);
		pthread_mutex_lock(&k.w.lock);
		wakes = k.wakes;
		pthread_mutex_unlock(&k.w.lock);
	}
	assert_int_equal(wakes, 1);
	/* the stop ends a wait of 60 s at once */
	core_worker_stop(&k.w);
	assert_true(k.saw_stop);
	assert_false(k.w.started);
	core_worker_stop(&k.w);
	/* an immediate timeout: core_worker_wait with until in the past */
	memset(&k, 0, sizeof(k));
	assert_int_equal(core_worker_start(&k.w, wk_main, &k, "test worker",
	    &err), 0);
	core_worker_stop(&k.w);
	assert_true(k.saw_stop);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static const char good_conf[] =
    "# a comment\n"
    "top = level\n"
    "\n"
    "[ca]\n"
    "name = Example CA   # trailing comment\n"
    "base_url = http://127.0.0.1:8080\n"
    "role_separation = no\n"
    "\n"
    "[server]\n"
    "threads = 8\n"
    "timeout = 2h\n"
    "big = 10d\n"
    "word = many\n"
    "on1 = YES\n"
    "on2 = true\n"
    "on3 = On\n"
    "on4 = 1\n"
    "off1 = no\n"
    "off2 = FALSE\n"
    "off3 = off\n"
    "off4 = 0\n"
    "maybe = perhaps\n"
    "host = $ca::name\n";

static void
test_conf_good(void **state)
{
	lb_err err = { 0 };
	core_conf *c;
	long v;
	bool b;

	(void)state;
	c = core_conf_load_mem(good_conf, strlen(good_conf), &err);
	assert_non_null(c);
	assert_int_equal(err.code, LB_OK);
	assert_string_equal(core_conf_get(c, "ca", "name", NULL), "Example CA");
	assert_string_equal(core_conf_get(c, "ca", "base_url", NULL),
	    "http://127.0.0.1:8080");
	assert_string_equal(core_conf_get(c, "server", "host", NULL),
	    "Example CA");
	assert_string_equal(core_conf_get(c, "default", "top", NULL), "level");
	/* absent: the default, for a missing key and a missing section */
	assert_string_equal(core_conf_get(c, "ca", "nope", "dflt"), "dflt");
	assert_null(core_conf_get(c, "nosuch", "name", NULL));
	assert_string_equal(core_conf_get(NULL, "ca", "name", "d"), "d");

	/* long: plain, with unit, default, malformed, out of range */
	assert_int_equal(core_conf_get_long(c, "server", "threads", 4, 1, 64,
	    &v, &err), 0);
	assert_int_equal(v, 8);
	assert_int_equal(core_conf_get_long(c, "server", "timeout", 30, 1,
	    86400, &v, &err), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(core_conf_get_long(c, "server", "absent", 17, 1, 64,
	    &v, &err), 0);
	assert_int_equal(v, 17);
	assert_int_equal(err.code, LB_OK);
	v = -1;
	assert_int_equal(core_conf_get_long(c, "server", "big", 1, 1, 86400,
	    &v, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "out of range"));
	assert_non_null(strstr(err.msg, "[server] big"));
	assert_int_equal(v, -1);
	lb_err_clear(&err);
	assert_int_equal(core_conf_get_long(c, "server", "threads", 4, 9, 64,
	    &v, &err), -1);
	assert_non_null(strstr(err.msg, "out of range"));
	lb_err_clear(&err);
	assert_int_equal(core_conf_get_long(c, "server", "word", 4, 1, 64, &v,
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "not a number"));
	lb_err_clear(&err);

	/* bool */
	assert_int_equal(core_conf_get_bool(c, "ca", "role_separation", true,
	    &b, &err), 0);
	assert_false(b);
	assert_int_equal(core_conf_get_bool(c, "server", "on1", false, &b,
	    &err), 0);
	assert_true(b);
	assert_int_equal(core_conf_get_bool(c, "server", "on2", false, &b,
	    &err), 0);
	assert_true(b);
	assert_int_equal(core_conf_get_bool(c, "server", "on3", false, &b,
	    &err), 0);
	assert_true(b);
	assert_int_equal(core_conf_get_bool(c, "server", "on4", false, &b,
	    &err), 0);
	assert_true(b);
	assert_int_equal(core_conf_get_bool(c, "server", "off1", true, &b,
	    &err), 0);
	assert_false(b);
	assert_int_equal(core_conf_get_bool(c, "server", "off2", true, &b,
	    &err), 0);
	assert_false(b);
	assert_int_equal(core_conf_get_bool(c, "server", "off3", true, &b,
	    &err), 0);
	assert_false(b);
	assert_int_equal(core_conf_get_bool(c, "server", "off4", true, &b,
	    &err), 0);
	assert_false(b);
	assert_int_equal(core_conf_get_bool(c, "server", "absent", true, &b,
	    &err), 0);
	assert_true(b);
	assert_int_equal(err.code, LB_OK);
	assert_int_equal(core_conf_get_bool(c, "server", "maybe", true, &b,
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "perhaps"));
	assert_non_null(strstr(err.msg, "yes or no"));
	core_conf_free(c);
}

static void
expect_size(const core_conf *c, const char *name, size_t min, size_t max,
    int want_rc, size_t want, const char *msg_part)
{
	lb_err err = { 0 };
	size_t v = 12345;

	if (core_conf_get_size(c, "sizes", name, 77, min, max, &v, &err) !=
	    want_rc)
		fail_msg("%s: rc != %d (%s)", name, want_rc, err.msg);
	if (want_rc == 0) {
		assert_int_equal(v, want);
		assert_int_equal(err.code, LB_OK);
	} else {
		assert_int_equal(v, 12345); /* untouched */
		assert_int_equal(err.code, LB_EINVAL);
		if (strstr(err.msg, msg_part) == NULL)
			fail_msg("%s: '%s' lacks '%s'", name, err.msg,
			    msg_part);
	}
}

static void
test_conf_get_size(void **state)
{
	static const char text[] =
	    "[sizes]\n"
	    "plain = 100\n"
	    "kib = 64k\n"
	    "kib_upper = 64K\n"
	    "mib = 1m\n"
	    "mib_upper = 2M\n"
	    "zero = 0\n"
	    "word = big\n"
	    "suffix = 10x\n"
	    "double = 10kk\n"
	    "unit_only = k\n"
	    "negative = -1\n"
	    "huge = 99999999999999999999999\n"
	    "wrap = 18014398509481984k\n";
	core_conf *c;
	lb_err err = { 0 };

	(void)state;
	c = core_conf_load_mem(text, sizeof(text) - 1, &err);
	assert_non_null(c);
	expect_size(c, "plain", 1, 1 << 20, 0, 100, NULL);
	expect_size(c, "kib", 1, 1 << 20, 0, 65536, NULL);
	expect_size(c, "kib_upper", 1, 1 << 20, 0, 65536, NULL);
	expect_size(c, "mib", 1, 1 << 20, 0, 1 << 20, NULL);
	expect_size(c, "mib_upper", 1, 4 << 20, 0, 2 << 20, NULL);
	expect_size(c, "absent", 1, 100, 0, 77, NULL);
	expect_size(c, "zero", 0, 10, 0, 0, NULL);
	/* range: inclusive bounds */
	expect_size(c, "plain", 100, 100, 0, 100, NULL);
	expect_size(c, "plain", 101, 200, -1, 0, "out of range");
	expect_size(c, "mib_upper", 1, (2 << 20) - 1, -1, 0, "out of range");
	expect_size(c, "zero", 1, 10, -1, 0, "out of range");
	/* malformed */
	expect_size(c, "word", 1, 100, -1, 0, "not a size");
	expect_size(c, "suffix", 1, 100, -1, 0, "not a size");
	expect_size(c, "double", 1, 1 << 30, -1, 0, "not a size");
	expect_size(c, "unit_only", 1, 100, -1, 0, "not a size");
	expect_size(c, "negative", 0, 100, -1, 0, "not a size");
	expect_size(c, "huge", 0, SIZE_MAX, -1, 0, "not a size");
	/* 2^54 KiB is 2^64 bytes: must not wrap around to 0 */
	expect_size(c, "wrap", 0, SIZE_MAX, -1, 0, "out of range");
	core_conf_free(c);
}

static void
test_conf_empty(void **state)
{
	core_conf *c = core_conf_new_empty();
	lb_err err = { 0 };
	long v = 0;
	bool b = false;

	(void)state;
	assert_non_null(c);
	assert_string_equal(core_conf_get(c, "ca", "name", "def"), "def");
	assert_int_equal(core_conf_get_long(c, "a", "b", 99, 0, 100, &v, &err),
	    0);
	assert_int_equal(v, 99);
	assert_int_equal(core_conf_get_bool(c, "a", "b", true, &b, &err), 0);
	assert_true(b);
	core_conf_free(c);
	core_conf_free(NULL);
}

/* Asserts that text fails to parse with LB_EINVAL naming line. */
static void
expect_syntax_error(const char *text, long line)
{
	lb_err err = { 0 };
	char want[64];
	core_conf *c = core_conf_load_mem(text, strlen(text), &err);

	if (c != NULL) {
		core_conf_free(c);
		fail_msg("config parsed but should not:\n%s", text);
	}
	assert_int_equal(err.code, LB_EINVAL);
	snprintf(want, sizeof(want), "line %ld", line);
	if (strstr(err.msg, want) == NULL)
		fail_msg("'%s' does not name %s", err.msg, want);
}

static void
test_conf_syntax_errors(void **state)
{
	(void)state;
	/* unterminated section name */
	expect_syntax_error("[ca]\nname = x\n[broken\nk = v\n", 3);
	/* a line that is not name = value */
	expect_syntax_error("[ca]\n# fine\n\nname = x\njust some words\n", 5);
	/* a reference to an undefined variable */
	expect_syntax_error("a = 1\nb = $nosuch\n", 2);
	expect_syntax_error("[ca]\nname = x\n\n\n\n\n\n\n\n\n\n\n"
	    "[s]\nv = ${ca::missing}\n", 14);
}

static void
test_conf_nul(void **state)
{
	static const char text[] = "[ca]\nname = a\0b\n";
	lb_err err = { 0 };

	(void)state;
	assert_null(core_conf_load_mem(text, sizeof(text) - 1, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void
test_conf_too_big(void **state)
{
	struct fixture *fx = *state;
	size_t max = 1024 * 1024;
	char *text = malloc(max + 2), *path;
	lb_err err = { 0 };
	core_conf *c;

	assert_non_null(text);
	/* exactly 1 MiB of comment lines: accepted */
	memset(text, '#', max + 1);
	for (size_t i = 79; i < max + 1; i += 80)
		text[i] = '\n';
	text[max - 1] = '\n';
	c = core_conf_load_mem(text, max, &err);
	assert_non_null(c);
	assert_int_equal(err.code, LB_OK);
	core_conf_free(c);
	/* one byte more: LB_ETOOBIG, from memory and from a file */
	assert_null(core_conf_load_mem(text, max + 1, &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	lb_err_clear(&err);
	path = tu_path(fx->dir, "big.conf");
	assert_int_equal(tu_write(path, text, max + 1), 0);
	assert_null(core_conf_load(path, &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	lb_err_clear(&err);
	unlink(path);
	free(path);
	free(text);
	/* a missing file */
	path = tu_path(fx->dir, "missing.conf");
	assert_null(core_conf_load(path, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);
	free(path);
}

static void
test_conf_load_file(void **state)
{
	struct fixture *fx = *state;
	char *path = tu_path(fx->dir, "good.conf");
	lb_err err = { 0 };
	core_conf *c;

	assert_int_equal(tu_write(path, good_conf, strlen(good_conf)), 0);
	c = core_conf_load(path, &err);
	assert_non_null(c);
	assert_string_equal(core_conf_get(c, "server", "threads", NULL), "8");
	core_conf_free(c);
	/* a syntax error in a file names the file and the line */
	assert_int_equal(tu_write(path, "[ca]\n\nbad line\n", 15), 0);
	assert_null(core_conf_load(path, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "line 3"));
	unlink(path);
	free(path);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

/* Counts directory entries whose name contains needle. */
static int
count_entries(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, needle) != NULL)
			n++;
	closedir(d);
	return n;
}

static void
test_file_write_modes(void **state)
{
	struct fixture *fx = *state;
	char *dir = tu_path(fx->dir, "modes"), *p1, *p2;
	unsigned char *buf = NULL;
	size_t len = 0;
	lb_err err = { 0 };
	mode_t old;

	assert_int_equal(mkdir(dir, 0700), 0);
	p1 = tu_path(dir, "secret");
	p2 = tu_path(dir, "public");
	/* the mode is exact, whatever the umask */
	old = umask(0);
	assert_int_equal(core_file_write(p1, "s3cret", 6, 0600, false, &err),
	    0);
	umask(077);
	assert_int_equal(core_file_write(p2, "hello", 5, 0644, false, &err), 0);
	umask(old);
	assert_int_equal(tu_mode(p1), 0600);
	assert_int_equal(tu_mode(p2), 0644);
	assert_int_equal(core_file_read(p1, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "s3cret", 7); /* with the trailing NUL */
	free(buf);
	/* no temporary file is left behind */
	assert_int_equal(count_entries(dir, ".tmp"), 0);
	assert_int_equal(err.code, LB_OK);
	free(p1);
	free(p2);
	free(dir);
}

static void
test_file_write_excl(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "excl"), *got;
	lb_err err = { 0 };

	assert_int_equal(core_file_write(p, "one", 3, 0600, true, &err), 0);
	assert_int_equal(core_file_write(p, "two", 3, 0600, true, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	got = tu_slurp(p, NULL);
	assert_string_equal(got, "one");
	free(got);
	lb_err_clear(&err);
	/* without excl the file is replaced */
	assert_int_equal(core_file_write(p, "three", 5, 0600, false, &err), 0);
	got = tu_slurp(p, NULL);
	assert_string_equal(got, "three");
	free(got);
	assert_int_equal(count_entries(fx->dir, "excl.tmp"), 0);
	unlink(p);
	free(p);
}

static void
test_file_write_atomic(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "atomic"), *bad, buf[16];
	lb_err err = { 0 };
	struct stat st1, st2;
	int fd;
	ssize_t n;

	assert_int_equal(core_file_write(p, "old contents", 12, 0600, false,
	    &err), 0);
	assert_int_equal(stat(p, &st1), 0);
	/* a reader holding the old file keeps seeing the old contents: the
	 * new file is renamed over it, never truncated and rewritten */
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(core_file_write(p, "new", 3, 0600, false, &err), 0);
	assert_int_equal(stat(p, &st2), 0);
	assert_true(st1.st_ino != st2.st_ino);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_int_equal(n, 12);
	buf[n] = '\0';
	assert_string_equal(buf, "old contents");
	assert_int_equal(st2.st_size, 3);
	/* a failed write (no such folder) creates nothing */
	bad = tu_path(fx->dir, "nodir/file");
	assert_int_equal(core_file_write(bad, "x", 1, 0600, false, &err), -1);
	assert_int_equal(err.code, LB_EINTERNAL);
	assert_int_equal(access(bad, F_OK), -1);
	lb_err_clear(&err);
	/* an empty buffer makes an empty file */
	assert_int_equal(core_file_write(p, "", 0, 0600, false, &err), 0);
	assert_int_equal(stat(p, &st2), 0);
	assert_int_equal(st2.st_size, 0);
	unlink(p);
	free(bad);
	free(p);
}

/*
 * A path so long that PATH.tmpXXXXXX does not fit must fail cleanly, and
 * must not unlink the file that the truncated temporary name happens to
 * name (core_file_write once did).
 */
static void
test_file_write_long_path(void **state)
{
	struct fixture *fx = *state;
	char path[PATH_MAX], victim[PATH_MAX];
	size_t len = strlen(fx->dir), want = PATH_MAX - 6;
	lb_err err = { 0 };
	int fd;

	memcpy(path, fx->dir, len + 1);
	/* nested folders of 200 characters, then a last name that makes the
	 * path PATH_MAX - 6 long: PATH + ".tmpX" is the longest path there
	 * is room for */
	while (want - len > 255) {
		path[len++] = '/';
		memset(path + len, 'd', 200);
		len += 200;
		path[len] = '\0';
		assert_int_equal(mkdir(path, 0700), 0);
	}
	path[len++] = '/';
	memset(path + len, 'f', want - len);
	path[want] = '\0';
	assert_int_equal(strlen(path), PATH_MAX - 6);
	memcpy(victim, path, want);
	memcpy(victim + want, ".tmpX", 6);
	assert_int_equal(strlen(victim), PATH_MAX - 1);
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(core_file_write(path, "x", 1, 0600, false, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(victim, F_OK), 0);
	unlink(victim);
}

static void
test_file_read(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "hundred"), data[100];
	unsigned char *buf = (unsigned char *)"sentinel";
	size_t len = 7;
	lb_err err = { 0 };

	memset(data, 'z', sizeof(data));
	assert_int_equal(tu_write(p, data, sizeof(data)), 0);
	/* max is inclusive */
	assert_int_equal(core_file_read(p, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 100);
	assert_int_equal(buf[100], '\0');
	assert_memory_equal(buf, data, 100);
	free(buf);
	assert_int_equal(core_file_read(p, 99, &buf, &len, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	assert_null(buf);
	assert_int_equal(len, 0);
	lb_err_clear(&err);
	unlink(p);
	/* missing file */
	assert_int_equal(core_file_read(p, 100, &buf, &len, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_non_null(strstr(err.msg, p));
	lb_err_clear(&err);
	/* a directory */
	assert_int_equal(core_file_read(fx->dir, 100, &buf, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* empty file */
	assert_int_equal(tu_write(p, "", 0), 0);
	assert_int_equal(core_file_read(p, 100, &buf, &len, &err), 0);
	assert_int_equal(len, 0);
	assert_non_null(buf);
	assert_int_equal(buf[0], '\0');
	free(buf);
	unlink(p);
	free(p);
	/* a file whose size stat() does not know (procfs reports 0): the cap
	 * still holds while reading */
	assert_int_equal(core_file_read("/proc/self/status", 16, &buf, &len,
	    &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	lb_err_clear(&err);
	assert_int_equal(core_file_read("/proc/self/status", 1 << 20, &buf,
	    &len, &err), 0);
	assert_true(len > 16);
	assert_non_null(strstr((char *)buf, "Name:"));
	free(buf);
}

static void
test_secret_read(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "pass"), *s;
	lb_err err = { 0 };

	assert_int_equal(tu_write(p, "hunter2\r\n", 9), 0);
	s = core_secret_read(p, &err);
	assert_non_null(s);
	assert_string_equal(s, "hunter2");
	core_secret_free(s);
	assert_int_equal(tu_write(p, "\n", 1), 0);
	assert_null(core_secret_read(p, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(tu_write(p, "a\0b\n", 4), 0);
	assert_null(core_secret_read(p, &err));
	assert_int_equal(err.code, LB_EINVAL);
	unlink(p);
	free(p);
	core_secret_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Database                                                            */

static void
test_db_open(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "open.db"), *mode;
	lb_err err = { 0 };
	sqlite3 *db;
	int v = core_db_schema_version();

	assert_true(v >= 1);
	/* without create, a missing database is not made */
	assert_null(core_db_open(p, false, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_int_equal(access(p, F_OK), -1);
	lb_err_clear(&err);

	db = core_db_open(p, true, &err);
	assert_non_null(db);
	assert_int_equal(tu_sql_int(db, "PRAGMA user_version"), v);
	mode = tu_sql_text(db, "PRAGMA journal_mode");
	assert_non_null(mode);
	assert_string_equal(mode, "wal");
	free(mode);
	assert_int_equal(tu_sql_int(db, "PRAGMA foreign_keys"), 1);
	/* synchronous = FULL is 2 */
	assert_int_equal(tu_sql_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name IN ('certificates', 'operators', "
	    "'audit', 'settings')"), 4);
	/* the database file is private */
	assert_int_equal(tu_mode(p) & 077, 0);
	/* foreign keys are enforced: no operator without its certificate */
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO operators (name, "
	    "email, role, serial, created) VALUES ('n', 'a@b', 'admin', "
	    "'00AB', 0)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM operators"), 0);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO settings VALUES "
	    "('k', 'v')", NULL, NULL, NULL), SQLITE_OK);
	core_db_close(db);

	/* reopening keeps the data and does not migrate again */
	db = core_db_open(p, false, &err);
	assert_non_null(db);
	assert_int_equal(tu_sql_int(db, "PRAGMA user_version"), v);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM settings "
	    "WHERE name = 'k'"), 1);
	assert_int_equal(tu_sql_int(db, "PRAGMA foreign_keys"), 1);
	core_db_close(db);
	core_db_close(NULL);
	free(p);
}

static void
test_db_newer_refused(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "newer.db"), sql[64];
	lb_err err = { 0 };
	sqlite3 *db = NULL;

	db = core_db_open(p, true, &err);
	assert_non_null(db);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    core_db_schema_version() + 1);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	core_db_close(db);
	assert_null(core_db_open(p, false, &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "newer"));
	free(p);
}

static void
test_db_transactions(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "tx.db");
	lb_err err = { 0 };
	sqlite3 *db = core_db_open(p, true, &err);

	assert_non_null(db);
	assert_int_equal(core_db_begin(db, &err), 0);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO settings VALUES "
	    "('a', '1')", NULL, NULL, NULL), SQLITE_OK);
	core_db_rollback(db);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM settings "
	    "WHERE name = 'a'"), 0);
	assert_int_equal(core_db_begin(db, &err), 0);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO settings VALUES "
	    "('a', '1')", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(core_db_commit(db, &err), 0);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM settings "
	    "WHERE name = 'a'"), 1);
	/* a rollback outside a transaction is harmless */
	core_db_rollback(db);
	/* commit without a transaction fails and says so */
	assert_int_equal(core_db_commit(db, &err), -1);
	assert_int_equal(err.code, LB_EINTERNAL);
	core_db_close(db);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Audit log                                                           */

#define AUDIT_ROWS 5

/* A fresh database named name with AUDIT_ROWS audit rows. */
static sqlite3 *
audit_db(const char *dir, const char *name)
{
	char *p = tu_path(dir, name), obj[32], detail[64];
	lb_err err = { 0 };
	sqlite3 *db = core_db_open(p, true, &err);
	int i;

	free(p);
	if (db == NULL)
		return NULL;
	for (i = 1; i <= AUDIT_ROWS; i++) {
		snprintf(obj, sizeof(obj), "object-%d", i);
		snprintf(detail, sizeof(detail), "detail of row %d", i);
		if (core_db_begin(db, &err) == -1 ||
		    core_audit_append(db, "tester", "act", obj, detail,
		    &err) == -1 || core_db_commit(db, &err) == -1) {
			core_db_close(db);
			return NULL;
		}
	}
	return db;
}

struct rows {
	int n;
	int64_t ids[16];
	char prev[16][65], hash[16][65], object[16][32];
	int stop_after;
};

static int
collect(const core_audit_row *row, void *arg)
{
	struct rows *r = arg;

	if (r->n < 16) {
		r->ids[r->n] = row->id;
		snprintf(r->prev[r->n], 65, "%s", row->prev_hash);
		snprintf(r->hash[r->n], 65, "%s", row->hash);
		snprintf(r->object[r->n], 32, "%s", row->object);
	}
	r->n++;
	return r->stop_after > 0 && r->n >= r->stop_after;
}

static void
expect_verify(sqlite3 *db, int want_rc, int64_t want_rows, int64_t want_bad,
    const char *why_part)
{
	lb_err err = { 0 };
	int64_t rows = -1, bad = -1;
	char why[256] = "";

	assert_int_equal(core_audit_verify(db, &rows, &bad, why, sizeof(why),
	    &err), want_rc);
	assert_int_equal(rows, want_rows);
	assert_int_equal(bad, want_bad);
	if (why_part != NULL && strstr(why, why_part) == NULL)
		fail_msg("verify said '%s', expected it to mention '%s'", why,
		    why_part);
}

static void
test_audit_chain(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-ok.db");
	struct rows r;
	lb_err err = { 0 };
	int i;

	assert_non_null(db);
	memset(&r, 0, sizeof(r));
	assert_int_equal(core_audit_foreach(db, 0, 0, collect, &r, &err), 0);
	assert_int_equal(r.n, AUDIT_ROWS);
	assert_string_equal(r.prev[0], "0000000000000000000000000000000000000"
	    "000000000000000000000000000");
	for (i = 0; i < AUDIT_ROWS; i++) {
		assert_int_equal(r.ids[i], i + 1);
		assert_int_equal(strlen(r.hash[i]), 64);
		if (i > 0)
			assert_string_equal(r.prev[i], r.hash[i - 1]);
	}
	assert_string_equal(r.object[2], "object-3");
	/* after_id and limit */
	memset(&r, 0, sizeof(r));
	assert_int_equal(core_audit_foreach(db, 2, 2, collect, &r, &err), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ids[0], 3);
	assert_int_equal(r.ids[1], 4);
	/* a callback that stops the walk: not an error */
	memset(&r, 0, sizeof(r));
	r.stop_after = 2;
	assert_int_equal(core_audit_foreach(db, 0, 0, collect, &r, &err), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(err.code, LB_OK);

	expect_verify(db, 0, AUDIT_ROWS, 0, NULL);
	core_db_close(db);
}

static void
test_audit_empty(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "audit-empty.db");
	lb_err err = { 0 };
	sqlite3 *db = core_db_open(p, true, &err);

	assert_non_null(db);
	expect_verify(db, 0, 0, 0, NULL);
	core_db_close(db);
	free(p);
}

static void
test_audit_tamper_detail(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-detail.db");

	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET detail = "
	    "'nothing happened' WHERE id = 3", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 3, "altered");
	core_db_close(db);
}

static void
test_audit_tamper_other_fields(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-fields.db");

	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'mallory' "
	    "WHERE id = 5", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 5, "altered");
	core_db_close(db);

	db = audit_db(fx->dir, "audit-ts.db");
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET created = "
	    "created - 86400 WHERE id = 2", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 2, "altered");
	core_db_close(db);

	/* moving a field boundary ("ab","c" vs "a","bc") is caught too */
	db = audit_db(fx->dir, "audit-boundary.db");
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'teste', "
	    "action = 'ract' WHERE id = 1", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 1, "altered");
	core_db_close(db);
}

static void
test_audit_delete_middle(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-delete.db");

	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM audit WHERE id = 3",
	    NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 4, "missing");
	core_db_close(db);

	/* deleting the first row is found as well */
	db = audit_db(fx->dir, "audit-delete-first.db");
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM audit WHERE id = 1",
	    NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 2, "missing");
	core_db_close(db);
}

static void
test_audit_tamper_prev_hash(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-prev.db");

	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET prev_hash = "
	    "'1111111111111111111111111111111111111111111111111111111111111111'"
	    " WHERE id = 4", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 4, "prev_hash");
	core_db_close(db);

	/* renumbering a row (re-inserting it under another id) is caught */
	db = audit_db(fx->dir, "audit-renumber.db");
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM audit WHERE id = 5; "
	    "UPDATE audit SET id = 5 WHERE id = 4; ", NULL, NULL, NULL),
	    SQLITE_OK);
	expect_verify(db, 1, 0, 5, "missing");
	core_db_close(db);
}

static void
test_audit_append_after_tamper_continues(void **state)
{
	struct fixture *fx = *state;
	sqlite3 *db = audit_db(fx->dir, "audit-more.db");
	lb_err err = { 0 };

	assert_non_null(db);
	/* appending continues the chain; a later edit of an earlier row is
	 * still found at that row, not at the newest one */
	assert_int_equal(core_db_begin(db, &err), 0);
	assert_int_equal(core_audit_append(db, "t", "a", "o", "more", &err), 0);
	assert_int_equal(core_db_commit(db, &err), 0);
	expect_verify(db, 0, AUDIT_ROWS + 1, 0, NULL);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET object = 'x' "
	    "WHERE id = 2", NULL, NULL, NULL), SQLITE_OK);
	expect_verify(db, 1, 0, 2, "altered");
	core_db_close(db);
}

/*
 * A database written at schema 4, before the renaming of schema 5
 * (audit.ts and the other *_at, creator and *_email columns) and the
 * key_uses table of schema 6: opening it migrates, every
 * value stays, and the audit chain still verifies, since its hashes
 * cover values, not column names.
 */
static void
test_db_migrate_names_keeps_audit_chain(void **state)
{
	struct fixture *fx = *state;
	char *p = tu_path(fx->dir, "audit-old.db");
	sqlite3 *db = audit_db(fx->dir, "audit-old.db");
	lb_err err = { 0 };
	int64_t created;

	assert_non_null(db);
	created = tu_sql_int(db, "SELECT created FROM audit WHERE id = 3");
	/* back to schema 4, as an older lockbox left it */
	assert_int_equal(sqlite3_exec(db,
	    "ALTER TABLE audit RENAME COLUMN created TO ts;"
	    "ALTER TABLE certificates RENAME COLUMN issued TO issued_at;"
	    "ALTER TABLE certificates RENAME COLUMN revoked TO revoked_at;"
	    "ALTER TABLE crl_state RENAME COLUMN issued TO issued_at;"
	    "ALTER TABLE crl_publications RENAME COLUMN published TO "
	    "published_at;"
	    "ALTER TABLE crl_publications RENAME COLUMN attempted TO "
	    "attempted_at;"
	    "ALTER TABLE enroll_tokens RENAME COLUMN created_by TO creator;"
	    "ALTER TABLE enroll_tokens DROP COLUMN withdrawn;"
	    "ALTER TABLE enroll_tokens DROP COLUMN withdrawn_by;"
	    "ALTER TABLE recovery_requests RENAME COLUMN requested_by TO "
	    "requester_email;"
	    "ALTER TABLE recovery_approvals RENAME COLUMN approved_by TO "
	    "agent_email;"
	    "DROP TABLE key_uses;"
	    "ALTER TABLE recovery_requests DROP COLUMN collected;"
	    "DROP TABLE escrow_policy_signatures;"
	    "DROP TABLE escrow_policies;"
	    "ALTER TABLE escrow_records DROP COLUMN policy_hash;"
	    "ALTER TABLE recovery_requests DROP COLUMN statement;"
	    "ALTER TABLE recovery_requests DROP COLUMN statement_cms;"
	    "PRAGMA user_version = 4;", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM "
	    "pragma_table_info('audit') WHERE name = 'ts'"), 1);
	core_db_close(db);

	db = core_db_open(p, false, &err);
	assert_non_null(db);
	assert_int_equal(tu_sql_int(db, "PRAGMA user_version"),
	    core_db_schema_version());
	assert_int_equal(tu_sql_int(db, "SELECT created FROM audit WHERE id = "
	    "3"), created);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM "
	    "pragma_table_info('enroll_tokens') WHERE name IN ('created_by', "
	    "'withdrawn', 'withdrawn_by')"), 3);
	expect_verify(db, 0, AUDIT_ROWS, 0, NULL);
	/* and the chain goes on under the new names */
	assert_int_equal(core_db_begin(db, &err), 0);
	assert_int_equal(core_audit_append(db, "t", "a", "o", "after", &err),
	    0);
	assert_int_equal(core_db_commit(db, &err), 0);
	expect_verify(db, 0, AUDIT_ROWS + 1, 0, NULL);
	core_db_close(db);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_first_wins),
		cmocka_unit_test(test_err_truncates),
		cmocka_unit_test(test_err_http_status),
		cmocka_unit_test(test_email_valid),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_hex_and_password),
		cmocka_unit_test(test_time_fmt),
		cmocka_unit_test(test_hex_lower_sha256_random),
		cmocka_unit_test(test_b64_decode),
		cmocka_unit_test(test_b64_encode),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_asn1_time),
		cmocka_unit_test(test_worker),
		cmocka_unit_test(test_conf_good),
		cmocka_unit_test(test_conf_get_size),
		cmocka_unit_test(test_conf_empty),
		cmocka_unit_test(test_conf_syntax_errors),
		cmocka_unit_test(test_conf_nul),
		cmocka_unit_test(test_conf_too_big),
		cmocka_unit_test(test_conf_load_file),
		cmocka_unit_test(test_file_write_modes),
		cmocka_unit_test(test_file_write_excl),
		cmocka_unit_test(test_file_write_atomic),
		cmocka_unit_test(test_file_write_long_path),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_secret_read),
		cmocka_unit_test(test_db_open),
		cmocka_unit_test(test_db_newer_refused),
		cmocka_unit_test(test_db_transactions),
		cmocka_unit_test(test_audit_chain),
		cmocka_unit_test(test_audit_empty),
		cmocka_unit_test(test_audit_tamper_detail),
		cmocka_unit_test(test_audit_tamper_other_fields),
		cmocka_unit_test(test_audit_delete_middle),
		cmocka_unit_test(test_audit_tamper_prev_hash),
		cmocka_unit_test(test_audit_append_after_tamper_continues),
		cmocka_unit_test(test_db_migrate_names_keeps_audit_chain),
	};

	return cmocka_run_group_tests_name("core", tests, group_setup,
	    group_teardown);
}
