/*
 * milter_socket.h - the one parser of milter socket specs, for the
 * configuration check, the command line, privileges and both engines.
 *
 * Spellings accepted (those of libmilter's smfi_setconn()):
 *   inet:PORT[@HOST]   inet6:PORT[@HOST]   (HOST may be [bracketed])
 *   unix:PATH   local:PATH   /PATH        (PATH absolute)
 * The family word is case-insensitive.  Pure functions but for
 * milter_socket_unix_claim(), which looks at the file system.
 */
#ifndef MXGATE_MILTER_SOCKET_H
#define MXGATE_MILTER_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

enum milter_socket_family { MILTER_SOCKET_UNIX, MILTER_SOCKET_INET, MILTER_SOCKET_INET6 };

#define MILTER_SOCKET_HOST_MAX	256
#define MILTER_SOCKET_PATH_MAX	sizeof(((struct sockaddr_un *)0)->sun_path)

struct milter_socket {
	enum milter_socket_family family;
	char	path[MILTER_SOCKET_PATH_MAX];	/* unix: the socket file */
	char	host[MILTER_SOCKET_HOST_MAX];	/* inet: "" = every address */
	unsigned port;				/* inet: 1-65535 */
};

/*
 * Parse spec into *out; false with a one-line reason in why (which names
 * the spellings accepted) when it is not a socket spec.
 */
bool	milter_socket_parse(const char *spec, struct milter_socket *out, char *why, size_t why_len);

/* The canonical spelling of s ("inet:PORT@HOST", "unix:PATH"), as smfi_setconn() takes it. */
void	milter_socket_format(const struct milter_socket *s, char *buf, size_t len);

/*
 * Before a unix socket is bound: 0 when path is free (a stale socket left
 * by an earlier run is removed), -1 after logging when path exists and is
 * not a socket, or when another process still listens on it (a second
 * mxgate never takes over the first one's socket).
 */
int	milter_socket_unix_claim(const char *path);

#endif
