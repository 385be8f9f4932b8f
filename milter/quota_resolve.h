/*
 * quota_resolve.h - resolve a parsed recipient as Postfix's virtual(5)
 * does, over a quota_source, to the local mailboxes that would receive it.
 *
 * Resolution order, as Postfix with postfixadmin's maps: alias of the
 * address with its extension, alias without it, the alias domain's target
 * (the address rewritten to it and resolved again), the catch-all
 * "@domain", and only then the mailbox (with extension, then without).
 * So a catch-all takes precedence over a mailbox that has no alias row of
 * its own, as in Postfix.  Goto lists expand recursively; an address that
 * expands to itself is delivered to its own mailbox; an address seen
 * twice is dropped (Postfix's been_here); depth, expansion and mailbox
 * counts are bounded, and a resolution cut by a bound says so.
 *
 * Contract: SOURCE_ERROR is kept apart from an address that simply has no
 * local mailbox (nmailboxes 0).  quota_resolve_traced() reports every
 * lookup as it is made (mxgatectl explain shows the chain).
 * Thread-safety: no shared state; the source must be thread-safe.
 */
#ifndef MXGATE_QUOTA_RESOLVE_H
#define MXGATE_QUOTA_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"
#include "quota_source.h"

#define RESOLVE_MAX_DEPTH	10	/* nested aliases */
#define RESOLVE_MAX_ADDRESSES	64	/* distinct addresses looked at */
#define RESOLVE_MAX_LOOKUPS	256	/* source calls */
#define RESOLVE_MAX_MAILBOXES	16	/* local mailboxes of one recipient */

/* A local mailbox the recipient resolves to. */
struct resolved_mailbox {
	char	address[ADDRESS_MAX];	/* the key that found it */
	struct quota_mailbox mailbox;
};

/* Where a recipient goes. */
struct resolution {
	struct resolved_mailbox mailboxes[RESOLVE_MAX_MAILBOXES];
	size_t	nmailboxes;
	size_t	nother;			/* targets that are no local mailbox (remote, unknown) */
	bool	limited;		/* a bound cut the expansion: the list is partial */
	unsigned lookups;		/* source calls made */
	bool	out_of_memory;		/* SOURCE_ERROR because an allocation failed */
};

/* Which map a lookup of the resolution asked. */
enum resolve_step {
	RESOLVE_ALIAS,			/* the address, with or without its extension */
	RESOLVE_ALIAS_DOMAIN,		/* the domain */
	RESOLVE_CATCHALL,		/* "@domain" */
	RESOLVE_MAILBOX,		/* the address, with or without its extension */
};

/* One lookup of a resolution, as the trace function sees it (valid for the call only). */
struct resolve_lookup {
	enum resolve_step step;
	unsigned depth;			/* 0: the recipient itself; 1: an alias's target ... */
	const char *key;
	bool	asked;			/* false: the source has no such map, or the lookups ran out */
	bool	cached;			/* answered by quota.c's cache (the resolver never sets it) */
	enum source_status status;	/* NOT_FOUND when not asked */
	const char *value;		/* goto list, target domain or maildir; "" unless SOURCE_OK */
	unsigned long long quota;	/* RESOLVE_MAILBOX found: bytes, 0 = unlimited */
};

/* Told of one lookup; arg is the caller's. */
typedef void resolve_trace_fn(void *arg, const struct resolve_lookup *lookup);

/*
 * Resolve addr over src, splitting extensions of the goto lists' addresses
 * at delimiters.  SOURCE_OK with out->nmailboxes 0 means no local mailbox
 * (no opinion); SOURCE_ERROR when any lookup failed.
 */
enum source_status quota_resolve(struct quota_source *src, const struct address *addr,
				 const char *delimiters, struct resolution *out);

/* quota_resolve(), calling trace(arg, ...) after each lookup (trace NULL: none). */
enum source_status quota_resolve_traced(struct quota_source *src, const struct address *addr,
					const char *delimiters, resolve_trace_fn *trace,
					void *arg, struct resolution *out);

#endif
