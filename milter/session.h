/*
 * session.h - per-connection and per-transaction state.
 *
 * One struct session hangs on each milter connection (milter_setpriv).
 * A connection's callbacks run one at a time (engine.h; under libmilter
 * not always on the same thread), so a session needs no lock; nothing
 * else may keep a pointer into it.  Strings from the MTA are copied into fixed fields sized
 * by RFC 5321 (with room to spare); a copy that does not fit is marked
 * truncated, and checks treat truncation as a policy event.
 */
#ifndef MXGATE_SESSION_H
#define MXGATE_SESSION_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "config.h"
#include "hostname.h"
#include "verdict.h"

#define SESSION_NAME_MAX	256	/* RFC 5321 domain: 255 octets */
#define SESSION_ADDR_TEXT_MAX	64
#define SESSION_HELO_MAX	1024	/* kept for replies and logs; classified in full */
#define SESSION_PATH_MAX	1024	/* RFC 5321 path: 256 octets; more is refused as too long */
#define SESSION_MACRO_MAX	256

/* A copied string and whether it was cut. */
struct field {
	char	text[SESSION_PATH_MAX];
	size_t	len;
	bool	truncated;
};

struct transaction {
	bool	active;			/* MAIL FROM seen, not yet ended */
	char	queue_id[64];
	struct field sender;
	char	auth_user[SESSION_MACRO_MAX];	/* {auth_authen}, "" if none */
	unsigned long size;		/* MAIL FROM SIZE=, 0 if none */
	struct field rcpt;		/* the recipient being checked */
	unsigned rcpts_seen, rcpts_accepted;
	bool	needs_eom;		/* a hold or warn waits for end of message */
	bool	count_size;		/* a check waits for the real size (STAGE_EOM) */
	unsigned long long message_size; /* bytes of header and body events so far */
	bool	hold;
	char	hold_reason[VERDICT_SUBJECT_MAX];
	char	warning[VERDICT_SUBJECT_MAX];	/* X-Mxgate-Warning value, "" if none */
};

struct session {
	struct config *cfg;		/* the snapshot this connection started with */
	unsigned long id;
	struct ipaddr addr;
	char	client_addr[SESSION_ADDR_TEXT_MAX];
	char	client_name[SESSION_NAME_MAX];
	char	daemon_name[SESSION_MACRO_MAX];
	struct ipaddr own_addr[2];	/* {daemon_addr}, {if_addr}: AF_UNSPEC when unknown or a wildcard */
	bool	trusted;		/* in trusted_networks: no checks */
	bool	helo_seen;
	char	helo[SESSION_HELO_MAX];	/* printable, possibly cut with "..." */
	enum hostname_verdict helo_verdict;
	bool	helo_own;		/* one of reject_own_names, or a literal of own_addr */
	struct transaction tx;
	/* The checks' own per-connection state (policy.c lays it out). */
	alignas(max_align_t) unsigned char check_state[];
};

/*
 * A new session holding its own reference to cfg (released by
 * session_close), with extra zeroed bytes of check_state; NULL when out of
 * memory (the reference is released then too).
 */
struct session *session_open(struct config *cfg, size_t extra);

/* Free the session and release its configuration. */
void	session_close(struct session *s);

/* Fill the client part (address may be NULL for a unix socket or an unknown client). */
void	session_set_client(struct session *s, const char *name, const struct sockaddr *addr);

/* The server's side of the connection: {daemon_addr} and {if_addr} (either may be "" or NULL). */
void	session_set_server(struct session *s, const char *daemon_addr, const char *if_addr);

/* Record a HELO/EHLO argument (the last one counts). */
void	session_set_helo(struct session *s, const char *name);

/* Forget the current transaction (policy_transaction_end). */
void	session_reset_transaction(struct session *s);

/* MAIL FROM: a new transaction from argv[0] with its ESMTP parameters (SIZE=). */
void	session_begin_transaction(struct session *s, char **argv);

/* RCPT TO: the recipient being checked. */
void	session_set_rcpt(struct session *s, const char *rcpt);

/* Copy NUL-terminated src into f; returns false and marks truncation when it does not fit. */
bool	field_set(struct field *f, const char *src);

/* Copy src (may be NULL) into a fixed buffer; returns false when cut. */
bool	copy_string(char *dst, size_t size, const char *src);

/* True when the connection's client is SASL-authenticated. */
bool	session_authenticated(const struct session *s);

#endif
