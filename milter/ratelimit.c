/*
 * ratelimit.c - sliding-window rate limits over a counter store (see
 * ratelimit.h for the windows, the admission rule and the key format;
 * check_ratelimit.c makes the key values and their digests).
 *
 * One memcached round trip per counted window: the increment.  The count
 * of the previous window, which the sliding estimate also needs, no longer
 * changes once that window is over, so it is read once per key and window
 * and kept in a small in-process cache until the current window ends.
 * count = "distinct" adds one round trip per window in front: the add of
 * the value's marker, followed by the increment only when the add created
 * the marker (a new value).
 *
 * Thread-safety: the stores are thread-safe; the pointer to the current
 * memcached store is guarded by a mutex and reference-counted, so a reload
 * never frees a store that a thread is using.
 */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <assert.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "counter_store.h"
#include "log.h"
#include "snapshot.h"
#include "stats.h"

#define LOCAL_MAX_ENTRIES 262144 /* in-process counters (about 200 bytes each) */
#define CACHE_MAX_ENTRIES 65536	 /* cached counts of finished windows */

/* The memcached side, replaced on reload. */
struct backend {
	struct snapshot snap;	      /* the last reference frees it */
	struct counter_store *remote; /* NULL: no servers, count in process */
	char *signature;	      /* servers and timeout it was made from */
};

static struct snapshot_slot backend_slot = SNAPSHOT_SLOT_INITIALIZER;
static struct counter_store *local_store;  /* start to stop: survives reloads */
static struct counter_store *window_cache; /* previous windows' counts from memcached */
static atomic_bool counting_locally;

uint64_t
ratelimit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- window arithmetic ---------------------------------------------------- */

void
ratelimit_window(uint64_t now_ms, unsigned long period, struct rate_window *w)
{
	w->period_ms = (uint64_t)(period ? period : 1) * 1000;
	w->index = now_ms / w->period_ms;
	w->elapsed_ms = now_ms % w->period_ms;
}

bool
ratelimit_within(uint64_t current, uint64_t previous, const struct rate_window *w,
		 unsigned long limit)
{
	/* Whole numbers only: current*P + previous*(P - elapsed) <= limit*P. */
	unsigned __int128 lhs = (unsigned __int128)current * w->period_ms +
				(unsigned __int128)previous * (w->period_ms - w->elapsed_ms);

	return lhs <= (unsigned __int128)limit * w->period_ms;
}

uint64_t
ratelimit_estimate(uint64_t current, uint64_t previous, const struct rate_window *w)
{
	unsigned __int128 sum = (unsigned __int128)current * w->period_ms +
				(unsigned __int128)previous * (w->period_ms - w->elapsed_ms);
	unsigned __int128 est = sum / w->period_ms;

	return est > UINT64_MAX ? UINT64_MAX : (uint64_t)est;
}

unsigned
ratelimit_ttl(const struct rate_window *w)
{
	/* Until the next window ends, rounded up, and a second to spare. */
	return (unsigned)((2 * w->period_ms - w->elapsed_ms + 999) / 1000 + 1);
}

unsigned
ratelimit_marker_ttl(const struct rate_window *w)
{
	/* Only its own window asks for a marker: until it ends, and a second to spare. */
	return (unsigned)((w->period_ms - w->elapsed_ms + 999) / 1000 + 1);
}

/* ---- key values ---------------------------------------------------------- */

unsigned
ratelimit_group(const struct ipaddr *addr, unsigned ipv4_prefix, unsigned ipv6_prefix,
		struct ipaddr *out, char *text, size_t size)
{
	unsigned prefix = addr->family == AF_INET ? (ipv4_prefix > 32 ? 32 : ipv4_prefix)
						  : (ipv6_prefix > 128 ? 128 : ipv6_prefix);
	char net[INET6_ADDRSTRLEN];

	*out = *addr;
	ipaddr_mask(out, prefix);
	ipaddr_format(out, net, sizeof(net));
	snprintf(text, size, "%s/%u", net, prefix);
	return prefix;
}

/* "PREFIX RULE TAG:PERIOD:WINDOW:HEX" into buf; 0 when it does not fit. */
static size_t
key_name(char *buf, size_t size, const char *prefix, const char *rule, const char *tag,
	 unsigned long period, uint64_t window, const uint8_t digest[RATELIMIT_DIGEST_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	int n = snprintf(buf, size, "%s%s%s:%lu:%llu:", prefix, rule, tag, period,
			 (unsigned long long)window);

	if (n < 0 || (size_t)n + 2 * RATELIMIT_DIGEST_SIZE >= size)
		return 0;
	for (size_t i = 0; i < RATELIMIT_DIGEST_SIZE; i++) {
		buf[n++] = hex[digest[i] >> 4];
		buf[n++] = hex[digest[i] & 15];
	}
	buf[n] = '\0';
	return (size_t)n;
}

size_t
ratelimit_key_name(char *buf, size_t size, const char *prefix, const char *rule,
		   unsigned long period, uint64_t window,
		   const uint8_t digest[RATELIMIT_DIGEST_SIZE])
{
	return key_name(buf, size, prefix, rule, "", period, window, digest);
}

size_t
ratelimit_marker_name(char *buf, size_t size, const char *prefix, const char *rule,
		      unsigned long period, uint64_t window,
		      const uint8_t value[RATELIMIT_DIGEST_SIZE])
{
	return key_name(buf, size, prefix, rule, "/v", period, window, value);
}

const struct rate_limits *
ratelimit_limits(const struct rate_rule *rule, const struct rate_value *key,
		 const struct ipaddr *client, int *class_index)
{
	char addr[INET6_ADDRSTRLEN];
	const char *subject = key->text;

	/* A client_ip rule's globs see the client's own address, not its group. */
	if (rule->keys == RATE_KEY_CLIENT_IP && client != NULL) {
		ipaddr_format(client, addr, sizeof(addr));
		subject = addr;
	}
	for (size_t i = 0; i < rule->nclasses; i++) {
		const struct rate_class *c = &rule->classes[i];
		bool fits = c->is_cidr ? client != NULL && cidr_match(&c->cidr, client)
				       : fnmatch(c->match, subject, FNM_CASEFOLD) == 0;

		if (fits) {
			*class_index = (int)i;
			return &c->limits;
		}
	}
	*class_index = -1;
	return &rule->limits;
}

const struct rate_limits *
ratelimit_charge_limits(const struct config *cfg, const struct rate_charge *c)
{
	const struct rate_rule *rule = &cfg->ratelimit.rules[c->rule];

	return c->class_index >= 0 ? &rule->classes[c->class_index].limits : &rule->limits;
}

/* ---- stores -------------------------------------------------------------- */

/* "servers timeout" of a configuration, to tell whether a reload changes them. */
static char *
backend_signature(const struct config *cfg)
{
	size_t size = 32;
	char *sig, *p;

	for (size_t i = 0; i < cfg->memcached.servers.count; i++)
		size += strlen(cfg->memcached.servers.items[i]) + 1;
	if ((sig = malloc(size)) == NULL)
		return NULL;
	p = sig;
	for (size_t i = 0; i < cfg->memcached.servers.count; i++)
		p += sprintf(p, "%s ", cfg->memcached.servers.items[i]);
	sprintf(p, "%u", cfg->memcached.timeout_ms);
	return sig;
}

/* Free a backend nobody uses any more (its snapshot's free function). */
static void
backend_free(struct snapshot *snap)
{
	struct backend *b = snapshot_owner(snap, struct backend, snap);

	counter_store_destroy(b->remote);
	free(b->signature);
	free(b);
}

/* A reference to the current backend (NULL before start and after stop). */
static struct backend *
backend_acquire(void)
{
	struct snapshot *snap = snapshot_acquire(&backend_slot);

	return snap != NULL ? snapshot_owner(snap, struct backend, snap) : NULL;
}

/* Drop a reference (NULL is ignored); the last one frees the backend. */
static void
backend_release(struct backend *b)
{
	snapshot_release(b != NULL ? &b->snap : NULL);
}

/* Make b current, taking over the caller's reference; the old one goes when its last user is done. */
static void
backend_install(struct backend *b)
{
	snapshot_install(&backend_slot, b != NULL ? &b->snap : NULL);
}

/* A backend for cfg, with one reference (the caller's); NULL (logged) on failure. */
static struct backend *
backend_create(const struct config *cfg)
{
	struct backend *b = calloc(1, sizeof(*b));
	char err[512];

	if (b != NULL)
		snapshot_init(&b->snap, backend_free);
	if (b == NULL || (b->signature = backend_signature(cfg)) == NULL) {
		log_error("ratelimit: out of memory");
		backend_release(b);
		return NULL;
	}
	if (cfg->memcached.servers.count > 0) {
		b->remote = counter_store_memcached_create(
		    &cfg->memcached.servers, cfg->memcached.timeout_ms, err, sizeof(err));
		if (b->remote == NULL) {
			log_error("%s", err);
			backend_release(b);
			return NULL;
		}
	}
	return b;
}

bool
ratelimit_start(const struct config *cfg)
{
	struct backend *b;

	if (local_store == NULL)
		local_store = counter_store_memory_create(LOCAL_MAX_ENTRIES, NULL);
	if (window_cache == NULL)
		window_cache = counter_store_memory_create(CACHE_MAX_ENTRIES, NULL);
	if (local_store == NULL || window_cache == NULL) {
		log_error("ratelimit: out of memory");
		return false;
	}
	if ((b = backend_create(cfg)) == NULL)
		return false;
	backend_install(b);
	if (b->remote)
		log_info(
		    "ratelimit: counters in memcached (%zu server%s, timeout %u ms, on_error %s)",
		    cfg->memcached.servers.count, cfg->memcached.servers.count == 1 ? "" : "s",
		    cfg->memcached.timeout_ms, config_on_error_name(cfg->memcached.on_error));
	return true;
}

void
ratelimit_reload(const struct config *cfg)
{
	struct backend *b = backend_acquire();
	char *sig = backend_signature(cfg);
	bool same = b != NULL && sig != NULL && strcmp(b->signature, sig) == 0;

	free(sig);
	backend_release(b);
	if (same)
		return;
	if ((b = backend_create(cfg)) == NULL) {
		log_error("ratelimit: keeping the previous memcached settings");
		return;
	}
	backend_install(b);
	atomic_store(&counting_locally, false);
	log_info("ratelimit: counters now %s", b->remote ? "in memcached" : "in process");
}

void
ratelimit_stop(void)
{
	backend_install(NULL);
	counter_store_destroy(window_cache);
	counter_store_destroy(local_store);
	window_cache = local_store = NULL;
}

/* ---- admission ----------------------------------------------------------- */

/* The count of the window before w: cached for a remote store; 0 when unknown. */
static uint64_t
previous_count(struct counter_store *store, const char *prefix, const char *rule,
	       unsigned long period, const struct rate_window *w,
	       const uint8_t digest[RATELIMIT_DIGEST_SIZE])
{
	char name[COUNTER_KEY_MAX + 1];
	size_t len;
	uint64_t value = 0;
	enum store_status st;

	if (w->index == 0 || (len = ratelimit_key_name(name, sizeof(name), prefix, rule, period,
						       w->index - 1, digest)) == 0)
		return 0;
	if (!store->ops->remote)
		return counter_store_get(store, name, len, &value) == STORE_OK ? value : 0;
	if (counter_store_get(window_cache, name, len, &value) == STORE_OK)
		return value;
	st = counter_store_get(store, name, len, &value);
	if (st == STORE_ERROR)
		return 0;
	if (st == STORE_NOT_FOUND)
		value = 0;
	/* Kept until this window ends, when it stops being the previous one. */
	counter_store_memory_set(window_cache, name, len, value,
				 (unsigned)((w->period_ms - w->elapsed_ms + 999) / 1000));
	return value;
}

/* Decrement the first n windows of limits by count. */
static void
give_back_windows(struct counter_store *store, const struct config *cfg,
		  const struct rate_rule *rule, const struct rate_limits *limits, size_t n,
		  uint64_t time_ms, const uint8_t *digest, uint64_t count)
{
	char name[COUNTER_KEY_MAX + 1];

	for (size_t i = 0; i < n; i++) {
		struct rate_window w;
		size_t len;
		enum store_status st;

		ratelimit_window(time_ms, limits->items[i].period, &w);
		len = ratelimit_key_name(name, sizeof(name), cfg->memcached.key_prefix, rule->name,
					 limits->items[i].period, w.index, digest);
		if (len == 0)
			continue;
		st = counter_store_decr(store, name, len, count);
		if (st == STORE_ERROR)
			log_debug("ratelimit: could not give %llu back to %s",
				  (unsigned long long)count, name);
	}
}

/* One event to charge: what ratelimit_charge() and ratelimit_charge_distinct() were given. */
struct charge_job {
	const struct config *cfg;
	const struct rate_rule *rule;
	const struct rate_limits *limits;
	const struct rate_value *key;
	const uint8_t *value; /* count = "distinct": the value's digest; NULL otherwise */
	uint64_t amount, now_ms;
	bool keep_over;
};

/* Is the count current of window w of lim, with the previous window's, over the limit? */
static bool
window_over(struct counter_store *store, const struct charge_job *job, const struct rate_limit *lim,
	    const struct rate_window *w, uint64_t current)
{
	/* Over on this window alone: no need to read the previous one. */
	return current > lim->count ||
	       !ratelimit_within(current,
				 previous_count(store, job->cfg->memcached.key_prefix,
						job->rule->name, lim->period, w, job->key->digest),
				 w, lim->count);
}

/* Charge every window of limits in one store. */
static enum rate_outcome
charge_in(struct counter_store *store, const struct charge_job *job, const struct rate_limit **over)
{
	const struct config *cfg = job->cfg;
	const struct rate_limits *limits = job->limits;
	char name[COUNTER_KEY_MAX + 1];
	size_t done = 0;

	*over = NULL;
	for (size_t i = 0; i < limits->count; i++) {
		const struct rate_limit *lim = &limits->items[i];
		struct rate_window w;
		uint64_t current;
		size_t len;

		ratelimit_window(job->now_ms, lim->period, &w);
		len = ratelimit_key_name(name, sizeof(name), cfg->memcached.key_prefix,
					 job->rule->name, lim->period, w.index, job->key->digest);
		if (len == 0 || counter_store_incr(store, name, len, job->amount, ratelimit_ttl(&w),
						   &current) != STORE_OK) {
			give_back_windows(store, cfg, job->rule, limits, done, job->now_ms,
					  job->key->digest, job->amount);
			return RATE_ERROR;
		}
		done++;
		if (*over != NULL)
			continue; /* kept anyway: just count */
		if (window_over(store, job, lim, &w, current)) {
			*over = lim;
			if (!job->keep_over)
				break;
		}
	}
	if (*over == NULL)
		return RATE_ADMIT;
	if (!job->keep_over)
		give_back_windows(store, cfg, job->rule, limits, done, job->now_ms,
				  job->key->digest, job->amount);
	return RATE_OVER;
}

/* The counter and the marker of window w of lim for a distinct job; false when they do not fit. */
static bool
distinct_names(const struct charge_job *job, const struct rate_limit *lim,
	       const struct rate_window *w, char *name, size_t *len, char *marker, size_t *mlen)
{
	const char *prefix = job->cfg->memcached.key_prefix;

	*len = ratelimit_key_name(name, COUNTER_KEY_MAX + 1, prefix, job->rule->name, lim->period,
				  w->index, job->key->digest);
	*mlen = ratelimit_marker_name(marker, COUNTER_KEY_MAX + 1, prefix, job->rule->name,
				      lim->period, w->index, job->value);
	return *len != 0 && *mlen != 0;
}

/* Undo the windows (bits of created) where the job created a marker and counted it. */
static void
distinct_undo(struct counter_store *store, const struct charge_job *job, unsigned created)
{
	char name[COUNTER_KEY_MAX + 1], marker[COUNTER_KEY_MAX + 1];

	for (size_t i = 0; i < job->limits->count; i++) {
		struct rate_window w;
		size_t len, mlen;

		if (!(created & (1u << i)))
			continue;
		ratelimit_window(job->now_ms, job->limits->items[i].period, &w);
		if (!distinct_names(job, &job->limits->items[i], &w, name, &len, marker, &mlen))
			continue;
		/* Counter first: a marker without its count would let the value pass uncounted. */
		if (counter_store_decr(store, name, len, 1) == STORE_ERROR ||
		    counter_store_del(store, marker, mlen) == STORE_ERROR)
			log_debug("ratelimit: could not take a distinct value back from %s", name);
	}
}

/*
 * count = "distinct" in one store: for each window, add the value's
 * marker; only when the add created it is the value new, and the key's
 * counter incremented and checked.  A value over the limit (not kept) has
 * its counts and markers taken back, so that it is new again next time.
 * A repeat is over only when the count is (hold and warn rules).
 */
static enum rate_outcome
distinct_in(struct counter_store *store, const struct charge_job *job,
	    const struct rate_limit **over)
{
	char name[COUNTER_KEY_MAX + 1], marker[COUNTER_KEY_MAX + 1];
	unsigned created = 0; /* bit i: window i's marker is this event's */

	*over = NULL;
	assert(job->limits->count <= CONFIG_DISTINCT_LIMITS_MAX);
	for (size_t i = 0; i < job->limits->count; i++) {
		const struct rate_limit *lim = &job->limits->items[i];
		struct rate_window w;
		uint64_t current;
		size_t len, mlen;
		enum store_status st;

		ratelimit_window(job->now_ms, lim->period, &w);
		if (!distinct_names(job, lim, &w, name, &len, marker, &mlen) ||
		    (st = counter_store_add(store, marker, mlen, ratelimit_marker_ttl(&w))) ==
			STORE_ERROR) {
			distinct_undo(store, job, created);
			return RATE_ERROR;
		}
		if (st == STORE_EXISTS) {
			/*
			 * Counted already in this window.  Only a rule that lets
			 * events over its limit through (hold, warn) can be over
			 * now: then one read says whether it is.
			 */
			if (job->keep_over && *over == NULL &&
			    counter_store_get(store, name, len, &current) == STORE_OK &&
			    window_over(store, job, lim, &w, current))
				*over = lim;
			continue;
		}
		if (counter_store_incr(store, name, len, 1, ratelimit_ttl(&w), &current) !=
		    STORE_OK) {
			counter_store_del(store, marker, mlen);
			distinct_undo(store, job, created);
			return RATE_ERROR;
		}
		created |= 1u << i;
		if (*over == NULL && window_over(store, job, lim, &w, current)) {
			*over = lim;
			if (!job->keep_over)
				break;
		}
	}
	if (*over == NULL)
		return RATE_ADMIT;
	if (!job->keep_over)
		distinct_undo(store, job, created);
	return RATE_OVER;
}

/* Charge job in store, the way its rule counts. */
static enum rate_outcome
job_in(struct counter_store *store, const struct charge_job *job, const struct rate_limit **over)
{
	return job->value != NULL ? distinct_in(store, job, over) : charge_in(store, job, over);
}

/*
 * Charge job where counters live: memcached when configured, else in
 * process, or in process after all under on_error = "local".  *local
 * says which store counted.
 */
static enum rate_outcome
job_charge(const struct charge_job *job, bool *local, const struct rate_limit **over)
{
	const struct config *cfg = job->cfg;
	struct backend *b = backend_acquire();
	struct counter_store *store = b && b->remote ? b->remote : local_store;
	enum rate_outcome r;

	*over = NULL;
	if (store == NULL) {
		backend_release(b);
		return RATE_ERROR;
	}
	r = job_in(store, job, over);
	if (store != local_store) {
		if (r == RATE_ERROR && cfg->memcached.on_error == ON_ERROR_LOCAL) {
			if (!atomic_exchange(&counting_locally, true))
				log_warning(
				    "ratelimit: memcached does not answer: counting in process "
				    "until it does (on_error = local)");
			store = local_store;
			r = job_in(store, job, over);
			stats_ratelimit_fallback();
		} else if (r != RATE_ERROR && atomic_load(&counting_locally) &&
			   counter_store_healthy(store) &&
			   atomic_exchange(&counting_locally, false))
			log_warning("ratelimit: memcached answers again: counting in memcached");
	}
	backend_release(b);
	*local = store == local_store;
	return r;
}

enum rate_outcome
ratelimit_charge(const struct config *cfg, size_t rule_index, const struct rate_limits *limits,
		 int class_index, const struct rate_value *key, uint64_t amount, uint64_t now_ms,
		 bool keep_over, struct rate_charge *charge, const struct rate_limit **over)
{
	const struct charge_job job = {
	    cfg, &cfg->ratelimit.rules[rule_index], limits, key, NULL, amount, now_ms, keep_over};
	bool local;
	enum rate_outcome r = job_charge(&job, &local, over);

	if (r == RATE_ADMIT || (r == RATE_OVER && keep_over)) {
		memset(charge, 0, sizeof(*charge));
		charge->time_ms = now_ms;
		charge->count = amount;
		charge->rule = (uint16_t)rule_index;
		charge->class_index = (int16_t)class_index;
		charge->local = local;
		memcpy(charge->digest, key->digest, RATELIMIT_DIGEST_SIZE);
	}
	return r;
}

enum rate_outcome
ratelimit_charge_distinct(const struct config *cfg, size_t rule_index,
			  const struct rate_limits *limits, const struct rate_value *key,
			  const uint8_t value[RATELIMIT_DIGEST_SIZE], uint64_t now_ms,
			  bool keep_over, const struct rate_limit **over)
{
	const struct charge_job job = {
	    cfg, &cfg->ratelimit.rules[rule_index], limits, key, value, 1, now_ms, keep_over};
	bool local;

	return job_charge(&job, &local, over);
}

void
ratelimit_give_back(const struct config *cfg, const struct rate_charge *c)
{
	const struct rate_limits *limits = ratelimit_charge_limits(cfg, c);
	struct backend *b = NULL;
	struct counter_store *store = local_store;

	if (!c->local) {
		b = backend_acquire();
		store = b ? b->remote : NULL;
	}
	if (store != NULL)
		give_back_windows(store, cfg, &cfg->ratelimit.rules[c->rule], limits, limits->count,
				  c->time_ms, c->digest, c->count);
	backend_release(b);
}

bool
ratelimit_delete(const char *counter_key, bool local, bool *deleted)
{
	struct backend *b = NULL;
	struct counter_store *store = local_store;
	size_t len = strlen(counter_key);
	enum store_status st = STORE_ERROR;

	*deleted = false;
	if (!local) {
		b = backend_acquire();
		store = b && b->remote ? b->remote : local_store;
	}
	if (store != NULL)
		st = counter_store_del(store, counter_key, len);
	/* Else previous_count() would go on reading the old count until its window ends. */
	if (store != local_store && window_cache != NULL)
		counter_store_del(window_cache, counter_key, len);
	backend_release(b);
	*deleted = st == STORE_OK;
	return st != STORE_ERROR;
}

bool
ratelimit_peek(const char *counter_key, bool local, uint64_t *value)
{
	struct backend *b = NULL;
	struct counter_store *store = local_store;
	enum store_status st = STORE_ERROR;

	if (!local) {
		b = backend_acquire();
		store = b && b->remote ? b->remote : local_store;
	}
	if (store != NULL)
		st = counter_store_get(store, counter_key, strlen(counter_key), value);
	backend_release(b);
	if (st == STORE_NOT_FOUND)
		*value = 0;
	return st != STORE_ERROR;
}

void
ratelimit_status(struct ratelimit_status *out)
{
	struct backend *b = backend_acquire();

	memset(out, 0, sizeof(*out));
	while (b != NULL && b->remote != NULL && out->nservers < RATELIMIT_STATUS_SERVERS &&
	       counter_store_memcached_server(b->remote, out->nservers,
					      out->servers[out->nservers].name,
					      sizeof(out->servers[out->nservers].name),
					      &out->servers[out->nservers].breaker_open))
		out->nservers++;
	backend_release(b);
	out->counting_locally = atomic_load(&counting_locally);
	if (local_store != NULL)
		out->local_entries = counter_store_memory_count(local_store);
	if (window_cache != NULL)
		out->cached_windows = counter_store_memory_count(window_cache);
}
