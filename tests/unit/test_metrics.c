/*
 * test_metrics.c - the metrics endpoint's pure parts (milter/metrics.h):
 * which `metrics` spellings are accepted, how label values are escaped,
 * and the exposition written from known counters (every family has its
 * HELP and TYPE lines, decisions by check name, back-end requests,
 * cumulative latency buckets, build_info).  The HTTP side is
 * tests/e2e/metrics.sh's.  Output is TAP, for automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "config.h"
#include "metrics.h"
#include "stats.h"

static void
test_parse(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char	why[128];
	const char *bad[] = {
		"", "9891@127.0.0.1", "unix:/tmp/m.sock", "inet:9891", "inet:@127.0.0.1",
		"inet:0@127.0.0.1", "inet:65536@127.0.0.1", "inet:123456@127.0.0.1",
		"inet:9891@localhost", "inet:9891@::1", "inet6:9891@127.0.0.1", "inet:9891@",
		"inet:98x1@127.0.0.1",
	};

	(void)state;
	assert_true(metrics_parse("inet:9891@127.0.0.1", &ss, &len, why, sizeof(why)));
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9891);
	assert_true(metrics_parse("inet6:9891@[::1]", &ss, &len, why, sizeof(why)));
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_true(metrics_parse("INET6:1@::1", &ss, &len, why, sizeof(why)));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (metrics_parse(bad[i], &ss, &len, why, sizeof(why)))
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(why[0] != '\0');
	}
}

/* What fn wrote to a memory stream, NUL-terminated (caller frees). */
static char *
captured(void (*fn)(FILE *, void *), void *arg)
{
	char   *buf = NULL;
	size_t	len = 0;
	FILE   *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	fn(fp, arg);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

static void
write_label(FILE *fp, void *arg)
{
	metrics_label_value(fp, arg);
}

static void
test_label_escaping(void **state)
{
	char   *out;

	(void)state;
	out = captured(write_label, "a\\b\"c\nd{e}=,f");
	assert_string_equal(out, "\"a\\\\b\\\"c\\nd{e}=,f\"");
	free(out);
	out = captured(write_label, "");
	assert_string_equal(out, "\"\"");
	free(out);
}

static void
write_all(FILE *fp, void *arg)
{
	assert_true(metrics_write(fp, arg, "builtin"));
}

/* The table row of check name. */
static size_t
row_of(const char *name)
{
	for (size_t i = 0; i < check_count; i++)
		if (strcmp(check_table[i]->name, name) == 0)
			return i;
	fail_msg("no check %s", name);
	return 0;
}

static void
test_exposition(void **state)
{
	struct config *cfg = config_load(NULL, NULL, NULL);
	struct stats_backend *slot = stats_backend_slot("memcached", "127.0.0.1:11211");
	const char *families[] = {
		"mxgate_decisions_total counter", "mxgate_backend_requests_total counter",
		"mxgate_backend_latency_seconds histogram", "mxgate_quota_cache_hits_total counter",
		"mxgate_quota_cache_misses_total counter", "mxgate_quota_source_calls_total counter",
		"mxgate_quota_walks_total counter", "mxgate_quota_breaker_skips_total counter",
		"mxgate_ratelimit_local_fallbacks_total counter", "mxgate_overload gauge",
		"mxgate_overload_signal gauge", "mxgate_overload_signal_over gauge",
		"mxgate_sessions_active gauge", "mxgate_sessions_total counter",
		"mxgate_reloads_total counter", "mxgate_build_info gauge",
	};
	char	line[256], *out;

	(void)state;
	assert_non_null(cfg);
	assert_non_null(slot);
	stats_decision(row_of("helo"), STATS_REJECT);
	stats_decision(row_of("helo"), STATS_REJECT);
	stats_decision(row_of("ratelimit"), STATS_HOLD);
	stats_backend_request(slot, STATS_OK, 50);	/* first bucket */
	stats_backend_request(slot, STATS_OK, 300);	/* le 0.0005 */
	stats_backend_request(slot, STATS_ERROR, 5000000);	/* +Inf */
	stats_reload(true);
	out = captured(write_all, cfg);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "\n# TYPE %s\n", families[i]);
		if (strstr(out, line) == NULL)
			fail_msg("no \"# TYPE %s\" line", families[i]);
		snprintf(line, sizeof(line), "# HELP %.*s ", (int)strcspn(families[i], " "), families[i]);
		assert_non_null(strstr(out, line));
	}
	assert_non_null(strstr(out, "\nmxgate_decisions_total{check=\"helo\",action=\"reject\"} 2\n"));
	assert_non_null(strstr(out, "\nmxgate_decisions_total{check=\"ratelimit\",action=\"hold\"} 1\n"));
	assert_non_null(strstr(out, "\nmxgate_decisions_total{check=\"quota\",action=\"warn\"} 0\n"));
	assert_non_null(strstr(out, "\nmxgate_backend_requests_total{backend=\"memcached\","
			       "server=\"127.0.0.1:11211\",result=\"ok\"} 2\n"));
	assert_non_null(strstr(out, "server=\"127.0.0.1:11211\",le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(out, "server=\"127.0.0.1:11211\",le=\"0.00025\"} 1\n"));
	assert_non_null(strstr(out, "server=\"127.0.0.1:11211\",le=\"0.0005\"} 2\n"));
	assert_non_null(strstr(out, "server=\"127.0.0.1:11211\",le=\"1\"} 2\n"));
	assert_non_null(strstr(out, "server=\"127.0.0.1:11211\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(out, "mxgate_backend_latency_seconds_sum{backend=\"memcached\","
			       "server=\"127.0.0.1:11211\"} 5.000350\n"));
	assert_non_null(strstr(out, "mxgate_backend_latency_seconds_count{backend=\"memcached\","
			       "server=\"127.0.0.1:11211\"} 3\n"));
	assert_non_null(strstr(out, "\nmxgate_reloads_total{result=\"ok\"} 1\n"));
	assert_non_null(strstr(out, "\nmxgate_overload 0\n"));
	assert_non_null(strstr(out, ",engine=\"builtin\"} 1\n"));
	free(out);
	config_release(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_exposition),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
