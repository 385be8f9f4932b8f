/*
 * fake_source.c - the unit tests' in-memory quota_source (fake_source.h).
 */
#include "fake_source.h"

#include <stdio.h>
#include <string.h>

_Atomic unsigned fake_calls;
bool	fake_failing;

/* Find key among n rows: OK, NOT_FOUND, or ERROR for a row without value (or when failing). */
static enum source_status
fake_find(const struct fake_row *rows, size_t n, const char *key, const struct fake_row **out)
{
	fake_calls++;
	if (fake_failing)
		return SOURCE_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].key, key) == 0) {
			*out = &rows[i];
			return rows[i].value ? SOURCE_OK : SOURCE_ERROR;
		}
	}
	return SOURCE_NOT_FOUND;
}

/* A lookup whose answer is the row's value, copied into buf. */
static enum source_status
fake_text(const struct fake_row *rows, size_t n, const char *key, char *buf, size_t size)
{
	const struct fake_row *r;
	enum source_status st = fake_find(rows, n, key, &r);

	if (st == SOURCE_OK)
		snprintf(buf, size, "%s", r->value);
	return st;
}

/* quota_source_ops.alias_domain over the alias_domains table. */
static enum source_status
fake_alias_domain(struct quota_source *src, const char *domain, char *target, size_t size)
{
	const struct fake_tables *t = src->state;

	return fake_text(t->alias_domains, t->nalias_domains, domain, target, size);
}

/* quota_source_ops.alias over the aliases table. */
static enum source_status
fake_alias(struct quota_source *src, const char *address, char *list, size_t size)
{
	const struct fake_tables *t = src->state;

	return fake_text(t->aliases, t->naliases, address, list, size);
}

enum source_status
fake_source_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	const struct fake_tables *t = src->state;
	const struct fake_row *r;
	enum source_status st = fake_find(t->mailboxes, t->nmailboxes, address, &r);

	if (st != SOURCE_OK)
		return st;
	out->quota = r->quota;
	if (t->maildir_root != NULL)
		snprintf(out->maildir, sizeof(out->maildir), "%s/%s/", t->maildir_root, r->value);
	else
		snprintf(out->maildir, sizeof(out->maildir), "%s", r->value);
	return st;
}

const struct quota_source_ops fake_source_ops = {
	.name = "fake", .alias_domain = fake_alias_domain, .alias = fake_alias,
	.mailbox = fake_source_mailbox, .close = NULL,
};
