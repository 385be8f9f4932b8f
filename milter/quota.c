/*
 * quota.c - the quota service: source selection, cache, circuit breaker,
 * and the verdict for one recipient (see quota.h for the contract).
 *
 * The cache wraps the source as a quota_source of its own, so address.c
 * resolves through it unchanged: alias-domain, alias and mailbox answers
 * (found and not found alike) and maildir usage are kept for cache_ttl
 * seconds, and a message to 50 recipients of one mailbox costs one
 * lookup of each kind.  It is set-associative: CACHE_SETS sets of
 * CACHE_WAYS entries, each set under its own mutex, the entry nearest to
 * expiry replaced when a set is full, so memory is bounded whatever the
 * traffic.  Errors are never cached.  A reload bumps a generation number,
 * which empties the cache without touching every entry.
 *
 * The breaker sits in front of a server source (MariaDB): after
 * BREAKER_FAILURES consecutive errors it opens for BREAKER_OPEN_MS, during
 * which lookups fail at once; then one caller probes, and its result
 * closes or reopens it.  Maildir errors are per mailbox, so the maildir
 * source has no breaker.
 *
 * Thread-safety: the service pointer is reference-counted under
 * service_lock; cache sets and the breaker have their own mutexes, none
 * held across a source call or a walk; counters are atomics.
 */
#include "quota.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "maildirsize.h"
#include "quota_source.h"

#define CACHE_SETS		8192	/* x CACHE_WAYS = 65,536 entries */
#define CACHE_WAYS		8
#define CACHE_VALUE_MAX		1024	/* longer goto lists are looked up each time */
#define BREAKER_FAILURES	3
#define BREAKER_OPEN_MS		5000
#define CHECK_BUDGET_MS		5000	/* all walks of one recipient together */

enum cache_kind {
	CACHE_ALIAS_DOMAIN = 'D',
	CACHE_ALIAS = 'A',
	CACHE_MAILBOX = 'M',
	CACHE_USAGE = 'U',
};

struct cache_entry {
	uint64_t hash;
	uint64_t expires_ms;
	unsigned gen;
	char	kind;			/* 0 = free */
	enum source_status status;	/* SOURCE_OK or SOURCE_NOT_FOUND */
	unsigned long long number;	/* quota, or usage bytes */
	bool	flag;			/* usage: incomplete walk */
	char   *key, *value;
};

struct cache_set {
	pthread_mutex_t lock;
	struct cache_entry way[CACHE_WAYS];
};

/* What a cache lookup or insert carries. */
struct cache_item {
	enum source_status status;
	unsigned long long number;
	bool	flag;
	char   *value;			/* caller's buffer */
	size_t	size;
};

struct breaker {
	pthread_mutex_t lock;
	unsigned failures;
	uint64_t open_until;		/* maildir_now_ms(); 0 = closed */
	bool	probing;		/* one caller is testing a half-open breaker */
};

struct quota_service {
	int	refs;			/* guarded by service_lock */
	struct config *cfg;		/* own reference; NULL when borrowed */
	const struct config *settings;	/* what the source was opened with */
	/* The configurations loaded from settings to the last reload that kept
	 * this source share it (generations: see service_serves). */
	unsigned long gen_first;
	atomic_ulong gen_last;
	struct quota_source *src;
	bool	remote;			/* a server: breaker applies */
	char   *root;			/* maildir_root for usage */
};

static pthread_mutex_t service_lock = PTHREAD_MUTEX_INITIALIZER;
static struct quota_service *service;
static struct cache_set *cache;
static atomic_uint cache_gen;
static struct breaker breaker = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_ullong stat_hits, stat_misses, stat_calls, stat_walks, stat_skips;

/* ---- cache ------------------------------------------------------- */

/* FNV-1a over kind and key. */
static uint64_t
cache_hash(char kind, const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	h = (h ^ (unsigned char)kind) * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

/* Free one entry's strings and mark it free. */
static void
cache_entry_clear(struct cache_entry *e)
{
	free(e->key);
	free(e->value);
	memset(e, 0, sizeof(*e));
}

/* True when the entry holds kind/key, is current and unexpired. */
static bool
cache_entry_live(const struct cache_entry *e, char kind, uint64_t hash, const char *key,
		 uint64_t now, unsigned gen)
{
	return e->kind == kind && e->hash == hash && e->gen == gen && e->expires_ms > now &&
	    strcmp(e->key, key) == 0;
}

/* Look kind/key up; true (item filled) on a hit. */
static bool
cache_get(char kind, const char *key, struct cache_item *item)
{
	uint64_t hash = cache_hash(kind, key), now = maildir_now_ms();
	unsigned gen = atomic_load(&cache_gen);
	struct cache_set *set;
	bool	hit = false;

	if (cache == NULL)
		return false;
	set = &cache[hash % CACHE_SETS];
	pthread_mutex_lock(&set->lock);
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (!cache_entry_live(e, kind, hash, key, now, gen))
			continue;
		item->status = e->status;
		item->number = e->number;
		item->flag = e->flag;
		if (item->value != NULL && item->size > 0) {
			size_t	n = e->value ? strlen(e->value) : 0;

			if (n >= item->size)
				break;	/* does not fit the caller: a miss */
			memcpy(item->value, e->value ? e->value : "", n + 1);
		}
		hit = true;
		break;
	}
	pthread_mutex_unlock(&set->lock);
	atomic_fetch_add(hit ? &stat_hits : &stat_misses, 1);
	return hit;
}

/*
 * The entry of set to overwrite with kind/key: the key's own, else a free,
 * stale or expired one, else the live one nearest to expiry.
 */
static struct cache_entry *
cache_victim(struct cache_set *set, char kind, uint64_t hash, const char *key, uint64_t now,
	     unsigned gen)
{
	struct cache_entry *victim = NULL;

	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (e->kind == kind && e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	}
	for (int i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set->way[i];

		if (e->kind == 0 || e->gen != gen || e->expires_ms <= now)
			return e;
		if (victim == NULL || e->expires_ms < victim->expires_ms)
			victim = e;
	}
	return victim;
}

/* Remember kind/key for ttl seconds (an existing entry is replaced). */
static void
cache_put(char kind, const char *key, unsigned ttl, const struct cache_item *item)
{
	uint64_t hash = cache_hash(kind, key), now = maildir_now_ms();
	unsigned gen = atomic_load(&cache_gen);
	struct cache_set *set;
	struct cache_entry *victim = NULL;
	char   *k, *v = NULL;

	if (cache == NULL || ttl == 0 || item->status == SOURCE_ERROR)
		return;
	if (item->value != NULL && strlen(item->value) >= CACHE_VALUE_MAX)
		return;
	if ((k = strdup(key)) == NULL ||
	    (item->value != NULL && (v = strdup(item->value)) == NULL)) {
		free(k);
		return;
	}
	set = &cache[hash % CACHE_SETS];
	pthread_mutex_lock(&set->lock);
	victim = cache_victim(set, kind, hash, key, now, gen);
	cache_entry_clear(victim);
	victim->hash = hash;
	victim->kind = kind;
	victim->gen = gen;
	victim->expires_ms = now + (uint64_t)ttl * 1000;
	victim->status = item->status;
	victim->number = item->number;
	victim->flag = item->flag;
	victim->key = k;
	victim->value = v;
	pthread_mutex_unlock(&set->lock);
}

/* Allocate the cache (once). */
static bool
cache_init(void)
{
	if (cache != NULL)
		return true;
	if ((cache = calloc(CACHE_SETS, sizeof(*cache))) == NULL)
		return false;
	for (int i = 0; i < CACHE_SETS; i++)
		pthread_mutex_init(&cache[i].lock, NULL);
	return true;
}

/* Free every entry and the cache itself (no other thread may run). */
static void
cache_free(void)
{
	if (cache == NULL)
		return;
	for (int i = 0; i < CACHE_SETS; i++) {
		for (int j = 0; j < CACHE_WAYS; j++)
			cache_entry_clear(&cache[i].way[j]);
		pthread_mutex_destroy(&cache[i].lock);
	}
	free(cache);
	cache = NULL;
}

void
quota_cache_flush(void)
{
	atomic_fetch_add(&cache_gen, 1);
}

/* ---- circuit breaker --------------------------------------------- */

/* May a call go to the server now? */
static bool
breaker_allow(void)
{
	uint64_t now = maildir_now_ms();
	bool	allow = true;

	pthread_mutex_lock(&breaker.lock);
	if (breaker.open_until != 0) {
		if (now < breaker.open_until || breaker.probing)
			allow = false;
		else
			breaker.probing = true;	/* half-open: this caller probes */
	}
	pthread_mutex_unlock(&breaker.lock);
	if (!allow)
		atomic_fetch_add(&stat_skips, 1);
	return allow;
}

/* Record the outcome of a call that breaker_allow() let through. */
static void
breaker_record(const char *name, bool ok)
{
	bool	opened = false, closed = false;

	pthread_mutex_lock(&breaker.lock);
	if (ok) {
		closed = breaker.open_until != 0;
		breaker.failures = 0;
		breaker.open_until = 0;
		breaker.probing = false;
	} else if (breaker.probing || ++breaker.failures >= BREAKER_FAILURES) {
		opened = !breaker.probing;
		breaker.open_until = maildir_now_ms() + BREAKER_OPEN_MS;
		breaker.probing = false;
		breaker.failures = 0;
	}
	pthread_mutex_unlock(&breaker.lock);
	if (opened)
		log_warning("quota: %s source keeps failing; not asked for %d s",
			    name, BREAKER_OPEN_MS / 1000);
	if (closed)
		log_info("quota: %s source answers again", name);
}

/* Reset the breaker (a new source). */
static void
breaker_reset(void)
{
	pthread_mutex_lock(&breaker.lock);
	breaker.failures = 0;
	breaker.open_until = 0;
	breaker.probing = false;
	pthread_mutex_unlock(&breaker.lock);
}

/* ---- the service -------------------------------------------------- */

/* Free a service whose last reference is gone. */
static void
service_free(struct quota_service *svc)
{
	if (svc == NULL)
		return;
	if (svc->src != NULL && svc->src->ops->close != NULL)
		svc->src->ops->close(svc->src);
	free(svc->root);
	config_release(svc->cfg);
	free(svc);
}

/* A new reference to the current service, or NULL. */
static struct quota_service *
service_acquire(void)
{
	struct quota_service *svc;

	pthread_mutex_lock(&service_lock);
	if ((svc = service) != NULL)
		svc->refs++;
	pthread_mutex_unlock(&service_lock);
	return svc;
}

/* Drop a reference. */
static void
service_release(struct quota_service *svc)
{
	int	left;

	if (svc == NULL)
		return;
	pthread_mutex_lock(&service_lock);
	left = --svc->refs;
	pthread_mutex_unlock(&service_lock);
	if (left == 0)
		service_free(svc);
}

/* True when cfg asks for the SQL source. */
static bool
wants_mysql(const struct config *cfg)
{
	return cfg->mysql.host[0] != '\0' || cfg->mysql.socket[0] != '\0';
}

/* Open the source cfg asks for, or wrap src (remote: a server) when given. */
static struct quota_service *
service_open(const struct config *cfg, struct quota_source *src, bool remote)
{
	struct quota_service *svc = calloc(1, sizeof(*svc));

	if (svc == NULL) {
		if (src != NULL && src->ops->close != NULL)
			src->ops->close(src);
		return NULL;
	}
	/* Hold the snapshot for as long as the source may read it (cfg is
	 * the installed one, except in tests that never install one). */
	svc->cfg = config_current();
	if (svc->cfg != cfg) {
		config_release(svc->cfg);
		svc->cfg = NULL;
	}
	svc->settings = cfg;
	svc->gen_first = cfg->generation;
	atomic_init(&svc->gen_last, cfg->generation);
	svc->refs = 1;
	svc->remote = src ? remote : wants_mysql(svc->settings);
	svc->root = strdup(svc->settings->quota.maildir_root);
	svc->src = src ? src : svc->remote ? quota_source_mysql_open(svc->settings)
	    : quota_source_maildir_open(svc->settings);
	if (svc->src == NULL || svc->root == NULL) {
		log_error("quota: cannot open the %s source", svc->remote ? "mysql" : "maildir");
		service_free(svc);
		return NULL;
	}
	return svc;
}

/* A wrong maildir_root would make every mailbox "not found": say so once. */
static void
service_check_root(const struct quota_service *svc)
{
	if (access(svc->root, R_OK | X_OK) != 0)
		log_warning("quota: maildir_root %s: %s", svc->root, strerror(errno));
}

/* Install svc as the current service, releasing the old one. */
static void
service_install(struct quota_service *svc)
{
	struct quota_service *old;

	pthread_mutex_lock(&service_lock);
	old = service;
	service = svc;
	pthread_mutex_unlock(&service_lock);
	breaker_reset();
	service_release(old);
}

/* Two strings equal (NULL-safe). */
static bool
same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* True when the source opened with a would be opened differently with b. */
static bool
source_changed(const struct config *a, const struct config *b)
{
	return !same(a->mysql.host, b->mysql.host) || !same(a->mysql.socket, b->mysql.socket) ||
	    a->mysql.port != b->mysql.port || !same(a->mysql.user, b->mysql.user) ||
	    !same(a->mysql.password, b->mysql.password) ||
	    !same(a->mysql.database, b->mysql.database) ||
	    a->mysql.timeout_ms != b->mysql.timeout_ms ||
	    !same(a->mysql.quota_query, b->mysql.quota_query) ||
	    !same(a->mysql.alias_query, b->mysql.alias_query) ||
	    !same(a->mysql.alias_domain_query, b->mysql.alias_domain_query) ||
	    !same(a->quota.maildir_root, b->quota.maildir_root) ||
	    !same(a->quota.maildir_template, b->quota.maildir_template);
}

bool
quota_start_with(const struct config *cfg, struct quota_source *src, bool remote)
{
	struct quota_service *svc;

	if (!cache_init()) {
		log_error("quota: out of memory for the cache");
		return false;
	}
	if ((svc = service_open(cfg, src, remote)) == NULL)
		return false;
	service_check_root(svc);
	service_install(svc);
	log_info("quota: %s source, cache_ttl %u s", svc->src->ops->name, cfg->quota.cache_ttl);
	return true;
}

bool
quota_start(const struct config *cfg)
{
	if (!quota_source_mysql_library_init()) {
		log_error("quota: cannot initialise the MariaDB client library");
		return false;
	}
	return quota_start_with(cfg, NULL, false);
}

void
quota_reload(const struct config *cfg)
{
	struct quota_service *cur = service_acquire(), *svc;

	quota_cache_flush();
	if (cur != NULL && !source_changed(cur->settings, cfg)) {
		/* Sessions on cfg share this source: say so once, here. */
		atomic_store(&cur->gen_last, cfg->generation);
		service_release(cur);
		return;
	}
	service_release(cur);
	if ((svc = service_open(cfg, NULL, false)) == NULL) {
		log_error("quota: keeping the previous source");
		return;
	}
	service_check_root(svc);
	service_install(svc);
	log_info("quota: now using the %s source", svc->src->ops->name);
}

void
quota_stop(void)
{
	service_install(NULL);
	cache_free();
}

void
quota_stats(struct quota_stats *out)
{
	out->hits = atomic_load(&stat_hits);
	out->misses = atomic_load(&stat_misses);
	out->source_calls = atomic_load(&stat_calls);
	out->walks = atomic_load(&stat_walks);
	out->breaker_skips = atomic_load(&stat_skips);
}

/* ---- the cached source that address.c resolves through -------------- */

struct cached {
	struct quota_service *svc;
	unsigned ttl;
	bool	skipped;		/* the breaker refused a call */
};

/* May the real source be called?  Counts the call. */
static bool
cached_may_call(struct cached *c)
{
	if (c->svc->remote && !breaker_allow()) {
		c->skipped = true;
		return false;
	}
	atomic_fetch_add(&stat_calls, 1);
	return true;
}

/* After a real call: feed the breaker. */
static void
cached_called(const struct cached *c, enum source_status st)
{
	if (c->svc->remote)
		breaker_record(c->svc->src->ops->name, st != SOURCE_ERROR);
}

static enum source_status
cached_alias_domain(struct quota_source *src, const char *domain, char *target, size_t size)
{
	struct cached *c = src->state;
	struct cache_item item = {.value = target, .size = size};
	struct quota_source *real = c->svc->src;

	if (real->ops->alias_domain == NULL)
		return SOURCE_NOT_FOUND;
	if (c->ttl > 0 && cache_get(CACHE_ALIAS_DOMAIN, domain, &item))
		return item.status;
	if (!cached_may_call(c))
		return SOURCE_ERROR;
	target[0] = '\0';
	item.status = real->ops->alias_domain(real, domain, target, size);
	cached_called(c, item.status);
	if (item.status != SOURCE_OK)
		target[0] = '\0';
	cache_put(CACHE_ALIAS_DOMAIN, domain, c->ttl, &item);
	return item.status;
}

static enum source_status
cached_alias(struct quota_source *src, const char *address, char *goto_list, size_t size)
{
	struct cached *c = src->state;
	struct cache_item item = {.value = goto_list, .size = size};
	struct quota_source *real = c->svc->src;

	if (real->ops->alias == NULL)
		return SOURCE_NOT_FOUND;
	if (c->ttl > 0 && cache_get(CACHE_ALIAS, address, &item))
		return item.status;
	if (!cached_may_call(c))
		return SOURCE_ERROR;
	goto_list[0] = '\0';
	item.status = real->ops->alias(real, address, goto_list, size);
	cached_called(c, item.status);
	if (item.status != SOURCE_OK)
		goto_list[0] = '\0';
	cache_put(CACHE_ALIAS, address, c->ttl, &item);
	return item.status;
}

static enum source_status
cached_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	struct cached *c = src->state;
	struct cache_item item = {.value = out->maildir, .size = sizeof(out->maildir)};
	struct quota_source *real = c->svc->src;

	out->maildir[0] = '\0';
	if (c->ttl > 0 && cache_get(CACHE_MAILBOX, address, &item)) {
		out->quota = item.number;
		return item.status;
	}
	if (!cached_may_call(c))
		return SOURCE_ERROR;
	item.status = real->ops->mailbox(real, address, out);
	cached_called(c, item.status);
	if (item.status != SOURCE_OK)
		memset(out, 0, sizeof(*out));
	item.number = out->quota;
	cache_put(CACHE_MAILBOX, address, c->ttl, &item);
	return item.status;
}

static const struct quota_source_ops cached_ops = {
	.name = "cache",
	.alias_domain = cached_alias_domain,
	.alias = cached_alias,
	.mailbox = cached_mailbox,
	.close = NULL,
};

/* ---- usage and the verdict ----------------------------------------- */

/*
 * Usage of one maildir (cached): *bytes, and *incomplete when a bounded
 * walk could not finish.  A maildir that does not exist yet is empty.
 */
static enum source_status
maildir_bytes(const struct cached *c, const char *maildir, unsigned long long quota,
	      uint64_t deadline_ms, unsigned long long *bytes, bool *incomplete)
{
	struct cache_item item = {0};
	struct maildir_walk_limits limits = {0};
	struct maildir_usage usage;
	enum maildir_status st;
	uint64_t now = maildir_now_ms();
	int	fd;

	if (c->ttl > 0 && cache_get(CACHE_USAGE, maildir, &item)) {
		*bytes = item.number;
		*incomplete = item.flag;
		return SOURCE_OK;
	}
	*bytes = 0;
	*incomplete = false;
	st = maildir_open(c->svc->root, maildir, &fd);
	if (st == MAILDIR_MISSING)
		return SOURCE_OK;
	if (st == MAILDIR_ERROR) {
		log_warning("quota: cannot open maildir %s: %s", maildir,
			    errno == ELOOP ? "a symlink, not followed" :
			    errno == EINVAL ? "not below maildir_root" : strerror(errno));
		return SOURCE_ERROR;
	}
	limits.deadline_ms = now + MAILDIR_WALK_MAX_MS < deadline_ms ? now + MAILDIR_WALK_MAX_MS
	    : deadline_ms;
	st = maildir_usage(fd, quota, time(NULL), &limits, &usage);
	close(fd);
	if (st != MAILDIR_OK) {
		log_warning("quota: cannot read maildir %s: %s", maildir, strerror(errno));
		return SOURCE_ERROR;
	}
	if (usage.recalculated) {
		atomic_fetch_add(&stat_walks, 1);
		log_debug("quota: %s: usage recalculated: %llu bytes in %llu files%s", maildir,
			  usage.bytes, usage.count, usage.incomplete ? " (walk cut short)" : "");
	}
	*bytes = usage.bytes;
	*incomplete = usage.incomplete;
	item.status = SOURCE_OK;
	item.number = usage.bytes;
	item.flag = usage.incomplete;
	cache_put(CACHE_USAGE, maildir, c->ttl, &item);
	return SOURCE_OK;
}

/* quota plus grace_percent, saturating. */
static unsigned long long
quota_limit(unsigned long long quota, unsigned grace_percent)
{
	unsigned __int128 limit = (unsigned __int128)quota * (100 + grace_percent) / 100;

	return limit > ~0ULL ? ~0ULL : (unsigned long long)limit;
}

/* Judge every mailbox of res; fills the counts of out. */
static void
judge_mailboxes(const struct cached *c, const struct config *cfg, const struct resolution *res,
		unsigned long long size, struct quota_result *out)
{
	uint64_t deadline = maildir_now_ms() + CHECK_BUDGET_MS;
	bool	first_full = true;

	for (size_t i = 0; i < res->nmailboxes; i++) {
		const struct resolved_mailbox *m = &res->mailboxes[i];
		unsigned long long bytes, limit, need;
		bool	incomplete;

		if (m->mailbox.quota == 0)
			continue;	/* unlimited */
		limit = quota_limit(m->mailbox.quota, cfg->quota.grace_percent);
		if (maildir_bytes(c, m->mailbox.maildir, limit, deadline, &bytes, &incomplete) !=
		    SOURCE_OK) {
			if (out->nerrors++ == 0 && out->nfull == 0)
				strcpy(out->mailbox, m->address);
			continue;
		}
		if (__builtin_add_overflow(bytes, cfg->quota.use_message_size ? size : 0, &need))
			need = ~0ULL;
		if (need > limit) {
			out->nfull++;
			if (first_full) {
				first_full = false;
				strcpy(out->mailbox, m->address);
				out->usage = bytes;
				out->limit = limit;
			}
		} else if (incomplete)
			log_warning("quota: %s: maildir walk cut short at %llu bytes; "
				    "not judged", m->mailbox.maildir, bytes);
	}
}

/*
 * The service for a session on snapshot cfg.  A session keeps the
 * configuration it started with, and that includes where quotas come from:
 * when a reload has changed the source since the session began (the
 * current service was opened with other settings), the session gets a
 * source of its own opened with cfg, for this one check and without the
 * cache (which holds the current source's answers).  Only sessions in
 * flight across such a reload pay for it.  *ttl is the cache's lifetime to
 * use, 0 for none.
 */
/*
 * Does svc read what cfg asks for?  A configuration loaded between the one
 * svc was opened with and the last reload that kept svc does: generations
 * only grow, and a reload that changes the source replaces svc.  That is
 * the answer on every RCPT of a steady state; others are compared: one not
 * from config_load() (generation 0), or one installed a moment before the
 * reload thread reaches quota_reload().
 */
static bool
service_serves(struct quota_service *svc, const struct config *cfg)
{
	unsigned long g = cfg->generation;

	if (g != 0 && g >= svc->gen_first && g <= atomic_load(&svc->gen_last))
		return true;
	return svc->settings == cfg || !source_changed(svc->settings, cfg);
}

static struct quota_service *
service_for(const struct config *cfg, unsigned *ttl)
{
	struct quota_service *svc = service_acquire();

	*ttl = cfg->quota.cache_ttl;
	if (svc == NULL || service_serves(svc, cfg))
		return svc;
	service_release(svc);
	*ttl = 0;
	return service_open(cfg, NULL, false);
}

enum quota_verdict
quota_check(const struct config *cfg, const struct address *addr, unsigned long long size,
	    struct quota_result *out)
{
	unsigned ttl;
	struct quota_service *svc = service_for(cfg, &ttl);
	struct cached c = {.svc = svc, .ttl = ttl};
	struct quota_source cached = {.ops = &cached_ops, .state = &c};
	struct resolution *res;
	enum source_status st;

	memset(out, 0, sizeof(*out));
	out->verdict = QUOTA_ERROR;
	if (svc == NULL) {
		out->why = "quota service not started";
		return out->verdict;
	}
	if ((res = malloc(sizeof(*res))) == NULL) {
		service_release(svc);
		out->why = "out of memory";
		return out->verdict;
	}
	st = address_resolve(&cached, addr, cfg->quota.recipient_delimiter, res);
	if (st == SOURCE_ERROR) {
		out->why = c.skipped ? "source skipped while its circuit breaker is open"
		    : "source lookup failed";
		out->skipped = c.skipped;
		strcpy(out->mailbox, addr->full);
	} else if (res->limited) {
		log_warning("quota: %s: alias expansion exceeds its limits; no opinion", addr->full);
		out->verdict = QUOTA_NO_OPINION;
		out->why = "alias expansion limit";
	} else if (res->nmailboxes == 0) {
		out->verdict = QUOTA_NO_OPINION;
		out->why = "no local mailbox";
	} else {
		out->nmailboxes = res->nmailboxes;
		out->nother = res->nother;
		judge_mailboxes(&c, cfg, res, size, out);
		if (cfg->quota.multi_target == MULTI_TARGET_ANY) {
			out->verdict = out->nfull > 0 ? QUOTA_FULL :
			    out->nerrors > 0 ? QUOTA_ERROR : QUOTA_NO_OPINION;
		} else if (out->nother == 0 && out->nfull + out->nerrors == out->nmailboxes) {
			/* all: every target is a local mailbox, and none has room */
			out->verdict = out->nerrors == 0 ? QUOTA_FULL : QUOTA_ERROR;
		} else
			out->verdict = QUOTA_NO_OPINION;
		out->why = out->verdict == QUOTA_FULL ? "mailbox full" :
		    out->verdict == QUOTA_ERROR ? "maildir unreadable" : "room left";
	}
	free(res);
	service_release(svc);
	return out->verdict;
}
