/*
 * quota.c - the quota service: source selection, the circuit breaker,
 * and the verdict for one recipient (see quota.h for the contract).
 *
 * A caching source (cached_ops here, over the entries quota_cache.c
 * keeps) wraps the real one as a quota_source of its own, so
 * quota_resolve.c resolves through it unchanged: alias-domain,
 * alias and mailbox answers and maildir usage are kept for cache_ttl
 * seconds.  A reload empties it.  quota_explain() runs the same check
 * and reports each lookup, whether the cache answered it, and each
 * mailbox's usage with where it was read.
 *
 * The breaker (breaker.h) sits in front of a server source (MariaDB):
 * after BREAKER_FAILURES consecutive errors it opens for BREAKER_OPEN_MS,
 * during which lookups fail at once; then one caller probes, and its
 * result closes or reopens it.  Maildir errors are per mailbox, so the
 * maildir source has no breaker.
 *
 * Thread-safety: the service is a reference-counted snapshot (snapshot.h)
 * that a reload replaces under the sessions using it; the cache and the
 * breaker have their own synchronisation, none held across a source call
 * or a walk; counters are atomics.
 */
#include "quota.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "breaker.h"
#include "clock.h"
#include "log.h"
#include "maildirsize.h"
#include "quota_cache.h"
#include "quota_resolve.h"
#include "quota_source.h"
#include "snapshot.h"

#define BREAKER_FAILURES	3
#define BREAKER_OPEN_MS		5000
#define CHECK_BUDGET_MS		5000	/* all walks of one recipient together */

struct quota_service {
	struct snapshot snap;		/* the references (snapshot.h) */
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

static struct snapshot_slot service = SNAPSHOT_SLOT_INITIALIZER;
/* Of the current service's source; statically set up, so that it is valid before any start. */
static struct breaker breaker = {.threshold = BREAKER_FAILURES, .open_ms = BREAKER_OPEN_MS};
static atomic_ullong stat_calls, stat_walks, stat_skips;

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

/* snapshot.h's free function: the last reference to a service is gone. */
static void
service_snapshot_free(struct snapshot *snap)
{
	service_free(snapshot_owner(snap, struct quota_service, snap));
}

/* A new reference to the current service, or NULL. */
static struct quota_service *
service_acquire(void)
{
	struct snapshot *snap = snapshot_acquire(&service);

	return snap ? snapshot_owner(snap, struct quota_service, snap) : NULL;
}

/* Drop a reference (NULL is ignored). */
static void
service_release(struct quota_service *svc)
{
	if (svc != NULL)
		snapshot_release(&svc->snap);
}

/* True when cfg asks for the SQL source. */
static bool
wants_mysql(const struct config *cfg)
{
	return cfg->mysql.host[0] != '\0' || cfg->mysql.socket[0] != '\0' ||
	    cfg->mysql.servers.count > 0;
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
	snapshot_init(&svc->snap, service_snapshot_free);
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

/* Install svc (may be NULL) as the current service, releasing the old one. */
static void
service_install(struct quota_service *svc)
{
	snapshot_install(&service, svc ? &svc->snap : NULL);
	/* A new source starts with a closed breaker. */
	breaker_reset(&breaker);
}

/* Two strings equal (NULL-safe). */
static bool
same(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Two server lists name the same servers in the same order. */
static bool
same_list(const struct string_list *a, const struct string_list *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (!same(a->items[i], b->items[i]))
			return false;
	return true;
}

/* True when the source opened with a would be opened differently with b. */
static bool
source_changed(const struct config *a, const struct config *b)
{
	return !same(a->mysql.host, b->mysql.host) || !same(a->mysql.socket, b->mysql.socket) ||
	    a->mysql.port != b->mysql.port || !same_list(&a->mysql.servers, &b->mysql.servers) ||
	    !same(a->mysql.user, b->mysql.user) ||
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

	if (!quota_cache_init()) {
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
	quota_cache_free();
}

void
quota_stats(struct quota_stats *out)
{
	quota_cache_counts(&out->hits, &out->misses);
	out->source_calls = atomic_load(&stat_calls);
	out->walks = atomic_load(&stat_walks);
	out->breaker_skips = atomic_load(&stat_skips);
}

bool
quota_breaker_open(void)
{
	return breaker_is_open(&breaker);
}

size_t
quota_servers(struct source_server *out, size_t max)
{
	struct quota_service *svc = service_acquire();
	size_t	n = 0;

	if (svc != NULL && svc->remote && svc->src->ops->servers != NULL)
		n = svc->src->ops->servers(svc->src, out, max);
	for (size_t i = 0; i < n; i++)
		out[i].breaker_open = out[i].breaker_open || breaker_is_open(&breaker);
	service_release(svc);
	return n;
}

/* ---- the cached source that quota_resolve.c resolves through ------- */

struct cached {
	struct quota_service *svc;
	unsigned ttl;
	bool	skipped;		/* the breaker refused a call */
	bool	hit;			/* the last lookup was answered by the cache */
	bool	no_map;			/* the last lookup's map is not in the real source */
	struct quota_explanation *ex;	/* quota_explain(); NULL for a check */
};

/* May the real source be called?  Counts the call, or the breaker's refusal. */
static bool
cached_may_call(struct cached *c)
{
	if (c->svc->remote && !breaker_allow(&breaker)) {
		atomic_fetch_add(&stat_skips, 1);
		c->skipped = true;
		return false;
	}
	atomic_fetch_add(&stat_calls, 1);
	return true;
}

/* After a real call: feed the breaker, and say when it opens or closes. */
static void
cached_called(const struct cached *c, enum source_status st)
{
	const char *name = c->svc->src->ops->name;

	if (!c->svc->remote)
		return;
	switch (breaker_record(&breaker, st != SOURCE_ERROR)) {
	case BREAKER_OPENED:
		log_warning("quota: %s source keeps failing; not asked for %d s", name,
			    BREAKER_OPEN_MS / 1000);
		break;
	case BREAKER_CLOSED:
		log_info("quota: %s source answers again", name);
		break;
	case BREAKER_SAME:
		break;
	}
}

/*
 * A lookup whose answer is a string (an alias domain's target, an alias's
 * goto list) by the real source's fn, through the cache; NOT_FOUND when
 * the source has no such map.  buf is "" unless the answer is SOURCE_OK.
 */
static enum source_status
cached_text(struct cached *c, enum quota_cache_kind kind,
	    enum source_status (*fn)(struct quota_source *, const char *, char *, size_t),
	    const char *key, char *buf, size_t size)
{
	struct quota_cache_item item = {.value = buf, .size = size};

	c->hit = false;
	c->no_map = fn == NULL;
	if (fn == NULL)
		return SOURCE_NOT_FOUND;
	if (c->ttl > 0 && quota_cache_get(kind, key, &item)) {
		c->hit = true;
		return item.status;
	}
	if (!cached_may_call(c))
		return SOURCE_ERROR;
	buf[0] = '\0';
	item.status = fn(c->svc->src, key, buf, size);
	cached_called(c, item.status);
	if (item.status != SOURCE_OK)
		buf[0] = '\0';
	quota_cache_put(kind, key, c->ttl, &item);
	return item.status;
}

/* quota_source_ops.alias_domain through the cache. */
static enum source_status
cached_alias_domain(struct quota_source *src, const char *domain, char *target, size_t size)
{
	struct cached *c = src->state;

	return cached_text(c, QUOTA_CACHE_ALIAS_DOMAIN, c->svc->src->ops->alias_domain, domain,
			   target, size);
}

/* quota_source_ops.alias through the cache. */
static enum source_status
cached_alias(struct quota_source *src, const char *address, char *goto_list, size_t size)
{
	struct cached *c = src->state;

	return cached_text(c, QUOTA_CACHE_ALIAS, c->svc->src->ops->alias, address, goto_list,
			   size);
}

/* quota_source_ops.mailbox through the cache. */
static enum source_status
cached_mailbox(struct quota_source *src, const char *address, struct quota_mailbox *out)
{
	struct cached *c = src->state;
	struct quota_cache_item item = {.value = out->maildir, .size = sizeof(out->maildir)};
	struct quota_source *real = c->svc->src;

	out->maildir[0] = '\0';
	out->quota = out->quota_count = 0;	/* a source sets only what it has */
	c->hit = c->no_map = false;
	if (c->ttl > 0 && quota_cache_get(QUOTA_CACHE_MAILBOX, address, &item)) {
		out->quota = item.number;
		out->quota_count = item.count_limit;
		c->hit = true;
		return item.status;
	}
	if (!cached_may_call(c))
		return SOURCE_ERROR;
	item.status = real->ops->mailbox(real, address, out);
	cached_called(c, item.status);
	if (item.status != SOURCE_OK)
		memset(out, 0, sizeof(*out));
	item.number = out->quota;
	item.count_limit = out->quota_count;
	quota_cache_put(QUOTA_CACHE_MAILBOX, address, c->ttl, &item);
	return item.status;
}

/* quota_explain()'s trace: the resolver's lookup, with whether the cache answered it. */
static void
cached_trace(void *arg, const struct resolve_lookup *lookup)
{
	struct cached *c = arg;
	struct resolve_lookup lk = *lookup;

	lk.asked = lk.asked && !c->no_map;
	lk.cached = lk.asked && c->hit;
	c->ex->trace(c->ex->trace_arg, &lk);
}

/* The session's view of the source: every answer through the cache and the breaker. */
static const struct quota_source_ops cached_ops = {
	.name = "cache", .alias_domain = cached_alias_domain, .alias = cached_alias,
	.mailbox = cached_mailbox, .close = NULL,
};

/* ---- usage and the verdict ----------------------------------------- */

/* What a mailbox holds, as the verdict needs it. */
struct usage {
	unsigned long long bytes, count;
	unsigned long long count_limit;	/* maildirsize's "NC"; 0 = none */
	bool	incomplete;		/* a bounded walk could not finish: lower bounds */
};

/*
 * Usage of one maildir (cached) into *u; *from says where it was read.  A
 * maildir that does not exist yet is empty.
 */
static enum source_status
maildir_use(const struct cached *c, const char *maildir, unsigned long long quota,
	    uint64_t deadline_ms, struct usage *u, enum quota_usage_from *from)
{
	struct quota_cache_item item = {0};
	struct maildir_walk_limits limits = {0};
	struct maildir_usage usage;
	enum maildir_status st;
	uint64_t now = clock_ms();
	int	fd;

	if (c->ttl > 0 && quota_cache_get(QUOTA_CACHE_USAGE, maildir, &item)) {
		*u = (struct usage){.bytes = item.number, .count = item.count,
		    .count_limit = item.count_limit, .incomplete = item.flag};
		*from = QUOTA_USAGE_CACHE;
		return SOURCE_OK;
	}
	memset(u, 0, sizeof(*u));
	*from = QUOTA_USAGE_ERROR;
	st = maildir_open(c->svc->root, maildir, &fd);
	if (st == MAILDIR_MISSING) {
		*from = QUOTA_USAGE_NO_MAILDIR;
		return SOURCE_OK;
	}
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
	*u = (struct usage){.bytes = usage.bytes, .count = usage.count,
	    .count_limit = usage.file.quota_count, .incomplete = usage.incomplete};
	*from = usage.recalculated ? QUOTA_USAGE_WALK : QUOTA_USAGE_MAILDIRSIZE;
	item.status = SOURCE_OK;
	item.number = u->bytes;
	item.count = u->count;
	item.count_limit = u->count_limit;
	item.flag = u->incomplete;
	quota_cache_put(QUOTA_CACHE_USAGE, maildir, c->ttl, &item);
	return SOURCE_OK;
}

/*
 * quota plus grace_percent, saturating; rounded down for bytes (usage plus
 * SIZE= must be over it), up for messages (the count must reach it), so
 * that both follow quota x (1 + grace_percent/100) exactly.
 */
static unsigned long long
quota_limit(unsigned long long quota, unsigned grace_percent, bool round_up)
{
	unsigned __int128 limit = ((unsigned __int128)quota * (100 + grace_percent) +
				   (round_up ? 99 : 0)) / 100;

	return limit > ~0ULL ? ~0ULL : (unsigned long long)limit;
}

/* Judge every mailbox of res; fills the counts of out (and use, one per mailbox, if given). */
static void
judge_mailboxes(const struct cached *c, const struct config *cfg, const struct resolution *res,
		unsigned long long size, struct quota_result *out, struct quota_mailbox_use *use)
{
	uint64_t deadline = clock_ms() + CHECK_BUDGET_MS;
	bool	first_full = true;

	for (size_t i = 0; i < res->nmailboxes; i++) {
		const struct resolved_mailbox *m = &res->mailboxes[i];
		struct quota_mailbox_use u = {.from = QUOTA_USAGE_NOT_READ};
		unsigned long long limit, need, nc;
		unsigned grace = cfg->quota.grace_percent;
		struct usage got;
		bool	bytes_full;

		if (use != NULL)
			use[i] = u;
		if (m->mailbox.quota == 0 && m->mailbox.quota_count == 0)
			continue;	/* unlimited */
		limit = m->mailbox.quota ? quota_limit(m->mailbox.quota, grace, false) : 0;
		u.limit = limit;
		if (maildir_use(c, m->mailbox.maildir, limit, deadline, &got, &u.from) != SOURCE_OK) {
			if (out->nerrors++ == 0 && out->nfull == 0)
				strcpy(out->mailbox, m->address);
			if (use != NULL)
				use[i] = u;
			continue;
		}
		if (__builtin_add_overflow(got.bytes, cfg->quota.use_message_size ? size : 0, &need))
			need = ~0ULL;
		/* The source's message limit, else the one read with the usage (SQL has none). */
		nc = m->mailbox.quota_count ? m->mailbox.quota_count : got.count_limit;
		u.usage = got.bytes;
		u.need = need;
		u.count = got.count;
		u.count_limit = nc ? quota_limit(nc, grace, true) : 0;
		u.incomplete = got.incomplete;
		bytes_full = limit > 0 && need > limit;
		u.full_by_count = u.count_limit > 0 && got.count >= u.count_limit;
		u.full = bytes_full || u.full_by_count;
		if (use != NULL)
			use[i] = u;
		if (u.full) {
			out->nfull++;
			if (first_full) {
				first_full = false;
				strcpy(out->mailbox, m->address);
				out->usage = got.bytes;
				out->limit = limit;
				out->count = got.count;
				out->count_limit = u.count_limit;
				out->by_count = !bytes_full;
			}
		} else if (got.incomplete)
			log_warning("quota: %s: maildir walk cut short at %llu bytes, %llu messages; "
				    "not judged", m->mailbox.maildir, got.bytes, got.count);
	}
}

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

/* The verdict of a resolution that did not fail: out's counts and verdict. */
static void
settle(const struct cached *c, const struct config *cfg, const struct resolution *res,
       unsigned long long size, struct quota_result *out)
{
	out->nmailboxes = res->nmailboxes;
	out->nother = res->nother;
	judge_mailboxes(c, cfg, res, size, out, c->ex ? c->ex->use : NULL);
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

/* quota_check(), telling ex (may be NULL) how it went. */
static enum quota_verdict
check(const struct config *cfg, const struct address *addr, unsigned long long size,
      struct quota_result *out, struct quota_explanation *ex)
{
	unsigned ttl;
	struct quota_service *svc = service_for(cfg, &ttl);
	struct cached c = {.svc = svc, .ttl = ttl, .ex = ex};
	struct quota_source cached = {.ops = &cached_ops, .state = &c};
	struct resolution *res = ex ? &ex->res : NULL;
	enum source_status st;

	memset(out, 0, sizeof(*out));
	out->verdict = QUOTA_ERROR;
	if (svc == NULL) {
		out->why = "quota service not started";
		return out->verdict;
	}
	if (ex != NULL) {
		ex->source = svc->src->ops->name;
		ex->cache_ttl = ttl;
	}
	if (res == NULL && (res = malloc(sizeof(*res))) == NULL) {
		service_release(svc);
		out->why = "out of memory";
		out->out_of_memory = true;
		return out->verdict;
	}
	st = quota_resolve_traced(&cached, addr, cfg->quota.recipient_delimiter,
				  ex && ex->trace ? cached_trace : NULL, &c, res);
	if (st == SOURCE_ERROR) {
		out->out_of_memory = res->out_of_memory;
		out->why = res->out_of_memory ? "out of memory" : c.skipped ?
		    "source skipped while its circuit breaker is open" : "source lookup failed";
		out->skipped = c.skipped;
		strcpy(out->mailbox, addr->full);
	} else if (res->limited) {
		log_warning("quota: %s: alias expansion exceeds its limits; no opinion", addr->full);
		out->verdict = QUOTA_NO_OPINION;
		out->why = "alias expansion limit";
	} else if (res->nmailboxes == 0) {
		out->verdict = QUOTA_NO_OPINION;
		out->why = "no local mailbox";
	} else
		settle(&c, cfg, res, size, out);
	if (ex == NULL)
		free(res);
	service_release(svc);
	return out->verdict;
}

enum quota_verdict
quota_check(const struct config *cfg, const struct address *addr, unsigned long long size,
	    struct quota_result *out)
{
	return check(cfg, addr, size, out, NULL);
}

enum quota_verdict
quota_explain(const struct config *cfg, const struct address *addr, unsigned long long size,
	      struct quota_result *out, struct quota_explanation *ex)
{
	ex->source = "none";
	ex->cache_ttl = 0;
	ex->res.nmailboxes = ex->res.nother = 0;
	ex->res.limited = false;
	return check(cfg, addr, size, out, ex);
}
