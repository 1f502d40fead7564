/*
 * privdrop.c - whom `lockbox serve` runs as.  Started as root with
 * [server] user = NAME, the daemon forks its signer process (which drops
 * to NAME as well, keeping the CA key it read as root), opens its
 * listeners, and then drops to NAME for good, before it opens the
 * database or answers anyone.  So the state directory, its database and
 * pub/ must belong to NAME, while the CA key and its passphrase file stay
 * root's: the network process can then no longer read them.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "web/web_int.h"

/* path (in dir) must belong to uid; a missing optional one is fine. */
static int
owned_by(const char *dir, const char *name, uid_t uid, const char *user,
    bool optional, lb_err *err)
{
	struct stat st;
	char *path = name != NULL ? core_path(dir, name) : strdup(dir);
	int rc = -1;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (stat(path, &st) == -1) {
		if (errno == ENOENT && optional)
			rc = 0;
		else
			lb_err_set(err, LB_EINVAL, "%s: %s", path,
			    strerror(errno));
	} else if (st.st_uid != uid)
		lb_err_set(err, LB_EINVAL, "%s belongs to uid %u, not to "
		    "user '%s' whom [server] user names: give the state "
		    "directory to it (chown -R %s %s; then chown root %s/%s "
		    "%s/%s)", path, (unsigned)st.st_uid, user, user, dir, dir,
		    CA_KEY_FILE, dir, CA_KEY_PASS_FILE);
	else
		rc = 0;
	free(path);
	return rc;
}

int
web_user_prepare(const ca_ctx *ca, struct web_user *u, lb_err *err)
{
	const char *dir = ca_get0_dir(ca);
	struct stat st;
	char *key;

	memset(u, 0, sizeof(*u));
	u->name = core_conf_get(ca_get0_conf(ca), "server", "user", NULL);
	if (u->name != NULL && *u->name == '\0')
		u->name = NULL;
	if (u->name == NULL)
		return 0;
	if (geteuid() != 0) {
		log_info("[server] user = %s: not started as root, running as "
		    "uid %u", u->name, (unsigned)geteuid());
		u->name = NULL;
		return 0;
	}
	if (core_user_lookup(u->name, &u->uid, &u->gid, err) == -1 ||
	    owned_by(dir, NULL, u->uid, u->name, false, err) == -1 ||
	    owned_by(dir, CA_DB_FILE, u->uid, u->name, false, err) == -1 ||
	    owned_by(dir, CA_PUB_DIR, u->uid, u->name, true, err) == -1)
		return -1;
	/* the point of dropping: the key must stay out of its reach */
	if ((key = core_path(dir, CA_KEY_FILE)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (stat(key, &st) == 0 && st.st_uid == u->uid)
		log_warnx("%s belongs to user '%s': the network process could "
		    "read it; give it to root (chown root %s)", key, u->name,
		    key);
	free(key);
	u->drop = true;
	return 0;
}

int
web_user_drop(const struct web_user *u, lb_err *err)
{
	if (!u->drop)
		return 0;
	if (core_drop_privileges(u->uid, u->gid, err) == -1)
		return -1;
	log_info("running as user %s (uid %u)", u->name, (unsigned)u->uid);
	return 0;
}
