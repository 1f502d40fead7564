/*
 * ldap_publish.c - test tool: publishes a CA certificate and CRLs (DER
 * files) to the CA's directory entry through directory_publish_ca, with
 * the [directory] settings of DIR/lockbox.conf, so that
 * tests/integration/42_directory.sh can drive the library against a real
 * slapd and read the result back with ldapsearch.
 *
 *   ldap_publish DIR CA.der CRL.der [--arl ARL.der] [--delta DELTA.der]
 *       [--again]
 *
 * With --again, after a first successful publication it reads one line
 * from standard input and publishes once more through the same context
 * (and connection), as the daemon does: the test restarts slapd in
 * between to see a dead connection reopened.
 *
 *   ldap_publish DIR --user LOGIN [--password-file F] [--group DN]
 *       [--add-cert DER | --remove-cert DER]
 *
 * The second form drives the enrollment side: looks LOGIN up (or, with
 * --password-file, authenticates it), prints dn/mail/givenName/sn, then
 * "member: yes|no" for --group, and adds or removes a userCertificate.
 *
 * Exit status: 0 done, 1 permanent failure, 3 transient failure (retry
 * later), 2 usage.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "directory/directory.h"

#define MAX_DER ((size_t)64 * 1024 * 1024)

static int
user_main(directory_ctx *d, int argc, char **argv, lb_err *err)
{
	const char *login = NULL, *pwfile = NULL, *group = NULL;
	const char *cert = NULL;
	bool add = true, member = false;
	directory_user *u = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	char *pw = NULL;
	int i, rc = -1;

	for (i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--user") == 0)
			login = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			pwfile = argv[i + 1];
		else if (strcmp(argv[i], "--group") == 0)
			group = argv[i + 1];
		else if (strcmp(argv[i], "--add-cert") == 0)
			cert = argv[i + 1];
		else if (strcmp(argv[i], "--remove-cert") == 0) {
			cert = argv[i + 1];
			add = false;
		} else
			return lb_err_set(err, LB_EINVAL, "unknown option %s",
			    argv[i]);
	}
	if (pwfile != NULL) {
		if ((pw = core_secret_read(pwfile, err)) == NULL)
			goto out;
		u = directory_user_authenticate(d, login, pw, err);
	} else
		u = directory_user_lookup(d, login, err);
	if (u == NULL)
		goto out;
	printf("dn: %s\nmail: %s\ngivenName: %s\nsn: %s\n", u->dn,
	    u->mail != NULL ? u->mail : "-",
	    u->given_name != NULL ? u->given_name : "-",
	    u->surname != NULL ? u->surname : "-");
	if (group != NULL) {
		if (directory_user_in_group(d, u->dn, group, &member, err) ==
		    -1)
			goto out;
		printf("member: %s\n", member ? "yes" : "no");
	}
	if (cert != NULL) {
		if (core_file_read(cert, MAX_DER, &der, &len, err) == -1)
			goto out;
		if ((add ? directory_publish_user_cert(d, u->dn, der, len,
		    err) : directory_unpublish_user_cert(d, u->dn, der, len,
		    err)) == -1)
			goto out;
		printf("%s\n", add ? "certificate added" :
		    "certificate removed");
	}
	rc = 0;
out:
	core_secret_free(pw);
	free(der);
	directory_user_free(u);
	return rc;
}

int
main(int argc, char **argv)
{
	lb_err err = { 0 };
	core_conf *conf = NULL;
	directory_ctx *d = NULL;
	unsigned char *ca = NULL, *crl = NULL, *arl = NULL, *delta = NULL;
	size_t ca_len = 0, crl_len = 0, arl_len = 0, delta_len = 0;
	const char *arl_path = NULL, *delta_path = NULL;
	char *path = NULL, line[64];
	bool again = false;
	int i, rc = 1;

	if (argc >= 4 && strcmp(argv[2], "--user") == 0) {
		signal(SIGPIPE, SIG_IGN);
		log_init("ldap_publish", false);
		if ((path = core_path(argv[1], "lockbox.conf")) == NULL ||
		    (conf = core_conf_load(path, &err)) == NULL ||
		    (d = directory_open_at(conf, argv[1], &err)) == NULL ||
		    user_main(d, argc - 2, argv + 2, &err) == -1)
			goto fail;
		rc = 0;
		goto out;
	}
	if (argc < 4) {
usage:
		fprintf(stderr, "usage: ldap_publish DIR CA.der CRL.der "
		    "[--arl ARL.der] [--delta DELTA.der] [--again]\n");
		return 2;
	}
	for (i = 4; i < argc; i += 2) {
		if (strcmp(argv[i], "--again") == 0) {
			again = true;
			i--;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		if (strcmp(argv[i], "--arl") == 0)
			arl_path = argv[i + 1];
		else if (strcmp(argv[i], "--delta") == 0)
			delta_path = argv[i + 1];
		else
			goto usage;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init("ldap_publish", false);
	if (getenv("LDAP_PUBLISH_DEBUG") != NULL)
		log_set_verbosity(2);
	if ((path = core_path(argv[1], "lockbox.conf")) == NULL ||
	    (conf = core_conf_load(path, &err)) == NULL ||
	    (d = directory_open_at(conf, argv[1], &err)) == NULL ||
	    core_file_read(argv[2], MAX_DER, &ca, &ca_len, &err) == -1 ||
	    core_file_read(argv[3], MAX_DER, &crl, &crl_len, &err) == -1 ||
	    (arl_path != NULL && core_file_read(arl_path, MAX_DER, &arl,
	    &arl_len, &err) == -1) ||
	    (delta_path != NULL && core_file_read(delta_path, MAX_DER, &delta,
	    &delta_len, &err) == -1) ||
	    directory_publish_ca(d, ca, ca_len, crl, crl_len, arl, arl_len,
	    delta, delta_len, &err) == -1)
		goto fail;
	if (again) {
		printf("published\n");
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL)
			goto out;
		if (directory_publish_ca(d, ca, ca_len, crl, crl_len, arl,
		    arl_len, delta, delta_len, &err) == -1)
			goto fail;
	}
	printf("published to %s at %s\n", directory_get0_ca_dn(d),
	    directory_get0_uri(d));
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "ldap_publish: %s%s\n", err.msg,
	    directory_err_transient(&err) ? " [transient]" : " [permanent]");
	rc = directory_err_transient(&err) ? 3 : 1;
out:
	free(ca);
	free(crl);
	free(arl);
	free(delta);
	free(path);
	directory_free(d);
	core_conf_free(conf);
	return rc;
}
