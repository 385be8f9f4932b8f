/*
 * quota_resolve.c - a recipient's local mailboxes, resolved over a
 * quota_source as virtual(5) does (see quota_resolve.h for the rules).
 *
 * A resolver walks the alias graph depth first, remembering every
 * address it has looked at; the goto lists' addresses are parsed with
 * address_parse(), so they take the lookup form the recipient took.
 * A trace function, when given, hears of every lookup after it is made.
 * Thread-safety: no shared state; a resolver lives on one call's stack
 * and heap.
 */
#include "quota_resolve.h"

#include <stdlib.h>
#include <string.h>

/* One resolution in progress. */
struct resolver {
	struct quota_source *src;
	const char *delimiters;
	struct resolution *out;
	resolve_trace_fn *trace;	/* NULL: nobody listens */
	void   *trace_arg;
	char	seen[RESOLVE_MAX_ADDRESSES][ADDRESS_MAX];
	size_t	nseen;
};

/* True (and counted) when another source call is allowed. */
static bool
resolver_may_look(struct resolver *r)
{
	if (r->out->lookups >= RESOLVE_MAX_LOOKUPS) {
		r->out->limited = true;
		return false;
	}
	r->out->lookups++;
	return true;
}

/* Tell the trace function, if any, about one lookup. */
static void
resolver_trace(struct resolver *r, enum resolve_step step, unsigned depth, const char *key,
	       bool asked, enum source_status st, const char *value, unsigned long long quota)
{
	struct resolve_lookup lk = {
		.step = step, .depth = depth, .key = key, .asked = asked, .status = st,
		.value = st == SOURCE_OK ? value : "", .quota = quota,
	};

	if (r->trace != NULL)
		r->trace(r->trace_arg, &lk);
}

/*
 * One lookup whose answer is a string (an alias's goto list, an alias
 * domain's target), by fn; NOT_FOUND for a source without that map, and
 * once the lookups are used up (the resolution says it was limited).
 */
static enum source_status
lookup_text(struct resolver *r, enum resolve_step step, unsigned depth,
	    enum source_status (*fn)(struct quota_source *, const char *, char *, size_t),
	    const char *key, char *buf, size_t size)
{
	enum source_status st;

	buf[0] = '\0';
	if (fn == NULL || !resolver_may_look(r)) {
		resolver_trace(r, step, depth, key, false, SOURCE_NOT_FOUND, "", 0);
		return SOURCE_NOT_FOUND;
	}
	st = fn(r->src, key, buf, size);
	resolver_trace(r, step, depth, key, true, st, buf, 0);
	return st;
}

/* Record that addr was looked at; false when it was already (a loop or a duplicate). */
static bool
resolver_first_visit(struct resolver *r, const char *addr)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i], addr) == 0)
			return false;
	if (r->nseen == RESOLVE_MAX_ADDRESSES) {
		r->out->limited = true;
		return false;
	}
	strcpy(r->seen[r->nseen++], addr);
	return true;
}

/* Look addr up as a mailbox (with its extension, then without) and record it. */
static enum source_status
resolve_mailbox(struct resolver *r, const struct address *a, unsigned depth)
{
	const char *keys[2] = {a->full, a->base};
	size_t	nkeys = a->delim ? 2 : 1;

	if (!a->delim)
		keys[0] = a->base;
	for (size_t i = 0; i < nkeys; i++) {
		struct resolved_mailbox *m;
		enum source_status st;

		if (r->out->nmailboxes == RESOLVE_MAX_MAILBOXES) {
			r->out->limited = true;
			return SOURCE_OK;
		}
		for (size_t j = 0; j < r->out->nmailboxes; j++)
			if (strcmp(r->out->mailboxes[j].address, keys[i]) == 0)
				return SOURCE_OK;	/* reached twice: counted once */
		if (!resolver_may_look(r)) {
			resolver_trace(r, RESOLVE_MAILBOX, depth, keys[i], false,
				       SOURCE_NOT_FOUND, "", 0);
			return SOURCE_OK;
		}
		m = &r->out->mailboxes[r->out->nmailboxes];
		memset(m, 0, sizeof(*m));
		st = r->src->ops->mailbox(r->src, keys[i], &m->mailbox);
		resolver_trace(r, RESOLVE_MAILBOX, depth, keys[i], true, st, m->mailbox.maildir,
			       m->mailbox.quota);
		if (st == SOURCE_ERROR)
			return st;
		if (st == SOURCE_OK) {
			strcpy(m->address, keys[i]);
			r->out->nmailboxes++;
			return SOURCE_OK;
		}
	}
	r->out->nother++;		/* no mailbox here: the MTA decides */
	return SOURCE_OK;
}

static enum source_status resolve(struct resolver *r, const struct address *a, unsigned depth);

/* Expand a goto list found for a (one level deeper). */
static enum source_status
resolve_list(struct resolver *r, const struct address *a, const char *list, unsigned depth)
{
	const char *p = list;
	struct address *t = malloc(sizeof(*t));
	enum source_status st = SOURCE_OK;

	if (t == NULL) {
		r->out->out_of_memory = true;
		return SOURCE_ERROR;
	}
	while (st == SOURCE_OK && *p != '\0') {
		size_t	n;

		p += strspn(p, ", \t\r\n");
		n = strcspn(p, ", \t\r\n");
		if (n == 0)
			break;
		if (address_parse(p, n, r->delimiters, t) != ADDRESS_OK)
			r->out->nother++;	/* a pipe, a bare name: no mailbox of ours */
		else if (strcmp(t->full, a->full) == 0 || strcmp(t->full, a->base) == 0)
			st = resolve_mailbox(r, a, depth);	/* expands to itself: its own mailbox */
		else
			st = resolve(r, t, depth + 1);
		p += n;
	}
	free(t);
	return st;
}

/* Resolve the address in domain target instead (an alias domain). */
static enum source_status
resolve_in_domain(struct resolver *r, const struct address *a, const char *target,
		  unsigned depth)
{
	char	buf[ADDRESS_MAX];
	struct address *t;
	enum source_status st = SOURCE_OK;
	size_t	n;

	n = strlen(a->full) - strlen(a->domain);	/* "local+ext@" */
	if (n + strlen(target) >= sizeof(buf)) {
		r->out->nother++;
		return SOURCE_OK;
	}
	memcpy(buf, a->full, n);
	strcpy(buf + n, target);
	if ((t = malloc(sizeof(*t))) == NULL) {
		r->out->out_of_memory = true;
		return SOURCE_ERROR;
	}
	if (address_parse(buf, strlen(buf), r->delimiters, t) != ADDRESS_OK)
		r->out->nother++;
	else
		st = resolve(r, t, depth + 1);
	free(t);
	return st;
}

/* Resolve one address: aliases, alias domain, catch-all, then mailbox. */
static enum source_status
resolve(struct resolver *r, const struct address *a, unsigned depth)
{
	char	value[QUOTA_SOURCE_VALUE_MAX];
	char	catchall[ADDRESS_DOMAIN_MAX + 1];
	enum source_status st;

	if (depth > RESOLVE_MAX_DEPTH) {
		r->out->limited = true;
		return SOURCE_OK;
	}
	if (!resolver_first_visit(r, a->full))
		return SOURCE_OK;
	if (a->delim) {
		st = lookup_text(r, RESOLVE_ALIAS, depth, r->src->ops->alias, a->full, value,
				 sizeof(value));
		if (st != SOURCE_NOT_FOUND)
			return st == SOURCE_OK ? resolve_list(r, a, value, depth) : st;
	}
	st = lookup_text(r, RESOLVE_ALIAS, depth, r->src->ops->alias, a->base, value,
			 sizeof(value));
	if (st != SOURCE_NOT_FOUND)
		return st == SOURCE_OK ? resolve_list(r, a, value, depth) : st;

	st = lookup_text(r, RESOLVE_ALIAS_DOMAIN, depth, r->src->ops->alias_domain, a->domain,
			 value, sizeof(value));
	if (st == SOURCE_ERROR)
		return st;
	if (st == SOURCE_OK && value[0] != '\0') {
		address_lower(value);
		if (strcmp(value, a->domain) != 0)
			return resolve_in_domain(r, a, value, depth);
	}

	catchall[0] = '@';
	strcpy(catchall + 1, a->domain);
	st = lookup_text(r, RESOLVE_CATCHALL, depth, r->src->ops->alias, catchall, value,
			 sizeof(value));
	if (st != SOURCE_NOT_FOUND)
		return st == SOURCE_OK ? resolve_list(r, a, value, depth) : st;
	return resolve_mailbox(r, a, depth);
}

enum source_status
quota_resolve(struct quota_source *src, const struct address *addr, const char *delimiters,
	      struct resolution *out)
{
	return quota_resolve_traced(src, addr, delimiters, NULL, NULL, out);
}

enum source_status
quota_resolve_traced(struct quota_source *src, const struct address *addr,
		     const char *delimiters, resolve_trace_fn *trace, void *arg,
		     struct resolution *out)
{
	struct resolver *r = malloc(sizeof(*r));
	enum source_status st;

	/* Only the counts: each mailbox entry is cleared when it is used. */
	out->nmailboxes = out->nother = 0;
	out->limited = false;
	out->lookups = 0;
	out->out_of_memory = r == NULL;
	if (r == NULL)
		return SOURCE_ERROR;
	r->nseen = 0;
	r->src = src;
	r->delimiters = delimiters ? delimiters : "";
	r->out = out;
	r->trace = trace;
	r->trace_arg = arg;
	st = resolve(r, addr, 0);
	free(r);
	return st;
}
