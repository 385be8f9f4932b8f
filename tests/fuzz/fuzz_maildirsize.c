/*
 * fuzz_maildirsize.c - libFuzzer target for the Maildir++ parser of
 * maildirsize.c.
 *
 * Feeds the raw input (any bytes, NULs included) to maildirsize_parse()
 * and checks its contract: trusted usage is never negative and comes from
 * at least one complete line; the quota line is judged the same way by
 * maildirsize_parse_quota(); a trusted file stays trusted, with the same
 * sums, when a "0 0" line is appended; and the ",S=" reader of message
 * file names, fed the same bytes, never reads past them.  Built with clang
 * -fsanitize=fuzzer, or with standalone_main.c to replay a corpus.
 */
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildirsize.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct maildirsize m, again;
	unsigned long long qb, qc, name_size;
	const char *nl = memchr(text, '\n', size);
	size_t	first = nl ? (size_t)(nl - text) : size;
	char   *copy;

	maildirsize_parse(text, size, &m);
	if (m.usage_valid) {
		assert(m.bytes >= 0 && m.count >= 0 && m.lines >= 1);
		assert(size > 0 && text[size - 1] == '\n');
		assert(memchr(text, '\0', size) == NULL && memchr(text, '\r', size) == NULL);
	}
	if (memchr(text, '\0', size) == NULL && memchr(text, '\r', size) == NULL) {
		bool	ok = maildirsize_parse_quota(text, first, &qb, &qc);

		assert(ok == m.quota_valid);
		if (ok)
			assert(qb == m.quota_bytes && qc == m.quota_count &&
			       qb <= (unsigned long long)LLONG_MAX && qc <= (unsigned long long)LLONG_MAX);
	} else
		assert(!m.quota_valid && !m.usage_valid);

	/* Appending a neutral line changes nothing that was trusted. */
	if (m.usage_valid && (copy = malloc(size + 4)) != NULL) {
		memcpy(copy, text, size);
		memcpy(copy + size, "0 0\n", 4);
		maildirsize_parse(copy, size + 4, &again);
		assert(again.usage_valid && again.bytes == m.bytes && again.count == m.count &&
		       again.lines == m.lines + 1 && again.quota_valid == m.quota_valid);
		free(copy);
	}

	/* The same bytes as a file name (up to the first NUL). */
	if ((copy = malloc(size + 1)) != NULL) {
		memcpy(copy, text, size);
		copy[size] = '\0';
		if (maildir_name_size(copy, &name_size)) {
			assert(name_size <= (unsigned long long)LLONG_MAX);
			assert(strstr(copy, ",S=") != NULL);
		}
		free(copy);
	}
	return 0;
}
