/*
 * fuzz_loadavg.c - libFuzzer target for the loadavg parser of overload.c.
 *
 * Feeds the raw input (any bytes, NULs included) to
 * overload_parse_loadavg() and checks what its contract promises: an
 * accepted value is finite, not negative and at most 1e9, and it reads the
 * same whatever follows the first field.  Built with clang
 * -fsanitize=fuzzer, or with standalone_main.c to replay a corpus.
 */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "overload.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	double	value = -1, again = -1;
	size_t	end;

	if (!overload_parse_loadavg(text, size, &value))
		return 0;
	assert(isfinite(value) && value >= 0 && value <= 1e9);
	/* The field ends at white space or the end: what follows cannot change it. */
	for (end = 0; end < size && (text[end] == ' ' || text[end] == '\t'); end++)
		;
	while (end < size && text[end] != ' ' && text[end] != '\t' && text[end] != '\n')
		end++;
	assert(overload_parse_loadavg(text, end, &again));
	assert(again == value);
	return 0;
}
