/*
 * milter_listen.c - the listening socket of mxgate's own engine: a unix
 * socket (after milter_socket_unix_claim()) or TCP on IPv4/IPv6.
 */
#include "milter_builtin.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	int	fd;

	if (milter_socket_unix_claim(path) != 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);	/* milter_socket_parse() checked its length */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, SOMAXCONN) != 0) {
		log_error("milter socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int
listen_inet(int family, const char *host, unsigned port_number)
{
	char	port[16];
	struct addrinfo hints, *res = NULL, *ai;
	int	fd = -1, err, one = 1;

	snprintf(port, sizeof(port), "%u", port_number);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		log_error("milter socket %s@%s: %s", port, host, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	if (fd < 0)
		log_error("milter socket %s@%s: %s", port, host, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int
listener_open(const struct milter_socket *sock)
{
	switch (sock->family) {
	case MILTER_SOCKET_UNIX:
		return listen_unix(sock->path);
	case MILTER_SOCKET_INET:
		return listen_inet(AF_INET, sock->host, sock->port);
	case MILTER_SOCKET_INET6:
		return listen_inet(AF_INET6, sock->host, sock->port);
	}
	return -1;
}
