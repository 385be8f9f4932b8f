/*
 * cidr.c - IPv4/IPv6 network prefixes: parsing and matching.
 *
 * Parsing uses inet_pton(), which rejects every odd form (octal, short
 * dotted quads, zone ids).  A v4-mapped IPv6 address is folded to IPv4 so
 * that "127.0.0.0/8" matches a client that Postfix reports as
 * ::ffff:127.0.0.1.  Thread-safe.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Fold ::ffff:a.b.c.d to a.b.c.d. */
static void
ipaddr_unmap(struct ipaddr *addr)
{
	if (addr->family == AF_INET6 &&
	    memcmp(addr->bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(addr->bytes, addr->bytes + 12, 4);
		memset(addr->bytes + 4, 0, 12);
		addr->family = AF_INET;
	}
}

bool
ipaddr_parse(const char *text, struct ipaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, out->bytes) == 1) {
		out->family = AF_INET6;
		ipaddr_unmap(out);
		return true;
	}
	return false;
}

bool
ipaddr_parse_literal(const char *text, size_t len, struct ipaddr *out)
{
	char	buf[INET6_ADDRSTRLEN + 8];
	bool	v6;

	memset(out, 0, sizeof(*out));
	if (len < 3 || text[0] != '[' || text[len - 1] != ']')
		return false;
	text++;
	len -= 2;
	v6 = len > 5 && strncasecmp(text, "IPv6:", 5) == 0;
	if (v6)
		text += 5, len -= 5;
	if (len >= sizeof(buf) || memchr(text, '\0', len) != NULL)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	/* RFC 5321: an IPv6 literal carries its tag; a bare one is IPv4. */
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, out->bytes) != 1) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	out->family = v6 ? AF_INET6 : AF_INET;
	ipaddr_unmap(out);
	return true;
}

bool
ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b)
{
	size_t	n = a->family == AF_INET ? 4 : 16;

	return a->family != AF_UNSPEC && a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

bool
cidr_parse(const char *text, struct cidr *out)
{
	char	buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t	len = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	if (len == 0 || len >= INET6_ADDRSTRLEN)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->net.bytes) == 1) {
		out->net.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->net.bytes) == 1) {
		out->net.family = AF_INET6;
		max = 128;
	} else
		return false;
	out->prefix = max;
	if (slash) {
		const char *p = slash + 1;
		unsigned v = 0;

		if (*p == '\0' || strlen(p) > 3)
			return false;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return false;
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > max)
			return false;
		out->prefix = v;
	}
	/* "::ffff:10.0.0.0/104" means 10.0.0.0/8. */
	if (out->net.family == AF_INET6 && out->prefix >= 96 &&
	    memcmp(out->net.bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		ipaddr_unmap(&out->net);
		out->prefix -= 96;
	}
	ipaddr_mask(&out->net, out->prefix);
	return true;
}

void
ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_UNSPEC;
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

		out->family = AF_INET;
		memcpy(out->bytes, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

		out->family = AF_INET6;
		memcpy(out->bytes, &sin6->sin6_addr, 16);
		ipaddr_unmap(out);
	}
}

void
ipaddr_format(const struct ipaddr *addr, char *buf, size_t size)
{
	if (addr->family == AF_UNSPEC ||
	    inet_ntop(addr->family, addr->bytes, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "unknown");
}

void
ipaddr_mask(struct ipaddr *addr, unsigned prefix)
{
	unsigned total = addr->family == AF_INET ? 32 : 128;

	for (unsigned bit = prefix; bit < total; bit++)
		addr->bytes[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

bool
cidr_match(const struct cidr *net, const struct ipaddr *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (addr->family != net->net.family)
		return false;
	if (memcmp(addr->bytes, net->net.bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));

	return (addr->bytes[full] & mask) == net->net.bytes[full];
}

bool
cidr_list_match(const struct cidr_list *list, const struct ipaddr *addr)
{
	for (size_t i = 0; i < list->count; i++)
		if (cidr_match(&list->items[i], addr))
			return true;
	return false;
}

bool
cidr_list_add(struct cidr_list *list, const struct cidr *net)
{
	struct cidr *grown = realloc(list->items, (list->count + 1) * sizeof(*grown));

	if (grown == NULL)
		return false;
	grown[list->count++] = *net;
	list->items = grown;
	return true;
}

void
cidr_list_free(struct cidr_list *list)
{
	free(list->items);
	list->items = NULL;
	list->count = 0;
}
