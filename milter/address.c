/*
 * address.c - parse RCPT TO addresses into Postfix's lookup form (see
 * address.h for the rules); quota_resolve.c resolves them.
 *
 * Parsing follows Postfix: the local part is unquoted (internal form),
 * then the lookup key is the external form again, quoted only when it is
 * not an RFC 822 dot-string (quote_822_local), lower-cased as Postfix
 * folds every table key.  Bytes >= 0x80 pass (SMTPUTF8); control bytes,
 * NUL, unbalanced quotes or brackets and domain literals are refused.
 * Thread-safety: no shared state.
 */
#include "address.h"

#include <string.h>

void
address_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* A byte that never stands in an address: C0 controls and DEL. */
static bool
is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* RFC 822 specials that an unquoted local part may not hold. */
static bool
is_special(unsigned char c)
{
	return c == ' ' || c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
	    c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']';
}

/* True when local (internal form) is an RFC 822 dot-string (quote_822_local). */
static bool
is_dot_string(const char *local)
{
	size_t	len = strlen(local);

	if (len == 0 || local[0] == '.' || local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];

		if ((c == '.' && local[i + 1] == '.') || is_control(c) || is_special(c))
			return false;
	}
	return true;
}

/* The external form of an internal local part into buf; false when it does not fit. */
static bool
quote_local(const char *local, char *buf, size_t size)
{
	size_t	n = 0;

	if (is_dot_string(local)) {
		if (strlen(local) >= size)
			return false;
		strcpy(buf, local);
		return true;
	}
	if (size < 3)
		return false;
	buf[n++] = '"';
	for (; *local; local++) {
		if (n + 4 > size)
			return false;
		if (*local == '"' || *local == '\\')
			buf[n++] = '\\';
		buf[n++] = *local;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return true;
}

/* True for Postfix's reserved local parts that are never split (split_addr). */
static bool
never_split(const char *local, const char *delimiters)
{
	size_t	len = strlen(local);

	if (strcmp(local, "postmaster") == 0 || strcmp(local, "mailer-daemon") == 0 ||
	    strcmp(local, "double-bounce") == 0)
		return true;
	/* owner_request_special (default yes) when '-' is a delimiter. */
	if (strchr(delimiters, '-') != NULL &&
	    (strncmp(local, "owner-", 6) == 0 ||
	     (len > 8 && strcmp(local + len - 8, "-request") == 0)))
		return true;
	return false;
}

void
address_display(const char *text, size_t len, const char **start, size_t *out_len)
{
	if (len >= 2 && text[0] == '<' && text[len - 1] == '>') {
		text++;
		len -= 2;
	}
	*start = text;
	*out_len = len;
}

const char *
address_status_name(enum address_status status)
{
	switch (status) {
	case ADDRESS_OK:
		return "ok";
	case ADDRESS_EMPTY:
		return "empty address";
	case ADDRESS_NO_DOMAIN:
		return "no domain";
	case ADDRESS_TOO_LONG:
		return "too long";
	case ADDRESS_INVALID:
	default:
		return "invalid syntax";
	}
}

/* Unquote the local part at *pp (stopping at '@' or end) into local. */
static enum address_status
parse_local(const char **pp, const char *end, char *local)
{
	const char *p = *pp;
	size_t	n = 0;

	if (p < end && *p == '"') {
		for (p++;;) {
			unsigned char c;

			if (p == end)
				return ADDRESS_INVALID;	/* unterminated quote */
			c = (unsigned char)*p++;
			if (c == '"')
				break;
			if (c == '\\') {
				if (p == end)
					return ADDRESS_INVALID;
				c = (unsigned char)*p++;
			}
			if (is_control(c))
				return ADDRESS_INVALID;
			if (n + 1 >= ADDRESS_LOCAL_MAX)
				return ADDRESS_TOO_LONG;
			local[n++] = (char)c;
		}
		if (p < end && *p != '@')
			return ADDRESS_INVALID;	/* "a"b@x */
	} else {
		for (; p < end && *p != '@'; p++) {
			unsigned char c = (unsigned char)*p;

			if (is_control(c) || (is_special(c) && c != '@'))
				return ADDRESS_INVALID;
			if (n + 1 >= ADDRESS_LOCAL_MAX)
				return ADDRESS_TOO_LONG;
			local[n++] = (char)c;
		}
	}
	local[n] = '\0';
	*pp = p;
	return n == 0 ? ADDRESS_INVALID : ADDRESS_OK;
}

/* Copy and check the domain p..end into domain (lower-cased, one trailing dot dropped). */
static enum address_status
parse_domain(const char *p, const char *end, char *domain)
{
	size_t	len = (size_t)(end - p);

	if (len > 0 && p[len - 1] == '.')
		len--;			/* one trailing dot, not two */
	if (len == 0)
		return ADDRESS_NO_DOMAIN;
	if (p[len - 1] == '.')
		return ADDRESS_INVALID;
	if (len >= ADDRESS_DOMAIN_MAX)
		return ADDRESS_TOO_LONG;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_' || c == '.' || c >= 0x80))
			return ADDRESS_INVALID;	/* domain literals, '@', controls */
		if (c == '.' && (i == 0 || p[i - 1] == '.'))
			return ADDRESS_INVALID;
		domain[i] = (char)c;
	}
	domain[len] = '\0';
	return ADDRESS_OK;
}

/* Join local@domain into buf; false when it does not fit. */
static bool
join(char *buf, size_t size, const char *local, const char *domain)
{
	size_t	l = strlen(local), d = strlen(domain);

	if (l + 1 + d >= size)
		return false;
	memcpy(buf, local, l);
	buf[l] = '@';
	memcpy(buf + l + 1, domain, d + 1);
	return true;
}

/* Fill out from an internal-form local part and a checked domain. */
static enum address_status
address_build(char *local, const char *domain, const char *delimiters, struct address *out)
{
	char	quoted[ADDRESS_LOCAL_MAX];
	size_t	split;

	address_lower(local);
	memset(out, 0, sizeof(*out));
	strcpy(out->domain, domain);
	if (!quote_local(local, quoted, sizeof(quoted)) ||
	    !join(out->full, sizeof(out->full), quoted, domain))
		return ADDRESS_TOO_LONG;
	/* split_addr: at the first delimiter, unless reserved or the rest would be empty. */
	split = strcspn(local, delimiters);
	if (delimiters[0] != '\0' && split > 0 && local[split] != '\0' &&
	    !never_split(local, delimiters)) {
		out->delim = local[split];
		strcpy(out->ext, local + split + 1);
		local[split] = '\0';
	}
	if (!quote_local(local, out->local, sizeof(out->local)) ||
	    !join(out->base, sizeof(out->base), out->local, domain))
		return ADDRESS_TOO_LONG;
	return ADDRESS_OK;
}

enum address_status
address_parse(const char *text, size_t len, const char *delimiters, struct address *out)
{
	const char *p = text, *end = text + len;
	char	local[ADDRESS_LOCAL_MAX], domain[ADDRESS_DOMAIN_MAX];
	enum address_status status;

	memset(out, 0, sizeof(*out));
	if (delimiters == NULL)
		delimiters = "";
	if (memchr(text, '\0', len) != NULL)
		return ADDRESS_INVALID;
	if (len > 0 && (p[0] == '<' || end[-1] == '>')) {
		if (len < 2 || p[0] != '<' || end[-1] != '>')
			return ADDRESS_INVALID;
		p++;
		end--;
	}
	if (p == end)
		return ADDRESS_EMPTY;
	/* A source route "@a,@b:" is obsolete and ignored, as Postfix does. */
	if (*p == '@') {
		const char *colon = memchr(p, ':', (size_t)(end - p));

		if (colon == NULL)
			return ADDRESS_INVALID;
		p = colon + 1;
		if (p == end)
			return ADDRESS_EMPTY;
	}
	if ((status = parse_local(&p, end, local)) != ADDRESS_OK)
		return status;
	if (p == end)
		return ADDRESS_NO_DOMAIN;
	p++;			/* the '@' */
	if ((status = parse_domain(p, end, domain)) != ADDRESS_OK)
		return status;
	return address_build(local, domain, delimiters, out);
}
