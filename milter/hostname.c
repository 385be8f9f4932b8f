/*
 * hostname.c - HELO/EHLO name classifier, bit-compatible with Postfix 3.7.
 *
 * The rules are those of Postfix 3.7.11 (what Debian 12 ships), re-stated
 * here from its sources rather than copied:
 *   src/smtpd/smtpd_check.c   dup_if_truncate(), reject_invalid_hostaddr(),
 *                             reject_invalid_hostname(),
 *                             reject_non_fqdn_hostname(), and the dispatch
 *                             that sends a name starting with '[' to
 *                             reject_invalid_hostaddr() under both
 *                             restrictions;
 *   src/util/valid_hostname.c valid_hostname(), valid_hostaddr(),
 *                             valid_ipv4_hostaddr(), valid_ipv6_hostaddr();
 *   src/global/valid_mailhost_addr.c   the case-blind "IPv6:" prefix;
 *   src/util/valid_utf8_hostname.c     without SMTPUTF8 it is plain
 *                             valid_hostname().
 *
 * Postfix works on NUL-terminated strings; here every input is counted, so
 * "the end of the string" is len, and a NUL byte is just one more invalid
 * character.  Character classes are ASCII-only and locale-blind, as
 * Postfix's ISALNUM()/ISDIGIT() are (they test ISASCII first).
 *
 * Thread-safety: pure functions without state or allocation.
 */
#include "hostname.h"

#include <string.h>

#define HOSTNAME_MAX	255	/* RFC 1035, Postfix VALID_HOSTNAME_LEN */
#define LABEL_MAX	63	/* RFC 1035, Postfix VALID_LABEL_LEN */
#define IPV6_TAG_LEN	5	/* strlen("IPv6:"), RFC 5321 literal tag */

/* ASCII digit, whatever the locale. */
static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* ASCII letter or digit, whatever the locale. */
static bool
is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII hexadecimal digit. */
static bool
is_xdigit(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

size_t
hostname_strip_dot(const char *name, size_t len)
{
	if (len > 1 && name[len - 1] == '.' && name[len - 2] != '.')
		return len - 1;
	return len;
}

bool
hostname_valid(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t	label = 0;		/* bytes in the current label so far */
	bool	non_numeric = false;
	size_t	i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		bool	last = i + 1 == len;

		if (is_alnum(s[i]) || s[i] == '_') {
			if (++label > LABEL_MAX)
				return false;
			if (!is_digit(s[i]))
				non_numeric = true;
		} else if (s[i] == '.') {
			if (label == 0 || last)
				return false;
			label = 0;
		} else if (s[i] == '-') {
			/* Since Postfix 2.7 a hyphen makes a name non-numeric. */
			non_numeric = true;
			if (++label == 1 || last || s[i + 1] == '.')
				return false;
		} else
			return false;
	}
	return non_numeric && len <= HOSTNAME_MAX;
}

/* True if addr holds nothing but '0' and '.' (Postfix allows 0.0.0.0). */
static bool
all_zero_dots(const unsigned char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (s[i] != '0' && s[i] != '.')
			return false;
	return true;
}

bool
hostname_valid_ipv4(const char *addr, size_t len)
{
	const unsigned char *s = (const unsigned char *)addr;
	bool	in_byte = false;
	int	count = 0, val = 0;
	size_t	i;

	for (i = 0; i < len; i++) {
		if (is_digit(s[i])) {
			if (!in_byte) {
				in_byte = true;
				val = 0;
				count++;
			}
			/* Leading zeros are fine: "001" is 1. */
			val = val * 10 + (s[i] - '0');
			if (val > 255)
				return false;
		} else if (s[i] == '.') {
			if (!in_byte || i + 1 == len)
				return false;
			if (count == 1 && val == 0 && !all_zero_dots(s, len))
				return false;
			in_byte = false;
		} else
			return false;
	}
	return count == 4;
}

bool
hostname_valid_ipv6(const char *addr, size_t len)
{
	const unsigned char *s = (const unsigned char *)addr;
	int	field = 0;		/* colons seen */
	int	null_field = 0;		/* field number where "::" is, or 0 */
	size_t	run = 0;		/* hex digits just before position i */
	size_t	i = 0;

	/*
	 * Postfix does not count fields: "1:2:3" passes.  It only wants 2..7
	 * colons, at most one "::", hex runs of 1..4 digits, and lets an
	 * IPv4 tail start after the 2nd..6th colon.
	 */
	for (;;) {
		if (i == len)
			return field >= 2 && (run > 0 || null_field == field - 1);
		if (s[i] == '.') {
			if (field < 2 || field > 6)
				return false;
			return hostname_valid_ipv4(addr + i - run, len - i + run);
		}
		if (s[i] == ':') {
			/* A leading single ':' is refused only before alnum. */
			if (field == 0 && run == 0 && i + 1 < len &&
			    is_alnum(s[i + 1]))
				return false;
			if (++field > 7)
				return false;
			i++;
			run = 0;
			if (i < len && s[i] == ':') {
				if (null_field > 0)
					return false;
				null_field = field;
			}
			continue;
		}
		run = 0;
		while (i + run < len && is_xdigit(s[i + run]))
			run++;
		if (run == 0 || run > 4)
			return false;
		i += run;
	}
}

/* True if s starts with "IPv6:" in any case (Postfix uses strncasecmp). */
static bool
has_ipv6_tag(const char *s, size_t len)
{
	size_t	i;

	if (len < IPV6_TAG_LEN)
		return false;
	for (i = 0; i < IPV6_TAG_LEN; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)"ipv6:"[i])
			return false;
	}
	return true;
}

/* Postfix valid_hostaddr(): IPv6 syntax if there is a ':', else IPv4. */
static bool
valid_hostaddr(const char *addr, size_t len)
{
	if (len == 0)
		return false;
	if (memchr(addr, ':', len) != NULL)
		return hostname_valid_ipv6(addr, len);
	return hostname_valid_ipv4(addr, len);
}

/* Postfix reject_invalid_hostaddr() on a name that starts with '['. */
static bool
literal_ok(const char *name, size_t len)
{
	/* Brackets are removed only as a pair; "[1.2.3.4" is tested as is. */
	if (len > 2 && name[len - 1] == ']') {
		name++;
		len -= 2;
	}
	if (has_ipv6_tag(name, len))
		return hostname_valid_ipv6(name + IPV6_TAG_LEN,
		    len - IPV6_TAG_LEN);
	return hostname_valid_ipv4(name, len);
}

/*
 * Postfix reject_non_fqdn_hostname(), without SMTPUTF8: it tests
 * valid_hostname() before the dot, so on its own it refuses a malformed
 * name too ("a..b" is not an FQDN either).
 */
static bool
fqdn_ok(const char *name, size_t len)
{
	len = hostname_strip_dot(name, len);
	return hostname_valid(name, len) && memchr(name, '.', len) != NULL;
}

/* Postfix reject_invalid_hostname(): a bare address passes ("back compat"). */
static bool
syntax_ok(const char *name, size_t len)
{
	len = hostname_strip_dot(name, len);
	return hostname_valid(name, len) || valid_hostaddr(name, len);
}

enum hostname_verdict
hostname_classify(const char *name, size_t len, bool reject_non_fqdn,
    bool reject_invalid)
{
	bool	literal = len > 0 && name[0] == '[';

	if (literal) {
		/* Both restrictions send a '[' name to the same address check. */
		if ((reject_non_fqdn || reject_invalid) && !literal_ok(name, len))
			return HOSTNAME_BAD_LITERAL;
		return HOSTNAME_OK;
	}
	/* The syntax check first, then the FQDN check, as sites order them. */
	if (reject_invalid && !syntax_ok(name, len))
		return HOSTNAME_INVALID;
	if (reject_non_fqdn && !fqdn_ok(name, len))
		return HOSTNAME_NOT_FQDN;
	return HOSTNAME_OK;
}

bool
hostname_same(const char *a, size_t alen, const char *b, size_t blen)
{
	alen = hostname_strip_dot(a, alen);
	blen = hostname_strip_dot(b, blen);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return true;
}
