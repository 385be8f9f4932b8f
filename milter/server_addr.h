/*
 * server_addr.h - one entry of a server list (mysql.servers): "host:port",
 * "[IPv6]:port" or "unix:/absolute/path".  A pure parser, shared by the
 * configuration check and the source that connects.  Thread-safe.
 */
#ifndef MXGATE_SERVER_ADDR_H
#define MXGATE_SERVER_ADDR_H

#include <stdbool.h>

#define SERVER_ADDR_HOST_MAX	255	/* a DNS name; an IPv6 literal is shorter */
#define SERVER_ADDR_PATH_MAX	107	/* sun_path less its NUL */

struct server_addr {
	char	host[SERVER_ADDR_HOST_MAX + 1];	/* without brackets; "" for a socket */
	unsigned port;				/* 1..65535; 0 for a socket */
	char	socket[SERVER_ADDR_PATH_MAX + 1];	/* "" for TCP */
};

/*
 * Parse spec into out.  False, with out unspecified, when spec is none of
 * the three forms: a port outside 1..65535 or missing, an empty host, a
 * bare IPv6 address (without brackets), a bracketed one that is not IPv6,
 * a relative socket path, a space or control byte anywhere, or too long.
 */
bool	server_addr_parse(const char *spec, struct server_addr *out);

#endif
