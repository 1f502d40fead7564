/*
 * fuzz_policy.c - libFuzzer harness for the enrollment client's readers
 * of server answers and of its own state file: enroll_policy_parse (what
 * it reads, enroll_policy_json writes back so that it reads the same
 * again: names, flags, windows, URLs and certificates) and, on the same
 * input, enroll_state_parse (what it reads, enroll_state_text writes back
 * so that it reads the same).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll/enroll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
check_profiles(const enroll_policy_doc *a, const enroll_policy_doc *b)
{
	size_t i, k;

	if (a->nprofiles != b->nprofiles || !same(a->email, b->email))
		__builtin_trap();
	for (i = 0; i < a->nprofiles; i++) {
		const enroll_policy_profile *p = &a->profiles[i];
		const enroll_policy_profile *q = &b->profiles[i];

		/* a profile read badly is not written back faithfully */
		if (p->problem.code != LB_OK)
			continue;
		if (!same(p->name, q->name) || p->enroll != q->enroll ||
		    p->escrow != q->escrow || p->manual != q->manual ||
		    p->renew_percent != q->renew_percent ||
		    p->renew_days != q->renew_days ||
		    p->nkey_types != q->nkey_types || p->ncerts != q->ncerts ||
		    enroll_policy_key_type(p) != enroll_policy_key_type(q))
			__builtin_trap();
		for (k = 0; k < ENROLL_EST_NOPS; k++)
			if (!same(p->est[k], q->est[k]))
				__builtin_trap();
		for (k = 0; k < p->ncerts; k++)
			if (!same(p->certs[k].serial, q->certs[k].serial) ||
			    (p->certs[k].renew_after != 0 &&
			    p->certs[k].renew_after != q->certs[k].renew_after))
				__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enroll_policy_doc doc, again;
	enroll_state st, st2;
	lb_err err = { 0 };
	json_t *j;
	char *text;

	if (enroll_policy_parse((const char *)data, size, &doc, &err) == 0) {
		if ((j = enroll_policy_json(&doc)) != NULL &&
		    (text = json_dumps(j, JSON_COMPACT)) != NULL) {
			lb_err_clear(&err);
			if (enroll_policy_parse(text, strlen(text), &again,
			    &err) == 0) {
				check_profiles(&doc, &again);
				enroll_policy_clear(&again);
			} else if (err.code != LB_ETOOBIG) {
				__builtin_trap();
			}
			free(text);
		}
		json_decref(j);
		enroll_policy_clear(&doc);
	} else if (doc.profiles != NULL || doc.email != NULL) {
		__builtin_trap();
	}
	lb_err_clear(&err);
	if (enroll_state_parse((const char *)data, size, &st, &err) == 0) {
		if ((text = enroll_state_text(st.server, st.ca_cert,
		    st.email)) != NULL) {
			if (enroll_state_parse(text, strlen(text), &st2,
			    &err) == -1 || !same(st.server, st2.server) ||
			    !same(st.ca_cert, st2.ca_cert) ||
			    !same(st.email, st2.email))
				__builtin_trap();
			enroll_state_clear(&st2);
			free(text);
		}
		enroll_state_clear(&st);
	}
	return 0;
}
