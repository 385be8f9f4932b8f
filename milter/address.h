/*
 * address.h - envelope recipient addresses: parse what RCPT TO carried
 * into Postfix's lookup form (quota_resolve.h resolves it to mailboxes).
 *
 * Lookup form: the RFC 5321 quoting removed ("bob"@x is bob@x), the whole
 * address lower-cased in ASCII (Postfix folds every table key, local part
 * included), one trailing dot of the domain dropped, and the extension
 * split off at the first recipient_delimiter character (never for
 * postmaster, mailer-daemon, double-bounce, nor owner-X / X-request when
 * '-' is a delimiter, nor when the local part would be empty).
 *
 * Contract: any bytes of any length parse or are refused (ADDRESS_*
 * status), never overflow.
 * Thread-safety: pure functions.
 */
#ifndef MXGATE_ADDRESS_H
#define MXGATE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_LOCAL_MAX	256	/* local part bytes + NUL (RFC 5321: 64) */
#define ADDRESS_DOMAIN_MAX	256	/* domain bytes + NUL (RFC 5321: 255) */
#define ADDRESS_MAX		(ADDRESS_LOCAL_MAX + ADDRESS_DOMAIN_MAX)

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

/* ASCII lower-case in place, as Postfix folds table keys (8-bit bytes stay). */
void	address_lower(char *s);

#endif
