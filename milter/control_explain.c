/*
 * control_explain.c - "explain ADDRESS [--size N]": how mxgate resolves a
 * recipient and what the quota check would answer for it now.
 *
 * The answer shows the address in lookup form (address.h), every lookup
 * of the alias resolution in the order it was made (quota_resolve.h),
 * with the alias domain mapping of the recipient's domain, then each
 * local mailbox with its quota, its usage and where each came from (and
 * its message count against a Maildir++ message limit: "full by count"), and
 * the verdict in the words of the reply a client would get.  The check is
 * the real one (quota_explain), through the cache and the breaker, so the
 * answer is what an RCPT TO would get at this moment; a lookup the cache
 * answered says so.  With --json the same facts are one JSON object.
 *
 * Thread-safety: runs on the control thread; reads the current
 * configuration snapshot and the thread-safe quota service only.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "quota.h"
#include "reply.h"

/* What the trace has seen so far, and where it writes. */
struct explain_trace {
	struct control_out *out;
	bool	json;
	size_t	nlookups;
	/* The recipient's own alias domain lookup (depth 0). */
	bool	domain_asked, domain_seen;
	enum source_status domain_status;
	char	domain_target[ADDRESS_DOMAIN_MAX];
	/* Per mailbox found, in the resolution's order: the cache answered its lookup. */
	bool	mailbox_cached[RESOLVE_MAX_MAILBOXES];
	size_t	nmailboxes;
};

/* A word for a lookup's map. */
static const char *
step_name(enum resolve_step step)
{
	switch (step) {
	case RESOLVE_ALIAS:
		return "alias";
	case RESOLVE_ALIAS_DOMAIN:
		return "alias_domain";
	case RESOLVE_CATCHALL:
		return "catchall";
	case RESOLVE_MAILBOX:
		return "mailbox";
	}
	return "?";
}

/* A word for what a lookup found. */
static const char *
lookup_result(const struct resolve_lookup *lk)
{
	if (!lk->asked)
		return "not asked";
	return lk->status == SOURCE_OK ? "found" :
	    lk->status == SOURCE_NOT_FOUND ? "not found" : "error";
}

/* resolve_trace_fn: one lookup, written as it is made. */
static void
trace_lookup(void *arg, const struct resolve_lookup *lk)
{
	struct explain_trace *t = arg;
	struct control_out *out = t->out;

	if (lk->step == RESOLVE_ALIAS_DOMAIN && lk->depth == 0 && !t->domain_seen) {
		t->domain_seen = true;
		t->domain_asked = lk->asked;
		t->domain_status = lk->status;
		snprintf(t->domain_target, sizeof(t->domain_target), "%s", lk->value);
	}
	if (lk->step == RESOLVE_MAILBOX && lk->status == SOURCE_OK &&
	    t->nmailboxes < RESOLVE_MAX_MAILBOXES)
		t->mailbox_cached[t->nmailboxes++] = lk->cached;
	if (t->json) {
		control_printf(out, "%s{\"step\":\"%s\",\"depth\":%u,\"key\":",
			       t->nlookups++ ? "," : "", step_name(lk->step), lk->depth);
		control_json_string(out, lk->key);
		control_printf(out, ",\"result\":\"%s\",\"cached\":%s", lookup_result(lk),
			       lk->cached ? "true" : "false");
		if (lk->asked && lk->status == SOURCE_OK) {
			control_printf(out, ",\"value\":");
			control_json_string(out, lk->value);
		}
		control_printf(out, "}");
		return;
	}
	t->nlookups++;
	control_printf(out, "  %*s%s %s: %s%s%s%s\n", (int)(2 * lk->depth), "",
		       step_name(lk->step), lk->key, lookup_result(lk),
		       lk->asked && lk->status == SOURCE_OK && lk->value[0] ? " -> " : "",
		       lk->asked && lk->status == SOURCE_OK ? lk->value : "",
		       lk->cached ? " (cached)" : "");
}

/* Where a source's quotas come from, in words. */
static const char *
quota_origin(const char *source)
{
	if (strcmp(source, "maildir") == 0)
		return "maildirsize quota line";
	if (strcmp(source, "mysql") == 0)
		return "SQL quota_query";
	return source;
}

/* Where a mailbox's usage was read, in words. */
static const char *
usage_origin(enum quota_usage_from from)
{
	switch (from) {
	case QUOTA_USAGE_NOT_READ:
		return "not read";
	case QUOTA_USAGE_MAILDIRSIZE:
		return "maildirsize";
	case QUOTA_USAGE_WALK:
		return "directory walk";
	case QUOTA_USAGE_CACHE:
		return "cache";
	case QUOTA_USAGE_NO_MAILDIR:
		return "no maildir yet";
	case QUOTA_USAGE_ERROR:
		return "unreadable";
	}
	return "?";
}

/*
 * What the check would do with verdict v, as policy.c would settle it:
 * *action ("reject", "tempfail", "reject_warning", "no opinion",
 * "accept") and the reply line or the reason into line.
 */
static void
verdict_words(const struct config *cfg, const struct quota_result *res, const char *shown,
	      size_t shown_len, const char **action, char *line, size_t size)
{
	struct reply r;
	bool	ok = false;

	if (res->verdict == QUOTA_FULL) {
		ok = reply_set(&r, cfg->quota.reply_code, cfg->quota.reply_dsn, shown, shown_len,
			       "Recipient address rejected: Mailbox full");
		*action = cfg->dry_run ? "reject_warning" : "reject";
	} else if (res->verdict == QUOTA_ERROR &&
		   (cfg->quota.on_error == ON_ERROR_TEMPFAIL || res->out_of_memory)) {
		ok = reply_set(&r, 451, "4.3.0", shown, shown_len, "Temporary lookup failure");
		*action = cfg->dry_run ? "reject_warning" : "tempfail";
	} else if (res->verdict == QUOTA_ERROR) {
		*action = "accept";
		snprintf(line, size, "accepted: %s, on_error = accept", res->why);
		return;
	} else {
		*action = "no opinion";
		snprintf(line, size, "no opinion: %s", res->why ? res->why : "room left");
		return;
	}
	if (!ok)
		snprintf(line, size, "(no valid reply: check quota.reply_code and reply_dsn)");
	else
		snprintf(line, size, "%s %s %s%s", r.code, r.dsn, r.text,
			 cfg->dry_run ? " (dry_run: logged, not given)" : "");
}

/* The alias domain mapping of the recipient's domain: "found" (to domain_target) or why not. */
static const char *
alias_domain_state(const struct explain_trace *t)
{
	if (!t->domain_seen)
		return "not looked up (an alias matched first)";
	if (!t->domain_asked)
		return "the source has no alias domains";
	if (t->domain_status == SOURCE_ERROR)
		return "lookup failed";
	if (t->domain_status == SOURCE_OK && t->domain_target[0] != '\0')
		return "found";
	return "none";
}

/* One mailbox as text. */
static void
text_mailbox(struct control_out *out, const struct quota_explanation *ex, size_t i,
	     bool cached)
{
	const struct resolved_mailbox *m = &ex->res.mailboxes[i];
	const struct quota_mailbox_use *u = &ex->use[i];

	control_printf(out, "mailbox %s\n  maildir %s\n", m->address, m->mailbox.maildir);
	if (m->mailbox.quota == 0 && m->mailbox.quota_count == 0) {
		control_printf(out, "  quota: unlimited (%s%s)\n", quota_origin(ex->source),
			       cached ? ", cached" : "");
		return;
	}
	if (m->mailbox.quota == 0)
		control_printf(out, "  quota: no byte limit (%s%s)\n", quota_origin(ex->source),
			       cached ? ", cached" : "");
	else
		control_printf(out, "  quota: %llu bytes (%s%s), limit with grace %llu\n",
			       m->mailbox.quota, quota_origin(ex->source), cached ? ", cached" : "",
			       u->limit);
	if (u->from == QUOTA_USAGE_ERROR) {
		control_printf(out, "  usage: unreadable\n");
		return;
	}
	control_printf(out, "  usage: %llu bytes (%s%s), with this message %llu: %s\n",
		       u->usage, usage_origin(u->from), u->incomplete ? ", walk cut short" : "",
		       u->need, u->limit == 0 ? "no byte limit" :
		       u->need > u->limit ? "full" : "room left");
	if (u->count_limit > 0)
		control_printf(out, "  messages: %llu, limit with grace %llu: %s\n", u->count,
			       u->count_limit, u->full_by_count ? "full by count" : "room left");
}

/* One mailbox as a JSON object. */
static void
json_mailbox(struct control_out *out, const struct quota_explanation *ex, size_t i,
	     bool cached)
{
	const struct resolved_mailbox *m = &ex->res.mailboxes[i];
	const struct quota_mailbox_use *u = &ex->use[i];

	control_printf(out, "%s{\"address\":", i ? "," : "");
	control_json_string(out, m->address);
	control_printf(out, ",\"maildir\":");
	control_json_string(out, m->mailbox.maildir);
	control_printf(out, ",\"quota\":%llu,\"quota_from\":", m->mailbox.quota);
	control_json_string(out, quota_origin(ex->source));
	control_printf(out, ",\"quota_cached\":%s,\"limit\":%llu,\"usage\":%llu,"
		       "\"usage_from\":\"%s\",\"incomplete\":%s,\"need\":%llu,\"full\":%s,"
		       "\"quota_count\":%llu,\"count\":%llu,\"count_limit\":%llu,\"full_by_count\":%s}",
		       cached ? "true" : "false", u->limit, u->usage, usage_origin(u->from),
		       u->incomplete ? "true" : "false", u->need, u->full ? "true" : "false",
		       m->mailbox.quota_count, u->count, u->count_limit,
		       u->full_by_count ? "true" : "false");
}

/* The address in lookup form. */
static void
write_address(struct control_out *out, bool json, const char *text, const struct address *a,
	      const char *delimiters)
{
	if (!json) {
		control_printf(out, "address: %s\nlookup form: %s (base %s, extension \"%s\", "
			       "domain %s; recipient_delimiter \"%s\")\nlookups:\n",
			       text, a->full, a->base, a->ext, a->domain, delimiters);
		return;
	}
	control_printf(out, "{\"address\":");
	control_json_string(out, text);
	control_printf(out, ",\"lookup_form\":");
	control_json_string(out, a->full);
	control_printf(out, ",\"base\":");
	control_json_string(out, a->base);
	control_printf(out, ",\"extension\":");
	control_json_string(out, a->ext);
	control_printf(out, ",\"domain\":");
	control_json_string(out, a->domain);
	control_printf(out, ",\"recipient_delimiter\":");
	control_json_string(out, delimiters);
	control_printf(out, ",\"lookups\":[");
}

/* Everything after the lookups: source, alias domain, mailboxes, verdict. */
static void
write_result(struct control_out *out, const struct config *cfg, const struct explain_trace *t,
	     const struct quota_explanation *ex, const struct quota_result *res,
	     const char *text, const struct address *a, unsigned long long size)
{
	char	line[REPLY_MAX + 64];
	const char *shown, *action, *mapping = alias_domain_state(t);
	bool	mapped = strcmp(mapping, "found") == 0;
	size_t	shown_len, n = ex->res.nmailboxes;

	address_display(text, strlen(text), &shown, &shown_len);
	verdict_words(cfg, res, shown, shown_len, &action, line, sizeof(line));
	if (!t->json) {
		control_printf(out, "alias domain: %s%s%s\nsource: %s (cache_ttl %u s)\n"
			       "targets: %zu local mailbox%s, %zu other%s%s\n",
			       a->domain, mapped ? " -> " : ": ", mapped ? t->domain_target : mapping,
			       ex->source, ex->cache_ttl, n, n == 1 ? "" : "es",
			       ex->res.nother, ex->res.nother == 1 ? "" : "s",
			       ex->res.limited ? " (cut by the expansion limits)" : "");
		for (size_t i = 0; i < n; i++)
			text_mailbox(out, ex, i, i < t->nmailboxes && t->mailbox_cached[i]);
		control_printf(out, "size: %llu\nverdict: %s\n", size, line);
		return;
	}
	control_printf(out, "],\"alias_domain\":{\"domain\":");
	control_json_string(out, a->domain);
	control_printf(out, ",\"state\":");
	control_json_string(out, mapping);
	control_printf(out, ",\"target\":");
	if (mapped)
		control_json_string(out, t->domain_target);
	else
		control_printf(out, "null");
	control_printf(out, "},\"source\":");
	control_json_string(out, ex->source);
	control_printf(out, ",\"cache_ttl\":%u,\"other_targets\":%zu,\"limited\":%s,"
		       "\"mailboxes\":[", ex->cache_ttl, ex->res.nother,
		       ex->res.limited ? "true" : "false");
	for (size_t i = 0; i < n; i++)
		json_mailbox(out, ex, i, i < t->nmailboxes && t->mailbox_cached[i]);
	control_printf(out, "],\"size\":%llu,\"verdict\":\"%s\",\"action\":\"%s\",\"why\":",
		       size, res->verdict == QUOTA_FULL ? "full" :
		       res->verdict == QUOTA_ERROR ? "error" : "no_opinion", action);
	control_json_string(out, res->why ? res->why : "");
	control_printf(out, ",\"reply\":");
	control_json_string(out, line);
	control_printf(out, "}\n");
}

/* Parse "explain ADDRESS [--size N]"; false (and the 400) when malformed. */
static bool
parse_args(int argc, char **argv, struct control_out *out, unsigned long long *size)
{
	char   *end;

	*size = 0;
	if (argc == 2)
		return true;
	if (argc == 4 && strcmp(argv[2], "--size") == 0 && argv[3][0] >= '0' &&
	    argv[3][0] <= '9') {
		errno = 0;
		*size = strtoull(argv[3], &end, 10);
		if (errno == 0 && *end == '\0')
			return true;
	}
	control_fail(out, 400, "usage: explain ADDRESS [--size N]");
	return false;
}

void
control_cmd_explain(int argc, char **argv, bool json, struct control_out *out)
{
	struct config *cfg;
	struct address addr;
	struct quota_result res;
	struct quota_explanation *ex;
	struct explain_trace t = {.out = out, .json = json};
	enum address_status ast;
	unsigned long long size;

	if (!parse_args(argc, argv, out, &size))
		return;
	if ((cfg = config_current()) == NULL) {
		control_fail(out, 503, "no configuration loaded");
		return;
	}
	if (!cfg->quota.enabled) {
		control_printf(out, json ? "{\"enabled\":false,\"verdict\":\"quota check disabled\"}\n"
			       : "quota check disabled\n");
		config_release(cfg);
		return;
	}
	ast = address_parse(argv[1], strlen(argv[1]), cfg->quota.recipient_delimiter, &addr);
	if (ast != ADDRESS_OK) {
		control_fail(out, 400, "%s: %s", argv[1], address_status_name(ast));
	} else if ((ex = calloc(1, sizeof(*ex))) == NULL) {
		control_fail(out, 500, "out of memory");
	} else {
		ex->trace = trace_lookup;
		ex->trace_arg = &t;
		write_address(out, json, argv[1], &addr, cfg->quota.recipient_delimiter);
		quota_explain(cfg, &addr, size, &res, ex);
		write_result(out, cfg, &t, ex, &res, argv[1], &addr, size);
		free(ex);
	}
	config_release(cfg);
}
