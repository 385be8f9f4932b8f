/*
 * fuzz_address.c - libFuzzer target for address.c, quota_resolve.c and
 * the maildir source's path builder.
 *
 * Feeds the raw input (any bytes, NULs included) to address_parse() and
 * checks the contract: a parsed address is in lookup form (lower-case
 * ASCII, no control byte, "local@domain" ending in its domain), parsing it
 * again gives the same form, and the maildir path built from it either is
 * refused or is exactly maildir_root/domain/local/ with no component that
 * could leave the root.  The same bytes are then used as the goto list of
 * every alias of a fake source, so resolution runs over whatever list the
 * input spells, and must stop within its bounds.  Built with clang
 * -fsanitize=fuzzer, or with standalone_main.c to replay a corpus.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "quota_resolve.h"
#include "quota_source.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char goto_list[QUOTA_SOURCE_VALUE_MAX];

/* Every address is an alias for the fuzz input. */
static enum source_status
fz_alias(struct quota_source *src, const char *address, char *list, size_t size)
{
	(void)src;
	if (address[0] == '@')
		return SOURCE_NOT_FOUND;
	snprintf(list, size, "%s", goto_list);
	return SOURCE_OK;
}

/* Addresses in domain "mbox.example" are mailboxes. */
static enum source_status
fz_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	const char *at = strrchr(address, '@');

	(void)src;
	if (at == NULL || strcmp(at, "@mbox.example") != 0)
		return SOURCE_NOT_FOUND;
	out->quota = 1;
	return quota_source_maildir_path("/var/vmail", "%d/%l/", address, out->maildir,
					 sizeof(out->maildir)) ? SOURCE_OK : SOURCE_NOT_FOUND;
}

static const struct quota_source_ops fz_ops = {
	.name = "fuzz", .alias = fz_alias, .mailbox = fz_mailbox,
};

/* Check the invariants of one parsed address. */
static void
check_address(const struct address *a, const char *delims)
{
	struct address again;
	char	path[QUOTA_SOURCE_VALUE_MAX], want[QUOTA_SOURCE_VALUE_MAX];
	size_t	dlen = strlen(a->domain), flen = strlen(a->full);

	for (const unsigned char *p = (const unsigned char *)a->full; *p; p++)
		assert(*p >= 0x20 && *p != 0x7f && !(*p >= 'A' && *p <= 'Z'));
	assert(dlen > 0 && flen > dlen + 1);
	assert(a->full[flen - dlen - 1] == '@' && strcmp(a->full + flen - dlen, a->domain) == 0);
	if (a->delim == '\0')
		assert(strcmp(a->full, a->base) == 0 && a->ext[0] == '\0');
	else
		assert(strchr(delims, a->delim) != NULL);

	/* The lookup forms are fixed points (base may be longer: it can need quotes). */
	assert(address_parse(a->full, flen, delims, &again) == ADDRESS_OK);
	assert(strcmp(again.full, a->full) == 0 && strcmp(again.base, a->base) == 0);
	assert(address_parse(a->base, strlen(a->base), delims, &again) == ADDRESS_OK);
	assert(strcmp(again.full, a->base) == 0 && strcmp(again.base, a->base) == 0);

	/* The maildir never leaves the root. */
	if (quota_source_maildir_path("/var/vmail", "%d/%l/", a->base, path, sizeof(path))) {
		snprintf(want, sizeof(want), "/var/vmail/%s/%s/", a->domain, a->local);
		assert(strcmp(path, want) == 0);
		assert(strchr(a->local, '/') == NULL && strchr(a->domain, '/') == NULL);
		assert(strcmp(a->local, "..") != 0 && strcmp(a->local, ".") != 0);
		assert(strcmp(a->domain, "..") != 0 && strcmp(a->domain, ".") != 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	static const char *const delim_sets[] = {"+", "+-", "", "-_.="};
	struct address *a = malloc(sizeof(*a));
	struct resolution *res = malloc(sizeof(*res));
	struct quota_source src = {.ops = &fz_ops};
	const char *shown;
	size_t	shown_len;

	if (a == NULL || res == NULL)
		abort();
	address_display(text, size, &shown, &shown_len);
	assert(shown >= text && shown + shown_len <= text + size);

	for (size_t i = 0; i < sizeof(delim_sets) / sizeof(delim_sets[0]); i++) {
		enum address_status st = address_parse(text, size, delim_sets[i], a);

		if (st == ADDRESS_OK)
			check_address(a, delim_sets[i]);
		else if (memchr(text, '\0', size) == NULL)
			assert(st == ADDRESS_EMPTY || st == ADDRESS_NO_DOMAIN ||
			       st == ADDRESS_INVALID || st == ADDRESS_TOO_LONG);
	}

	/* Resolution over a goto list spelled by the input. */
	size_t	n = size < sizeof(goto_list) - 1 ? size : sizeof(goto_list) - 1;

	memcpy(goto_list, text, n);
	goto_list[n] = '\0';
	assert(address_parse("<start@fuzz.example>", 20, "+", a) == ADDRESS_OK);
	if (quota_resolve(&src, a, "+", res) == SOURCE_OK) {
		assert(res->nmailboxes <= RESOLVE_MAX_MAILBOXES);
		assert(res->lookups <= RESOLVE_MAX_LOOKUPS);
		for (size_t i = 0; i < res->nmailboxes; i++)
			assert(strncmp(res->mailboxes[i].mailbox.maildir, "/var/vmail/", 11) == 0);
	}
	free(a);
	free(res);
	return 0;
}
