/*
 * control.h - the control socket mxgatectl speaks to, and the commands it
 * serves.
 *
 * Protocol: one request per connection.  The client sends one line of at
 * most CONTROL_REQUEST_MAX bytes ending in "\n": words separated by
 * spaces, the command first ("explain bob@example.org --size 1000",
 * "ratelimit show client client_ip=192.0.2.1 --json").  The server answers
 * with a status line, "200 ok" or "4xx|5xx MESSAGE", then the body (text,
 * or one JSON object with --json), and closes the connection.  A request
 * that is not complete within CONTROL_TIMEOUT_MS, or is longer, gets
 * "400 ..." and the close.  An answer is bounded by CONTROL_OUT_MAX.
 *
 * Thread-safety: the commands run on the control thread, one at a time;
 * they read the services through their own thread-safe interfaces.
 */
#ifndef MXGATE_CONTROL_H
#define MXGATE_CONTROL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CONTROL_REQUEST_MAX	4096
#define CONTROL_TIMEOUT_MS	2000
#define CONTROL_OUT_MAX		(1024 * 1024)
#define CONTROL_ARGS_MAX	32

/* A command's answer being built: the body, and the status to send first. */
struct control_out {
	char   *buf;			/* NUL-terminated; NULL until the first write */
	size_t	len, cap;
	bool	overflow;		/* cut at CONTROL_OUT_MAX */
	int	status;			/* 200 unless a command says otherwise */
	char	message[256];		/* with a status other than 200 */
};

/* Append to the body (cut, and marked, at CONTROL_OUT_MAX or when out of memory). */
void	control_printf(struct control_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append s as a JSON string, quotes and escapes included. */
void	control_json_string(struct control_out *out, const char *s);

/* Fail the command: status (4xx for the request, 5xx for mxgate) and its message. */
void	control_fail(struct control_out *out, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Free the body. */
void	control_out_free(struct control_out *out);

/*
 * A command: argv[0] is its name, json is true when --json was given (and
 * removed from argv).  It writes its answer to out, or calls control_fail.
 */
typedef void control_cmd_fn(int argc, char **argv, bool json, struct control_out *out);

control_cmd_fn control_cmd_status;	/* control_status.c */
control_cmd_fn control_cmd_stats;	/* control_status.c */
control_cmd_fn control_cmd_reload;	/* control.c */
control_cmd_fn control_cmd_quota;	/* control.c: quota flush [ADDRESS] */
control_cmd_fn control_cmd_explain;	/* control_explain.c */
control_cmd_fn control_cmd_ratelimit;	/* control_ratelimit.c: show|reset RULE FIELD=VALUE... */

/* Split line into words in place (at most max); returns their count. */
int	control_split(char *line, char **argv, int max);

/* Run one request line and fill out (the command table is in control.c). */
void	control_dispatch(char *line, struct control_out *out);

/*
 * Create the socket cfg->control_socket names (no-op when empty), before
 * privileges are dropped: a stale one is removed first, the new one is
 * mode 0660 and, when started as root, owned by cfg->user.  False
 * (logged) when it cannot listen.
 */
bool	control_open(const struct config *cfg);

/* The socket's file while it is open (main.c removes it at stop as root), else NULL. */
const char *control_path(void);

/* Milliseconds since control_open(), which main.c calls at start-up: the uptime status shows. */
uint64_t control_uptime_ms(void);

/* Start the control thread on the socket control_open() made (no-op without one); false when it cannot. */
bool	control_start(const struct config *cfg);

/* Stop the thread (joined), close and remove the socket; safe to call more than once. */
void	control_stop(void);

#endif
