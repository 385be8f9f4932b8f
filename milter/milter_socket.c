/*
 * milter_socket.c - parse milter socket specs (see milter_socket.h).
 */
#include "milter_socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SPELLINGS "inet:PORT@HOST, inet6:PORT@HOST or unix:/PATH"

static bool
fail(char *why, size_t why_len, const char *spec, const char *reason)
{
	if (why_len > 0)
		snprintf(why, why_len, "\"%s\" is not a milter socket (%s); want " SPELLINGS, spec, reason);
	return false;
}

/* "PORT[@HOST]" of an inet or inet6 spec. */
static bool
parse_inet(const char *spec, const char *where, struct milter_socket *out, char *why, size_t why_len)
{
	const char *at = strchr(where, '@');
	size_t	digits = at ? (size_t)(at - where) : strlen(where);
	const char *host;
	size_t	hlen;
	char   *end;
	unsigned long port;

	if (digits == 0 || digits > 5 || strspn(where, "0123456789") != digits)
		return fail(why, why_len, spec, "the port is not a number");
	port = strtoul(where, &end, 10);
	if (port < 1 || port > 65535)
		return fail(why, why_len, spec, "the port is not between 1 and 65535");
	out->port = (unsigned)port;
	out->host[0] = '\0';
	if (at == NULL)
		return true;
	host = at + 1;
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		host++, hlen -= 2;
	if (hlen == 0)
		return fail(why, why_len, spec, "the host after '@' is empty");
	if (hlen >= sizeof(out->host))
		return fail(why, why_len, spec, "the host is too long");
	if (memchr(host, '@', hlen) != NULL || strpbrk(host, " \t\r\n/") != NULL)
		return fail(why, why_len, spec, "the host is not a name or an address");
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	return true;
}

bool
milter_socket_parse(const char *spec, struct milter_socket *out, char *why, size_t why_len)
{
	const char *path = NULL;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0')
		return fail(why, why_len, spec ? spec : "", "empty");
	if (strncasecmp(spec, "inet:", 5) == 0) {
		out->family = MILTER_SOCKET_INET;
		return parse_inet(spec, spec + 5, out, why, why_len);
	}
	if (strncasecmp(spec, "inet6:", 6) == 0) {
		out->family = MILTER_SOCKET_INET6;
		return parse_inet(spec, spec + 6, out, why, why_len);
	}
	if (strncasecmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncasecmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path == NULL)
		return fail(why, why_len, spec, "unknown kind of socket");
	out->family = MILTER_SOCKET_UNIX;
	if (path[0] != '/')
		return fail(why, why_len, spec, "the path is not absolute");
	if (strlen(path) >= sizeof(out->path))
		return fail(why, why_len, spec, "the path is too long for a unix socket");
	strcpy(out->path, path);
	return true;
}

void
milter_socket_format(const struct milter_socket *s, char *buf, size_t len)
{
	switch (s->family) {
	case MILTER_SOCKET_UNIX:
		snprintf(buf, len, "unix:%s", s->path);
		break;
	case MILTER_SOCKET_INET:
	case MILTER_SOCKET_INET6:
		snprintf(buf, len, "%s:%u%s%s", s->family == MILTER_SOCKET_INET ? "inet" : "inet6",
			 s->port, s->host[0] ? "@" : "", s->host);
		break;
	}
}

int
milter_socket_unix_claim(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int	fd, busy;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("milter socket %s: exists and is not a socket", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	strcpy(sun.sun_path, path);
	/* Left by an earlier run, unless a process still answers on it. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		log_error("milter socket %s: %s", path, strerror(errno));
		return -1;
	}
	busy = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	if (busy) {
		log_error("milter socket %s: another process is listening on it", path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		log_error("milter socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
