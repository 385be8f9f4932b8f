/*
 * hostname.h - HELO/EHLO name classifier, bit-compatible with Postfix 3.7.
 *
 * Contract: hostname_classify() gives the verdict Postfix 3.7 reaches with
 * "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname" (in that
 * order) for a client that did not ask for SMTPUTF8.  Inputs are counted
 * byte strings: any byte may occur, and NUL or a non-ASCII byte is simply an
 * invalid character.  Pure functions: thread-safe, no allocation, any length.
 */
#ifndef MXGATE_HOSTNAME_H
#define MXGATE_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

enum hostname_verdict {
	HOSTNAME_OK = 0,	/* passes both restrictions */
	HOSTNAME_NOT_FQDN,	/* 504 5.5.2 ... need fully-qualified hostname */
	HOSTNAME_INVALID,	/* 501 5.5.2 ... Invalid name */
	HOSTNAME_BAD_LITERAL,	/* 501 5.5.2 ... invalid ip address */
};

/*
 * Classify a HELO argument of len bytes as Postfix does with
 * "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname", each
 * restriction enabled by its flag: a malformed name is HOSTNAME_INVALID,
 * a well-formed one without a dot (or all digits and dots, a bare address
 * included) HOSTNAME_NOT_FQDN.  With reject_invalid off, a malformed name
 * is HOSTNAME_NOT_FQDN, as Postfix's reject_non_fqdn_helo_hostname alone
 * refuses every name that is not a valid host name.
 */
enum hostname_verdict hostname_classify(const char *name, size_t len,
	    bool reject_non_fqdn, bool reject_invalid);

/* Postfix valid_hostname(): LDH-and-underscore labels, not all numeric. */
bool	hostname_valid(const char *name, size_t len);

/* Postfix valid_ipv4_hostaddr(): dotted quad, 0.x.x.x only as 0.0.0.0. */
bool	hostname_valid_ipv4(const char *addr, size_t len);

/* Postfix valid_ipv6_hostaddr(): hex fields, at most one "::", no "IPv6:". */
bool	hostname_valid_ipv6(const char *addr, size_t len);

/* Length once one trailing dot is dropped ("a." -> "a"; not "a..", not "."), as Postfix does. */
size_t	hostname_strip_dot(const char *name, size_t len);

/* The same name: ASCII letters in any case, one trailing dot on either ignored. */
bool	hostname_same(const char *a, size_t alen, const char *b, size_t blen);

#endif
