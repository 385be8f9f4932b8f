/*
 * mxgatectl.c - the control client (mxgatectl(8)): one request to mxgate's
 * control socket, its answer printed.
 *
 *   mxgatectl [-s SOCKET] [-c CONFIG] COMMAND [ARGS...] [--json]
 *
 * The socket is -s, else control_socket of the configuration file (-c,
 * default the one mxgate reads), else unix:/run/mxgate/control.sock.  The
 * words go joined by spaces, with "\n" (control.h has the protocol); the
 * answer is read to end of file within ANSWER_TIMEOUT_MS.  The body goes
 * to stdout, the status line to stderr unless it is 200.  Exit status: 0
 * for a 2xx answer, 1 for a 4xx or 5xx one, 2 for a usage error or when
 * mxgate could not be asked (no socket, no answer, an answer that is not
 * one).  Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "control.h"
#include "control_io.h"
#include "milter_socket.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG		SYSCONFDIR "/mxgate.conf"
#define DEFAULT_SOCKET		"unix:/run/mxgate/control.sock"
#define ANSWER_TIMEOUT_MS	5000
#define ANSWER_MAX		(CONTROL_OUT_MAX + 512)	/* a body and its status line */

struct options {
	const char *socket, *config;
	bool	json;
	int	argc;			/* the command and its words */
	char  **argv;
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mxgatectl [-s SOCKET] [-c CONFIG] COMMAND [ARGS...] [--json]\n"
		"       mxgatectl help    lists the commands\n");
	exit(2);
}

/* Options come before the command; "--json" may stand anywhere. */
static void
parse_args(int argc, char **argv, struct options *o)
{
	int	i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			o->json = true;
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			o->socket = argv[++i];
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			o->config = argv[++i];
		else {
			if (strcmp(argv[i], "-h") != 0 && strcmp(argv[i], "--help") != 0)
				fprintf(stderr, "mxgatectl: unknown option or missing value: %s\n", argv[i]);
			usage();
		}
	}
	if (i == argc)
		usage();
	o->argc = argc - i;
	o->argv = argv + i;
}

static void
report_stderr(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "mxgatectl: %s\n", message);
}

/* The socket to ask: -s, else the configuration's control_socket, else the default; *cfg holds what it points into. */
static const char *
socket_spec(const struct options *o, struct config **cfg)
{
	const char *path = o->config;

	*cfg = NULL;
	if (o->socket != NULL)
		return o->socket;
	if (path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
		path = DEFAULT_CONFIG;
	if (path == NULL)
		return DEFAULT_SOCKET;
	if ((*cfg = config_load(path, report_stderr, NULL)) == NULL) {
		fprintf(stderr, "mxgatectl: cannot read %s; name the socket with -s\n", path);
		exit(2);
	}
	return (*cfg)->control_socket[0] ? (*cfg)->control_socket : DEFAULT_SOCKET;
}

/* Connected to the unix socket path before the deadline (a full backlog is waited for); -1 with errno. */
static int
connect_unix(const char *path, uint64_t deadline_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int	fd, err;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		if (errno != EAGAIN || clock_ms() >= deadline_ms) {
			err = errno == EAGAIN ? ETIMEDOUT : errno;
			close(fd);
			errno = err;
			return -1;
		}
		usleep(20000);	/* the server serves one at a time: its queue is full */
	}
	return fd;
}

/* The request line: the words joined by spaces, --json if asked before the command, "\n". */
static char *
request_line(const struct options *o, size_t *len)
{
	size_t	size = sizeof(" --json\n");
	char   *line, *p;

	for (int i = 0; i < o->argc; i++)
		size += strlen(o->argv[i]) + 1;
	if ((p = line = malloc(size)) == NULL)
		return NULL;
	for (int i = 0; i < o->argc; i++)
		p += sprintf(p, "%s%s", i ? " " : "", o->argv[i]);
	p += sprintf(p, "%s\n", o->json ? " --json" : "");
	*len = (size_t)(p - line);
	return line;
}

/* Read the answer to end of file into *buf; its length, or -1 (message printed). */
static ssize_t
read_answer(int fd, const char *spec, char **buf, uint64_t deadline_ms)
{
	size_t	len = 0;
	ssize_t	n = 0;

	if ((*buf = malloc(ANSWER_MAX + 1)) == NULL) {
		fprintf(stderr, "mxgatectl: out of memory\n");
		return -1;
	}
	while (len < ANSWER_MAX &&
	       (n = control_io_read(fd, *buf + len, ANSWER_MAX - len, deadline_ms)) > 0)
		len += (size_t)n;
	if (len < ANSWER_MAX && n != 0) {
		if (n == CONTROL_IO_TIMEOUT)
			fprintf(stderr, "mxgatectl: %s: no complete answer within %d s\n", spec,
				ANSWER_TIMEOUT_MS / 1000);
		else
			fprintf(stderr, "mxgatectl: %s: %s\n", spec, strerror(errno));
		return -1;
	}
	(*buf)[len] = '\0';
	return (ssize_t)len;
}

/* Print the answer; the exit status it gives. */
static int
print_answer(const char *spec, char *answer, size_t len)
{
	char   *nl = memchr(answer, '\n', len);
	int	status;

	if (nl == NULL || nl - answer < 4 || strspn(answer, "0123456789") != 3 || answer[3] != ' ') {
		fprintf(stderr, "mxgatectl: %s: the answer is not a status line and a body\n", spec);
		return 2;
	}
	*nl = '\0';
	status = atoi(answer);
	fwrite(nl + 1, 1, len - (size_t)(nl + 1 - answer), stdout);
	if (status != 200)
		fprintf(stderr, "mxgatectl: %s\n", answer);
	if (fflush(stdout) != 0)
		return 2;
	return status / 100 == 2 ? 0 : status / 100 == 4 || status / 100 == 5 ? 1 : 2;
}

/* Send line to the socket at path and read the answer into *answer: its length, or -1 (message printed). */
static ssize_t
ask(const char *path, const char *line, size_t len, char **answer)
{
	uint64_t deadline = clock_ms() + ANSWER_TIMEOUT_MS;
	ssize_t	got = -1;
	int	fd;

	if ((fd = connect_unix(path, deadline)) < 0) {
		fprintf(stderr, "mxgatectl: cannot connect to the control socket %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	errno = 0;
	if (!control_io_write(fd, line, len, deadline))
		fprintf(stderr, "mxgatectl: %s: cannot send the request: %s\n", path,
			errno ? strerror(errno) : "timed out");
	else {
		shutdown(fd, SHUT_WR);
		got = read_answer(fd, path, answer, deadline);
	}
	close(fd);
	return got;
}

int
main(int argc, char **argv)
{
	struct options o;
	struct config *cfg;
	struct milter_socket sock;
	char	why[300], *line, *answer = NULL;
	const char *spec;
	size_t	len;
	ssize_t	got;
	int	status = 2;

	parse_args(argc, argv, &o);
	spec = socket_spec(&o, &cfg);
	if (!milter_socket_parse(spec, &sock, why, sizeof(why)) || sock.family != MILTER_SOCKET_UNIX) {
		fprintf(stderr, "mxgatectl: control socket \"%s\" is not unix:/PATH\n", spec);
		return 2;
	}
	if ((line = request_line(&o, &len)) == NULL) {
		fprintf(stderr, "mxgatectl: out of memory\n");
		return 2;
	}
	if ((got = ask(sock.path, line, len, &answer)) >= 0)
		status = print_answer(sock.path, answer, (size_t)got);
	free(answer);
	free(line);
	config_release(cfg);
	return status;
}
