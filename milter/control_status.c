/*
 * control_status.c - the control socket's "status" and "stats" commands
 * (control.h).
 *
 * status says what mxgate runs on now: version, engine, uptime, the
 * configuration and when it was loaded, sessions, the overload state and
 * its signals, each back-end server in use with its breaker and its
 * requests so far, and the caches.  stats gives the counters of stats.h
 * as tables.  Each answer is written once, through a small emitter that
 * gives either "label: value" lines or one JSON object; a member with no
 * label is JSON's only, one with no key the text's only.
 *
 * Thread-safety: the control thread; everything read is read through
 * thread-safe snapshots (stats_read, overload_last_readings,
 * ratelimit_status, quota_stats, config_current).
 */
#include "control.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checks.h"
#include "engine.h"
#include "overload.h"
#include "quota.h"
#include "quota_cache.h"
#include "ratelimit.h"
#include "stats.h"

#define EMIT_DEPTH	8

/* An answer being written in one of the two shapes. */
struct emit {
	struct control_out *out;
	bool	json;
	int	depth;
	bool	more[EMIT_DEPTH];	/* JSON: this level has a member already */
	char	close[EMIT_DEPTH];	/* JSON: '}' or ']' */
	int	indent[EMIT_DEPTH];	/* text: indentation of this level's lines */
};

static void
emit_begin(struct emit *e, struct control_out *out, bool json)
{
	memset(e, 0, sizeof(*e));
	e->out = out;
	e->json = json;
	e->close[0] = '}';
	if (json)
		control_printf(out, "{");
}

static void
emit_end(struct emit *e)
{
	if (e->json)
		control_printf(e->out, "}\n");
}

/* Start a member: JSON's comma and key (none inside an array), the text's label; false when this shape leaves it out. */
static bool
emit_member(struct emit *e, const char *key, const char *label)
{
	bool	in_array = e->close[e->depth] == ']';

	if (!e->json) {
		if (label == NULL)
			return false;
		control_printf(e->out, "%*s%s:", e->indent[e->depth], "", label);
		return true;
	}
	if (key == NULL && !in_array)
		return false;
	control_printf(e->out, "%s", e->more[e->depth] ? "," : "");
	e->more[e->depth] = true;
	if (!in_array) {
		control_json_string(e->out, key);
		control_printf(e->out, ":");
	}
	return true;
}

/*
 * Open an object ('{') or array ('[').  JSON always has it (so it needs a
 * key, unless inside an array); the text has a heading line when it is
 * labelled, and without a label its members stand at the outer level.
 */
static void
emit_open(struct emit *e, const char *key, const char *label, char open)
{
	bool	shown = emit_member(e, key, label);
	int	indent = e->indent[e->depth];

	assert(e->depth + 1 < EMIT_DEPTH && (shown || !e->json));
	if (e->json)
		control_printf(e->out, "%c", open);
	else if (shown)
		control_printf(e->out, "\n");
	e->depth++;
	e->more[e->depth] = false;
	e->close[e->depth] = open == '{' ? '}' : ']';
	e->indent[e->depth] = shown ? indent + 2 : indent;
}

static void
emit_close(struct emit *e)
{
	if (e->json)
		control_printf(e->out, "%c", e->close[e->depth]);
	e->depth--;
}

static void
emit_str(struct emit *e, const char *key, const char *label, const char *v)
{
	if (!emit_member(e, key, label))
		return;
	if (e->json)
		control_json_string(e->out, v);
	else
		control_printf(e->out, " %s\n", v);
}

static void
emit_uint(struct emit *e, const char *key, const char *label, unsigned long long v)
{
	if (emit_member(e, key, label))
		control_printf(e->out, e->json ? "%llu" : " %llu\n", v);
}

static void
emit_double(struct emit *e, const char *key, const char *label, double v)
{
	if (emit_member(e, key, label))
		control_printf(e->out, e->json ? "%.3f" : " %.3f\n", v);
}

/* JSON's true/false; the text's yes/no. */
static void
emit_bool(struct emit *e, const char *key, const char *label, bool v)
{
	if (emit_member(e, key, label))
		control_printf(e->out, e->json ? "%s" : " %s\n",
			       e->json ? (v ? "true" : "false") : (v ? "yes" : "no"));
}

/* ---- status ---------------------------------------------------------- */

/* The file, when it was loaded, its generation. */
static void
status_config(struct emit *e, const struct config *cfg)
{
	char	when[32] = "?";
	struct tm tm;

	if (gmtime_r(&cfg->loaded, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	emit_open(e, "configuration", "configuration", '{');
	emit_str(e, "file", "file", cfg->path[0] ? cfg->path : "(defaults)");
	emit_str(e, "loaded", "loaded", when);
	emit_uint(e, "loaded_unix", NULL, (unsigned long long)cfg->loaded);
	emit_uint(e, "generation", "generation", cfg->generation);
	emit_close(e);
}

static const char *const signal_keys[OVERLOAD_NSIGNALS] = {"flag", "queue", "load"};
static const char *const signal_labels[OVERLOAD_NSIGNALS] = {"flag file", "queue depth", "load average"};
static const char *const reading_names[] = {"off", "ok", "error"};

/* One signal as the last sample read it: a line, or an object. */
static void
status_reading(struct emit *e, int i, const struct overload_reading *r)
{
	char	text[OVERLOAD_TEXT_MAX + 32];

	if (r->status == OVERLOAD_READING_OFF)
		snprintf(text, sizeof(text), "off");
	else if (r->status == OVERLOAD_READING_ERROR)
		snprintf(text, sizeof(text), "unreadable: %s", r->error);
	else
		snprintf(text, sizeof(text), "%g%s", r->value, r->at_least ? " (at least)" : "");
	emit_str(e, NULL, signal_labels[i], text);
	emit_open(e, signal_keys[i], NULL, '{');
	emit_str(e, "status", NULL, reading_names[r->status]);
	emit_double(e, "value", NULL, r->value);
	emit_bool(e, "at_least", NULL, r->at_least);
	emit_str(e, "error", NULL, r->error);
	emit_close(e);
}

/* Overloaded or not, which signals say so, and what each read. */
static void
status_overload(struct emit *e)
{
	struct overload_reading readings[OVERLOAD_NSIGNALS];
	unsigned word = overload_signals();
	char	names[64] = "";

	overload_last_readings(readings);
	emit_open(e, "overload", "overload", '{');
	emit_bool(e, "active", "active", overload_active());
	emit_open(e, "signals", NULL, '[');
	for (int i = 0; i < OVERLOAD_NSIGNALS; i++)
		if (word & (1u << i)) {
			emit_str(e, NULL, NULL, signal_keys[i]);
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 names[0] ? " " : "", signal_keys[i]);
		}
	emit_close(e);
	emit_str(e, NULL, "signals", names[0] ? names : "none");
	emit_open(e, "readings", NULL, '{');
	for (int i = 0; i < OVERLOAD_NSIGNALS; i++)
		status_reading(e, i, &readings[i]);
	emit_close(e);
	emit_close(e);
}

/* The index of backend/server among s's back ends, or -1 (names are cut as stats.c cuts them). */
static int
find_backend(const struct stats_snapshot *s, const char *backend, const char *server)
{
	for (size_t i = 0; i < s->nbackends; i++)
		if (strcmp(s->backends[i].backend, backend) == 0 &&
		    strncmp(s->backends[i].server, server, STATS_NAME_MAX - 1) == 0)
			return (int)i;
	return -1;
}

/* Back end i's requests by result and their mean latency (i = -1: none counted yet). */
static void
emit_requests(struct emit *e, const struct stats_snapshot *s, int i)
{
	unsigned long r[STATS_NRESULTS] = {0}, sum = 0, timed;
	char	text[160] = "";

	if (i >= 0) {
		memcpy(r, s->backends[i].results, sizeof(r));
		sum = s->backends[i].latency_us_sum;
	}
	emit_open(e, "requests", NULL, '{');
	for (int k = 0; k < STATS_NRESULTS; k++) {
		emit_uint(e, stats_result_name(k), NULL, r[k]);
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s %lu", k ? ", " : "",
			 stats_result_name(k), r[k]);
	}
	emit_close(e);
	emit_str(e, NULL, "requests", text);
	/* A request its breaker skipped took no time: the mean is over the others. */
	timed = r[STATS_OK] + r[STATS_NOT_FOUND] + r[STATS_ERROR];
	emit_uint(e, "mean_latency_us", "mean latency since start (us)", timed ? sum / timed : 0);
}

/* One server in use: its breaker and its requests. */
static void
status_server(struct emit *e, const struct stats_snapshot *s, const char *backend,
	      const char *server, bool breaker_open)
{
	char	label[STATS_NAME_MAX + 40];

	snprintf(label, sizeof(label), "%s %s", backend, server);
	emit_open(e, NULL, label, '{');
	emit_str(e, "backend", NULL, backend);
	emit_str(e, "server", NULL, server);
	emit_str(e, "breaker", "breaker", breaker_open ? "open" : "closed");
	emit_requests(e, s, find_backend(s, backend, server));
	emit_close(e);
}

/* Each memcached server the rate limits use, and the SQL servers of the quotas in order. */
static void
status_backends(struct emit *e, const struct stats_snapshot *s)
{
	struct ratelimit_status rl;
	struct source_server sql[STATS_BACKENDS];
	size_t	nsql = quota_servers(sql, STATS_BACKENDS);

	ratelimit_status(&rl);
	emit_open(e, "backends", "back ends", '[');
	for (size_t i = 0; i < rl.nservers; i++)
		status_server(e, s, "memcached", rl.servers[i].name, rl.servers[i].breaker_open);
	for (size_t i = 0; i < nsql; i++)
		status_server(e, s, "mysql", sql[i].name, sql[i].breaker_open);
	if (rl.nservers == 0 && nsql == 0 && !e->json)
		control_printf(e->out, "  (none: counters in process, quotas from maildirs)\n");
	emit_close(e);
	emit_open(e, "ratelimit", "rate-limit counters", '{');
	emit_str(e, "store", "store", rl.nservers == 0 ? "in process" : rl.counting_locally ?
		 "in process until memcached answers (on_error = local)" : "memcached");
	emit_uint(e, "local_entries", "in-process counters", rl.local_entries);
	emit_uint(e, "cached_windows", "cached finished windows", rl.cached_windows);
	emit_close(e);
}

/* The quota cache: its hits, misses and hit ratio, and what reached the source. */
static void
status_quota(struct emit *e)
{
	struct quota_stats q;
	unsigned long long looked;
	size_t	entries, capacity;

	quota_stats(&q);
	looked = q.hits + q.misses;
	entries = quota_cache_entries(&capacity);
	emit_open(e, "quota_cache", "quota cache", '{');
	emit_uint(e, "entries", "entries", entries);
	emit_uint(e, "capacity", "capacity", capacity);
	emit_uint(e, "hits", "hits", q.hits);
	emit_uint(e, "misses", "misses", q.misses);
	emit_double(e, "hit_ratio", "hit ratio", looked ? (double)q.hits / (double)looked : 0);
	emit_uint(e, "source_calls", "source calls", q.source_calls);
	emit_uint(e, "walks", "maildir walks", q.walks);
	emit_uint(e, "breaker_skips", "skipped by the breaker", q.breaker_skips);
	emit_close(e);
}

/* The counters for command name, which takes no argument; NULL once the command failed. */
static struct stats_snapshot *
read_counters(int argc, const char *name, struct control_out *out)
{
	struct stats_snapshot *s;

	if (argc != 1) {
		control_fail(out, 400, "usage: %s", name);
		return NULL;
	}
	if ((s = malloc(sizeof(*s))) == NULL) {
		control_fail(out, 500, "out of memory");
		return NULL;
	}
	stats_read(s);
	return s;
}

static void
emit_sessions(struct emit *e, const struct stats_snapshot *s)
{
	emit_open(e, "sessions", "sessions", '{');
	emit_uint(e, "active", "active", s->sessions_active);
	emit_uint(e, "total", "total", s->sessions_total);
	emit_close(e);
}

void
control_cmd_status(int argc, char **argv, bool json, struct control_out *out)
{
	struct stats_snapshot *s;
	struct config *cfg;
	struct emit e;

	(void)argv;
	if ((s = read_counters(argc, "status", out)) == NULL)
		return;
	if ((cfg = config_current()) == NULL) {
		control_fail(out, 503, "no configuration is installed yet");
		free(s);
		return;
	}
	emit_begin(&e, out, json);
	emit_str(&e, "version", "version", PACKAGE_VERSION);
	emit_str(&e, "engine", "engine", milter_current()->name);
	emit_uint(&e, "uptime_s", "uptime (s)", control_uptime_ms() / 1000);
	status_config(&e, cfg);
	emit_sessions(&e, s);
	status_overload(&e);
	status_backends(&e, s);
	status_quota(&e);
	emit_end(&e);
	config_release(cfg);
	free(s);
}

/* ---- stats ----------------------------------------------------------- */

/* Decisions by check and action; table rows with the same check name are one. */
static void
stats_decisions(struct emit *e, const struct stats_snapshot *s)
{
	bool	any = false;

	emit_open(e, "decisions", NULL, '{');
	if (!e->json)
		control_printf(e->out, "%-12s %-16s %10s\n", "check", "action", "count");
	/* checks.c asserts check_count <= STATS_CHECKS. */
	for (size_t i = 0; i < check_count; i++) {
		unsigned long sum[STATS_NACTIONS] = {0};
		size_t	first = 0;

		while (strcmp(check_table[first]->name, check_table[i]->name) != 0)
			first++;
		if (first != i)
			continue;	/* summed with its first row */
		for (size_t j = i; j < check_count; j++)
			if (strcmp(check_table[j]->name, check_table[i]->name) == 0)
				for (int a = 0; a < STATS_NACTIONS; a++)
					sum[a] += s->decisions[j][a];
		emit_open(e, check_table[i]->name, NULL, '{');
		for (int a = 0; a < STATS_NACTIONS; a++) {
			emit_uint(e, stats_action_name(a), NULL, sum[a]);
			if (!e->json && sum[a] > 0)
				control_printf(e->out, "%-12s %-16s %10lu\n", check_table[i]->name,
					       stats_action_name(a), sum[a]);
			any = any || sum[a] > 0;
		}
		emit_close(e);
	}
	if (!e->json && !any)
		control_printf(e->out, "(none)\n");
	emit_close(e);
}

/* Every back-end server counted since start: requests by result, mean latency. */
static void
stats_backends(struct emit *e, const struct stats_snapshot *s)
{
	if (!e->json)
		control_printf(e->out, "\n%-10s %-28s %10s %10s %10s %10s %10s\n", "backend", "server",
			       "ok", "not_found", "error", "skipped", "mean_us");
	emit_open(e, "backends", NULL, '[');
	for (size_t i = 0; i < s->nbackends; i++) {
		const unsigned long *r = s->backends[i].results;
		unsigned long timed = r[STATS_OK] + r[STATS_NOT_FOUND] + r[STATS_ERROR];

		if (!e->json) {
			control_printf(e->out, "%-10s %-28s %10lu %10lu %10lu %10lu %10lu\n",
				       s->backends[i].backend, s->backends[i].server, r[STATS_OK],
				       r[STATS_NOT_FOUND], r[STATS_ERROR], r[STATS_SKIPPED],
				       timed ? s->backends[i].latency_us_sum / timed : 0);
			continue;
		}
		emit_open(e, NULL, NULL, '{');
		emit_str(e, "backend", NULL, s->backends[i].backend);
		emit_str(e, "server", NULL, s->backends[i].server);
		emit_requests(e, s, (int)i);
		emit_close(e);
	}
	emit_close(e);
	if (!e->json && s->nbackends == 0)
		control_printf(e->out, "(none)\n");
}

void
control_cmd_stats(int argc, char **argv, bool json, struct control_out *out)
{
	struct stats_snapshot *s;
	struct quota_stats q;
	struct emit e;

	(void)argv;
	if ((s = read_counters(argc, "stats", out)) == NULL)
		return;
	quota_stats(&q);
	emit_begin(&e, out, json);
	stats_decisions(&e, s);
	stats_backends(&e, s);
	if (!json)
		control_printf(out, "\n");
	emit_sessions(&e, s);
	emit_open(&e, "reloads", "reloads", '{');
	emit_uint(&e, "ok", "ok", s->reloads_ok);
	emit_uint(&e, "failed", "failed", s->reloads_failed);
	emit_close(&e);
	emit_uint(&e, "ratelimit_local_fallbacks", "rate-limit events counted in process",
		  s->ratelimit_local_fallbacks);
	emit_open(&e, "quota_cache", "quota cache", '{');
	emit_uint(&e, "hits", "hits", q.hits);
	emit_uint(&e, "misses", "misses", q.misses);
	emit_close(&e);
	emit_end(&e);
	free(s);
}
