/*
 * metrics_parse.c - the `metrics` key's address (metrics.h), apart from
 * the HTTP side so that the configuration loader (and mxgatectl, which
 * links it) can check it without libmicrohttpd.  Pure.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Fill why and return false. */
static bool
parse_fail(char *why, size_t why_size, const char *reason)
{
	if (why_size > 0)
		snprintf(why, why_size, "%s", reason);
	return false;
}

bool
metrics_parse(const char *spec, struct sockaddr_storage *out, socklen_t *len, char *why,
	      size_t why_size)
{
	char	host[INET6_ADDRSTRLEN];
	const char *p, *h;
	size_t	digits, hlen;
	unsigned long port;
	bool	v6;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(spec, "inet:", 5) == 0)
		v6 = false, p = spec + 5;
	else if (strncasecmp(spec, "inet6:", 6) == 0)
		v6 = true, p = spec + 6;
	else
		return parse_fail(why, why_size, "not an inet: or inet6: address");
	digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 5 || p[digits] != '@')
		return parse_fail(why, why_size, "no PORT@ADDRESS");
	port = strtoul(p, NULL, 10);
	if (port < 1 || port > 65535)
		return parse_fail(why, why_size, "the port is not between 1 and 65535");
	h = p + digits + 1;
	hlen = strlen(h);
	if (v6 && hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']')
		h++, hlen -= 2;
	if (hlen == 0 || hlen >= sizeof(host))
		return parse_fail(why, why_size, "the address is empty or too long");
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return parse_fail(why, why_size, "the address is not a numeric IPv6 address");
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return parse_fail(why, why_size, "the address is not a numeric IPv4 address");
		*len = sizeof(*sin);
	}
	return true;
}
