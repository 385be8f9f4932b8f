/*
 * quota_source_mysql.c - quotas and aliases from a postfixadmin-style
 * database (MariaDB or MySQL), through MariaDB Connector/C.
 *
 * Contract (quota_source.h):
 *  - Prepared statements only.  The three configured queries are prepared
 *    as written and the key is bound to their one '?'; no SQL text is ever
 *    built from a recipient address.
 *  - Exact keys.  postfixadmin's address columns use latin1_general_ci, and
 *    MariaDB's default collations are no better: 'Bob@x' and 'bob@x ' (PAD
 *    SPACE) select the row of 'bob@x', and with utf8mb4_general_ci so do
 *    'bób@x' and 'bo<U+200B>b@x'.
 *    No rewriting of the user's query can fix that without also defeating
 *    the index (`BINARY col = ?` is a full scan), so the comparison is done
 *    here: a query may return the stored key as one extra, last column, and
 *    a row whose key differs from the looked-up key in any byte is ignored.
 *    sql/README.md gives such queries.  A query without that column (the
 *    default queries) cannot show which row it matched, so it is only
 *    run for keys that no collation folds onto another one: lower-case
 *    printable ASCII without spaces, the form postfixadmin stores; any
 *    other key is "not found" without a query, and a warning says once
 *    that the key column would lift that limit.  A key that no text column
 *    can hold (not UTF-8; or a character outside the column's charset, which
 *    the server reports as "Illegal mix of collations") is "not found", not
 *    an error: hostile addresses must not trip the circuit breaker.
 *  - Deadlines.  Every lookup (connecting, preparing, executing, reading,
 *    and the one retry) finishes within mysql.timeout_ms: the non-blocking
 *    API of Connector/C is driven with poll() against one monotonic
 *    deadline.  The library's own timeouts (whole seconds, rounded up) are
 *    set too, as a backstop.  A connection abandoned at the deadline is shut
 *    down, never reused.  Host names are resolved by the library with a
 *    blocking getaddrinfo(): configure an address or a socket.
 *  - Connections are opened lazily and pooled: a lookup takes an idle one
 *    (or opens one), uses it alone, and gives it back.  A pooled connection
 *    that the server dropped (restart, wait_timeout, KILL) fails with "server
 *    has gone away" or "lost connection": the lookup is retried once on a
 *    new connection, so a restart costs no tempfail.
 *  - "Not found" (no row, or no exact row) and "could not look" (SQL or
 *    network error, deadline, a row mxgate cannot use) are never folded
 *    together.
 *
 * Thread-safety: any number of threads may look up at once; the pool is the
 * only shared state, guarded by a mutex that is never held across I/O.
 * close() may be called while lookups are in flight: the source is freed by
 * the last one.  quota_source_mysql_library_init() runs before any thread.
 */
#include "quota_source.h"

#include <errno.h>
#include <limits.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"

#ifndef MARIADB_PACKAGE_VERSION_ID
/* Its non-blocking API is what gives every lookup a deadline. */
#error "quota_source_mysql.c needs MariaDB Connector/C (libmariadb-dev)"
#endif

#define MYSQL_IDLE_MAX		32	/* idle connections kept; more are closed on release */
#define MYSQL_COLUMNS_MAX	3	/* quota, maildir, key */
#define MYSQL_ERROR_MAX		256

enum mysql_query {
	QUERY_MAILBOX,
	QUERY_ALIAS,
	QUERY_ALIAS_DOMAIN,
	QUERY_COUNT,
};

/* How each query is used: its configuration key and the columns read. */
static const struct query_shape {
	const char *name;
	unsigned values;		/* without the optional key column */
} query_shapes[QUERY_COUNT] = {
	[QUERY_MAILBOX] = {"quota_query", 2},
	[QUERY_ALIAS] = {"alias_query", 1},
	[QUERY_ALIAS_DOMAIN] = {"alias_domain_query", 1},
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

struct mysql_source {
	struct quota_source base;
	char   *host, *socket, *user, *password, *database, *maildir_root;
	char   *query[QUERY_COUNT];
	unsigned port, timeout_ms;

	pthread_mutex_t lock;
	struct mysql_conn *idle;	/* guarded by lock */
	unsigned nidle;			/* guarded by lock */
	unsigned busy;			/* lookups in flight; guarded by lock */
	bool	closing;		/* guarded by lock */
	atomic_bool warned_no_key[QUERY_COUNT];
};

/* How one attempt on one connection ended. */
enum conn_result {
	CONN_OK,			/* rows read (maybe none) */
	CONN_BAD_ROW,			/* a row or the query's shape is unusable; connection fine */
	CONN_SQL_ERROR,			/* the server refused the statement; connection fine */
	CONN_GONE,			/* the server dropped the connection: worth one retry */
	CONN_BROKEN,			/* network, protocol or deadline: connection unusable */
};

/* One lookup: the key, what to do with each exact row, and the outcome. */
struct lookup {
	enum mysql_query query;
	const char *key;
	unsigned long key_len;
	const struct mysql_source *ms;
	/* Takes one exact row; false when the row cannot be used (error set). */
	bool	(*row)(struct lookup *lk, const struct mysql_conn *c);
	void   *out;
	size_t	size;
	unsigned rows;			/* rows taken by row() in this attempt */
	char	error[MYSQL_ERROR_MAX];
};

/* ---- time ----------------------------------------------------------------- */

/* The monotonic clock's time ms milliseconds from now. */
static struct timespec
deadline_after(unsigned ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Milliseconds left before the deadline, rounded up; <= 0 once it passed. */
static long
deadline_left_ms(const struct timespec *deadline)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
	     (deadline->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	return (long)((ns + 999999) / 1000000);
}

/* ---- connections ---------------------------------------------------------- */

/*
 * Wait for what the library asked for, within the deadline.  Returns the
 * events for the _cont() call, or 0 when the deadline passed (or poll
 * failed): the operation must then be abandoned.
 */
static int
conn_wait(MYSQL *db, int status, const struct timespec *deadline)
{
	struct pollfd pfd;
	long	left, wait_ms;
	bool	library_timeout;
	int	n, events;

	for (;;) {
		left = deadline_left_ms(deadline);
		if (left <= 0)
			return 0;
		wait_ms = left;
		library_timeout = false;
		if ((status & MYSQL_WAIT_TIMEOUT) &&
		    (long)mysql_get_timeout_value_ms(db) < wait_ms) {
			wait_ms = (long)mysql_get_timeout_value_ms(db);
			library_timeout = true;
		}
		pfd.fd = (int)mysql_get_socket(db);
		pfd.events = 0;
		pfd.revents = 0;
		if (status & MYSQL_WAIT_READ)
			pfd.events |= POLLIN;
		if (status & MYSQL_WAIT_WRITE)
			pfd.events |= POLLOUT;
		if (status & MYSQL_WAIT_EXCEPT)
			pfd.events |= POLLPRI;
		n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, (int)wait_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		if (n == 0) {
			if (library_timeout)
				return MYSQL_WAIT_TIMEOUT;
			continue;	/* the loop head sees the deadline */
		}
		if (pfd.revents & POLLNVAL)
			return 0;
		events = 0;
		/* An error or hang-up is reported as what was awaited, so the
		 * library reads or writes and sees the error itself. */
		if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
			events |= status & MYSQL_WAIT_READ;
		if (pfd.revents & (POLLOUT | POLLERR | POLLHUP))
			events |= status & MYSQL_WAIT_WRITE;
		if (pfd.revents & POLLPRI)
			events |= status & MYSQL_WAIT_EXCEPT;
		if (events != 0)
			return events;
	}
}

/* Close a connection; abandon = shut the socket first, so nothing can block. */
static void
conn_free(struct mysql_conn *c, bool abandon)
{
	if (c == NULL)
		return;
	if (c->db != NULL) {
		if (abandon) {
			my_socket fd = mysql_get_socket(c->db);

			if ((int)fd >= 0)
				shutdown((int)fd, SHUT_RDWR);
		}
		/* mysql_close() detaches the statements, which are then freed without I/O. */
		mysql_close(c->db);
		for (int q = 0; q < QUERY_COUNT; q++)
			if (c->stmt[q] != NULL)
				mysql_stmt_close(c->stmt[q]);
	}
	free(c);
}

/* What a client or server error number means for the connection. */
static enum conn_result
conn_classify(unsigned err)
{
	switch (err) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case ER_CONNECTION_KILLED:
	case ER_SERVER_SHUTDOWN:
	case 4031:			/* ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8) */
		return CONN_GONE;
	default:
		return err >= CR_MIN_ERROR && err <= CR_MAX_ERROR ? CONN_BROKEN : CONN_SQL_ERROR;
	}
}

/* Record the connection's error in lk; the result for the attempt. */
static enum conn_result
conn_failed(struct lookup *lk, MYSQL *db, const char *what)
{
	snprintf(lk->error, sizeof(lk->error), "%s: %s (%u)", what, mysql_error(db), mysql_errno(db));
	return conn_classify(mysql_errno(db));
}

/* The same for a statement's error. */
static enum conn_result
stmt_failed(struct lookup *lk, MYSQL_STMT *stmt, const char *what)
{
	snprintf(lk->error, sizeof(lk->error), "%s: %s (%u)", what, mysql_stmt_error(stmt),
		 mysql_stmt_errno(stmt));
	return conn_classify(mysql_stmt_errno(stmt));
}

/* The deadline passed in the middle of what: the connection is abandoned. */
static enum conn_result
conn_timed_out(struct lookup *lk, const char *what)
{
	snprintf(lk->error, sizeof(lk->error), "%s: no answer within %u ms", what,
		 lk->ms->timeout_ms);
	return CONN_BROKEN;
}

/* Open c->db to the configured server, within the deadline. */
static enum conn_result
conn_open(const struct mysql_source *ms, struct mysql_conn *c, struct lookup *lk,
	  const struct timespec *deadline)
{
	unsigned timeout_s = (ms->timeout_ms + 999) / 1000;
	unsigned protocol = ms->socket[0] ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
	unsigned no_infile = 0;
	my_bool	off = 0, on = 1;
	MYSQL  *ret = NULL;
	int	status;

	if ((c->db = mysql_init(NULL)) == NULL) {
		snprintf(lk->error, sizeof(lk->error), "connect: out of memory");
		return CONN_BROKEN;
	}
	if (timeout_s < 1)
		timeout_s = 1;
	if (mysql_options(c->db, MYSQL_OPT_NONBLOCK, 0) != 0 ||
	    mysql_options(c->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s) != 0 ||
	    mysql_options(c->db, MYSQL_OPT_READ_TIMEOUT, &timeout_s) != 0 ||
	    mysql_options(c->db, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s) != 0 ||
	    mysql_options(c->db, MYSQL_OPT_PROTOCOL, &protocol) != 0 ||
	    mysql_options(c->db, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_options(c->db, MYSQL_OPT_LOCAL_INFILE, &no_infile) != 0 ||
	    mysql_options(c->db, MYSQL_OPT_RECONNECT, &off) != 0 ||
	    mysql_options(c->db, MYSQL_REPORT_DATA_TRUNCATION, &on) != 0)
		return conn_failed(lk, c->db, "connect options");

	status = mysql_real_connect_start(&ret, c->db,
					  ms->socket[0] ? "localhost" : ms->host,
					  ms->user, ms->password,
					  ms->database[0] ? ms->database : NULL,
					  ms->port, ms->socket[0] ? ms->socket : NULL, 0);
	while (status != 0) {
		if ((status = conn_wait(c->db, status, deadline)) == 0)
			return conn_timed_out(lk, "connect");
		status = mysql_real_connect_cont(&ret, c->db, status);
	}
	if (ret == NULL)
		return conn_failed(lk, c->db, "connect");
	return CONN_OK;
}

/* Prepare the lookup's query on c, once per connection, and check its shape. */
static enum conn_result
conn_prepare(struct mysql_source *ms, struct mysql_conn *c, struct lookup *lk,
	     const struct timespec *deadline)
{
	const struct query_shape *shape = &query_shapes[lk->query];
	const char *text = ms->query[lk->query];
	MYSQL_STMT *stmt;
	unsigned fields;
	int	status, rc = 1;

	if ((stmt = mysql_stmt_init(c->db)) == NULL)
		return conn_failed(lk, c->db, "prepare");
	c->stmt[lk->query] = stmt;	/* freed with the connection, whatever happens */
	status = mysql_stmt_prepare_start(&rc, stmt, text, (unsigned long)strlen(text));
	while (status != 0) {
		if ((status = conn_wait(c->db, status, deadline)) == 0)
			return conn_timed_out(lk, "prepare");
		status = mysql_stmt_prepare_cont(&rc, stmt, status);
	}
	if (rc != 0) {
		enum conn_result r = stmt_failed(lk, stmt, "prepare");

		c->stmt[lk->query] = NULL;
		mysql_stmt_close(stmt);
		return r;
	}
	fields = mysql_stmt_field_count(stmt);
	if (mysql_stmt_param_count(stmt) != 1 ||
	    (fields != shape->values && fields != shape->values + 1)) {
		snprintf(lk->error, sizeof(lk->error),
			 "has %lu placeholders and returns %u columns; it needs one '?' and "
			 "%u columns, or %u with the stored key last",
			 mysql_stmt_param_count(stmt), fields, shape->values, shape->values + 1);
		c->stmt[lk->query] = NULL;
		mysql_stmt_close(stmt);
		return CONN_BAD_ROW;
	}
	c->has_key[lk->query] = fields == shape->values + 1;
	if (!c->has_key[lk->query] &&
	    !atomic_exchange(&ms->warned_no_key[lk->query], true))
		log_warning("mysql: %s returns no key column, so only lower-case ASCII keys "
			    "are looked up with it (a collation could match others to a look-alike "
			    "row); return the key as a last column (see sql/README.md)", shape->name);
	return CONN_OK;
}

/* True if the fetched row is for exactly the key (or the query gives no key). */
static bool
row_is_exact(const struct mysql_conn *c, const struct lookup *lk)
{
	unsigned k = query_shapes[lk->query].values;

	if (!c->has_key[lk->query])
		return true;
	return !c->is_null[k] && !c->truncated[k] && c->length[k] == lk->key_len &&
	       memcmp(c->value[k], lk->key, lk->key_len) == 0;
}

/* True if key has no byte outside ASCII. */
static bool
key_is_ascii(const char *key)
{
	for (; *key != '\0'; key++)
		if ((unsigned char)*key >= 0x80)
			return false;
	return true;
}

/*
 * True if key can be looked up with a query that returns no key column:
 * lower-case printable ASCII without spaces.  postfixadmin stores keys in
 * that form, and such a key cannot be a case, trailing-space or accent
 * variant of a stored one, which is all a collation would fold together.
 */
static bool
key_is_plain(const char *key)
{
	for (; *key != '\0'; key++)
		if ((unsigned char)*key <= 0x20 || (unsigned char)*key >= 0x7f ||
		    (*key >= 'A' && *key <= 'Z'))
			return false;
	return true;
}

/*
 * True if s is well-formed UTF-8 (no overlong forms, surrogates or code
 * points past U+10FFFF).  Every text column reaches a utf8mb4 client as
 * well-formed UTF-8, so a key that is not can never equal a stored one.
 */
static bool
key_is_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		unsigned c = *p, n, cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

/* Run the lookup's statement on c and hand every exact row to lk->row. */
static enum conn_result
conn_lookup(struct mysql_source *ms, struct mysql_conn *c, struct lookup *lk,
	    const struct timespec *deadline)
{
	MYSQL_BIND param, result[MYSQL_COLUMNS_MAX];
	MYSQL_STMT *stmt;
	enum conn_result r;
	unsigned fields;
	int	status, rc = 1;

	if (c->db == NULL && (r = conn_open(ms, c, lk, deadline)) != CONN_OK)
		return r;
	if (c->stmt[lk->query] == NULL && (r = conn_prepare(ms, c, lk, deadline)) != CONN_OK)
		return r;
	stmt = c->stmt[lk->query];
	fields = mysql_stmt_field_count(stmt);
	if (!c->has_key[lk->query] && !key_is_plain(lk->key))
		return CONN_OK;		/* could only match a look-alike: not found */

	memset(&param, 0, sizeof(param));
	param.buffer_type = MYSQL_TYPE_STRING;
	param.buffer = (void *)lk->key;
	param.buffer_length = lk->key_len;
	param.length = &lk->key_len;
	if (mysql_stmt_bind_param(stmt, &param) != 0)
		return stmt_failed(lk, stmt, "bind");

	status = mysql_stmt_execute_start(&rc, stmt);
	while (status != 0) {
		if ((status = conn_wait(c->db, status, deadline)) == 0)
			return conn_timed_out(lk, "execute");
		status = mysql_stmt_execute_cont(&rc, stmt, status);
	}
	if (rc != 0) {
		unsigned err = mysql_stmt_errno(stmt);

		/*
		 * "Illegal mix of collations" for a key with non-ASCII characters:
		 * the key has a character the column's charset cannot hold (a
		 * latin1 column and U+200B), so no stored key can equal it.  An
		 * ASCII key always converts, so there it is the query's fault.
		 */
		if ((err == ER_CANT_AGGREGATE_2COLLATIONS || err == ER_CANT_AGGREGATE_3COLLATIONS ||
		     err == ER_CANT_AGGREGATE_NCOLLATIONS) && !key_is_ascii(lk->key))
			return CONN_OK;
		return stmt_failed(lk, stmt, "execute");
	}

	memset(result, 0, sizeof(result));
	for (unsigned i = 0; i < fields; i++) {
		result[i].buffer_type = MYSQL_TYPE_STRING;
		result[i].buffer = c->value[i];
		result[i].buffer_length = sizeof(c->value[i]);
		result[i].length = &c->length[i];
		result[i].is_null = &c->is_null[i];
		result[i].error = &c->truncated[i];
	}
	if (mysql_stmt_bind_result(stmt, result) != 0)
		return stmt_failed(lk, stmt, "bind result");

	/* All rows into client memory: fetching is then free of I/O. */
	status = mysql_stmt_store_result_start(&rc, stmt);
	while (status != 0) {
		if ((status = conn_wait(c->db, status, deadline)) == 0)
			return conn_timed_out(lk, "read");
		status = mysql_stmt_store_result_cont(&rc, stmt, status);
	}
	if (rc != 0)
		return stmt_failed(lk, stmt, "read");

	r = CONN_OK;
	while ((rc = mysql_stmt_fetch(stmt)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		if (row_is_exact(c, lk) && !lk->row(lk, c)) {
			r = CONN_BAD_ROW;
			break;
		}
	}
	if (rc == 1)
		r = stmt_failed(lk, stmt, "fetch");
	mysql_stmt_free_result(stmt);
	return r;
}

/* ---- the pool ------------------------------------------------------------- */

/* Free the source and its settings (no connection is left by then). */
static void
source_free(struct mysql_source *ms)
{
	pthread_mutex_destroy(&ms->lock);
	free(ms->host);
	free(ms->socket);
	free(ms->user);
	free(ms->password);
	free(ms->database);
	free(ms->maildir_root);
	for (int q = 0; q < QUERY_COUNT; q++)
		free(ms->query[q]);
	free(ms);
}

/* An idle connection, or a new unconnected one (NULL when out of memory). */
static struct mysql_conn *
pool_take(struct mysql_source *ms)
{
	struct mysql_conn *c;

	pthread_mutex_lock(&ms->lock);
	if ((c = ms->idle) != NULL) {
		ms->idle = c->next;
		ms->nidle--;
	}
	pthread_mutex_unlock(&ms->lock);
	if (c == NULL)
		c = calloc(1, sizeof(*c));
	else
		c->next = NULL;
	return c;
}

/* Give a healthy connection back (or close it when the pool is full or closing). */
static void
pool_give(struct mysql_source *ms, struct mysql_conn *c)
{
	pthread_mutex_lock(&ms->lock);
	if (!ms->closing && ms->nidle < MYSQL_IDLE_MAX) {
		c->next = ms->idle;
		ms->idle = c;
		ms->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&ms->lock);
	conn_free(c, false);
}

/* A lookup ends: the last one after close() frees the source. */
static void
source_leave(struct mysql_source *ms)
{
	bool	last;

	pthread_mutex_lock(&ms->lock);
	ms->busy--;
	last = ms->closing && ms->busy == 0;
	pthread_mutex_unlock(&ms->lock);
	if (last)
		source_free(ms);
}

/*
 * Run one lookup with one deadline: an attempt on a pooled connection, and
 * one more on a fresh connection if the server had dropped the pooled one.
 */
static enum source_status
mysql_lookup(struct mysql_source *ms, struct lookup *lk)
{
	struct timespec deadline = deadline_after(ms->timeout_ms);
	enum source_status st = SOURCE_ERROR;
	struct mysql_conn *c;
	enum conn_result r;
	bool	reused;

	lk->ms = ms;
	pthread_mutex_lock(&ms->lock);
	ms->busy++;
	pthread_mutex_unlock(&ms->lock);

	for (int attempt = 0; attempt < 2; attempt++) {
		if ((c = pool_take(ms)) == NULL) {
			log_error("mysql: %s: out of memory", query_shapes[lk->query].name);
			break;
		}
		reused = c->db != NULL;
		lk->rows = 0;
		lk->error[0] = '\0';
		r = conn_lookup(ms, c, lk, &deadline);
		if (r == CONN_OK || r == CONN_BAD_ROW || r == CONN_SQL_ERROR)
			pool_give(ms, c);
		else
			conn_free(c, true);
		if (r == CONN_OK) {
			st = lk->rows > 0 ? SOURCE_OK : SOURCE_NOT_FOUND;
			break;
		}
		if (r == CONN_GONE && reused && attempt == 0 && deadline_left_ms(&deadline) > 0) {
			log_debug("mysql: %s: %s; reconnecting", query_shapes[lk->query].name,
				  lk->error);
			continue;
		}
		log_warning("mysql: %s: %s", query_shapes[lk->query].name, lk->error);
		break;
	}
	source_leave(ms);
	return st;
}

/* ---- rows ----------------------------------------------------------------- */

/* The column as a C string, or NULL if it is NULL, too long or holds a NUL. */
static const char *
column_text(const struct mysql_conn *c, unsigned i)
{
	if (c->is_null[i] || c->truncated[i] || c->length[i] > QUOTA_SOURCE_VALUE_MAX ||
	    memchr(c->value[i], '\0', c->length[i]) != NULL)
		return NULL;
	return c->value[i];
}

/*
 * A quota column as bytes: digits, with an optional sign and fraction
 * (DECIMAL columns).  Zero or negative means unlimited.
 */
static bool
parse_quota(const char *text, unsigned long long *out)
{
	unsigned long long v = 0;
	bool	negative = false;
	const char *p = text;

	if (*p == '-' || *p == '+')
		negative = *p++ == '-';
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (ULLONG_MAX - (unsigned)(*p - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p != '\0')
		return false;
	*out = negative ? 0 : v;
	return true;
}

/*
 * root + "/" + maildir into out, refusing a maildir that could leave root:
 * absolute, or with a ".." component.
 */
static bool
maildir_join(const char *root, const char *maildir, char *out, size_t size)
{
	size_t	rlen = strlen(root);
	const char *p;
	int	n;

	if (root[0] != '/' || maildir[0] == '\0' || maildir[0] == '/')
		return false;
	for (p = maildir; *p != '\0'; p += strcspn(p, "/"), p += *p == '/') {
		size_t	len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.')
			return false;
	}
	while (rlen > 0 && root[rlen - 1] == '/')
		rlen--;
	n = snprintf(out, size, "%.*s/%s", (int)rlen, root, maildir);
	return n > 0 && (size_t)n < size;
}

/* A quota_query row: quota and absolute maildir into the quota_mailbox. */
static bool
mailbox_row(struct lookup *lk, const struct mysql_conn *c)
{
	struct quota_mailbox *mb = lk->out;
	const char *quota, *maildir;

	if (lk->rows > 0)
		return true;		/* the first exact row wins */
	quota = c->is_null[0] ? "0" : column_text(c, 0);
	if (quota == NULL || !parse_quota(quota, &mb->quota)) {
		snprintf(lk->error, sizeof(lk->error), "the quota column is not a number of bytes");
		return false;
	}
	if ((maildir = column_text(c, 1)) == NULL ||
	    !maildir_join(lk->ms->maildir_root, maildir, mb->maildir, sizeof(mb->maildir))) {
		snprintf(lk->error, sizeof(lk->error),
			 "the maildir column is NULL, empty, absolute, contains \"..\" or is too long "
			 "for maildir_root");
		return false;
	}
	lk->rows++;
	return true;
}

/* An alias_query row: its goto list appended to the list so far. */
static bool
alias_row(struct lookup *lk, const struct mysql_conn *c)
{
	char   *out = lk->out;
	const char *go;
	size_t	used, len;

	if (c->is_null[0])
		return true;
	if ((go = column_text(c, 0)) == NULL) {
		snprintf(lk->error, sizeof(lk->error), "the goto column is too long or holds a NUL");
		return false;
	}
	if (go[0] == '\0')
		return true;
	/* Several rows for one address are one list. */
	used = lk->rows > 0 ? strlen(out) : 0;
	len = strlen(go);
	if (used + (used > 0) + len + 1 > lk->size) {
		snprintf(lk->error, sizeof(lk->error), "the goto list is longer than %zu bytes",
			 lk->size - 1);
		return false;
	}
	if (used > 0)
		out[used++] = ',';
	memcpy(out + used, go, len + 1);
	lk->rows++;
	return true;
}

/* An alias_domain_query row: the first non-empty target domain. */
static bool
alias_domain_row(struct lookup *lk, const struct mysql_conn *c)
{
	const char *target;

	if (lk->rows > 0 || c->is_null[0])
		return true;
	if ((target = column_text(c, 0)) == NULL || strlen(target) >= lk->size) {
		snprintf(lk->error, sizeof(lk->error), "the target domain is too long or holds a NUL");
		return false;
	}
	if (target[0] == '\0')
		return true;
	memcpy(lk->out, target, strlen(target) + 1);
	lk->rows++;
	return true;
}

/* ---- the quota_source interface ------------------------------------------- */

/*
 * Set up a lookup of key; false when no row can match it: longer than any
 * value mxgate reads back, or not UTF-8 (see key_is_utf8).
 */
static bool
lookup_init(struct lookup *lk, enum mysql_query query, const char *key,
	    bool (*row)(struct lookup *, const struct mysql_conn *), void *out, size_t size)
{
	memset(lk, 0, sizeof(*lk));
	lk->query = query;
	lk->key = key;
	lk->key_len = (unsigned long)strlen(key);
	lk->row = row;
	lk->out = out;
	lk->size = size;
	return lk->key_len <= QUOTA_SOURCE_VALUE_MAX && key_is_utf8(key);
}

static enum source_status
mysql_alias_domain(struct quota_source *src, const char *domain, char *target, size_t size)
{
	struct lookup lk;

	if (size == 0)
		return SOURCE_ERROR;
	target[0] = '\0';
	if (!lookup_init(&lk, QUERY_ALIAS_DOMAIN, domain, alias_domain_row, target, size))
		return SOURCE_NOT_FOUND;
	return mysql_lookup(src->state, &lk);
}

static enum source_status
mysql_alias(struct quota_source *src, const char *address, char *goto_list, size_t size)
{
	struct lookup lk;

	if (size == 0)
		return SOURCE_ERROR;
	goto_list[0] = '\0';
	if (!lookup_init(&lk, QUERY_ALIAS, address, alias_row, goto_list, size))
		return SOURCE_NOT_FOUND;
	return mysql_lookup(src->state, &lk);
}

static enum source_status
mysql_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	struct lookup lk;

	memset(out, 0, sizeof(*out));
	if (!lookup_init(&lk, QUERY_MAILBOX, address, mailbox_row, out, sizeof(*out)))
		return SOURCE_NOT_FOUND;
	return mysql_lookup(src->state, &lk);
}

static void
mysql_source_close(struct quota_source *src)
{
	struct mysql_source *ms;
	struct mysql_conn *list, *next;
	bool	now;

	if (src == NULL)
		return;
	ms = src->state;
	pthread_mutex_lock(&ms->lock);
	ms->closing = true;
	list = ms->idle;
	ms->idle = NULL;
	ms->nidle = 0;
	now = ms->busy == 0;
	pthread_mutex_unlock(&ms->lock);
	for (; list != NULL; list = next) {
		next = list->next;
		conn_free(list, false);
	}
	if (now)
		source_free(ms);
}

static const struct quota_source_ops mysql_ops = {
	.name = "mysql",
	.alias_domain = mysql_alias_domain,
	.alias = mysql_alias,
	.mailbox = mysql_mailbox,
	.close = mysql_source_close,
};

struct quota_source *
quota_source_mysql_open(const struct config *cfg)
{
	struct mysql_source *ms = calloc(1, sizeof(*ms));

	if (ms == NULL)
		return NULL;
	if (pthread_mutex_init(&ms->lock, NULL) != 0) {
		free(ms);
		return NULL;
	}
	ms->host = strdup(cfg->mysql.host);
	ms->socket = strdup(cfg->mysql.socket);
	ms->user = strdup(cfg->mysql.user);
	ms->password = strdup(cfg->mysql.password);
	ms->database = strdup(cfg->mysql.database);
	ms->maildir_root = strdup(cfg->quota.maildir_root);
	ms->query[QUERY_MAILBOX] = strdup(cfg->mysql.quota_query);
	ms->query[QUERY_ALIAS] = strdup(cfg->mysql.alias_query);
	ms->query[QUERY_ALIAS_DOMAIN] = strdup(cfg->mysql.alias_domain_query);
	ms->port = cfg->mysql.port;
	ms->timeout_ms = cfg->mysql.timeout_ms ? cfg->mysql.timeout_ms : 1000;
	for (int q = 0; q < QUERY_COUNT; q++)
		atomic_init(&ms->warned_no_key[q], false);
	if (!ms->host || !ms->socket || !ms->user || !ms->password || !ms->database ||
	    !ms->maildir_root || !ms->query[0] || !ms->query[1] || !ms->query[2]) {
		source_free(ms);
		return NULL;
	}
	ms->base.ops = &mysql_ops;
	ms->base.state = ms;
	return &ms->base;
}

bool
quota_source_mysql_library_init(void)
{
	return mysql_library_init(0, NULL, NULL) == 0;
}
