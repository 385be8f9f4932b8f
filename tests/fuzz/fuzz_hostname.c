/*
 * fuzz_hostname.c - libFuzzer target for the HELO name classifier.
 *
 * Feeds the raw input (any bytes, NULs included) to hostname_classify()
 * under every flag combination and checks the invariants that follow from
 * Postfix's rules: enabling a restriction can only add refusals, the
 * combined verdict is the first refusal of the two (the syntax check, then
 * the FQDN check), and each verdict comes from the restriction that can
 * produce it.  Built with clang -fsanitize=fuzzer, or with standalone_main.c
 * to replay a corpus.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hostname.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name = (const char *)data;
	enum hostname_verdict none, nf, inv, both;
	bool	literal = size > 0 && name[0] == '[';
	size_t	trimmed = size;
	char	lit[600];

	none = hostname_classify(name, size, false, false);
	nf = hostname_classify(name, size, true, false);
	inv = hostname_classify(name, size, false, true);
	both = hostname_classify(name, size, true, true);

	/* No restriction, no refusal; both is the first refusal of the two,
	 * the syntax check first. */
	assert(none == HOSTNAME_OK);
	assert(both == (inv != HOSTNAME_OK ? inv : nf));
	/* OK with both flags implies OK with fewer. */
	if (both == HOSTNAME_OK)
		assert(nf == HOSTNAME_OK && inv == HOSTNAME_OK);

	/* A '[' name only ever meets the address-literal check. */
	if (literal) {
		assert(nf == inv);
		assert(nf == HOSTNAME_OK || nf == HOSTNAME_BAD_LITERAL);
	} else {
		assert(nf == HOSTNAME_OK || nf == HOSTNAME_NOT_FQDN);
		assert(inv == HOSTNAME_OK || inv == HOSTNAME_INVALID);
		/* An FQDN is a valid name; alone, the FQDN check refuses
		 * every invalid name too. */
		if (nf == HOSTNAME_OK)
			assert(inv == HOSTNAME_OK);
		if (inv == HOSTNAME_INVALID)
			assert(nf == HOSTNAME_NOT_FQDN);
	}

	/* Bytes Postfix never allows make a name fail every check. */
	if (memchr(name, '\0', size) != NULL)
		assert(both != HOSTNAME_OK && inv != HOSTNAME_OK);
	for (size_t i = 0; i < size; i++)
		if ((unsigned char)name[i] >= 0x80)
			assert(both != HOSTNAME_OK && inv != HOSTNAME_OK);

	/* A valid hostname is at most 255 bytes, after one trailing dot. */
	if (trimmed > 1 && name[trimmed - 1] == '.' && name[trimmed - 2] != '.')
		trimmed--;
	if (!literal && nf == HOSTNAME_OK)
		assert(trimmed <= 255 && hostname_valid(name, trimmed));

	/* Wrapped in brackets, the input is judged by the address helpers. */
	if (size <= sizeof(lit) - 7) {
		bool	tagged = size >= 5 && (name[0] | 0x20) == 'i' &&
			    (name[1] | 0x20) == 'p' && (name[2] | 0x20) == 'v' &&
			    name[3] == '6' && name[4] == ':';
		bool	addr_ok = tagged ? hostname_valid_ipv6(name + 5, size - 5) :
			    hostname_valid_ipv4(name, size);

		lit[0] = '[';
		memcpy(lit + 1, name, size);
		lit[size + 1] = ']';
		assert((hostname_classify(lit, size + 2, true, true) ==
		    HOSTNAME_OK) == addr_ok);
		memcpy(lit, "[IPv6:", 6);
		memcpy(lit + 6, name, size);
		lit[size + 6] = ']';
		assert((hostname_classify(lit, size + 7, false, true) ==
		    HOSTNAME_OK) == hostname_valid_ipv6(name, size));
	}
	return 0;
}
