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
 *    and the one retry) finishes within mysql.timeout_ms: one monotonic
 *    deadline, against which quota_source_mysql_conn.c polls each step of
 *    Connector/C's non-blocking API.
 *  - Servers.  mysql.servers lists servers tried in order (else the one
 *    host/port/socket).  Within the one deadline each server tried gets an
 *    equal share of what is left (clock_share), so a frozen first server
 *    leaves the next its time.  Each listed server has its own pool,
 *    counters and breaker: one that does not answer is skipped for
 *    SERVER_BREAKER_OPEN_MS, then one lookup probes it and, when it
 *    answers, the lookups go back to it (see mysql_lookup).
 *  - Connections are opened lazily and pooled per server: a lookup takes an
 *    idle one (or opens one), uses it alone, and gives it back.  A pooled connection
 *    that the server dropped (restart, wait_timeout, KILL) fails with "server
 *    has gone away" or "lost connection": the lookup is retried once on a
 *    new connection, so a restart costs no tempfail.
 *  - "Not found" (no row, or no exact row) and "could not look" (SQL or
 *    network error, deadline, a row mxgate cannot use) are never folded
 *    together.
 *
 * This file holds what a lookup means: which keys may be asked, what a
 * row says, the pool and the retry, the quota_source interface.  How one
 * connection talks to the server is quota_source_mysql_conn.c's.
 *
 * Thread-safety: any number of threads may look up at once; the pools are
 * the shared state, guarded by one mutex that is never held across I/O;
 * the breakers and counters are atomic.
 * close() may be called while lookups are in flight: the source is freed by
 * the last one.  quota_source_mysql_library_init() runs before any thread.
 */
#include "quota_source.h"

#include <limits.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "log.h"
#include "quota_source_mysql_conn.h"
#include "server_addr.h"
#include "stats.h"

#ifndef MARIADB_PACKAGE_VERSION_ID
/* Its non-blocking API is what gives every lookup a deadline. */
#error "quota_source_mysql.c needs MariaDB Connector/C (libmariadb-dev)"
#endif

#define MYSQL_IDLE_MAX		32	/* idle connections kept per server; more are closed on release */
#define SERVER_BREAKER_FAILURES	1	/* of a server in a list: the next one answers meanwhile */
#define SERVER_BREAKER_OPEN_MS	5000

/* One server of the list: how to reach it, its idle connections, breaker and counters. */
struct mysql_endpoint {
	struct mysql_server server;	/* what each of its connections is opened with */
	char	name[STATS_NAME_MAX];	/* "host:port", "[v6]:port" or "unix:PATH" */
	struct mysql_conn *idle;	/* guarded by the source's lock */
	unsigned nidle;			/* guarded by the source's lock */
	struct breaker breaker;		/* only with more than one server (see mysql_lookup) */
	struct stats_backend *stats;	/* its requests (NULL: not counted) */
};

struct mysql_source {
	struct quota_source base;
	struct mysql_endpoint *servers;	/* tried in this order */
	size_t	nservers;
	unsigned timeout_ms;		/* one lookup, all servers together */
	char   *maildir_root;

	pthread_mutex_t lock;
	unsigned busy;			/* lookups in flight; guarded by lock */
	bool	closing;		/* guarded by lock */
};

/* ---- keys ----------------------------------------------------------------- */

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

/* True for the server's "Illegal mix of collations" errors. */
static bool
is_collation_mix(unsigned err)
{
	return err == ER_CANT_AGGREGATE_2COLLATIONS || err == ER_CANT_AGGREGATE_3COLLATIONS ||
	    err == ER_CANT_AGGREGATE_NCOLLATIONS;
}

/*
 * One attempt of the lookup on c: the statement run with the key, unless
 * no row could equal the key.  CONN_OK with no rows is "not found".
 */
static enum conn_result
lookup_attempt(struct mysql_server *srv, struct mysql_conn *c, struct lookup *lk,
	       uint64_t deadline)
{
	enum conn_result r;

	if ((r = mysql_conn_ready(srv, c, lk, deadline)) != CONN_OK)
		return r;
	if (!c->has_key[lk->query] && !key_is_plain(lk->key))
		return CONN_OK;		/* could only match a look-alike: not found */
	r = mysql_conn_execute(c, lk, deadline);
	/*
	 * "Illegal mix of collations" for a key with non-ASCII characters:
	 * the key has a character the column's charset cannot hold (a
	 * latin1 column and U+200B), so no stored key can equal it.  An
	 * ASCII key always converts, so there it is the query's fault.
	 */
	if (r == CONN_SQL_ERROR && is_collation_mix(lk->errnum) && !key_is_ascii(lk->key))
		return CONN_OK;
	return r;
}

/* ---- the pool, the retry and the servers in turn ------------------------ */

/* Free one server's settings. */
static void
server_free(struct mysql_server *srv)
{
	free(srv->host);
	free(srv->socket);
	free(srv->user);
	free(srv->password);
	free(srv->database);
	for (int q = 0; q < QUERY_COUNT; q++)
		free(srv->query[q]);
}

/* Free the source and its settings (no connection is left by then). */
static void
source_free(struct mysql_source *ms)
{
	pthread_mutex_destroy(&ms->lock);
	for (size_t i = 0; i < ms->nservers; i++)
		server_free(&ms->servers[i].server);
	free(ms->servers);
	free(ms->maildir_root);
	free(ms);
}

/* An idle connection to ep, or a new unconnected one (NULL when out of memory). */
static struct mysql_conn *
pool_take(struct mysql_source *ms, struct mysql_endpoint *ep)
{
	struct mysql_conn *c;

	pthread_mutex_lock(&ms->lock);
	if ((c = ep->idle) != NULL) {
		ep->idle = c->next;
		ep->nidle--;
	}
	pthread_mutex_unlock(&ms->lock);
	if (c == NULL)
		c = calloc(1, sizeof(*c));
	else
		c->next = NULL;
	return c;
}

/* Give a healthy connection back to ep (or close it when the pool is full or closing). */
static void
pool_give(struct mysql_source *ms, struct mysql_endpoint *ep, struct mysql_conn *c)
{
	pthread_mutex_lock(&ms->lock);
	if (!ms->closing && ep->nidle < MYSQL_IDLE_MAX) {
		c->next = ep->idle;
		ep->idle = c;
		ep->nidle++;
		c = NULL;
	}
	pthread_mutex_unlock(&ms->lock);
	mysql_conn_free(c, false);
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

/* True when the server did not answer (the next one may): the connection failed. */
static bool
is_unreachable(enum conn_result r)
{
	return r == CONN_GONE || r == CONN_BROKEN;
}

/*
 * The lookup on one server by deadline: an attempt on a pooled connection,
 * and one more on a fresh connection if the server had dropped the pooled
 * one.  Counted in the server's stats; a failure is left in lk->error.
 */
static enum conn_result
server_lookup(struct mysql_source *ms, struct mysql_endpoint *ep, struct lookup *lk,
	      uint64_t deadline)
{
	uint64_t t0 = clock_us(), now = clock_ms();
	enum conn_result r = CONN_BROKEN;
	struct mysql_conn *c;
	bool	reused;

	lk->budget_ms = deadline > now ? (unsigned)(deadline - now) : 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((c = pool_take(ms, ep)) == NULL) {
			snprintf(lk->error, sizeof(lk->error), "out of memory");
			r = CONN_BROKEN;
			break;
		}
		reused = c->db != NULL;
		lk->rows = 0;
		lk->errnum = 0;
		lk->error[0] = '\0';
		r = lookup_attempt(&ep->server, c, lk, deadline);
		if (is_unreachable(r))
			mysql_conn_free(c, true);
		else
			pool_give(ms, ep, c);
		if (r == CONN_GONE && reused && attempt == 0 && clock_ms() < deadline) {
			log_debug("mysql: %s: %s: %s; reconnecting", ep->name,
				  query_shapes[lk->query].name, lk->error);
			continue;
		}
		break;
	}
	stats_backend_request(ep->stats, r != CONN_OK ? STATS_ERROR :
			      lk->rows > 0 ? STATS_OK : STATS_NOT_FOUND, clock_us() - t0);
	return r;
}

/* Feed a listed server's breaker with whether it answered, and log what changed. */
static void
server_record(struct mysql_endpoint *ep, bool answered)
{
	switch (breaker_record(&ep->breaker, answered)) {
	case BREAKER_OPENED:
		log_warning("mysql: server %s does not answer; the next servers are asked for "
			    "%d s", ep->name, SERVER_BREAKER_OPEN_MS / 1000);
		break;
	case BREAKER_CLOSED:
		log_info("mysql: server %s answers again", ep->name);
		break;
	case BREAKER_SAME:
		break;
	}
}

/*
 * Run one lookup with one deadline (mysql.timeout_ms) over the servers in
 * order.  Each server tried gets an equal share of what is left, so a
 * frozen one leaves the next its time; a server that does not answer is
 * skipped by its breaker for SERVER_BREAKER_OPEN_MS, then probed by one
 * lookup, which brings the others back to it when it answers.  A server
 * that answers, even with an SQL error or a bad row, ends the lookup: the
 * others hold the same data.  With one server there is no breaker here:
 * the quota service's is that server's (quota.c).
 */
static enum source_status
mysql_lookup(struct mysql_source *ms, struct lookup *lk)
{
	uint64_t now = clock_ms(), deadline = now + ms->timeout_ms;
	enum conn_result r = CONN_BROKEN;
	bool	listed = ms->nservers > 1, tried = false;
	const char *last = ms->servers[0].name;

	lk->ms = ms;
	pthread_mutex_lock(&ms->lock);
	ms->busy++;
	pthread_mutex_unlock(&ms->lock);

	for (size_t i = 0; i < ms->nservers && now < deadline; i++, now = clock_ms()) {
		struct mysql_endpoint *ep = &ms->servers[i];

		if (listed && !breaker_allow(&ep->breaker)) {
			stats_backend_request(ep->stats, STATS_SKIPPED, 0);
			continue;
		}
		tried = true;
		last = ep->name;
		r = server_lookup(ms, ep, lk, clock_share(now, deadline,
							   (unsigned)(ms->nservers - i)));
		if (listed)
			server_record(ep, !is_unreachable(r));
		if (!is_unreachable(r))
			break;
		if (listed && i + 1 < ms->nservers)
			log_warning("mysql: %s: %s: %s; trying the next server", ep->name,
				    query_shapes[lk->query].name, lk->error);
	}
	if (!tried)
		snprintf(lk->error, sizeof(lk->error), "every server's circuit breaker is open");
	if (r != CONN_OK) {
		if (listed)
			log_warning("mysql: %s: %s: %s", tried ? last : "no server",
				    query_shapes[lk->query].name, lk->error);
		else
			log_warning("mysql: %s: %s", query_shapes[lk->query].name, lk->error);
	}
	source_leave(ms);
	if (r != CONN_OK)
		return SOURCE_ERROR;
	return lk->rows > 0 ? SOURCE_OK : SOURCE_NOT_FOUND;
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

/* A lookup whose answer is a string (a goto list, a target domain) into buf. */
static enum source_status
mysql_text(struct quota_source *src, enum mysql_query query, const char *key,
	   bool (*row)(struct lookup *, const struct mysql_conn *), char *buf, size_t size)
{
	struct lookup lk;

	if (size == 0)
		return SOURCE_ERROR;
	buf[0] = '\0';
	if (!lookup_init(&lk, query, key, row, buf, size))
		return SOURCE_NOT_FOUND;
	return mysql_lookup(src->state, &lk);
}

/* quota_source_ops.alias_domain: alias_domain_query. */
static enum source_status
mysql_alias_domain(struct quota_source *src, const char *domain, char *target, size_t size)
{
	return mysql_text(src, QUERY_ALIAS_DOMAIN, domain, alias_domain_row, target, size);
}

/* quota_source_ops.alias: alias_query. */
static enum source_status
mysql_alias(struct quota_source *src, const char *address, char *goto_list, size_t size)
{
	return mysql_text(src, QUERY_ALIAS, address, alias_row, goto_list, size);
}

/* quota_source_ops.mailbox: quota_query. */
static enum source_status
mysql_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	struct lookup lk;

	memset(out, 0, sizeof(*out));
	if (!lookup_init(&lk, QUERY_MAILBOX, address, mailbox_row, out, sizeof(*out)))
		return SOURCE_NOT_FOUND;
	return mysql_lookup(src->state, &lk);
}

/* quota_source_ops.close: the idle connections now, the source with the last lookup. */
static void
mysql_source_close(struct quota_source *src)
{
	struct mysql_source *ms;
	struct mysql_conn *list = NULL, *next;
	bool	now;

	if (src == NULL)
		return;
	ms = src->state;
	pthread_mutex_lock(&ms->lock);
	ms->closing = true;
	for (size_t i = 0; i < ms->nservers; i++) {
		struct mysql_endpoint *ep = &ms->servers[i];

		while (ep->idle != NULL) {
			next = ep->idle->next;
			ep->idle->next = list;
			list = ep->idle;
			ep->idle = next;
		}
		ep->nidle = 0;
	}
	now = ms->busy == 0;
	pthread_mutex_unlock(&ms->lock);
	for (; list != NULL; list = next) {
		next = list->next;
		mysql_conn_free(list, false);
	}
	if (now)
		source_free(ms);
}

/* quota_source_ops.servers: each server in order, with its breaker. */
static size_t
mysql_source_servers(struct quota_source *src, struct source_server *out, size_t max)
{
	struct mysql_source *ms = src->state;
	size_t	n = 0;

	for (; n < ms->nservers && n < max; n++) {
		snprintf(out[n].name, sizeof(out[n].name), "%s", ms->servers[n].name);
		out[n].breaker_open = breaker_is_open(&ms->servers[n].breaker);
	}
	return n;
}

static const struct quota_source_ops mysql_ops = {
	.name = "mysql", .alias_domain = mysql_alias_domain, .alias = mysql_alias,
	.mailbox = mysql_mailbox, .close = mysql_source_close, .servers = mysql_source_servers,
};

/*
 * Set up ep for the server at host:port or socket (one of them empty),
 * with cfg's account, queries and the name its counters go by.
 */
static bool
server_init(struct mysql_endpoint *ep, const struct config *cfg, const char *host,
	    unsigned port, const char *socket, const char *name)
{
	struct mysql_server *srv = &ep->server;

	srv->host = strdup(host);
	srv->socket = strdup(socket);
	srv->user = strdup(cfg->mysql.user);
	srv->password = strdup(cfg->mysql.password);
	srv->database = strdup(cfg->mysql.database);
	srv->query[QUERY_MAILBOX] = strdup(cfg->mysql.quota_query);
	srv->query[QUERY_ALIAS] = strdup(cfg->mysql.alias_query);
	srv->query[QUERY_ALIAS_DOMAIN] = strdup(cfg->mysql.alias_domain_query);
	srv->port = port;
	srv->timeout_ms = cfg->mysql.timeout_ms ? cfg->mysql.timeout_ms : 1000;
	for (int q = 0; q < QUERY_COUNT; q++)
		atomic_init(&srv->warned_no_key[q], false);
	snprintf(ep->name, sizeof(ep->name), "%s", name);
	breaker_init(&ep->breaker, SERVER_BREAKER_FAILURES, SERVER_BREAKER_OPEN_MS);
	ep->stats = stats_backend_slot("mysql", ep->name);
	return srv->host && srv->socket && srv->user && srv->password && srv->database &&
	    srv->query[0] && srv->query[1] && srv->query[2];
}

/* Every server cfg names: mysql.servers in order, or the one host/port/socket. */
static bool
servers_init(struct mysql_source *ms, const struct config *cfg)
{
	const struct string_list *list = &cfg->mysql.servers;
	char	name[STATS_NAME_MAX];

	ms->nservers = list->count > 0 ? list->count : 1;
	if ((ms->servers = calloc(ms->nservers, sizeof(*ms->servers))) == NULL) {
		ms->nservers = 0;
		return false;
	}
	if (list->count == 0) {
		/* Named as before the list existed: "host:port" or "unix:PATH". */
		if (cfg->mysql.socket[0] != '\0')
			snprintf(name, sizeof(name), "unix:%s", cfg->mysql.socket);
		else
			snprintf(name, sizeof(name), "%s:%u", cfg->mysql.host,
				 cfg->mysql.port ? cfg->mysql.port : 3306);
		return server_init(&ms->servers[0], cfg, cfg->mysql.host, cfg->mysql.port,
				   cfg->mysql.socket, name);
	}
	for (size_t i = 0; i < list->count; i++) {
		struct server_addr addr;

		/* The configuration check has parsed every entry already. */
		if (!server_addr_parse(list->items[i], &addr) ||
		    !server_init(&ms->servers[i], cfg, addr.host, addr.port, addr.socket,
				 list->items[i]))
			return false;
	}
	return true;
}

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
	ms->timeout_ms = cfg->mysql.timeout_ms ? cfg->mysql.timeout_ms : 1000;
	ms->maildir_root = strdup(cfg->quota.maildir_root);
	if (!servers_init(ms, cfg) || ms->maildir_root == NULL) {
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
