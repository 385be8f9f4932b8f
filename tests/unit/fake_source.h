/*
 * fake_source.h - an in-memory quota_source for the unit tests: three
 * tables of rows (aliases, alias domains, mailboxes), each looked up by
 * exact key, with a count of the lookups and a switch that makes every
 * lookup fail.
 *
 * The source's state is a struct fake_tables.  A row whose value is NULL
 * is a lookup error (SOURCE_ERROR), a key in no row SOURCE_NOT_FOUND.
 * Thread-safety: lookups may run on several threads (the count is
 * atomic); the tables and fake_failing are set while none runs.
 */
#ifndef MXGATE_TEST_FAKE_SOURCE_H
#define MXGATE_TEST_FAKE_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "quota_source.h"

struct fake_row {
	const char *key, *value;	/* value: a goto list, a target domain or a maildir */
	unsigned long long quota;	/* mailboxes only */
};

struct fake_tables {
	const struct fake_row *aliases, *alias_domains, *mailboxes;
	size_t	naliases, nalias_domains, nmailboxes;
	const char *maildir_root;	/* a mailbox's maildir is root/value/; NULL: value */
};

extern _Atomic unsigned fake_calls;	/* lookups so far, failed ones included */
extern bool fake_failing;		/* every lookup fails */

/* alias_domain, alias and mailbox over the struct fake_tables in state; no close. */
extern const struct quota_source_ops fake_source_ops;

/* The mailbox lookup alone, for a source of other ops. */
enum source_status fake_source_mailbox(struct quota_source *src, const char *address,
				       struct quota_mailbox *out);

#endif
