/*
 * fuzz_escrow_policy.c - libFuzzer harness for what a member's client
 * reads of the escrow policy from the server: the list of GET
 * /api/v1/escrow/policies (archive_chain_parse, which parses every
 * document in its one text form and recomputes its hash), then the
 * signatures over each document (archive_policy_sig_check) and the walk
 * a pinned client makes (archive_chain_verify, pinned at the first
 * policy), as 'lockbox escrow policy sign' does.  The input is also read
 * as one bare document (archive_policy_parse).
 *
 * Contract: a document that parses renders back to exactly its input and
 * its hash; a list that parses holds only such documents, each under its
 * own hash; nothing is left allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
doc_roundtrip(const archive_policy *p)
{
	archive_policy q;
	lb_err err = { 0 };

	if (archive_policy_parse(p->doc, p->doc_len, &q, &err) != 0 ||
	    strcmp(q.hash, p->hash) != 0 || q.doc_len != p->doc_len)
		__builtin_trap();
	archive_policy_clear(&q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	archive_verified v;
	archive_policy p;
	lb_err err = { 0 };
	char spki[65];
	size_t i, k;

	if (archive_policy_parse((const char *)data, size, &p, &err) == 0) {
		if (p.doc_len != size || memcmp(p.doc, data, size) != 0)
			__builtin_trap();
		doc_roundtrip(&p);
		archive_policy_clear(&p);
	}
	memset(&v, 0, sizeof(v));
	lb_err_clear(&err);
	if (archive_chain_parse((const char *)data, size, &v.chain,
	    &err) == 0) {
		for (i = 0; i < v.chain.n; i++) {
			doc_roundtrip(&v.chain.links[i].p);
			for (k = 0; k < v.chain.links[i].nsigs; k++) {
				lb_err_clear(&err);
				(void)archive_policy_sig_check(&v.chain.links[i].p,
				    v.chain.links[i].sigs[k].cms,
				    v.chain.links[i].sigs[k].len, spki, &err);
			}
		}
		if (v.chain.n > 0) {
			lb_err_clear(&err);
			(void)archive_chain_verify(&v, v.chain.links[0].p.hash,
			    NULL, &err);
		}
	}
	archive_verified_clear(&v);
	return 0;
}
