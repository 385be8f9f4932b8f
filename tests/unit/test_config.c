/*
 * test_config.c - configuration loading: defaults, every key, and each
 * bad file giving the expected FILE:LINE: message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "server_addr.h"

#ifndef CONFIG_FIXTURES
#define CONFIG_FIXTURES "tests/unit/configs"
#endif

/* Collects the reported errors. */
struct errors {
	char	text[4096];
	int	count;
};

static void
collect(void *arg, const char *message)
{
	struct errors *e = arg;

	e->count++;
	strncat(e->text, message, sizeof(e->text) - strlen(e->text) - 2);
	strcat(e->text, "\n");
}

static struct config *
load(const char *name, struct errors *e)
{
	char	path[512];

	memset(e, 0, sizeof(*e));
	snprintf(path, sizeof(path), "%s/%s", CONFIG_FIXTURES, name);
	return config_load(path, collect, e);
}

static void
test_defaults(void **state)
{
	struct errors e;
	struct config *cfg = load("empty.conf", &e);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(e.count, 0);
	assert_string_equal(cfg->socket, "inet:8891@127.0.0.1");
	assert_int_equal(cfg->syslog_facility, LOG_MAIL);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_false(cfg->dry_run);
	assert_int_equal(cfg->trusted_networks.count, 2);
	assert_int_equal(cfg->memcached.servers.count, 0);
	assert_string_equal(cfg->memcached.key_prefix, "mxgate:");
	assert_int_equal(cfg->memcached.timeout_ms, 200);
	assert_int_equal(cfg->memcached.on_error, ON_ERROR_ACCEPT);
	assert_string_equal(cfg->mysql.host, "");
	assert_int_equal(cfg->mysql.port, 3306);
	assert_int_equal(cfg->mysql.timeout_ms, 1000);
	assert_true(cfg->helo.enabled && cfg->helo.reject_non_fqdn && cfg->helo.reject_invalid);
	assert_int_equal(cfg->helo.enforce_at, ENFORCE_RCPT);
	assert_true(cfg->helo.exempt_authenticated);
	assert_true(cfg->quota.enabled);
	assert_string_equal(cfg->quota.maildir_root, "/var/vmail");
	assert_string_equal(cfg->quota.maildir_template, "%d/%l/");
	assert_string_equal(cfg->quota.recipient_delimiter, "+");
	assert_int_equal(cfg->quota.cache_ttl, 30);
	assert_int_equal(cfg->quota.on_error, ON_ERROR_TEMPFAIL);
	assert_int_equal(cfg->quota.reply_code, 552);
	assert_string_equal(cfg->quota.reply_dsn, "5.2.2");
	assert_int_equal(cfg->ratelimit.nrules, 0);
	assert_true(cfg->overload.enabled);
	assert_string_equal(cfg->overload.loadavg_file, "/proc/loadavg");
	assert_int_equal(cfg->overload.sample_interval, 5);
	config_release(cfg);

	/* NULL path: the same embedded defaults, no file needed. */
	cfg = config_load(NULL, collect, &e);
	assert_non_null(cfg);
	assert_string_equal(cfg->socket, "inet:8891@127.0.0.1");
	config_release(cfg);
}

static void
test_full(void **state)
{
	struct errors e;
	struct config *cfg = load("full.conf", &e);
	const struct rate_rule *r;

	(void)state;
	if (cfg == NULL)
		fail_msg("full.conf: %s", e.text);
	assert_string_equal(cfg->socket, "unix:/run/mxgate/mxgate.sock");
	assert_string_equal(cfg->control_socket, "unix:/run/mxgate/control.sock");
	assert_int_equal(cfg->syslog_facility, LOG_LOCAL3);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_true(cfg->dry_run);
	assert_int_equal(cfg->trusted_networks.count, 2);
	assert_int_equal(cfg->memcached.servers.count, 2);
	assert_string_equal(cfg->memcached.servers.items[1], "mc2.example.net:11212");
	assert_int_equal(cfg->memcached.on_error, ON_ERROR_LOCAL);
	assert_int_equal(cfg->mysql.port, 3307);
	assert_false(cfg->helo.reject_non_fqdn);
	assert_int_equal(cfg->helo.enforce_at, ENFORCE_MAIL);
	assert_int_equal(cfg->helo.exempt_daemons.count, 2);
	assert_int_equal(cfg->quota.multi_target, MULTI_TARGET_ANY);
	assert_int_equal(cfg->quota.reply_code, 452);
	assert_int_equal(cfg->quota.grace_percent, 10);
	assert_int_equal(cfg->overload.queue_format, QUEUE_FORMAT_SENDMAIL);
	assert_int_equal(cfg->overload.queue_high, 5000);
	assert_true(cfg->overload.load_high > 8.4 && cfg->overload.load_high < 8.6);
	assert_true(cfg->overload.load_low > 3.9 && cfg->overload.load_low < 4.1);

	assert_int_equal(cfg->ratelimit.nrules, 3);
	r = &cfg->ratelimit.rules[0];
	assert_string_equal(r->name, "client");
	assert_int_equal(r->keys, RATE_KEY_CLIENT_IP);
	assert_int_equal(r->count, RATE_COUNT_MESSAGES);
	assert_int_equal(r->limits.count, 2);
	assert_int_equal(r->limits.items[0].count, 100);
	assert_int_equal(r->limits.items[0].period, 60);
	assert_int_equal(r->limits.items[1].period, 3600);
	assert_int_equal(r->ipv4_prefix, 24);
	assert_int_equal(r->ipv6_prefix, 48);
	r = &cfg->ratelimit.rules[1];
	assert_int_equal(r->when, RATE_WHEN_AUTHENTICATED);
	assert_int_equal(r->action, RATE_ACTION_HOLD);
	assert_int_equal(r->nclasses, 2);
	assert_string_equal(r->classes[0].match, "newsletter@example.com");
	assert_false(r->classes[0].is_cidr);
	assert_int_equal(r->classes[1].limits.items[0].count, 500);
	r = &cfg->ratelimit.rules[2];
	assert_true(r->classes[0].is_cidr);
	assert_int_equal(r->classes[0].limits.count, 0);
	assert_false(r->classes[1].is_cidr);
	assert_int_equal(r->classes[1].limits.items[0].period, 10);
	config_release(cfg);
}

/* The distinct rules of the examples, and a global counter, load as written. */
static void
test_distinct(void **state)
{
	struct errors e;
	struct config *cfg = load("distinct.conf", &e);
	const struct rate_rule *r;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->ratelimit.nrules, 5);
	r = &cfg->ratelimit.rules[0];
	assert_string_equal(r->name, "hrp");
	assert_int_equal(r->keys, RATE_KEY_CLIENT_IP);
	assert_int_equal(r->count, RATE_COUNT_DISTINCT);
	assert_int_equal(r->distinct, RATE_KEY_HELO);
	assert_int_equal(r->limits.items[0].count, 5);
	assert_int_equal(r->limits.items[0].period, 3600);
	r = &cfg->ratelimit.rules[1];
	assert_int_equal(r->distinct, RATE_KEY_RECIPIENT);
	assert_int_equal(r->limits.items[0].count, 50);
	assert_int_equal(r->limits.items[0].period, 600);
	assert_int_equal(cfg->ratelimit.rules[2].distinct, RATE_KEY_SENDER);
	assert_int_equal(cfg->ratelimit.rules[3].distinct, RATE_KEY_CLIENT_IP);
	r = &cfg->ratelimit.rules[4];
	assert_string_equal(r->name, "site");
	assert_int_equal(r->keys, 0);
	assert_int_equal(r->distinct, 0);
	config_release(cfg);
}

/* Each bad file: NULL, and the first error is exactly at FILE:LINE with the message. */
static void
test_bad_files(void **state)
{
	static const struct {
		const char *file;
		int	line;
		const char *message;
	} cases[] = {
		{"syntax.conf", 3, "syntax error"},
		{"unknown_key.conf", 4, "unknown setting \"enable\""},
		{"wrong_type.conf", 1, "dry_run: expected true or false"},
		{"out_of_range.conf", 2, "timeout_ms: 0 is out of range"},
		{"bad_cidr.conf", 3, "trusted_networks: bad network \"10.0.0.0/33\""},
		{"bad_limit.conf", 5, "limits: bad limit \"lots/1h\""},
		{"bad_enum.conf", 2, "multi_target: unknown value \"some\" (expected all | any)"},
		{"low_above_high.conf", 4, "queue_low (200) is above queue_high (100)"},
		{"bad_socket.conf", 2, "socket: \"tcp:8891\" is not"},
		{"bad_rule_key.conf", 3, "key: unknown value \"ip_address\""},
		{"bad_dsn.conf", 3, "reply_code 552 with reply_dsn \"4.2.2\""},
		{"bad_dsn_form.conf", 3, "reply_code 552 with reply_dsn \"5.2.2.\""},
		{"bad_metrics.conf", 1, "metrics: not an inet: or inet6: address"},
		{"bad_query.conf", 2, "quota_query: needs exactly one '?'"},
		{"bad_control_socket.conf", 2, "control_socket: \"inet:1234\" is not unix:/PATH"},
		{"bad_real_size.conf", 3, "check_real_size: needs use_message_size = true"},
		{"bad_real_size_type.conf", 2, "check_real_size: expected true or false"},
		{"bad_own_name.conf", 3, "reject_own_names: \"192.0.2.1\" is neither a host name nor an address literal"},
		{"bad_bytes_key.conf", 3, "rule \"volume\": a recipient key needs count = \"recipients\""},
		{"bad_distinct_missing.conf", 3, "rule \"hrp\": count = \"distinct\" needs distinct = "},
		{"bad_distinct_field.conf", 4, "distinct: unknown value \"sasl_user\""},
		{"bad_distinct_count.conf", 4, "rule \"hrp\": distinct needs count = \"distinct\""},
		{"bad_distinct_limits.conf", 3, "rule \"hrp\": count = \"distinct\" takes at most 16 limits"},
		{"bad_rule_no_key.conf", 3, "rule \"site\": needs a key (key = [ ] for one global counter)"},
		{"bad_mysql_servers_port.conf", 2, "servers: \"db-replica.local:0\" is not host:port"},
		{"bad_mysql_servers_unix.conf", 2,
		 "servers: \"unix:run/mysqld/mysqld.sock\" is not host:port"},
		{"bad_mysql_servers_v6.conf", 2, "servers: \"2001:db8::1:3306\" is not host:port"},
		{"bad_mysql_servers_no_port.conf", 2, "servers: \"db-replica.local\" is not host:port"},
		{"bad_mysql_servers_with_host.conf", 3,
		 "servers: set either servers or host/socket, not both"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errors e;
		char	expect[600];
		struct config *cfg = load(cases[i].file, &e);

		snprintf(expect, sizeof(expect), "%s/%s:%d: %s", CONFIG_FIXTURES,
			 cases[i].file, cases[i].line, cases[i].message);
		if (cfg != NULL || strncmp(e.text, expect, strlen(expect)) != 0)
			fail_msg("%s: expected \"%s...\", got \"%s\"", cases[i].file, expect, e.text);
	}
}

/* mysql.servers: the list in order, and each entry's parts. */
static void
test_mysql_servers(void **state)
{
	struct errors e;
	struct config *cfg = load("mysql_servers.conf", &e);
	struct server_addr a;

	(void)state;
	if (cfg == NULL)
		fail_msg("mysql_servers.conf: %s", e.text);
	assert_int_equal(cfg->mysql.servers.count, 3);
	assert_string_equal(cfg->mysql.servers.items[0], "db-replica.local:3306");
	assert_string_equal(cfg->mysql.servers.items[2], "unix:/run/mysqld/mysqld.sock");
	config_release(cfg);

	assert_true(server_addr_parse("db-primary:3306", &a));
	assert_string_equal(a.host, "db-primary");
	assert_int_equal(a.port, 3306);
	assert_string_equal(a.socket, "");
	assert_true(server_addr_parse("[2001:db8::1]:65535", &a));
	assert_string_equal(a.host, "2001:db8::1");
	assert_int_equal(a.port, 65535);
	assert_true(server_addr_parse("127.0.0.1:1", &a));
	assert_int_equal(a.port, 1);
	assert_true(server_addr_parse("unix:/var/run/mysqld/mysqld.sock", &a));
	assert_string_equal(a.socket, "/var/run/mysqld/mysqld.sock");
	assert_string_equal(a.host, "");
	assert_int_equal(a.port, 0);

	static const char *const bad[] = {
		"", "db", "db:", ":3306", "db:0", "db:65536", "db:123456", "db:33a", "db:-1",
		"2001:db8::1:3306", "[2001:db8::1]", "[2001:db8::1]:", "[]:3306", "[10.0.0.1]:3306",
		"[2001:db8::1:3306", "db host:3306", "db\t:3306", "db/x:3306", "unix:", "unix:rel/sock",
		"unix:/with space",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (server_addr_parse(bad[i], &a))
			fail_msg("\"%s\" parsed", bad[i]);
}

/* Every error of a file is reported, not just the first. */
static void
test_all_errors_reported(void **state)
{
	struct errors e;

	(void)state;
	assert_null(load("many_errors.conf", &e));
	assert_int_equal(e.count, 3);
	assert_non_null(strstr(e.text, "many_errors.conf:1: dry_run"));
	assert_non_null(strstr(e.text, "many_errors.conf:2: log_level: unknown value \"loud\""));
	assert_non_null(strstr(e.text, "many_errors.conf:3: enforce_at"));
}

static void
test_missing_file(void **state)
{
	struct errors e;

	(void)state;
	assert_null(load("does-not-exist.conf", &e));
	assert_non_null(strstr(e.text, "does-not-exist.conf:0: cannot open"));
}

static void
test_parse_limit(void **state)
{
	struct rate_limit l;

	(void)state;
	assert_true(config_parse_limit("100/1m", &l));
	assert_int_equal(l.count, 100);
	assert_int_equal(l.period, 60);
	assert_true(config_parse_limit("5/s", &l));
	assert_int_equal(l.period, 1);
	assert_true(config_parse_limit("1/30d", &l));
	assert_int_equal(l.period, 30 * 86400);
	assert_false(config_parse_limit("1/31d", &l));
	assert_true(config_parse_limit("50M/1h", &l));
	assert_int_equal(l.count, 50UL << 20);
	assert_true(config_parse_limit("2k/1m", &l));
	assert_int_equal(l.count, 2048);
	assert_true(config_parse_limit("1G/1d", &l));
	assert_int_equal(l.count, 1UL << 30);
	assert_false(config_parse_limit("5T/1h", &l));
	assert_false(config_parse_limit("5MM/1h", &l));
	assert_false(config_parse_limit("M/1h", &l));
	assert_false(config_parse_limit("0/1m", &l));
	assert_false(config_parse_limit("10/0m", &l));
	assert_false(config_parse_limit("10/1w", &l));
	assert_false(config_parse_limit("10/1m ", &l));
	assert_false(config_parse_limit("/1m", &l));
	assert_false(config_parse_limit("10", &l));
	assert_false(config_parse_limit("99999999999/1m", &l));
	assert_false(config_parse_limit("", &l));
}

/* Snapshots: a holder keeps its snapshot across an install. */
static void
test_snapshots(void **state)
{
	struct config *a = config_load(NULL, NULL, NULL), *b = config_load(NULL, NULL, NULL);
	struct config *held;

	(void)state;
	config_install(a);
	held = config_current();
	assert_ptr_equal(held, a);
	config_install(b);
	assert_string_equal(held->socket, "inet:8891@127.0.0.1");
	config_release(held);
	held = config_current();
	assert_ptr_equal(held, b);
	config_release(held);
	config_shutdown();
	assert_null(config_current());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_distinct),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_mysql_servers),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_parse_limit),
		cmocka_unit_test(test_snapshots),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
