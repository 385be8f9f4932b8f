/*
 * address.h - envelope recipient addresses: parse what RCPT TO carried
 * into Postfix's lookup form, and resolve it as Postfix's virtual(5)
 * does, over a quota_source, to the local mailboxes that would receive it.
 *
 * Lookup form: the RFC 5321 quoting removed ("bob"@x is bob@x), the whole
 * address lower-cased in ASCII (Postfix folds every table key, local part
 * included), one trailing dot of the domain dropped, and the extension
 * split off at the first recipient_delimiter character (never for
 * postmaster, mailer-daemon, double-bounce, nor owner-X / X-request when
 * '-' is a delimiter, nor when the local part would be empty).
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
 * Contract: any bytes of any length parse or are refused (ADDRESS_*
 * status), never overflow.  Resolution keeps SOURCE_ERROR apart from an
 * address that simply has no local mailbox (nmailboxes 0).
 * Thread-safety: pure functions; the source must be thread-safe.
 */
#ifndef MXGATE_ADDRESS_H
#define MXGATE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "quota_source.h"

#define ADDRESS_LOCAL_MAX	256	/* local part bytes + NUL (RFC 5321: 64) */
#define ADDRESS_DOMAIN_MAX	256	/* domain bytes + NUL (RFC 5321: 255) */
#define ADDRESS_MAX		(ADDRESS_LOCAL_MAX + ADDRESS_DOMAIN_MAX)

#define RESOLVE_MAX_DEPTH	10	/* nested aliases */
#define RESOLVE_MAX_ADDRESSES	64	/* distinct addresses looked at */
#define RESOLVE_MAX_LOOKUPS	256	/* source calls */
#define RESOLVE_MAX_MAILBOXES	16	/* local mailboxes of one recipient */

enum address_status {
	ADDRESS_OK,
	ADDRESS_EMPTY,			/* "<>" or nothing */
	ADDRESS_NO_DOMAIN,		/* no '@', or nothing after it */
	ADDRESS_INVALID,		/* syntax, control bytes, NUL, a domain literal */
	ADDRESS_TOO_LONG,		/* local part or domain over the limits above */
};

/* One address in lookup form. */
struct address {
	char	full[ADDRESS_MAX];	/* local[+ext]@domain */
	char	base[ADDRESS_MAX];	/* local@domain (== full without an extension) */
	char	local[ADDRESS_LOCAL_MAX];	/* without the extension */
	char	ext[ADDRESS_LOCAL_MAX];	/* "" when none */
	char	delim;			/* the delimiter that split it, '\0' when none */
	char	domain[ADDRESS_DOMAIN_MAX];
};

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
};

/*
 * Parse len bytes of an RCPT TO argument ("<a@b>", "a@b", with or without
 * a source route) with the recipient_delimiter set delimiters.
 */
enum address_status address_parse(const char *text, size_t len, const char *delimiters,
				   struct address *out);

/* The address as the client wrote it, without one pair of <> (for replies). */
void	address_display(const char *text, size_t len, const char **start, size_t *out_len);

/* A short word for a status, for logs. */
const char *address_status_name(enum address_status status);

/*
 * Resolve addr over src.  SOURCE_OK with out->nmailboxes 0 means no local
 * mailbox (no opinion); SOURCE_ERROR when any lookup failed.
 */
enum source_status address_resolve(struct quota_source *src, const struct address *addr,
				   const char *delimiters, struct resolution *out);

#endif
