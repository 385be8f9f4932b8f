/*
 * control.c - the control socket's server (control.h), its command
 * table, and the commands reload, quota and help.
 *
 * One thread serves the socket, one connection at a time: it reads one
 * request line (at most CONTROL_REQUEST_MAX bytes, within
 * CONTROL_TIMEOUT_MS), runs the command, writes the answer (within
 * CONTROL_TIMEOUT_MS again) and closes.  So a client that sends nothing,
 * or does not read, holds the thread for the timeout at most; the SMTP
 * path never waits for this thread, and nothing a client sends reaches a
 * command but through control_split()'s words.  File permissions are the
 * access control: the socket is mode 0660, owned by `user` and its group.
 *
 * Thread-safety: control_open(), control_start() and control_stop() from
 * the main thread; the commands run on the control thread and read the
 * services through their thread-safe interfaces.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "control_io.h"
#include "log.h"
#include "milter_socket.h"
#include "quota_cache.h"
#include "reload.h"

#define CONTROL_BACKLOG	16

static struct {
	int	fd;			/* listening, or -1 */
	int	wake[2];		/* control_stop() writes to wake[1]; -1 when closed */
	char	path[MILTER_SOCKET_PATH_MAX];
	dev_t	dev;			/* of the socket file made, to remove only that one */
	ino_t	ino;
	pthread_t thread;
	bool	running;
	uint64_t opened_ms;		/* clock_ms() at control_open(): start-up */
} ctl = {.fd = -1, .wake = {-1, -1}};

/* ---- the socket ---------------------------------------------------- */

/* Bind and listen on path, mode 0660 from the start; the descriptor, or -1 (logged). */
static int
listen_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t	old_mask;
	int	fd, rc;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		log_error("control socket %s: %s", path, strerror(errno));
		return -1;
	}
	old_mask = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	/* No chmod: the umask made it 0660, and a chmod by path could follow a swapped-in symlink. */
	if (rc != 0 || listen(fd, CONTROL_BACKLOG) != 0) {
		log_error("control socket %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Started as root with `user` set: the socket becomes user's, and its group's. */
static void
give_to_user(const char *path, const char *user)
{
	struct passwd *pw;

	if (*user == '\0' || geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		return;		/* main.c's drop of privileges says so, and fails */
	/* lchown: a symlink swapped in after the bind is changed itself, never its target. */
	if (lchown(path, pw->pw_uid, pw->pw_gid) != 0)
		log_warning("chown %s: %s", path, strerror(errno));
}

bool
control_open(const struct config *cfg)
{
	struct milter_socket sock;
	struct stat st;
	char	why[300];

	ctl.opened_ms = clock_ms();
	if (cfg->control_socket[0] == '\0')
		return true;
	/* config.c checked it already: this only guards against a table change. */
	if (strncasecmp(cfg->control_socket, "unix:", 5) != 0 ||
	    !milter_socket_parse(cfg->control_socket, &sock, why, sizeof(why))) {
		log_error("control_socket: \"%s\" is not unix:/PATH", cfg->control_socket);
		return false;
	}
	if (milter_socket_unix_claim(sock.path) != 0 || (ctl.fd = listen_unix(sock.path)) < 0) {
		log_error("cannot open the control socket %s", sock.path);
		return false;
	}
	snprintf(ctl.path, sizeof(ctl.path), "%s", sock.path);
	if (lstat(ctl.path, &st) == 0) {
		ctl.dev = st.st_dev;
		ctl.ino = st.st_ino;
	}
	give_to_user(ctl.path, cfg->user);
	return true;
}

const char *
control_path(void)
{
	return ctl.fd >= 0 ? ctl.path : NULL;
}

uint64_t
control_uptime_ms(void)
{
	return clock_ms() - ctl.opened_ms;
}

/* ---- one connection -------------------------------------------------- */

enum request {
	REQUEST_OK,
	REQUEST_TOO_LONG,
	REQUEST_TIMEOUT,
	REQUEST_NONE,			/* closed, or failed, before a request: no answer */
};

/* Read one line into line (its "\n" made a NUL) before the deadline. */
static enum request
read_request(int fd, char line[CONTROL_REQUEST_MAX + 1], uint64_t deadline_ms)
{
	size_t	len = 0;
	char   *nl;
	ssize_t	n;

	for (;;) {
		if (len == CONTROL_REQUEST_MAX)
			return REQUEST_TOO_LONG;
		n = control_io_read(fd, line + len, CONTROL_REQUEST_MAX - len, deadline_ms);
		if (n == CONTROL_IO_TIMEOUT)
			return REQUEST_TIMEOUT;
		if (n < 0 || (n == 0 && len == 0))
			return REQUEST_NONE;
		if (n == 0) {		/* end of file without "\n": the line is complete */
			line[len] = '\0';
			return REQUEST_OK;
		}
		if ((nl = memchr(line + len, '\n', (size_t)n)) != NULL) {
			*nl = '\0';
			return REQUEST_OK;
		}
		len += (size_t)n;
	}
}

/* The status line, then the body; a body that did not fit is a 500 instead. */
static void
write_answer(int fd, struct control_out *out, uint64_t deadline_ms)
{
	char	status[320];
	int	n;

	if (out->overflow) {
		control_fail(out, 500, "the answer is over %d bytes, or mxgate is out of memory",
			     CONTROL_OUT_MAX);
		out->len = 0;
	}
	if (out->status == 200 || out->message[0] == '\0')
		snprintf(out->message, sizeof(out->message), "%s", out->status == 200 ? "ok" : "failed");
	/* The message may quote a client's word: one line of printable bytes. */
	for (char *p = out->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	n = snprintf(status, sizeof(status), "%d %s\n", out->status, out->message);
	if (control_io_write(fd, status, (size_t)n, deadline_ms) && out->len > 0)
		control_io_write(fd, out->buf, out->len, deadline_ms);
}

/* After an answer to a request cut short: let the client finish sending, so that it reads the answer. */
static void
drain(int fd, uint64_t deadline_ms)
{
	char	buf[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 64; i++)	/* at most 256 KiB more */
		if (control_io_read(fd, buf, sizeof(buf), deadline_ms) <= 0)
			break;
}

/* Serve one connection: request, command, answer. */
static void
serve(int fd)
{
	char	line[CONTROL_REQUEST_MAX + 1];
	struct control_out out = {.status = 200};
	uint64_t deadline = clock_ms() + CONTROL_TIMEOUT_MS;
	enum request r = read_request(fd, line, deadline);

	switch (r) {
	case REQUEST_OK:
		control_dispatch(line, &out);
		break;
	case REQUEST_TOO_LONG:
		control_fail(&out, 400, "request too long (at most %d bytes with its newline)",
			     CONTROL_REQUEST_MAX);
		break;
	case REQUEST_TIMEOUT:
		control_fail(&out, 400, "no complete request within %d ms", CONTROL_TIMEOUT_MS);
		break;
	case REQUEST_NONE:
		return;
	}
	/* One deadline for the answer and the drain after it: a client holds the thread for
	 * at most twice CONTROL_TIMEOUT_MS besides the command's own (bounded) time. */
	deadline = clock_ms() + CONTROL_TIMEOUT_MS;
	write_answer(fd, &out, deadline);
	if (r == REQUEST_TOO_LONG)
		drain(fd, deadline);
	control_out_free(&out);
}

/* ---- the thread ------------------------------------------------------ */

/* Accept and serve until control_stop() writes to the wake pipe. */
static void *
control_main(void *arg)
{
	struct pollfd pfd[2] = {{.fd = ctl.fd, .events = POLLIN}, {.fd = ctl.wake[0], .events = POLLIN}};
	int	fd;

	(void)arg;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("control socket: poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents != 0)
			break;
		if ((fd = accept4(ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
			serve(fd);
			close(fd);
		} else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			poll(&pfd[1], 1, 100);	/* out of descriptors: do not spin */
	}
	return NULL;
}

bool
control_start(const struct config *cfg)
{
	(void)cfg;
	if (ctl.fd < 0 || ctl.running)
		return true;
	if (pipe2(ctl.wake, O_CLOEXEC) != 0) {
		log_error("control socket: pipe: %s", strerror(errno));
		ctl.wake[0] = ctl.wake[1] = -1;
		return false;
	}
	if (pthread_create(&ctl.thread, NULL, control_main, NULL) != 0) {
		log_error("cannot start the control thread");
		return false;
	}
	ctl.running = true;
	log_info("control socket %s", ctl.path);
	return true;
}

/* Remove the socket file if it is still the one control_open() made (as `user`, this may be refused: main.c's keeper removes it then). */
static void
remove_socket(void)
{
	struct stat st;

	if (lstat(ctl.path, &st) != 0 || st.st_dev != ctl.dev || st.st_ino != ctl.ino)
		return;
	if (unlink(ctl.path) != 0 && errno != ENOENT && errno != EACCES && errno != EPERM)
		log_warning("cannot remove %s: %s", ctl.path, strerror(errno));
}

void
control_stop(void)
{
	if (ctl.running) {
		while (write(ctl.wake[1], "x", 1) < 0 && errno == EINTR)
			;
		pthread_join(ctl.thread, NULL);
		ctl.running = false;
	}
	for (int i = 0; i < 2; i++)
		if (ctl.wake[i] >= 0) {
			close(ctl.wake[i]);
			ctl.wake[i] = -1;
		}
	if (ctl.fd >= 0) {
		close(ctl.fd);
		ctl.fd = -1;
		remove_socket();
	}
}

/* ---- the commands ---------------------------------------------------- */

static control_cmd_fn control_cmd_help;

static const struct command {
	const char *name;
	control_cmd_fn *fn;
	const char *usage;		/* for help: synopsis, then what it does */
} commands[] = {
	{"status", control_cmd_status, "status\tversion, engine, uptime, configuration, sessions, "
	 "overload, back ends and their breakers, caches"},
	{"stats", control_cmd_stats, "stats\tdecisions by check and action, back-end requests, "
	 "sessions, reloads, fallbacks, cache hits"},
	{"reload", control_cmd_reload, "reload\tread the configuration file again (as SIGUSR1), "
	 "with its errors"},
	{"quota", control_cmd_quota, "quota flush [ADDRESS]\tdrop cached quotas and usage"},
	{"explain", control_cmd_explain, "explain ADDRESS [--size N]\twhat the quota check "
	 "would decide for a recipient, and why"},
	{"ratelimit", control_cmd_ratelimit, "ratelimit show|reset RULE FIELD=VALUE...\ta rate "
	 "limit's counters for one key, or reset them"},
	{"help", control_cmd_help, "help\tthis list"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void
control_dispatch(char *line, struct control_out *out)
{
	char   *argv[CONTROL_ARGS_MAX + 1];
	int	argc = control_split(line, argv, CONTROL_ARGS_MAX + 1), kept = 0;
	bool	json = false;

	if (out->status == 0)
		out->status = 200;
	if (argc > CONTROL_ARGS_MAX) {
		control_fail(out, 400, "too many words (at most %d)", CONTROL_ARGS_MAX);
		return;
	}
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			argv[kept++] = argv[i];
	argv[kept] = NULL;
	if (kept == 0) {
		control_fail(out, 400, "empty request (try \"help\")");
		return;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, argv[0]) == 0) {
			commands[i].fn(kept, argv, json, out);
			return;
		}
	control_fail(out, 400, "unknown command %.200s", argv[0]);
}

/* help: the commands, one a line ("SYNOPSIS  WHAT"), or {"commands": [{"usage", "summary"}]}. */
static void
control_cmd_help(int argc, char **argv, bool json, struct control_out *out)
{
	(void)argc;
	(void)argv;
	control_printf(out, "%s", json ? "{\"commands\":[" : "");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *tab = strchr(commands[i].usage, '\t');
		int	ulen = (int)(tab - commands[i].usage);

		if (!json) {
			control_printf(out, "%-42.*s %s\n", ulen, commands[i].usage, tab + 1);
			continue;
		}
		control_printf(out, "%s{\"name\":\"%s\",\"usage\":\"%.*s\",\"summary\":", i ? "," : "",
			       commands[i].name, ulen, commands[i].usage);
		control_json_string(out, tab + 1);
		control_printf(out, "}");
	}
	control_printf(out, "%s", json ? "]}\n" : "");
}

/* What a reload's errors go to: the answer's body. */
struct reload_errors {
	struct control_out *out;
	bool	json;
	size_t	count;
};

static void
reload_error(void *arg, const char *message)
{
	struct reload_errors *e = arg;

	if (e->json) {
		control_printf(e->out, "%s", e->count ? "," : "");
		control_json_string(e->out, message);
	} else
		control_printf(e->out, "%s\n", message);
	e->count++;
}

/* reload: as SIGUSR1, but the caller gets the result and every "FILE:LINE: message". */
void
control_cmd_reload(int argc, char **argv, bool json, struct control_out *out)
{
	struct reload_errors e = {.out = out, .json = json};
	struct config *cfg;

	(void)argv;
	if (argc != 1) {
		control_fail(out, 400, "usage: reload");
		return;
	}
	control_printf(out, "%s", json ? "{\"errors\":[" : "");
	if (!mxgate_reload(reload_error, &e)) {
		control_printf(out, "%s", json ? "],\"reloaded\":false}\n" : "");
		control_fail(out, 500, "configuration not reloaded: %zu error%s; the running one stays",
			     e.count, e.count == 1 ? "" : "s");
		return;
	}
	cfg = config_current();
	if (json) {
		control_printf(out, "],\"reloaded\":true,\"generation\":%lu,\"path\":", cfg->generation);
		control_json_string(out, cfg->path);
		control_printf(out, "}\n");
	} else
		control_printf(out, "reloaded %s (generation %lu)\n",
			       cfg->path[0] ? cfg->path : "(defaults)", cfg->generation);
	config_release(cfg);
}

/* quota flush [ADDRESS]: the cache holds no per-address index, so either form empties it all. */
void
control_cmd_quota(int argc, char **argv, bool json, struct control_out *out)
{
	if (argc < 2 || argc > 3 || strcmp(argv[1], "flush") != 0) {
		control_fail(out, 400, "usage: quota flush [ADDRESS]");
		return;
	}
	quota_cache_flush();
	if (json)
		control_printf(out, "{\"flushed\":\"all\",\"address_only\":false}\n");
	else if (argc == 3)
		control_printf(out, "flushed the whole cache (removing one address's entries is "
			       "not available)\n");
	else
		control_printf(out, "flushed the whole cache\n");
}
