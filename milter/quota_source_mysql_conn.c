/*
 * quota_source_mysql_conn.c - the MariaDB source's connections (see
 * quota_source_mysql_conn.h): connecting, preparing, executing and
 * fetching through the non-blocking API of Connector/C, each step polled
 * against the lookup's one monotonic deadline.
 *
 * The library's own timeouts (the attempt's share of the deadline in
 * whole seconds, rounded up) are set too, as a backstop.  A connection abandoned at the deadline is shut down, never
 * reused.  Host names are resolved by the library with a blocking
 * getaddrinfo(): configure an address or a socket.  What an error means
 * for the connection (retry once, keep it, drop it) is decided here, from
 * the error number; what it means for the lookup is the caller's.
 * Thread-safety: see the header.
 */
#include "quota_source_mysql_conn.h"

#include <errno.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "log.h"

const struct query_shape query_shapes[QUERY_COUNT] = {
	[QUERY_MAILBOX] = {"quota_query", 2},
	[QUERY_ALIAS] = {"alias_query", 1},
	[QUERY_ALIAS_DOMAIN] = {"alias_domain_query", 1},
};

/* The poll() events for what the library waits for. */
static short
wait_events(int status)
{
	short	events = 0;

	if (status & MYSQL_WAIT_READ)
		events |= POLLIN;
	if (status & MYSQL_WAIT_WRITE)
		events |= POLLOUT;
	if (status & MYSQL_WAIT_EXCEPT)
		events |= POLLPRI;
	return events;
}

/*
 * Wait for what the library asked for, within the deadline.  Returns the
 * events for the _cont() call, or 0 when the deadline passed (or poll
 * failed): the operation must then be abandoned.
 */
static int
conn_wait(MYSQL *db, int status, uint64_t deadline)
{
	struct pollfd pfd;
	uint64_t now;
	long	wait_ms;
	bool	library_timeout;
	int	n, events;

	for (;;) {
		if ((now = clock_ms()) >= deadline)
			return 0;
		wait_ms = (long)(deadline - now);
		library_timeout = false;
		if ((status & MYSQL_WAIT_TIMEOUT) &&
		    (long)mysql_get_timeout_value_ms(db) < wait_ms) {
			wait_ms = (long)mysql_get_timeout_value_ms(db);
			library_timeout = true;
		}
		pfd.fd = (int)mysql_get_socket(db);
		pfd.events = wait_events(status);
		pfd.revents = 0;
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

/*
 * Drive a statement call that its _start() left waiting (status != 0) to
 * its end with cont, within the deadline; *rc is then the call's result.
 * False when the deadline passed: the connection must be abandoned.
 */
static bool
stmt_drive(MYSQL *db, MYSQL_STMT *stmt, int status, int *rc,
	   int (*cont)(int *, MYSQL_STMT *, int), uint64_t deadline)
{
	while (status != 0) {
		if ((status = conn_wait(db, status, deadline)) == 0)
			return false;
		status = cont(rc, stmt, status);
	}
	return true;
}

void
mysql_conn_free(struct mysql_conn *c, bool abandon)
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
	lk->errnum = mysql_errno(db);
	snprintf(lk->error, sizeof(lk->error), "%s: %s (%u)", what, mysql_error(db), lk->errnum);
	return conn_classify(lk->errnum);
}

/* The same for a statement's error. */
static enum conn_result
stmt_failed(struct lookup *lk, MYSQL_STMT *stmt, const char *what)
{
	lk->errnum = mysql_stmt_errno(stmt);
	snprintf(lk->error, sizeof(lk->error), "%s: %s (%u)", what, mysql_stmt_error(stmt),
		 lk->errnum);
	return conn_classify(lk->errnum);
}

/* The deadline passed in the middle of what: the connection is abandoned. */
static enum conn_result
conn_timed_out(struct lookup *lk, const char *what)
{
	snprintf(lk->error, sizeof(lk->error), "%s: no answer within %u ms", what, lk->budget_ms);
	return CONN_BROKEN;
}

/* Open c->db to the configured server, within the deadline. */
static enum conn_result
conn_open(const struct mysql_server *srv, struct mysql_conn *c, struct lookup *lk,
	  uint64_t deadline)
{
	unsigned timeout_s = (lk->budget_ms + 999) / 1000;
	unsigned protocol = srv->socket[0] ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
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
					  srv->socket[0] ? "localhost" : srv->host,
					  srv->user, srv->password,
					  srv->database[0] ? srv->database : NULL,
					  srv->port, srv->socket[0] ? srv->socket : NULL, 0);
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
conn_prepare(struct mysql_server *srv, struct mysql_conn *c, struct lookup *lk,
	     uint64_t deadline)
{
	const struct query_shape *shape = &query_shapes[lk->query];
	const char *text = srv->query[lk->query];
	MYSQL_STMT *stmt;
	unsigned fields;
	int	status, rc = 1;

	if ((stmt = mysql_stmt_init(c->db)) == NULL)
		return conn_failed(lk, c->db, "prepare");
	c->stmt[lk->query] = stmt;	/* freed with the connection, whatever happens */
	status = mysql_stmt_prepare_start(&rc, stmt, text, (unsigned long)strlen(text));
	if (!stmt_drive(c->db, stmt, status, &rc, mysql_stmt_prepare_cont, deadline))
		return conn_timed_out(lk, "prepare");
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
	    !atomic_exchange(&srv->warned_no_key[lk->query], true))
		log_warning("mysql: %s returns no key column, so only lower-case ASCII keys "
			    "are looked up with it (a collation could match others to a look-alike "
			    "row); return the key as a last column (see sql/README.md)", shape->name);
	return CONN_OK;
}

/*
 * Run a statement call that takes no argument (execute, store_result) with
 * start and cont, within the deadline: CONN_OK, or what went wrong, told
 * in lk->error as "what: ...".
 */
static enum conn_result
stmt_call(struct mysql_conn *c, struct lookup *lk,
	  const char *what, int (*start)(int *, MYSQL_STMT *),
	  int (*cont)(int *, MYSQL_STMT *, int), uint64_t deadline)
{
	MYSQL_STMT *stmt = c->stmt[lk->query];
	int	rc = 1;

	if (!stmt_drive(c->db, stmt, start(&rc, stmt), &rc, cont, deadline))
		return conn_timed_out(lk, what);
	return rc != 0 ? stmt_failed(lk, stmt, what) : CONN_OK;
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

enum conn_result
mysql_conn_ready(struct mysql_server *srv, struct mysql_conn *c, struct lookup *lk,
		 uint64_t deadline)
{
	enum conn_result r;

	if (c->db == NULL && (r = conn_open(srv, c, lk, deadline)) != CONN_OK)
		return r;
	if (c->stmt[lk->query] == NULL && (r = conn_prepare(srv, c, lk, deadline)) != CONN_OK)
		return r;
	return CONN_OK;
}

/*
 * Read the rows of the executed statement (fields columns, as prepared)
 * into client memory and hand every exact one to lk->row.
 */
static enum conn_result
conn_fetch(struct mysql_conn *c, struct lookup *lk,
	   unsigned fields, uint64_t deadline)
{
	MYSQL_STMT *stmt = c->stmt[lk->query];
	MYSQL_BIND result[MYSQL_COLUMNS_MAX];
	enum conn_result r;
	int	rc;

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
	if ((r = stmt_call(c, lk, "read", mysql_stmt_store_result_start,
			   mysql_stmt_store_result_cont, deadline)) != CONN_OK)
		return r;

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

enum conn_result
mysql_conn_execute(struct mysql_conn *c, struct lookup *lk, uint64_t deadline)
{
	MYSQL_STMT *stmt = c->stmt[lk->query];
	unsigned fields = mysql_stmt_field_count(stmt);	/* the shape conn_prepare checked */
	MYSQL_BIND param;
	enum conn_result r;

	memset(&param, 0, sizeof(param));
	param.buffer_type = MYSQL_TYPE_STRING;
	param.buffer = (void *)lk->key;
	param.buffer_length = lk->key_len;
	param.length = &lk->key_len;
	if (mysql_stmt_bind_param(stmt, &param) != 0)
		return stmt_failed(lk, stmt, "bind");

	if ((r = stmt_call(c, lk, "execute", mysql_stmt_execute_start,
			   mysql_stmt_execute_cont, deadline)) != CONN_OK)
		return r;
	return conn_fetch(c, lk, fields, deadline);
}
