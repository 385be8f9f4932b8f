/*
 * quota_source_mysql_conn.h - the MariaDB source's connections: one
 * connection to the server with its prepared statements, driven through
 * Connector/C's non-blocking API against a deadline.  Internal to the
 * mysql source (quota_source_mysql.c, which owns the pool, the keys and
 * what a row means).
 *
 * Contract: every call returns by its deadline (a clock_ms() value); what
 * went wrong is told by enum conn_result, worded in lookup->error.  Only
 * rows for exactly the lookup's key reach lookup->row.
 * Thread-safety: a connection is used by one thread at a time; the only
 * shared state is the server's warned_no_key flags (atomic).
 */
#ifndef MXGATE_QUOTA_SOURCE_MYSQL_CONN_H
#define MXGATE_QUOTA_SOURCE_MYSQL_CONN_H

#include <mysql.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quota_source.h"

#define MYSQL_COLUMNS_MAX	3	/* quota, maildir, key */
#define MYSQL_ERROR_MAX		256

enum mysql_query {
	QUERY_MAILBOX,
	QUERY_ALIAS,
	QUERY_ALIAS_DOMAIN,
	QUERY_COUNT,
};

/* How each query is used: its configuration key and the columns read. */
struct query_shape {
	const char *name;
	unsigned values;		/* without the optional key column */
};

extern const struct query_shape query_shapes[QUERY_COUNT];

/* Where and how to connect to one server, and the statements to prepare. */
struct mysql_server {
	char   *host, *socket, *user, *password, *database;
	char   *query[QUERY_COUNT];
	unsigned port, timeout_ms;
	atomic_bool warned_no_key[QUERY_COUNT];
};

/* One connection with its prepared statements and fetch buffers. */
struct mysql_conn {
	struct mysql_conn *next;	/* in the idle list */
	MYSQL  *db;			/* NULL until connected */
	MYSQL_STMT *stmt[QUERY_COUNT];	/* NULL until prepared */
	bool	has_key[QUERY_COUNT];	/* the query returns the stored key last */
	char	value[MYSQL_COLUMNS_MAX][QUOTA_SOURCE_VALUE_MAX + 1];
	unsigned long length[MYSQL_COLUMNS_MAX];
	my_bool	is_null[MYSQL_COLUMNS_MAX];
	my_bool	truncated[MYSQL_COLUMNS_MAX];
};

/* How one attempt on one connection ended. */
enum conn_result {
	CONN_OK,			/* rows read (maybe none) */
	CONN_BAD_ROW,			/* a row or the query's shape is unusable; connection fine */
	CONN_SQL_ERROR,			/* the server refused the statement; connection fine */
	CONN_GONE,			/* the server dropped the connection: worth one retry */
	CONN_BROKEN,			/* network, protocol or deadline: connection unusable */
};

struct mysql_source;

/* One lookup: the key, what to do with each exact row, and the outcome. */
struct lookup {
	enum mysql_query query;
	const char *key;
	unsigned long key_len;
	const struct mysql_source *ms;	/* for row(); the connections never look inside */
	/* Takes one exact row; false when the row cannot be used (error set). */
	bool	(*row)(struct lookup *lk, const struct mysql_conn *c);
	void   *out;
	size_t	size;
	unsigned rows;			/* rows taken by row() in this attempt */
	unsigned budget_ms;		/* this attempt's share of the deadline (library timeouts, messages) */
	unsigned errnum;		/* the client's or server's error number, 0 if none */
	char	error[MYSQL_ERROR_MAX];
};

/*
 * Make c ready for lk's query: connect it if it is not yet, and prepare
 * the query once per connection, checking its shape (and saying once when
 * it returns no key column).
 */
enum conn_result mysql_conn_ready(struct mysql_server *srv, struct mysql_conn *c,
				  struct lookup *lk, uint64_t deadline);

/* Run lk's prepared statement with lk's key and hand every exact row to lk->row. */
enum conn_result mysql_conn_execute(struct mysql_conn *c, struct lookup *lk, uint64_t deadline);

/* Close a connection; abandon = shut the socket first, so nothing can block. */
void	mysql_conn_free(struct mysql_conn *c, bool abandon);

#endif
