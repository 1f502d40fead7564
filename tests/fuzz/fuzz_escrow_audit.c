/*
 * fuzz_escrow_audit.c - libFuzzer harness for what a member's client reads
 * when it audits the escrows: one page of GET /api/v1/escrow/records,
 * checked by archive_audit_page (the production function 'lockbox escrow
 * audit' runs on every page) against a verified chain of the two
 * policies below, the ones the seeds' records were escrowed under (seeds
 * made by a throwaway lockbox CA, some edited: a share left out, records
 * out of order).
 *
 * Contract: a malformed page is LB_EINVAL with nothing counted; a page
 * that parses counts each record once, as checked or as a problem, and
 * leaves nothing allocated after archive_audit_clear.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc1[] =
    "lockbox escrow policy v1\n"
    "version: 1\n"
    "previous: none\n"
    "threshold: 2\n"
    "created: 2026-12-07T15:06:51Z\n"
    "agent: 17f10227fc49c8eeebd094303b698a3d9adc4077a3f52b0dcbf091d5fc061d90 a1@example.org Agent 1\n"
    "agent: aacb76d4079235593a48484a7a8459b84e294a57f03029c1ad3886c6563d85a9 a2@example.org Agent 2\n"
    "agent: 7ecce9339ac59d634e4eb2df0dd3b1e908ed7be40c6c2971b7893ecce8cd62e6 a3@example.org Agent 3\n";
static const char doc2[] =
    "lockbox escrow policy v1\n"
    "version: 2\n"
    "previous: a3f46060dcbf9ae9b9e2c4402e572d3ca19dc5a954a6155ad2667cb7bb5b042b\n"
    "threshold: 3\n"
    "created: 2026-12-07T15:07:11Z\n"
    "agent: 17f10227fc49c8eeebd094303b698a3d9adc4077a3f52b0dcbf091d5fc061d90 a1@example.org Agent 1\n"
    "agent: aacb76d4079235593a48484a7a8459b84e294a57f03029c1ad3886c6563d85a9 a2@example.org Agent 2\n"
    "agent: 7ecce9339ac59d634e4eb2df0dd3b1e908ed7be40c6c2971b7893ecce8cd62e6 a3@example.org Agent 3\n"
    "agent: 008d82100db80b7cc042e8ca236795e092d1259db3b1c7a0390bb97fdc4115ff a4@example.org Agent 4\n";

static archive_verified v;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	lb_err err = { 0 };

	(void)argc;
	(void)argv;
	memset(&v, 0, sizeof(v));
	v.chain.links = calloc(2, sizeof(*v.chain.links));
	if (v.chain.links == NULL ||
	    archive_policy_parse(doc1, strlen(doc1), &v.chain.links[0].p,
	    &err) == -1 ||
	    archive_policy_parse(doc2, strlen(doc2), &v.chain.links[1].p,
	    &err) == -1)
		abort();
	v.chain.n = 2;
	strcpy(v.chain.links[0].status, "superseded");
	strcpy(v.chain.links[1].status, "in_force");
	v.first = 0;
	v.in_force = 1;
	v.pending = -1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	archive_audit a;
	lb_err err = { 0 };
	int64_t last = 0;
	size_t n = 0;

	memset(&a, 0, sizeof(a));
	if (archive_audit_page(&v, NULL, (const char *)data, size, &a, &last,
	    &n, &err) == -1) {
		if (err.code != LB_EINVAL)
			__builtin_trap();
	} else if (a.records != n) {
		__builtin_trap();
	}
	archive_audit_clear(&a);
	return 0;
}
