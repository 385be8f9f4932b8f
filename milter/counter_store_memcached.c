/*
 * counter_store_memcached.c - counters shared by a fleet, in memcached,
 * through libmemcached.
 *
 * A memcached_st is not thread-safe, so threads borrow handles from a
 * libmemcachedutil pool (the pool's lock is held only while a handle is
 * handed over, never across I/O).  Every handle speaks the binary
 * protocol, whose increment-with-initial creates a missing key with its
 * TTL and increments an existing one in one atomic round trip; keys go to
 * servers by consistent hashing (ketama, weighted like other ketama
 * clients), so adding a server moves only a fraction of the keys.
 * Connect, poll, send and receive are all bounded by timeout_ms
 * (libmemcached's defaults are seconds).
 *
 * Dead servers: each server has a circuit breaker (breaker.h) shared by
 * every handle.  The first failure opens it and is logged; while it is
 * open, operations on that server's keys fail at once instead of each
 * thread waiting out its own timeout; every RETRY_MS one operation is let
 * through as a probe, and its success closes the breaker (logged).
 * libmemcached's own per-handle back-off is turned off so that it cannot
 * disagree with the breaker, and servers are never ejected: a key stays on
 * its server, whose counts are still there when it answers again, and
 * meanwhile the caller's on_error applies to that server's keys only.
 *
 * Thread-safety: the pool is thread-safe; the breakers are lock-free.
 */
#include "counter_store.h"

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "clock.h"
#include "log.h"
#include "stats.h"

#define POOL_MAX 64   /* handles: more threads than that wait */
#define RETRY_MS 1000 /* a dead server is probed this often */
#define SERVER_NAME_MAX 280

struct mc_server {
	char name[SERVER_NAME_MAX]; /* "host:port" for logs */
	struct breaker breaker;	    /* opens on the first failure, probes every RETRY_MS */
	struct stats_backend *stats; /* its requests (NULL: not counted) */
};

struct memcached_store {
	struct counter_store base;
	memcached_st *master;
	memcached_pool_st *pool;
	unsigned timeout_ms;
	size_t nservers;
	struct mc_server *servers; /* by libmemcached's server index */
};

static struct memcached_store *
mc_of(struct counter_store *cs)
{
	return (struct memcached_store *)cs;
}

/* Feed the outcome of an operation on srv to its breaker, and log what changed. */
static void
mc_record(struct mc_server *srv, memcached_return_t rc, const char *what, uint64_t t0_us)
{
	/* Any answer from the server shows it is there. */
	bool answered = rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ||
			rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS;

	stats_backend_request(srv->stats, !answered ? STATS_ERROR :
			      rc == MEMCACHED_NOTFOUND ? STATS_NOT_FOUND : STATS_OK,
			      clock_us() - t0_us);
	switch (breaker_record(&srv->breaker, answered)) {
	case BREAKER_CLOSED:
		log_warning("memcached %s answers again", srv->name);
		break;
	case BREAKER_OPENED:
		log_warning("memcached %s failed (%s: %s): its keys are skipped, and it is "
			    "probed every %d ms until it answers",
			    srv->name, what, memcached_strerror(NULL, rc), RETRY_MS);
		break;
	case BREAKER_SAME:
		break;
	}
}

/* A handle from the pool, waiting at most timeout_ms; NULL on failure. */
static memcached_st *
mc_borrow(struct memcached_store *mc)
{
	struct timespec wait = {mc->timeout_ms / 1000, (long)(mc->timeout_ms % 1000) * 1000000L};
	memcached_return_t rc;
	memcached_st *h = memcached_pool_fetch(mc->pool, &wait, &rc);

	if (h == NULL)
		log_warning("memcached: no free connection within %u ms (%s)", mc->timeout_ms,
			    memcached_strerror(NULL, rc));
	return h;
}

/* Hand a handle back to the pool. */
static void
mc_return(struct memcached_store *mc, memcached_st *h)
{
	memcached_pool_release(mc->pool, h);
}

/*
 * A handle for one operation on key, and the server that holds key; NULL
 * (nothing borrowed) when no handle is free in time or that server's
 * breaker is open.  mc_return() the handle after.
 */
static memcached_st *
mc_begin(struct memcached_store *mc, const char *key, size_t len, struct mc_server **srv)
{
	memcached_st *h = mc_borrow(mc);
	uint32_t i;

	if (h == NULL)
		return NULL;
	i = memcached_generate_hash(h, key, len);
	*srv = &mc->servers[i < mc->nservers ? i : 0];
	if (!breaker_allow(&(*srv)->breaker)) {
		stats_backend_request((*srv)->stats, STATS_SKIPPED, 0);
		mc_return(mc, h);
		return NULL;
	}
	return h;
}

/* memcached reads an expiration over 30 days as a point in Unix time. */
static time_t
mc_expiration(unsigned ttl)
{
	return ttl > 30 * 86400 ? time(NULL) + (time_t)ttl : (time_t)ttl;
}

/* Map a libmemcached result onto a store status. */
static enum store_status
mc_status(memcached_return_t rc)
{
	if (rc == MEMCACHED_SUCCESS)
		return STORE_OK;
	if (rc == MEMCACHED_NOTFOUND)
		return STORE_NOT_FOUND;
	return STORE_ERROR;
}

/* Create-or-increment in one round trip (binary increment with initial value and TTL). */
static enum store_status
mc_incr(struct counter_store *cs, const char *key, size_t len, uint64_t delta, unsigned ttl,
	uint64_t *value)
{
	struct memcached_store *mc = mc_of(cs);
	struct mc_server *srv;
	uint64_t t0 = clock_us();
	memcached_st *h = mc_begin(mc, key, len, &srv);
	memcached_return_t rc;

	if (h == NULL)
		return STORE_ERROR;
	/*
	 * Two first increments of a key race to create it: memcached stores
	 * one and answers NOT_STORED to the other, whose retry then finds the
	 * key and increments it.  (Treating NOT_STORED as a failure would let
	 * events through uncounted exactly when a burst starts.)
	 */
	for (int tries = 0; tries < 3; tries++) {
		rc = memcached_increment_with_initial(h, key, len, delta, delta, mc_expiration(ttl),
						      value);
		if (rc != MEMCACHED_NOTSTORED)
			break;
	}
	mc_record(srv, rc, "incr", t0);
	mc_return(mc, h);
	return mc_status(rc);
}

/* Give back; a key that expired meanwhile is NOT_FOUND (binary decrement never creates). */
static enum store_status
mc_decr(struct counter_store *cs, const char *key, size_t len, uint64_t delta)
{
	struct memcached_store *mc = mc_of(cs);
	struct mc_server *srv;
	uint64_t t0 = clock_us();
	memcached_st *h = mc_begin(mc, key, len, &srv);
	memcached_return_t rc;
	uint64_t value;

	if (h == NULL)
		return STORE_ERROR;
	rc = memcached_decrement(h, key, len, delta > UINT32_MAX ? UINT32_MAX : (uint32_t)delta,
				 &value);
	mc_record(srv, rc, "decr", t0);
	mc_return(mc, h);
	return mc_status(rc);
}

/* The end of one operation begun by mc_begin(): record its outcome rc, return the handle; rc. */
static memcached_return_t
mc_end(struct memcached_store *mc, memcached_st *h, struct mc_server *srv, memcached_return_t rc,
       const char *what, uint64_t t0_us)
{
	mc_record(srv, rc, what, t0_us);
	mc_return(mc, h);
	return rc;
}

/*
 * A marker (binary add): memcached stores it only when the key is absent,
 * atomically, and answers "exists" (NOT_STORED in the text protocol) when
 * it is there.
 */
static enum store_status
mc_add(struct counter_store *cs, const char *key, size_t len, unsigned ttl)
{
	struct mc_server *srv = NULL;
	uint64_t t0 = clock_us();
	memcached_st *h = mc_begin(mc_of(cs), key, len, &srv);
	memcached_return_t rc = MEMCACHED_FAILURE;

	if (h != NULL)
		rc = mc_end(mc_of(cs), h, srv,
			    memcached_add(h, key, len, "1", 1, mc_expiration(ttl), 0), "add", t0);
	if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
		return STORE_EXISTS;
	return mc_status(rc);
}

/* A counter's value as memcached keeps it: decimal digits, maybe space-padded after a decr. */
static bool
parse_count(const char *text, size_t len, uint64_t *value)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	if (i == 0)
		return false;
	for (; i < len; i++)
		if (text[i] != ' ')
			return false;
	*value = v;
	return true;
}

/* A counter's current value (the previous window's, for the sliding estimate). */
static enum store_status
mc_get(struct counter_store *cs, const char *key, size_t len, uint64_t *value)
{
	struct memcached_store *mc = mc_of(cs);
	struct mc_server *srv;
	uint64_t t0 = clock_us();
	memcached_st *h = mc_begin(mc, key, len, &srv);
	memcached_return_t rc;
	size_t vlen = 0;
	uint32_t flags;
	char *text;
	enum store_status st;

	if (h == NULL)
		return STORE_ERROR;
	text = memcached_get(h, key, len, &vlen, &flags, &rc);
	mc_record(srv, rc, "get", t0);
	mc_return(mc, h);
	st = mc_status(rc);
	if (st == STORE_OK && !parse_count(text, vlen, value))
		st = STORE_ERROR; /* not a counter: someone else's key */
	free(text);
	return st;
}

/* Remove a counter (binary delete); NOT_FOUND when memcached had none. */
static enum store_status
mc_del(struct counter_store *cs, const char *key, size_t len)
{
	struct mc_server *srv = NULL;
	uint64_t t0 = clock_us();
	memcached_st *h = mc_begin(mc_of(cs), key, len, &srv);
	memcached_return_t rc = MEMCACHED_FAILURE;

	if (h != NULL)
		rc = mc_end(mc_of(cs), h, srv, memcached_delete(h, key, len, 0), "delete", t0);
	return mc_status(rc);
}

/* True while every breaker is closed. */
static bool
mc_healthy(struct counter_store *cs)
{
	struct memcached_store *mc = mc_of(cs);

	for (size_t i = 0; i < mc->nservers; i++)
		if (breaker_is_open(&mc->servers[i].breaker))
			return false;
	return true;
}

/* Free the pool, the master handle and the servers' breakers. */
static void
mc_destroy(struct counter_store *cs)
{
	struct memcached_store *mc = mc_of(cs);

	if (mc->pool != NULL)
		memcached_pool_destroy(mc->pool);
	if (mc->master != NULL)
		memcached_free(mc->master);
	free(mc->servers);
	free(mc);
}

/* What it is, the counter operations, and its upkeep. */
static const struct counter_store_ops memcached_ops = {
    .name = "memcached", .remote = true,
    .incr = mc_incr, .decr = mc_decr, .add = mc_add, .get = mc_get, .del = mc_del,
    .healthy = mc_healthy, .destroy = mc_destroy,
};

/* Split "host:port" or "[v6]:port" into host and port. */
static bool
split_server(const char *spec, char *host, size_t size, in_port_t *port)
{
	const char *colon = strrchr(spec, ':');
	size_t hlen;
	long p;
	char *end;

	if (colon == NULL)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p <= 0 || p > 65535)
		return false;
	if (spec[0] == '[' && colon > spec && colon[-1] == ']') {
		spec++;
		hlen = (size_t)(colon - 1 - spec);
	} else
		hlen = (size_t)(colon - spec);
	if (hlen == 0 || hlen >= size)
		return false;
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	*port = (in_port_t)p;
	return true;
}

/* Every behaviour the store relies on; false with a message when one is refused. */
static bool
mc_configure(memcached_st *m, unsigned timeout_ms, char *err, size_t err_size)
{
	static const struct {
		memcached_behavior_t flag;
		const char *name;
	} names[] = {
	    {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, "binary protocol"},
	    {MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, "ketama"},
	    {MEMCACHED_BEHAVIOR_NO_BLOCK, "non-blocking I/O"},
	    {MEMCACHED_BEHAVIOR_TCP_NODELAY, "TCP_NODELAY"},
	    {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, "connect timeout"},
	    {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, "poll timeout"},
	    {MEMCACHED_BEHAVIOR_SND_TIMEOUT, "send timeout"},
	    {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, "receive timeout"},
	    {MEMCACHED_BEHAVIOR_SERVER_TIMEOUT_LIMIT, "timeout limit"},
	    {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, "failure limit"},
	    {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, "retry timeout"},
	};
	/* SND/RCV are in microseconds; the breaker replaces the back-off limits. */
	const uint64_t values[] = {
	    1,
	    1,
	    1,
	    1,
	    timeout_ms,
	    timeout_ms,
	    (uint64_t)timeout_ms * 1000,
	    (uint64_t)timeout_ms * 1000,
	    1u << 30,
	    1u << 30,
	    0,
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		memcached_return_t rc = memcached_behavior_set(m, names[i].flag, values[i]);

		if (rc != MEMCACHED_SUCCESS) {
			snprintf(err, err_size, "memcached: cannot set %s: %s", names[i].name,
				 memcached_strerror(m, rc));
			return false;
		}
	}
	return true;
}

struct counter_store *
counter_store_memcached_create(const struct string_list *servers, unsigned timeout_ms, char *err,
			       size_t err_size)
{
	struct memcached_store *mc = calloc(1, sizeof(*mc));

	if (mc == NULL || servers->count == 0 ||
	    (mc->servers = calloc(servers->count, sizeof(*mc->servers))) == NULL ||
	    (mc->master = memcached_create(NULL)) == NULL) {
		snprintf(err, err_size, "memcached: %s",
			 mc && servers->count == 0 ? "no server" : "out of memory");
		if (mc)
			mc_destroy(&mc->base);
		return NULL;
	}
	mc->base.ops = &memcached_ops;
	mc->timeout_ms = timeout_ms;
	mc->nservers = servers->count;
	for (size_t i = 0; i < servers->count; i++) {
		char host[SERVER_NAME_MAX];
		in_port_t port;
		memcached_return_t rc;

		if (!split_server(servers->items[i], host, sizeof(host), &port)) {
			snprintf(err, err_size, "memcached: bad server \"%s\"", servers->items[i]);
			mc_destroy(&mc->base);
			return NULL;
		}
		if ((rc = memcached_server_add(mc->master, host, port)) != MEMCACHED_SUCCESS) {
			snprintf(err, err_size, "memcached: cannot add server %s: %s",
				 servers->items[i], memcached_strerror(mc->master, rc));
			mc_destroy(&mc->base);
			return NULL;
		}
	}
	if (!mc_configure(mc->master, timeout_ms, err, err_size)) {
		mc_destroy(&mc->base);
		return NULL;
	}
	/* Server indexes are the order of the list once the continuum is built. */
	for (size_t i = 0; i < mc->nservers; i++) {
		const memcached_instance_st *in =
		    memcached_server_instance_by_position(mc->master, (uint32_t)i);

		snprintf(mc->servers[i].name, sizeof(mc->servers[i].name), "%s:%u",
			 in ? memcached_server_name(in) : servers->items[i],
			 in ? (unsigned)memcached_server_port(in) : 0);
		breaker_init(&mc->servers[i].breaker, 1, RETRY_MS);
		mc->servers[i].stats = stats_backend_slot("memcached", mc->servers[i].name);
	}
	if ((mc->pool = memcached_pool_create(mc->master, 1, POOL_MAX)) == NULL) {
		snprintf(err, err_size, "memcached: cannot create the connection pool");
		mc_destroy(&mc->base);
		return NULL;
	}
	return &mc->base;
}

bool
counter_store_memcached_server(struct counter_store *cs, size_t i, char *name, size_t size,
			       bool *breaker_open)
{
	struct memcached_store *mc = mc_of(cs);

	if (cs->ops != &memcached_ops || i >= mc->nservers)
		return false;
	snprintf(name, size, "%s", mc->servers[i].name);
	*breaker_open = breaker_is_open(&mc->servers[i].breaker);
	return true;
}
