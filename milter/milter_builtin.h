/*
 * milter_builtin.h - inside mxgate's own milter engine: what its protocol
 * (milter_proto.c), listener (milter_listen.c) and connection pool
 * (milter_pool.c) share.  Not for code above engine.h.
 */
#ifndef MXGATE_MILTER_BUILTIN_H
#define MXGATE_MILTER_BUILTIN_H

#include <libmilter/mfdef.h>

#include "engine.h"

#define ENGINE_STAGES		(SMFIM_LAST + 1)

struct milter_conn {
	int	fd;			/* -1: in memory (milter_conn_new) */
	const struct milter_callbacks *cb;
	void   *priv;
	bool	negotiated;
	bool	in_eom;			/* header and quarantine actions allowed */
	bool	closed;			/* in memory: the connection would have ended */
	unsigned long actions;		/* SMFIF_* agreed with the MTA */
	unsigned long steps;		/* SMFIP_* agreed with the MTA */
	char   *symlist[ENGINE_STAGES];	/* macro names asked for, by stage */
	char   *macros[ENGINE_STAGES];	/* "name\0value\0..." as sent, by stage */
	size_t	macros_len[ENGINE_STAGES];
	char	reply[ENGINE_REPLY_MAX];	/* "" or the text of the next refusal */
	uint8_t *in;
	size_t	in_len, in_cap;
	uint8_t *out;
	size_t	out_len, out_cap;
	bool	out_failed;		/* a reply could not be buffered */
	struct milter_conn *prev, *next;	/* open connections (milter_stop) */
};

/* milter_proto.c: a connection's state and its packets. */
struct milter_conn *proto_conn_new(const struct milter_callbacks *cb, int fd);
void	proto_conn_free(struct milter_conn *c);	/* the filter's close, then everything */
bool	proto_in_reserve(struct milter_conn *c);	/* room for the next read */
bool	proto_process(struct milter_conn *c);		/* every whole packet read; false: end it */

/* milter_pool.c: the engine's run-time (engine.h's listen, run and stop). */
int	pool_listen(const struct milter_socket *sock);
int	pool_run(const struct milter_callbacks *cb, unsigned idle_timeout);
void	pool_stop(void);

/* milter_listen.c: the listening socket of sock, or -1 after logging. */
int	listener_open(const struct milter_socket *sock);

#endif
