/*
 * engine.h - mxgate's milter protocol engine: the MTA side of the socket.
 *
 * Speaks the milter protocol (version 6 and older, as Postfix, Sendmail and
 * miltertest speak it; constants from libmilter's <libmilter/mfdef.h>) to
 * the callbacks of callbacks.c.  It replaces libmilter's run-time because
 * Debian's libmilter costs 0.8-1.0 ms of CPU per message (PERF-NOTES.md):
 * a poll and a read for each packet's header and body, and a worker-pool
 * hand-off per packet.  Here each connection has one thread for its whole
 * life, reads are buffered (the packets an MTA sends without waiting for a
 * reply arrive and are handled together), and the replies to a batch go
 * out in one write.
 *
 * Threads: a small pool blocks in accept(); a thread serves the connection
 * it accepted until it ends, then accepts again (a spare thread is started
 * whenever the last idle one takes a connection).  A connection's
 * callbacks always run on its own thread, one at a time.
 */
#ifndef MXGATE_ENGINE_H
#define MXGATE_ENGINE_H

#include <libmilter/mfapi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ENGINE_MAX_DATA		65535	/* largest packet body, as libmilter's default */
#define ENGINE_MAX_ARGS		64	/* MAIL/RCPT arguments handed on; more are ignored */
#define ENGINE_REPLY_MAX	1024	/* "CODE DSN TEXT" of a reply (reply.h keeps it under 980+) */

struct milter_conn;

/*
 * What a filter does at each step.  A step's return value is the reply
 * (SMFIS_*); for a step the MTA was told needs no reply (SMFIP_NR_*) it is
 * ignored.  Strings live until the callback returns.  close is called once
 * per connection (and at SMFIC_QUIT_NC), whatever came before.
 */
struct milter_callbacks {
	sfsistat (*negotiate)(struct milter_conn *c, unsigned long actions, unsigned long steps,
			      unsigned long *want_actions, unsigned long *want_steps);
	sfsistat (*connect)(struct milter_conn *c, const char *hostname, const struct sockaddr *addr);
	sfsistat (*helo)(struct milter_conn *c, const char *name);
	sfsistat (*envfrom)(struct milter_conn *c, char **argv);
	sfsistat (*envrcpt)(struct milter_conn *c, char **argv);
	sfsistat (*data)(struct milter_conn *c);
	sfsistat (*eom)(struct milter_conn *c);
	void	(*abort)(struct milter_conn *c);
	void	(*close)(struct milter_conn *c);
};

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
 * Open the listening socket of SPEC ("inet:PORT[@HOST]", "inet6:PORT[@HOST]",
 * "unix:PATH", "local:PATH" or "/PATH", as libmilter's smfi_setconn() takes
 * them; a stale unix socket is removed first).
 * Logs and returns -1 on failure.
 */
int	milter_listen(const char *spec);

/*
 * Serve connections with cb until milter_stop(); idle_timeout is how long
 * a connection may wait for the MTA's next command (seconds).  Returns 0
 * once every connection thread has ended, -1 if none could start.
 */
int	milter_run(const struct milter_callbacks *cb, unsigned idle_timeout);

/*
 * From any thread: stop accepting and end the open connections at once
 * (an MTA in mid-conversation applies its default action for a filter
 * that went away: Postfix's milter_default_action, tempfail by default).
 */
void	milter_stop(void);

/*
 * Without a socket, for the fuzz target and unit tests: a connection whose
 * replies are collected in memory.  milter_conn_feed() hands it bytes as
 * they would arrive; it returns false once the connection would be closed.
 * milter_conn_output() gives the replies written so far and forgets them.
 */
struct milter_conn *milter_conn_new(const struct milter_callbacks *cb);
bool	milter_conn_feed(struct milter_conn *c, const void *data, size_t len);
const uint8_t *milter_conn_output(struct milter_conn *c, size_t *len);
void	milter_conn_free(struct milter_conn *c);

#endif
