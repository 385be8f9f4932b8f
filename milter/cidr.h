/*
 * cidr.h - IPv4/IPv6 network prefixes: parsing and matching.
 *
 * Contract: pure functions; an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is matched as the IPv4 address it carries.  Thread-safe, no allocation
 * except in cidr_list_add().
 */
#ifndef MXGATE_CIDR_H
#define MXGATE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ipaddr {
	int	family;			/* AF_INET, AF_INET6 or AF_UNSPEC */
	uint8_t	bytes[16];		/* network order; 4 used for AF_INET */
};

struct cidr {
	struct ipaddr net;
	unsigned prefix;
};

struct cidr_list {
	struct cidr *items;
	size_t	count;
};

/* Parse "a.b.c.d[/n]" or "x::y[/n]"; false on any syntax error. */
bool	cidr_parse(const char *text, struct cidr *out);

/* Parse a bare address (no prefix); false on error. */
bool	ipaddr_parse(const char *text, struct ipaddr *out);

/* Parse an RFC 5321 address literal of len bytes, "[a.b.c.d]" or "[IPv6:x::y]" (tag in any case); false on error. */
bool	ipaddr_parse_literal(const char *text, size_t len, struct ipaddr *out);

/* True when a and b are the same address (AF_UNSPEC equals nothing). */
bool	ipaddr_equal(const struct ipaddr *a, const struct ipaddr *b);

/* Fill from a socket address; AF_UNSPEC for NULL or non-IP families. */
void	ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out);

/* Print into buf (INET6_ADDRSTRLEN bytes at least); "unknown" for AF_UNSPEC. */
void	ipaddr_format(const struct ipaddr *addr, char *buf, size_t size);

/* Zero every bit past the first prefix bits. */
void	ipaddr_mask(struct ipaddr *addr, unsigned prefix);

/* True when addr lies inside net. */
bool	cidr_match(const struct cidr *net, const struct ipaddr *addr);

/* True when addr lies inside any network of the list. */
bool	cidr_list_match(const struct cidr_list *list, const struct ipaddr *addr);

/* Append a copy of net; false when out of memory. */
bool	cidr_list_add(struct cidr_list *list, const struct cidr *net);

void	cidr_list_free(struct cidr_list *list);

#endif
