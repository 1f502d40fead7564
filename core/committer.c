/*
 * committer.c - group commit: a thread of its own with its own database
 * handle runs the transaction jobs that many threads hand it, as many as
 * are waiting in one transaction, so that N of them cost one fsync.  Each
 * job runs inside a savepoint of its own: a job that fails rolls back
 * only itself.  The jobs are the owning modules' own (enroll's enrollment
 * transaction, ca's plain issuance); this file only batches them.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* One job waiting for, or in, a batch. */
struct pending {
	core_tx_job job;
	void *arg;
	lb_err *err;
	int result; /* set by the committer without the lock */
	int state;  /* 0 waiting, 1 committed, -1 failed; under the lock */
	struct pending *next;
};

struct core_committer {
	sqlite3 *db;
	/* w.cond: work queued, or stop; head, tail and done under w.lock */
	core_worker w;
	pthread_cond_t done;
	struct pending *head, **tail;
};

int
core_tx_run(sqlite3 *db, core_tx_job job, void *arg, lb_err *err)
{
	if (core_db_begin(db, err) == -1)
		return -1;
	if (job(db, arg, err) == -1 || core_db_commit(db, err) == -1) {
		core_db_rollback(db);
		return -1;
	}
	return 0;
}

static void
commit_batch(struct core_committer *c, struct pending *batch)
{
	struct pending *p;
	lb_err berr = { 0 };
	int ok = core_db_begin(c->db, &berr) == 0;

	for (p = batch; ok && p != NULL; p = p->next) {
		/* a savepoint per job: one bad job fails only itself */
		sqlite3_exec(c->db, "SAVEPOINT one", NULL, NULL, NULL);
		if (p->job(c->db, p->arg, p->err) == -1) {
			sqlite3_exec(c->db, "ROLLBACK TO one; RELEASE one",
			    NULL, NULL, NULL);
			p->result = -1;
		} else {
			sqlite3_exec(c->db, "RELEASE one", NULL, NULL, NULL);
		}
	}
	if (ok && core_db_commit(c->db, &berr) == -1)
		ok = 0;
	for (p = batch; p != NULL; p = p->next) {
		if (!ok && p->result == 0) {
			lb_err_set(p->err, berr.code, "%s", berr.msg);
			p->result = -1;
		} else if (p->result == 0) {
			p->result = 1;
		}
	}
}

static void *
committer_main(void *arg)
{
	struct core_committer *c = arg;
	struct pending *batch, *p, *next;

	pthread_mutex_lock(&c->w.lock);
	for (;;) {
		while (c->head == NULL && !c->w.stop)
			pthread_cond_wait(&c->w.cond, &c->w.lock);
		if (c->head == NULL && c->w.stop)
			break;
		batch = c->head;
		c->head = NULL;
		c->tail = &c->head;
		pthread_mutex_unlock(&c->w.lock);
		commit_batch(c, batch);
		pthread_mutex_lock(&c->w.lock);
		/* once state is set its waiter may return: read next first */
		for (p = batch; p != NULL; p = next) {
			next = p->next;
			p->state = p->result;
		}
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->w.lock);
	return NULL;
}

core_committer *
core_committer_new(sqlite3 *db, lb_err *err)
{
	struct core_committer *c;

	if (db == NULL) {
		/* the handle's own failure is already in err */
		lb_err_set(err, LB_EINTERNAL, "the committer has no database");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		core_db_close(db);
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	c->db = db;
	c->tail = &c->head;
	if (pthread_cond_init(&c->done, NULL) != 0) {
		lb_err_set(err, LB_EINTERNAL, "cannot start the committer");
		goto fail;
	}
	if (core_worker_start(&c->w, committer_main, c, "committer", err) ==
	    -1) {
		pthread_cond_destroy(&c->done);
		goto fail;
	}
	return c;
fail:
	core_db_close(db);
	free(c);
	return NULL;
}

int
core_committer_run(core_committer *c, core_tx_job job, void *arg,
    lb_err *err)
{
	struct pending p;

	memset(&p, 0, sizeof(p));
	p.job = job;
	p.arg = arg;
	p.err = err;
	pthread_mutex_lock(&c->w.lock);
	*c->tail = &p;
	/*
	 * p outlives its place in the queue: the committer unlinks the whole
	 * batch and resets tail before it sets p.state, and we wait for that.
	 */
	/* cppcheck-suppress autoVariables ; unlinked before we return */
	c->tail = &p.next;
	pthread_cond_signal(&c->w.cond);
	while (p.state == 0)
		pthread_cond_wait(&c->done, &c->w.lock);
	pthread_mutex_unlock(&c->w.lock);
	return p.state == -1 ? -1 : 0;
}

void
core_committer_free(core_committer *c)
{
	if (c == NULL)
		return;
	/* the queue drains first: the thread stops once it is empty */
	core_worker_stop(&c->w);
	core_db_close(c->db);
	pthread_cond_destroy(&c->done);
	free(c);
}
