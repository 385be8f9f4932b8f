/*
 * engine.h - the milter run-time behind one interface: the MTA side of the
 * socket, for callbacks.c and main.c.
 *
 * Two implementations, chosen at start-up (`engine` in mxgate.conf):
 *   - milter_libmilter.c: Sendmail's libmilter (smfi_register, smfi_main),
 *     the default, what every other milter an administrator runs links;
 *   - milter_proto.c, milter_listen.c, milter_pool.c: mxgate's own engine
 *     ("builtin"): a thread per connection from a pool waiting in accept(),
 *     buffered reads, the replies to a batch in one write.
 * Above this file, nothing knows which one runs: callbacks.c, session.c,
 * policy.c and the checks are the same code for both.
 *
 * Thread-safety: a connection's callbacks run one at a time (under
 * libmilter possibly on different threads of its pool; code above must not
 * keep per-thread state).  milter_use() is called once, before listen.
 */
#ifndef MXGATE_ENGINE_H
#define MXGATE_ENGINE_H

#include <libmilter/mfapi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "milter_socket.h"

#define ENGINE_MAX_DATA		65535	/* largest packet body, as libmilter's default */
#define ENGINE_MAX_ARGS		64	/* MAIL/RCPT arguments handed on; more are ignored */
#define ENGINE_REPLY_MAX	1024	/* "CODE DSN TEXT" of a reply (reply.h keeps it under 980+) */

struct milter_conn;

/*
 * What a filter does at each step.  A step's return value is the reply
 * (SMFIS_*); for a step the MTA was told needs no reply (SMFIP_NR_*) the
 * engine sends none (libmilter gets SMFIS_NOREPLY).  Strings live until the
 * callback returns.  close is called once per connection (and at
 * SMFIC_QUIT_NC), whatever came before.
 */
struct milter_callbacks {
	sfsistat (*negotiate)(struct milter_conn *c, unsigned long actions, unsigned long steps,
			      unsigned long *want_actions, unsigned long *want_steps);
	sfsistat (*connect)(struct milter_conn *c, const char *hostname, const struct sockaddr *addr);
	sfsistat (*helo)(struct milter_conn *c, const char *name);
	sfsistat (*envfrom)(struct milter_conn *c, char **argv);
	sfsistat (*envrcpt)(struct milter_conn *c, char **argv);
	sfsistat (*data)(struct milter_conn *c);
	/* Only when negotiated (no SMFIP_NOHDRS / SMFIP_NOBODY): one header, one body chunk. */
	sfsistat (*header)(struct milter_conn *c, const char *name, const char *value);
	sfsistat (*body)(struct milter_conn *c, const unsigned char *chunk, size_t len);
	sfsistat (*eom)(struct milter_conn *c);
	void	(*abort)(struct milter_conn *c);
	void	(*close)(struct milter_conn *c);
};

/*
 * One implementation of the functions below, in three parts: what a
 * callback reads of its connection, what it asks of the MTA, and the
 * run-time that serves connections.  The first two are the functions
 * milter_getpriv() to milter_addheader() in the order declared below.
 */
struct milter_engine {
	const char *name;		/* "libmilter" or "builtin", as in mxgate.conf */
	struct {
		void   *(*getpriv)(const struct milter_conn *c);
		void	(*setpriv)(struct milter_conn *c, void *priv);
		const char *(*getsymval)(const struct milter_conn *c, const char *name);
	}	conn;
	struct {
		int	(*setsymlist)(struct milter_conn *c, int stage, const char *macros);
		int	(*setreply)(struct milter_conn *c, const char *code, const char *dsn,
				    const char *text);
		int	(*quarantine)(struct milter_conn *c, const char *reason);
		int	(*addheader)(struct milter_conn *c, const char *name, const char *value);
	}	mta;
	struct {
		int	(*listen)(const struct milter_socket *sock);
		int	(*run)(const struct milter_callbacks *cb, unsigned idle_timeout);
		void	(*stop)(void);
		/* It takes SIGTERM/SIGINT/SIGHUP itself (libmilter's signal thread). */
		bool	own_stop_signals;
	}	serve;
};

extern const struct milter_engine milter_engine_libmilter;
extern const struct milter_engine milter_engine_builtin;

/* Choose the implementation (before milter_listen); the builtin one until then. */
void	milter_use(const struct milter_engine *engine);
const struct milter_engine *milter_current(void);

/* The filter's own pointer on a connection (NULL until set). */
void   *milter_getpriv(const struct milter_conn *c);
void	milter_setpriv(struct milter_conn *c, void *priv);

/* A macro's value ("{name}" or a one-letter "x" / "{x}"), NULL if not sent. */
const char *milter_getsymval(const struct milter_conn *c, const char *name);

/* In negotiate: the macros the MTA should send at stage SMFIM_*; 0 or -1. */
int	milter_setsymlist(struct milter_conn *c, int stage, const char *macros);

/*
 * The reply of the next SMFIS_REJECT/SMFIS_TEMPFAIL, as smfi_setreply():
 * "CODE DSN TEXT" (DSN "4.0.0"/"5.0.0" when NULL); 0, or -1 when invalid.
 */
int	milter_setreply(struct milter_conn *c, const char *code, const char *dsn, const char *text);

/* In eom only, with the action negotiated: 0, or -1. */
int	milter_quarantine(struct milter_conn *c, const char *reason);
int	milter_addheader(struct milter_conn *c, const char *name, const char *value);

/*
 * Open the listening socket (a unix socket another process still listens
 * on is refused, a stale one removed: milter_socket_unix_claim()).
 * Logs and returns -1 on failure.
 */
int	milter_listen(const struct milter_socket *sock);

/*
 * Serve connections with cb until milter_stop() (or, for an engine with
 * own_stop_signals, a stop signal); idle_timeout is how long a connection
 * may wait for the MTA's next command (seconds).  Returns 0 once no
 * callback runs any more and none will start, -1 if serving failed.
 */
int	milter_run(const struct milter_callbacks *cb, unsigned idle_timeout);

/* From any thread: stop accepting; milter_run() then returns. */
void	milter_stop(void);

/*
 * The builtin engine without a socket, for the fuzz target and unit tests:
 * a connection whose replies are collected in memory (it selects the
 * builtin engine).  milter_conn_feed() hands it bytes as they would
 * arrive; it returns false once the connection would be closed.
 * milter_conn_output() gives the replies written so far and forgets them.
 */
struct milter_conn *milter_conn_new(const struct milter_callbacks *cb);
bool	milter_conn_feed(struct milter_conn *c, const void *data, size_t len);
const uint8_t *milter_conn_output(struct milter_conn *c, size_t *len);
void	milter_conn_free(struct milter_conn *c);

#endif
