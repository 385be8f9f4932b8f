/*
 * server_addr.c - the server-list entry parser (server_addr.h).
 */
#include "server_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* True if s holds no space, control byte or DEL. */
static bool
is_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

/* The port after the last ':' of a TCP entry: 1..65535, digits only. */
static bool
parse_port(const char *digits, unsigned *port)
{
	size_t	n = strlen(digits);
	unsigned v = 0;

	if (n == 0 || n > 5 || strspn(digits, "0123456789") != n)
		return false;
	for (; *digits != '\0'; digits++)
		v = v * 10 + (unsigned)(*digits - '0');
	*port = v;
	return v >= 1 && v <= 65535;
}

bool
server_addr_parse(const char *spec, struct server_addr *out)
{
	const char *colon, *host = spec;
	size_t	len;

	memset(out, 0, sizeof(*out));
	if (!is_printable(spec))
		return false;
	if (strncmp(spec, "unix:", 5) == 0) {
		len = strlen(spec + 5);
		if (spec[5] != '/' || len > SERVER_ADDR_PATH_MAX)
			return false;
		memcpy(out->socket, spec + 5, len + 1);
		return true;
	}
	if ((colon = strrchr(spec, ':')) == NULL || !parse_port(colon + 1, &out->port))
		return false;
	len = (size_t)(colon - spec);
	if (spec[0] == '[') {
		struct in6_addr a;

		if (len < 3 || spec[len - 1] != ']')
			return false;
		host = spec + 1;
		len -= 2;
		if (len > SERVER_ADDR_HOST_MAX)
			return false;
		memcpy(out->host, host, len);
		return inet_pton(AF_INET6, out->host, &a) == 1;
	}
	/* A ':' left in the host is a bare IPv6 address: its port is ambiguous. */
	if (len == 0 || len > SERVER_ADDR_HOST_MAX || memchr(spec, ':', len) != NULL ||
	    memchr(spec, '[', len) != NULL || memchr(spec, ']', len) != NULL ||
	    memchr(spec, '/', len) != NULL)
		return false;
	memcpy(out->host, host, len);
	return true;
}
