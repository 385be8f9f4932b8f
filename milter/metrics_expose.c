/*
 * metrics_expose.c - the text of GET /metrics (metrics.h): Prometheus's
 * text exposition format, version 0.0.4, every family with its # HELP and
 * # TYPE lines; the names, labels and meanings are doc/METRICS.md's.
 *
 * It reads one snapshot of the counters (stats_read: each counter exact,
 * not all taken at the same instant), the quota counters, the overload
 * sampler's published state and the configuration it is given; it
 * changes nothing.  A histogram's _count is the sum of its own buckets, so
 * that every histogram is consistent in itself even while requests run.
 *
 * Thread-safety: any thread; the snapshot is on the heap (it is a few KiB).
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "overload.h"
#include "quota.h"
#include "stats.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const char *const signal_names[OVERLOAD_NSIGNALS] = {"flag", "queue", "load"};

void
metrics_label_value(FILE *fp, const char *value)
{
	fputc('"', fp);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fprintf(fp, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", fp);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

/* The # HELP and # TYPE lines of a family (help holds no backslash or newline). */
static void
family(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void
single(FILE *fp, const char *name, const char *type, const char *help, unsigned long long value)
{
	family(fp, name, type, help);
	fprintf(fp, "%s %llu\n", name, value);
}

/* Microseconds as seconds in plain decimal, without trailing zeros ("0.00025", "1"). */
static void
seconds_text(char *buf, size_t size, uint64_t us)
{
	size_t	len;

	snprintf(buf, size, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
	len = strlen(buf);
	while (len > 0 && buf[len - 1] == '0')
		buf[--len] = '\0';
	if (len > 0 && buf[len - 1] == '.')
		buf[--len] = '\0';
}

/* Decisions by check name (rows of one name summed) and action: every pair, zeros too. */
static void
expose_decisions(FILE *fp, const struct stats_snapshot *s)
{
	size_t	rows = check_count < STATS_CHECKS ? check_count : STATS_CHECKS;

	family(fp, "mxgate_decisions_total", "counter",
	       "Decisions the checks made, by check and action (as in the decision log line).");
	for (size_t i = 0; i < rows; i++) {
		const char *name = check_table[i]->name;
		bool	seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(check_table[j]->name, name) == 0;
		if (seen)
			continue;
		for (int a = 0; a < STATS_NACTIONS; a++) {
			unsigned long n = 0;

			for (size_t j = i; j < rows; j++)
				if (strcmp(check_table[j]->name, name) == 0)
					n += s->decisions[j][a];
			fputs("mxgate_decisions_total{check=", fp);
			metrics_label_value(fp, name);
			fprintf(fp, ",action=\"%s\"} %lu\n", stats_action_name((enum stats_action)a), n);
		}
	}
}

/* The backend="...",server="..." labels of back-end slot i. */
static void
backend_labels(FILE *fp, const struct stats_snapshot *s, size_t i)
{
	fputs("backend=", fp);
	metrics_label_value(fp, s->backends[i].backend);
	fputs(",server=", fp);
	metrics_label_value(fp, s->backends[i].server);
}

/* Back-end requests by result, every server. */
static void
expose_backend_requests(FILE *fp, const struct stats_snapshot *s)
{
	family(fp, "mxgate_backend_requests_total", "counter",
	       "Requests to each back-end server, by result (skipped: its circuit breaker was open).");
	for (size_t i = 0; i < s->nbackends; i++)
		for (int r = 0; r < STATS_NRESULTS; r++) {
			fputs("mxgate_backend_requests_total{", fp);
			backend_labels(fp, s, i);
			fprintf(fp, ",result=\"%s\"} %lu\n", stats_result_name((enum stats_result)r),
				s->backends[i].results[r]);
		}
}

/* The latency histogram of every server: cumulative buckets, _sum, _count. */
static void
expose_backend_latency(FILE *fp, const struct stats_snapshot *s)
{
	char	le[32];

	family(fp, "mxgate_backend_latency_seconds", "histogram",
	       "How long requests to each back-end server took.");
	for (size_t i = 0; i < s->nbackends; i++) {
		unsigned long cum = 0;

		for (size_t b = 0; b < STATS_NBUCKETS; b++) {
			cum += s->backends[i].buckets[b];
			if (b < STATS_NBUCKETS - 1)
				seconds_text(le, sizeof(le), stats_bucket_us[b]);
			else
				strcpy(le, "+Inf");
			fputs("mxgate_backend_latency_seconds_bucket{", fp);
			backend_labels(fp, s, i);
			fprintf(fp, ",le=\"%s\"} %lu\n", le, cum);
		}
		fputs("mxgate_backend_latency_seconds_sum{", fp);
		backend_labels(fp, s, i);
		fprintf(fp, "} %lu.%06lu\n", s->backends[i].latency_us_sum / 1000000,
			s->backends[i].latency_us_sum % 1000000);
		fputs("mxgate_backend_latency_seconds_count{", fp);
		backend_labels(fp, s, i);
		fprintf(fp, "} %lu\n", cum);
	}
}

/* The quota service's cache and source counters. */
static void
expose_quota(FILE *fp)
{
	struct quota_stats q;

	quota_stats(&q);
	single(fp, "mxgate_quota_cache_hits_total", "counter",
	       "Quota lookups answered from the cache.", q.hits);
	single(fp, "mxgate_quota_cache_misses_total", "counter",
	       "Quota lookups the cache could not answer.", q.misses);
	single(fp, "mxgate_quota_source_calls_total", "counter",
	       "Quota lookups that reached the source (MariaDB or the maildirs).", q.source_calls);
	single(fp, "mxgate_quota_walks_total", "counter",
	       "Maildir usage recalculations (maildirsize rewritten from a walk).", q.walks);
	single(fp, "mxgate_quota_breaker_skips_total", "counter",
	       "Quota lookups refused at once because the source's circuit breaker was open.",
	       q.breaker_skips);
}

/* The overload verdict, and each configured signal's last reading and state. */
static void
expose_overload(FILE *fp, const struct config *cfg)
{
	struct overload_reading rd[OVERLOAD_NSIGNALS];
	unsigned word = overload_signals();
	bool	on = cfg->overload.enabled;

	overload_last_readings(rd);
	single(fp, "mxgate_overload", "gauge",
	       "1 while the server is overloaded (the overload check refuses), else 0.",
	       overload_active() ? 1 : 0);
	family(fp, "mxgate_overload_signal", "gauge",
	       "The last value the overload sampler read of each signal it watches "
	       "(flag 1/0, queue messages, load average); absent when off or unreadable.");
	for (int i = 0; on && i < OVERLOAD_NSIGNALS; i++)
		if (rd[i].status == OVERLOAD_READING_OK)
			fprintf(fp, "mxgate_overload_signal{signal=\"%s\"} %.15g\n", signal_names[i],
				rd[i].value);
	family(fp, "mxgate_overload_signal_over", "gauge",
	       "1 while a watched signal is over its mark (between its marks: as it was), else 0.");
	for (int i = 0; on && i < OVERLOAD_NSIGNALS; i++)
		if (rd[i].status != OVERLOAD_READING_OFF)
			fprintf(fp, "mxgate_overload_signal_over{signal=\"%s\"} %u\n", signal_names[i],
				(word >> i) & 1);
}

/* Sessions, reloads, fallbacks and the build. */
static void
expose_process(FILE *fp, const struct stats_snapshot *s, const char *engine)
{
	single(fp, "mxgate_ratelimit_local_fallbacks_total", "counter",
	       "Rate-limit events counted in process because memcached did not answer "
	       "(memcached.on_error = local).", s->ratelimit_local_fallbacks);
	single(fp, "mxgate_sessions_active", "gauge", "Milter sessions open now.", s->sessions_active);
	single(fp, "mxgate_sessions_total", "counter", "Milter sessions opened since start.",
	       s->sessions_total);
	family(fp, "mxgate_reloads_total", "counter",
	       "Configuration reloads (SIGUSR1), by result (failed: the old configuration kept).");
	fprintf(fp, "mxgate_reloads_total{result=\"ok\"} %lu\n", s->reloads_ok);
	fprintf(fp, "mxgate_reloads_total{result=\"failed\"} %lu\n", s->reloads_failed);
	family(fp, "mxgate_build_info", "gauge", "Always 1: the version and the milter engine running.");
	fputs("mxgate_build_info{version=", fp);
	metrics_label_value(fp, PACKAGE_VERSION);
	fputs(",engine=", fp);
	metrics_label_value(fp, engine);
	fputs("} 1\n", fp);
}

bool
metrics_write(FILE *fp, const struct config *cfg, const char *engine)
{
	struct stats_snapshot *s = malloc(sizeof(*s));

	if (s == NULL)
		return false;
	stats_read(s);
	expose_decisions(fp, s);
	expose_backend_requests(fp, s);
	expose_backend_latency(fp, s);
	expose_quota(fp);
	expose_overload(fp, cfg);
	expose_process(fp, s, engine);
	free(s);
	return fflush(fp) == 0 && !ferror(fp);
}
