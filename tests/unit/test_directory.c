/*
 * test_directory.c - unit tests of directory/ that need no server: the
 * [directory] settings (absent section, bad URI, StartTLS with ldaps, the
 * bind password in clear to a remote host, a password file others can
 * read, relative paths, the default CA entry DN derived from [ca] name
 * with RFC 4514 escaping, user_filter and attribute names), argument
 * checks of directory_publish_ca and the user functions, and
 * the transient/permanent classification of a server that is not there.
 * The round trip against a real slapd is tests/integration/42_directory.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"
#include "directory/directory.h"
#include "tests/unit/testutil.h"

/* Opens a directory context from config text; NULL with err on failure. */
static directory_ctx *
open_text(const char *text, const char *dir, core_conf **conf, lb_err *err)
{
	lb_err_clear(err);
	*conf = core_conf_load_mem(text, strlen(text), err);
	assert_non_null(*conf);
	return directory_open_at(*conf, dir, err);
}

static void
test_not_configured(void **state)
{
	core_conf *conf;
	lb_err err;
	directory_ctx *d;

	(void)state;
	d = open_text("[ca]\nname = X\n", NULL, &conf, &err);
	assert_null(d);
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "no directory configured"));
	assert_false(directory_err_transient(&err));
	core_conf_free(conf);
}

static void
test_bad_settings(void **state)
{
	static const char *bad[] = {
		"[directory]\nuri = http://example.org/\n",
		"[directory]\nuri = ldaps://h/\nstarttls = yes\n",
		"[directory]\nuri = ldap://ldap.example.org/\n"
		    "bind_dn = cn=a\nbind_password_file = /nonexistent\n",
		"[directory]\nuri = ldap://127.0.0.1/\nbind_dn = cn=a\n",
		"[directory]\nuri = ldap://127.0.0.1/\ntimeout = 0\n",
		"[directory]\nuri = ldap://127.0.0.1/\nstarttls = maybe\n",
		"[directory]\nuri = ldap://127.0.0.1/\nca_dn = ou=PKI,dc=x\n",
		"[directory]\nuri = ldap://127.0.0.1/\nca_dn = cn=x\n",
		"[directory]\nuri = ldap://127.0.0.1/\nca_dn = not a dn\n",
		"[directory]\nuri = ldap://127.0.0.1/\nuser_filter = (uid=x)\n",
		"[directory]\nuri = ldap://127.0.0.1/\nuser_filter = (uid=%d)\n",
		"[directory]\nuri = ldap://127.0.0.1/\n"
		    "group_attribute = member)(x=*\n",
	};
	core_conf *conf;
	lb_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(open_text(bad[i], NULL, &conf, &err));
		assert_int_equal(err.code, LB_EINVAL);
		assert_false(directory_err_transient(&err));
		core_conf_free(conf);
	}
}

static void
test_password_file(void **state)
{
	char *dir = tu_mkdtemp("dirtest"), *pw, text[1024];
	core_conf *conf;
	lb_err err;
	directory_ctx *d;

	(void)state;
	assert_non_null(dir);
	pw = tu_path(dir, "ldap.pass");
	assert_int_equal(tu_write(pw, "secret\n", 7), 0);
	chmod(pw, 0644);
	/* Relative to dir; remote host without TLS is refused first. */
	snprintf(text, sizeof(text), "[directory]\nuri = ldap://ldap.example."
	    "org/\nbind_dn = cn=admin,dc=example,dc=org\n"
	    "bind_password_file = ldap.pass\n");
	assert_null(open_text(text, dir, &conf, &err));
	assert_non_null(strstr(err.msg, "chmod 600"));
	core_conf_free(conf);

	chmod(pw, 0600);
	assert_null(open_text(text, dir, &conf, &err));
	assert_non_null(strstr(err.msg, "in clear"));
	core_conf_free(conf);

	snprintf(text, sizeof(text), "[directory]\nuri = ldap://ldap.example."
	    "org/\nstarttls = yes\nbind_dn = cn=admin,dc=example,dc=org\n"
	    "bind_password_file = ldap.pass\n");
	d = open_text(text, dir, &conf, &err);
	assert_non_null(d);
	assert_string_equal(directory_get0_uri(d), "ldap://ldap.example.org/");
	assert_null(directory_get0_ca_dn(d));
	directory_free(d);
	core_conf_free(conf);
	free(pw);
	tu_rmtree(dir);
	free(dir);
}

static void
test_default_ca_dn(void **state)
{
	core_conf *conf;
	lb_err err;
	directory_ctx *d;

	(void)state;
	d = open_text("[ca]\nname = Example, Inc. S/MIME CA\n[directory]\n"
	    "uri = ldap://127.0.0.1/\nbase_dn = dc=example,dc=org\n", NULL,
	    &conf, &err);
	assert_non_null(d);
	assert_string_equal(directory_get0_ca_dn(d),
	    "cn=Example\\, Inc. S/MIME CA,ou=PKI,dc=example,dc=org");
	directory_free(d);
	core_conf_free(conf);

	d = open_text("[ca]\nname = Ignored\n[directory]\nuri = ldap://"
	    "127.0.0.1/\nbase_dn = dc=example,dc=org\nca_dn = cn=Other CA,"
	    "ou=Certification Authorities,dc=example,dc=org\n", NULL, &conf,
	    &err);
	assert_non_null(d);
	assert_string_equal(directory_get0_ca_dn(d), "cn=Other CA,"
	    "ou=Certification Authorities,dc=example,dc=org");
	directory_free(d);
	core_conf_free(conf);
}

static void
test_publish_args_and_down(void **state)
{
	static const unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	core_conf *conf;
	lb_err err;
	directory_ctx *d;

	(void)state;
	/* Port 1 on the loopback: nothing listens, connect is refused. */
	d = open_text("[directory]\nuri = ldap://127.0.0.1:1/\n"
	    "ca_dn = cn=CA,ou=PKI,dc=example,dc=org\nnetwork_timeout = 2\n",
	    NULL, &conf, &err);
	assert_non_null(d);
	assert_int_equal(directory_publish_ca(d, der, sizeof(der), NULL, 0,
	    NULL, 0, NULL, 0, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_false(directory_err_transient(&err));

	lb_err_clear(&err);
	assert_int_equal(directory_publish_ca(d, der, sizeof(der), der,
	    sizeof(der), NULL, 0, NULL, 0, &err), -1);
	assert_true(directory_err_transient(&err));
	assert_non_null(strstr(err.msg, "ldap://127.0.0.1:1/"));
	/* Again: a fresh connection attempt, the same classification. */
	lb_err_clear(&err);
	assert_int_equal(directory_publish_ca(d, der, sizeof(der), der,
	    sizeof(der), der, sizeof(der), der, sizeof(der), &err), -1);
	assert_true(directory_err_transient(&err));
	/* No base_dn: users cannot be looked up; an empty password never
	 * reaches the server. */
	lb_err_clear(&err);
	assert_null(directory_user_lookup(d, "alice", &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(directory_user_authenticate(d, "alice", "", &err));
	assert_int_equal(err.code, LB_EFORBIDDEN);
	directory_free(d);
	core_conf_free(conf);

	lb_err_clear(&err);
	assert_false(directory_err_transient(&err));
	assert_false(directory_err_transient(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_configured),
		cmocka_unit_test(test_bad_settings),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_default_ca_dn),
		cmocka_unit_test(test_publish_args_and_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
