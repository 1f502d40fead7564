/*
 * fuzz_recovery_view.c - libFuzzer harness for what an approving agent's
 * client reads of a recovery request: the view of GET
 * /api/v1/recovery/requests/{id} (archive_view_parse) and the officer's
 * statement inside it (archive_statement_parse), as 'lockbox recovery
 * approve' reads them; the input is also read as a bare statement.
 *
 * Contract: a statement that parses renders back to exactly its input;
 * a view that parses has a status and as many record entries as it says;
 * nothing is left allocated.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "archive/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
statement(const char *text, size_t len)
{
	archive_statement s;
	lb_err err = { 0 };

	if (archive_statement_parse(text, len, &s, &err) == 0) {
		if (s.text_len != len || memcmp(s.text, text, len) != 0 ||
		    s.nrecords == 0 ||
		    archive_statement_find(&s, s.records[0].serial) == NULL)
			__builtin_trap();
		archive_statement_clear(&s);
	} else if (err.code != LB_EINVAL) {
		__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	archive_view v;
	lb_err err = { 0 };

	statement((const char *)data, size);
	if (archive_view_parse((const char *)data, size, &v, &err) == 0) {
		if (v.status == NULL || (v.nrecords > 0 && v.records == NULL))
			__builtin_trap();
		if (v.statement != NULL)
			statement(v.statement, strlen(v.statement));
		archive_view_clear(&v);
	}
	return 0;
}
