/*
 * test_ratelimit.c - rate limits without a network: window arithmetic
 * (edges, weights, clock steps), limit and class parsing, key values and
 * counter keys, prefix grouping, the in-process store (expiry, cap,
 * threads), charge-first admission, and check_ratelimit's verdicts and
 * give-back through real sessions; count = "distinct" and the global key
 * in process and in a real memcached (mc_server.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_ratelimit.h"
#include "checks.h"
#include "policy.h"
#include "config.h"
#include "counter_store.h"
#include "mc_server.h"
#include "ratelimit.h"
#include "session.h"

/* The rate-limit check's state in session s. */
static struct ratelimit_state *
rl(struct session *s)
{
	return policy_check_state(s, &check_ratelimit);
}

/* ---- helpers ------------------------------------------------------------- */

static char errors[4096];

static void
collect(void *arg, const char *message)
{
	(void)arg;
	strncat(errors, message, sizeof(errors) - strlen(errors) - 2);
	strcat(errors, "\n");
}

/* Load a configuration from text through a temporary file. */
static struct config *
load_text(const char *text)
{
	char path[] = "/tmp/test_ratelimit.XXXXXX";
	int fd = mkstemp(path);
	struct config *cfg;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	errors[0] = '\0';
	cfg = config_load(path, collect, NULL);
	unlink(path);
	return cfg;
}

static struct session *
session_with(struct config *cfg, const char *ip, const char *sender, const char *auth)
{
	struct session *s = policy_session_open(cfg);
	struct ipaddr a;

	assert_non_null(s);
	if (ip != NULL) {
		assert_true(ipaddr_parse(ip, &a));
		s->addr = a;
		ipaddr_format(&a, s->client_addr, sizeof(s->client_addr));
	}
	s->tx.active = true;
	field_set(&s->tx.sender, sender);
	copy_string(s->tx.auth_user, sizeof(s->tx.auth_user), auth ? auth : "");
	return s;
}

static struct verdict
run(struct session *s, enum stage stage)
{
	struct verdict v;

	memset(&v, 0, sizeof(v));
	check_ratelimit.run(s, rl(s), stage, &v);
	return v;
}

static const char *
hex(const uint8_t *d, char *buf)
{
	for (int i = 0; i < 32; i++)
		sprintf(buf + 2 * i, "%02x", d[i]);
	return buf;
}

/* ---- window arithmetic ---------------------------------------------------- */

static void
test_window_edges(void **state)
{
	struct rate_window w;

	(void)state;
	ratelimit_window(0, 60, &w);
	assert_int_equal(w.index, 0);
	assert_int_equal(w.elapsed_ms, 0);
	ratelimit_window(59999, 60, &w);
	assert_int_equal(w.index, 0);
	assert_int_equal(w.elapsed_ms, 59999);
	ratelimit_window(60000, 60, &w);
	assert_int_equal(w.index, 1);
	assert_int_equal(w.elapsed_ms, 0);
	ratelimit_window(1700000000123ULL, 3600, &w);
	assert_int_equal(w.index, 1700000000123ULL / 3600000);
	assert_int_equal(w.elapsed_ms, 1700000000123ULL % 3600000);
	assert_int_equal(w.period_ms, 3600000);
	/* TTL: until the next window has ended, rounded up, one second spare. */
	ratelimit_window(120000, 60, &w);
	assert_int_equal(ratelimit_ttl(&w), 121);
	ratelimit_window(179999, 60, &w);
	assert_int_equal(ratelimit_ttl(&w), 62);
}

static void
test_window_weights(void **state)
{
	struct rate_window w;

	(void)state;
	/* At the very start the previous window counts in full. */
	ratelimit_window(600000, 60, &w);
	assert_true(ratelimit_within(0, 10, &w, 10));
	assert_false(ratelimit_within(1, 10, &w, 10));
	assert_int_equal(ratelimit_estimate(1, 10, &w), 11);
	/* Half way: half of it. */
	ratelimit_window(630000, 60, &w);
	assert_true(ratelimit_within(5, 10, &w, 10));
	assert_false(ratelimit_within(6, 10, &w, 10));
	assert_int_equal(ratelimit_estimate(5, 10, &w), 10);
	/* Exact fractions, not floating point: 1/3 of 3 is 1. */
	ratelimit_window(640000, 60, &w);
	assert_true(ratelimit_within(9, 3, &w, 10));
	assert_false(ratelimit_within(10, 3, &w, 10));
	/* The last millisecond: the previous window weighs 1/60000, exactly. */
	ratelimit_window(659999, 60, &w);
	assert_true(ratelimit_within(10, 0, &w, 10));
	assert_false(ratelimit_within(10, 1, &w, 10));
	assert_true(ratelimit_within(9, 60000, &w, 10));
	assert_false(ratelimit_within(9, 60001, &w, 10));
	assert_false(ratelimit_within(11, 0, &w, 10));
	assert_int_equal(ratelimit_estimate(9, 60000, &w), 10);
	/* Huge counts do not overflow. */
	ratelimit_window(30ULL * 86400 * 1000 - 1, 30 * 86400, &w);
	assert_true(ratelimit_within(9999999990ULL, 9999999999ULL, &w, 9999999999UL));
	assert_false(ratelimit_within(9999999999ULL, 9999999999ULL, &w, 9999999999UL));
	assert_false(ratelimit_within(UINT64_MAX, 0, &w, 9999999999UL));
}

/* ---- parsing ------------------------------------------------------------- */

static void
test_limit_parsing(void **state)
{
	struct rate_limit l;
	static const struct {
		const char *text;
		unsigned long count;
		unsigned long period;	/* seconds */
	} good[] = {
		{ "100/1m", 100, 60 },
		{ "2000/1h", 2000, 3600 },
		{ "5/m", 5, 60 },
		{ "7/30s", 7, 30 },
		{ "1/30d", 1, 30 * 86400 },
		{ "9999999999/1d", 9999999999UL, 86400 },
	};
	static const char *const bad[] = {
	    "",	     "10",	"10/",	  "/1m",    "0/1m",	   "10/0m",
	    "10/1x", "10/1m ",	" 10/1m", "10/31d", "10/2592001s", "99999999999/1m",
	    "-1/1m", "10/1.5m", "10/1M",  "10/1mm", "1e3/1m",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!config_parse_limit(good[i].text, &l))
			fail_msg("\"%s\" was refused", good[i].text);
		assert_int_equal(l.count, good[i].count);
		assert_int_equal(l.period, good[i].period);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (config_parse_limit(bad[i], &l))
			fail_msg("\"%s\" was accepted", bad[i]);
	}
}

static void
test_class_parsing(void **state)
{
	struct config *cfg = load_text(
	    "ratelimit: { rules = (\n"
	    "  { name = \"net\"; key = [ \"client_ip\" ]; count = \"connections\";\n"
	    "    limits = [ \"10/1m\" ];\n"
	    "    classes = ( { match = \"192.0.2.0/24\"; limits = [ \"1/1m\", \"5/1h\" ]; },\n"
	    "                { match = \"2001:db8::/32\"; limits = [ ]; },\n"
	    "                { match = \"10.*\"; limits = [ \"3/1s\" ]; } ); },\n"
	    "  { name = \"sasl\"; key = [ \"sasl_user\" ]; count = \"recipients\";\n"
	    "    classes = ( { match = \"newsletter@example.com\"; limits = [ \"20000/1h\" ]; },\n"
	    "                { match = \"*\"; limits = [ \"500/1h\" ]; } ); }\n"
	    "); };\n");

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->ratelimit.nrules, 2);
	assert_int_equal(cfg->ratelimit.rules[0].nclasses, 3);
	assert_true(cfg->ratelimit.rules[0].classes[0].is_cidr);
	assert_int_equal(cfg->ratelimit.rules[0].classes[0].limits.count, 2);
	assert_true(cfg->ratelimit.rules[0].classes[1].is_cidr);
	assert_int_equal(cfg->ratelimit.rules[0].classes[1].limits.count, 0);
	assert_false(cfg->ratelimit.rules[0].classes[2].is_cidr);
	assert_false(cfg->ratelimit.rules[1].classes[0].is_cidr);
	assert_int_equal(cfg->ratelimit.rules[1].limits.count, 0);
	assert_int_equal(cfg->ratelimit.rules[0].ipv4_prefix, 32);
	assert_int_equal(cfg->ratelimit.rules[0].ipv6_prefix, 64);
	config_release(cfg);

	/* Bad classes are reported with FILE:LINE. */
	cfg = load_text("ratelimit: { rules = (\n"
			"  { name = \"net\"; key = [ \"client_ip\" ]; count = \"messages\";\n"
			"    classes = ( { match = \"192.0.2.0/33\"; limits = [ \"1/1m\" ]; },\n"
			"                { match = \"x\"; },\n"
			"                { match = \"y\"; limits = [ \"1/1y\" ]; } ); }\n"
			"); };\n");
	assert_null(cfg);
	assert_non_null(strstr(errors, ":3: match: bad network \"192.0.2.0/33\""));
	assert_non_null(strstr(errors, ":4: class 2: needs both match and limits"));
	assert_non_null(strstr(errors, ":5: limits: bad limit \"1/1y\""));
}

/* ---- keys ---------------------------------------------------------------- */

static void
test_prefix_grouping(void **state)
{
	struct ipaddr a, g;
	char text[INET6_ADDRSTRLEN + 8];

	(void)state;
	assert_true(ipaddr_parse("192.0.2.77", &a));
	assert_int_equal(ratelimit_group(&a, 24, 64, &g, text, sizeof(text)), 24);
	assert_string_equal(text, "192.0.2.0/24");
	assert_int_equal(ratelimit_group(&a, 32, 64, &g, text, sizeof(text)), 32);
	assert_string_equal(text, "192.0.2.77/32");
	assert_int_equal(ratelimit_group(&a, 1, 64, &g, text, sizeof(text)), 1);
	assert_string_equal(text, "128.0.0.0/1");
	assert_true(ipaddr_parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd", &a));
	assert_int_equal(ratelimit_group(&a, 24, 64, &g, text, sizeof(text)), 64);
	assert_string_equal(text, "2001:db8:1:2::/64");
	ratelimit_group(&a, 24, 48, &g, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1::/48");
	ratelimit_group(&a, 24, 128, &g, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2:aaaa:bbbb:cccc:dddd/128");
	/* A v4-mapped client is grouped as IPv4. */
	assert_true(ipaddr_parse("::ffff:198.51.100.9", &a));
	ratelimit_group(&a, 16, 64, &g, text, sizeof(text));
	assert_string_equal(text, "198.51.0.0/16");
}

static void
test_key_values(void **state)
{
	struct config *cfg = load_text(
	    "ratelimit: { rules = (\n"
	    "  { name = \"snd\"; key = [ \"sender\" ]; count = \"messages\"; limits = [ \"1/1m\" "
	    "]; },\n"
	    "  { name = \"net\"; key = [ \"sender_domain\", \"client_ip\" ]; count = "
	    "\"messages\";\n"
	    "    limits = [ \"1/1m\" ]; ipv4_prefix = 24; },\n"
	    "  { name = \"v6\"; key = [ \"client_ip\" ]; count = \"messages\"; limits = [ \"1/1m\" "
	    "]; },\n"
	    "  { name = \"auth\"; key = [ \"sasl_user\" ]; count = \"messages\"; limits = [ "
	    "\"1/1m\" ]; },\n"
	    "  { name = \"h\"; key = [ \"helo\" ]; count = \"messages\"; limits = [ \"1/1m\" ]; }\n"
	    "); };\n");
	struct session *s;
	struct rate_value k1, k2;
	char buf[65];

	(void)state;
	assert_non_null(cfg);
	config_hold(cfg); config_hold(cfg); config_hold(cfg); /* one per session */
	s = session_with(cfg, "192.0.2.77", "<Alice@Example.NET>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &k1));
	assert_string_equal(k1.text, "alice@example.net");
	assert_int_equal(k1.len, 17);
	assert_string_equal(hex(k1.digest, buf),
			    "c7f95ea777ffe2b102f408ff0b5a17e69a8d5ce83ad36c1896c4a7e0d3bf9e8e");
	/* Composite keys: fixed order, length-prefixed parts. */
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[1], s, &k2));
	assert_string_equal(k2.text, "192.0.2.0/24,example.net");
	assert_string_equal(hex(k2.digest, buf),
			    "82f96e30f6f6853be13fcb213f15783d3143417b805e38ac7033b189136c689d");
	/* A full-length prefix shows the bare address. */
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[2], s, &k2));
	assert_string_equal(k2.text, "192.0.2.77");
	/* No SASL user, no HELO: those rules do not apply. */
	assert_false(check_ratelimit_key(&cfg->ratelimit.rules[3], s, &k2));
	assert_false(check_ratelimit_key(&cfg->ratelimit.rules[4], s, &k2));
	session_set_helo(s, "MX.Example.NET");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[4], s, &k2));
	assert_string_equal(k2.text, "mx.example.net");
	/* An unknown client address: client_ip rules do not apply. */
	s->addr.family = AF_UNSPEC;
	assert_false(check_ratelimit_key(&cfg->ratelimit.rules[2], s, &k2));
	session_close(s);

	/* IPv6 clients of one /64 share a key; another /64 does not. */
	s = session_with(cfg, "2001:db8:1:2::1", "<>", "Bob");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[2], s, &k1));
	assert_string_equal(k1.text, "2001:db8:1:2::/64");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[3], s, &k2));
	assert_string_equal(k2.text, "bob");
	session_close(s);
	s = session_with(cfg, "2001:db8:1:2:ffff::9", "", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[2], s, &k2));
	assert_memory_equal(k1.digest, k2.digest, 32);
	/* The null sender is a value of its own. */
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &k2));
	assert_string_equal(k2.text, "");
	session_close(s);
	s = session_with(cfg, "2001:db8:1:3::1", "", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[2], s, &k2));
	assert_memory_not_equal(k1.digest, k2.digest, 32);
	session_close(s);
}

static void
test_key_names(void **state)
{
	uint8_t d[32];
	char buf[COUNTER_KEY_MAX + 1], rule[64];
	regex_t re;
	size_t n;

	(void)state;
	for (int i = 0; i < 32; i++)
		d[i] = (uint8_t)(i * 9);
	n = ratelimit_key_name(buf, sizeof(buf), "mxgate:", "client", 60, 28333333, d);
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf,
			    "mxgate:client:60:28333333:"
			    "0009121b242d363f48515a636c757e879099a2abb4bdc6cfd8e1eaf3fc050e17");
	/* The longest prefix and rule name still fit memcached's 250 bytes. */
	memset(rule, 'r', 63);
	rule[63] = '\0';
	n = ratelimit_key_name(buf, sizeof(buf), "pppppppppppppppppppppppppppppppp", rule,
			       30 * 86400, UINT64_MAX, d);
	assert_true(n > 0 && n <= COUNTER_KEY_MAX);
	/* Too small a buffer is refused, never cut. */
	assert_int_equal(ratelimit_key_name(buf, 40, "mxgate:", "client", 60, 1, d), 0);
	assert_int_equal(
	    regcomp(&re, "^[A-Za-z0-9_.:-]+:[0-9]+:[0-9]+:[0-9a-f]{64}$", REG_EXTENDED | REG_NOSUB),
	    0);
	n = ratelimit_key_name(buf, sizeof(buf), "mx.1-a:", "r_1.x-y", 86400, 19700, d);
	assert_int_equal(regexec(&re, buf, 0, NULL, 0), 0);
	regfree(&re);
}

static void
test_class_matching(void **state)
{
	struct config *cfg = load_text(
	    "ratelimit: { rules = (\n"
	    "  { name = \"net\"; key = [ \"client_ip\" ]; count = \"messages\"; limits = [ "
	    "\"10/1m\" ];\n"
	    "    ipv4_prefix = 24;\n"
	    "    classes = ( { match = \"192.0.2.128/25\"; limits = [ \"1/1m\" ]; },\n"
	    "                { match = \"192.0.2.*\"; limits = [ \"2/1m\" ]; },\n"
	    "                { match = \"2001:db8::/32\"; limits = [ ]; } ); },\n"
	    "  { name = \"sasl\"; key = [ \"sasl_user\" ]; count = \"recipients\";\n"
	    "    classes = ( { match = \"newsletter@example.com\"; limits = [ \"20000/1h\" ]; },\n"
	    "                { match = \"*\"; limits = [ \"500/1h\" ]; } ); }\n"
	    "); };\n");
	static const struct {
		const char *ip, *sasl;
		size_t	rule;
		int	class;		/* the class that fits, -1: none */
		unsigned long first;	/* its first limit's count, 0: no limit */
	} cases[] = {
		/* The CIDR sees the client's own address, not its /24 group. */
		{ "192.0.2.200", "Newsletter@Example.COM", 0, 0, 1 },
		/* Globs too; first match wins; case is ignored. */
		{ "192.0.2.200", "Newsletter@Example.COM", 1, 0, 20000 },
		{ "192.0.2.5", "someone@example.com", 0, 1, 2 },
		{ "192.0.2.5", "someone@example.com", 1, 1, 500 },
		/* No class fits: the rule's own limits; an empty class: unlimited. */
		{ "198.51.100.1", NULL, 0, -1, 10 },
		{ "2001:db8::5", NULL, 0, 2, 0 },
	};
	struct session *s;
	struct rate_value k;
	const struct rate_limits *l;
	int ci;

	(void)state;
	assert_non_null(cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rate_rule *rule = &cfg->ratelimit.rules[cases[i].rule];

		config_hold(cfg); /* the session's */
		s = session_with(cfg, cases[i].ip, "a@b", cases[i].sasl);
		assert_true(check_ratelimit_key(rule, s, &k));
		l = ratelimit_limits(rule, &k, &s->addr, &ci);
		assert_int_equal(ci, cases[i].class);
		if (cases[i].first == 0)
			assert_int_equal(l->count, 0);
		else
			assert_int_equal(l->items[0].count, cases[i].first);
		session_close(s);
	}
	config_release(cfg);
}

/* ---- the in-process store ------------------------------------------------- */

static uint64_t fake_now = 1000000;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static void
test_memory_store(void **state)
{
	struct counter_store *cs = counter_store_memory_create(1000, fake_clock);
	uint64_t v = 0;

	(void)state;
	assert_non_null(cs);
	assert_int_equal(counter_store_get(cs, "k", 1, &v), STORE_NOT_FOUND);
	assert_int_equal(counter_store_decr(cs, "k", 1, 1), STORE_NOT_FOUND);
	assert_int_equal(counter_store_incr(cs, "k", 1, 1, 10, &v), STORE_OK);
	assert_int_equal(v, 1);
	assert_int_equal(counter_store_incr(cs, "k", 1, 5, 10, &v), STORE_OK);
	assert_int_equal(v, 6);
	assert_int_equal(counter_store_decr(cs, "k", 1, 2), STORE_OK);
	assert_int_equal(counter_store_get(cs, "k", 1, &v), STORE_OK);
	assert_int_equal(v, 4);
	/* decr floors at 0 */
	assert_int_equal(counter_store_decr(cs, "k", 1, 100), STORE_OK);
	assert_int_equal(counter_store_get(cs, "k", 1, &v), STORE_OK);
	assert_int_equal(v, 0);
	/* The TTL is set at creation, never extended. */
	fake_now += 9999;
	assert_int_equal(counter_store_incr(cs, "k", 1, 1, 10, &v), STORE_OK);
	assert_int_equal(v, 1);
	fake_now += 1;
	assert_int_equal(counter_store_get(cs, "k", 1, &v), STORE_NOT_FOUND);
	assert_int_equal(counter_store_incr(cs, "k", 1, 1, 10, &v), STORE_OK);
	assert_int_equal(v, 1);
	/* Keys are compared whole: a prefix is another key. */
	assert_int_equal(counter_store_incr(cs, "kk", 2, 1, 10, &v), STORE_OK);
	assert_int_equal(v, 1);
	assert_true(counter_store_healthy(cs));
	counter_store_destroy(cs);
}

static void
test_memory_store_cap(void **state)
{
	/* 64 entries: one per shard, so a second key in a shard finds it full. */
	struct counter_store *cs = counter_store_memory_create(64, fake_clock);
	char key[32];
	uint64_t v;
	int ok = 0, refused = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		if (counter_store_incr(cs, key, strlen(key), 1, 5, &v) == STORE_OK)
			ok++;
		else
			refused++;
	}
	assert_int_equal(ok, 64);
	assert_int_equal(refused, 1000 - 64);
	assert_int_equal(counter_store_memory_count(cs), 64);
	assert_false(counter_store_healthy(cs));
	/* Once they expire, the room is reclaimed. */
	fake_now += 5000;
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "new-%d", i);
		counter_store_incr(cs, key, strlen(key), 1, 5, &v);
	}
	assert_int_equal(counter_store_memory_count(cs), 64);
	counter_store_destroy(cs);
}

struct hammer {
	struct counter_store *cs;
	int rounds;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;
	uint64_t v;

	for (int i = 0; i < h->rounds; i++) {
		counter_store_incr(h->cs, "shared", 6, 2, 60, &v);
		counter_store_decr(h->cs, "shared", 6, 1);
	}
	return NULL;
}

static void
test_memory_store_threads(void **state)
{
	struct hammer h = {counter_store_memory_create(1000, NULL), 20000};
	pthread_t t[8];
	uint64_t v;

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(counter_store_get(h.cs, "shared", 6, &v), STORE_OK);
	assert_int_equal(v, 8 * 20000);
	counter_store_destroy(h.cs);
}

/* ---- admission ----------------------------------------------------------- */

static const char *admission_conf =
    "ratelimit: { rules = (\n"
    "  { name = \"burst\"; key = [ \"sender\" ]; count = \"messages\"; limits = [ \"5/1m\" ]; },\n"
    "  { name = \"two\"; key = [ \"sender\" ]; count = \"recipients\";\n"
    "    limits = [ \"3/1m\", \"4/1h\" ]; }\n"
    "); };\n";

static void
test_admission_burst(void **state)
{
	struct config *cfg = load_text(admission_conf);
	struct rate_value key;
	struct rate_charge c;
	const struct rate_limit *over;
	struct session *s;
	uint64_t now = 1700000000000ULL + 1000; /* 1 s into a minute */
	int admitted = 0;
	char name[COUNTER_KEY_MAX + 1];
	uint64_t v;
	struct rate_window w;

	(void)state;
	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.1", "<burst-1@example.net>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	/* A burst of N+k on a fresh key: exactly N; the refused are not charged. */
	for (int i = 0; i < 12; i++)
		if (ratelimit_charge(cfg, 0, &cfg->ratelimit.rules[0].limits, -1, &key, 1, now, false,
				     &c, &over) == RATE_ADMIT)
			admitted++;
		else
			assert_int_equal(over->count, 5);
	assert_int_equal(admitted, 5);
	ratelimit_window(now, 60, &w);
	ratelimit_key_name(name, sizeof(name), "mxgate:", "burst", 60, w.index, key.digest);
	assert_true(ratelimit_peek(name, true, &v));
	assert_int_equal(v, 5);
	/* Giving one back makes room for exactly one. */
	ratelimit_give_back(cfg, &c);
	assert_int_equal(ratelimit_charge(cfg, 0, &cfg->ratelimit.rules[0].limits, -1, &key, 1, now,
					  false, &c, &over),
			 RATE_ADMIT);
	assert_int_equal(ratelimit_charge(cfg, 0, &cfg->ratelimit.rules[0].limits, -1, &key, 1, now,
					  false, &c, &over),
			 RATE_OVER);
	/* keep_over (hold, warn): charged although over. */
	assert_int_equal(ratelimit_charge(cfg, 0, &cfg->ratelimit.rules[0].limits, -1, &key, 1, now,
					  true, &c, &over),
			 RATE_OVER);
	assert_true(ratelimit_peek(name, true, &v));
	assert_int_equal(v, 6);
	session_close(s);
	ratelimit_stop();
}

/*
 * How many charges of rule number rule at now_ms are admitted before the
 * first one over; *over is the limit that refused it.
 */
static int
count_admitted(const struct config *cfg, size_t rule, const struct rate_value *key,
    uint64_t now_ms, const struct rate_limit **over)
{
	struct rate_charge c;
	int	n = 0;

	while (ratelimit_charge(cfg, rule, &cfg->ratelimit.rules[rule].limits, -1, key, 1, now_ms,
				false, &c, over) == RATE_ADMIT)
		n++;
	return n;
}

static void
test_admission_sliding(void **state)
{
	struct config *cfg = load_text(admission_conf);
	struct rate_value key;
	struct rate_charge c;
	const struct rate_limit *over;
	struct session *s;
	const struct rate_limits *l;
	uint64_t base = 1700000040000ULL; /* a minute boundary */
	int n;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(base % 60000, 0);
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.1", "<slide@example.net>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	l = &cfg->ratelimit.rules[0].limits;
	/* 5 at the end of one window ... */
	for (n = 0; n < 5; n++)
		assert_int_equal(
		    ratelimit_charge(cfg, 0, l, -1, &key, 1, base - 1000, false, &c, &over),
		    RATE_ADMIT);
	/* ... leave no room at the start of the next: no 2N burst at the edge. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 1, base + 1, false, &c, &over),
			 RATE_OVER);
	/* Half way through, half of them still count: 2 more fit (2 + 5/2 <= 5). */
	assert_int_equal(count_admitted(cfg, 0, &key, base + 30000, &over), 2);
	/* Near the end of the window the old ones weigh almost nothing: 2 more (5 + 5/60000 > 5).
	 */
	assert_int_equal(count_admitted(cfg, 0, &key, base + 59999, &over), 2);
	/* A minute on, the window of 4 becomes the previous one and weighs in full at first. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 1, base + 60000, false, &c, &over),
			 RATE_ADMIT);
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 1, base + 60000, false, &c, &over),
			 RATE_OVER);
	/* The clock steps back an hour: old windows; a step forward: fresh ones. */
	assert_int_equal(count_admitted(cfg, 0, &key, base - 3600000, &over), 5);
	assert_int_equal(count_admitted(cfg, 0, &key, base + 7200000, &over), 5);
	session_close(s);
	ratelimit_stop();
}

static void
test_admission_all_windows(void **state)
{
	struct config *cfg = load_text(admission_conf);
	struct rate_value key;
	const struct rate_limit *over;
	struct session *s;
	uint64_t t = 1700000040000ULL;

	(void)state;
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.1", "<windows@example.net>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[1], s, &key));
	/* 3/1m holds first ... */
	assert_int_equal(count_admitted(cfg, 1, &key, t, &over), 3);
	assert_int_equal(over->period, 60);
	/* ... two minutes later 4/1h: one more, then the hour is full. */
	t += 120000;
	assert_int_equal(count_admitted(cfg, 1, &key, t, &over), 1);
	assert_int_equal(over->period, 3600);
	session_close(s);
	ratelimit_stop();
}

/* count = "bytes": a charge counts its amount, and a refused amount is not kept. */
static const char *bytes_conf =
    "ratelimit: { rules = (\n"
    "  { name = \"vol\"; key = [ \"sender\" ]; count = \"bytes\"; limits = [ \"10K/1m\" ]; }\n"
    "); };\n";

static void
test_admission_bytes(void **state)
{
	struct config *cfg = load_text(bytes_conf);
	struct rate_value key;
	struct rate_charge c, first;
	const struct rate_limit *over;
	const struct rate_limits *l;
	struct session *s;
	uint64_t base = 1700000040000ULL; /* a minute boundary */
	char name[COUNTER_KEY_MAX + 1];
	struct rate_window w;
	uint64_t v;

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->ratelimit.rules[0].count, RATE_COUNT_BYTES);
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.1", "<bytes@example.net>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	l = &cfg->ratelimit.rules[0].limits;
	assert_int_equal(l->items[0].count, 10240);
	ratelimit_window(base + 1000, 60, &w);
	ratelimit_key_name(name, sizeof(name), "mxgate:", "vol", 60, w.index, key.digest);
	/* Two messages of 4000 bytes fit in 10 KiB, and the charge records the amount. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 4000, base + 1000, false, &first,
					  &over),
			 RATE_ADMIT);
	assert_int_equal(first.count, 4000);
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 4000, base + 1000, false, &c, &over),
			 RATE_ADMIT);
	/* A third is over (12000 > 10240) and is not kept: the counter stays at 8000. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 4000, base + 1000, false, &c, &over),
			 RATE_OVER);
	assert_int_equal(over->count, 10240);
	assert_true(ratelimit_peek(name, true, &v));
	assert_int_equal(v, 8000);
	/* What is left fits to the byte: 2240 does, one byte more does not. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 2241, base + 1000, false, &c, &over),
			 RATE_OVER);
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 2240, base + 1000, false, &c, &over),
			 RATE_ADMIT);
	/* Giving back the first message gives back its 4000 bytes, not one. */
	ratelimit_give_back(cfg, &first);
	assert_true(ratelimit_peek(name, true, &v));
	assert_int_equal(v, 6240);
	/* A message larger than the whole limit never fits, even on a fresh key. */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 10241, base + 7200000, false, &c,
					  &over),
			 RATE_OVER);
	/*
	 * Sliding: half way through the next minute, half of the previous
	 * window's 6240 still weighs (3120): 7120 more fit, 7121 do not.
	 */
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 7121, base + 90000, false, &c, &over),
			 RATE_OVER);
	assert_int_equal(ratelimit_charge(cfg, 0, l, -1, &key, 7120, base + 90000, false, &c, &over),
			 RATE_ADMIT);
	session_close(s);
	ratelimit_stop();
}

struct racer {
	struct config *cfg;
	struct rate_value *key;
	uint64_t now;
	int admitted;
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	struct rate_charge c;
	const struct rate_limit *over;

	for (int i = 0; i < 50; i++)
		if (ratelimit_charge(r->cfg, 0, &r->cfg->ratelimit.rules[0].limits, -1, r->key, 1,
				     r->now, false, &c, &over) == RATE_ADMIT)
			r->admitted++;
	return NULL;
}

static void
test_admission_threads(void **state)
{
	struct config *cfg = load_text(admission_conf);
	struct rate_value key;
	struct session *s;
	struct racer r[16];
	pthread_t t[16];
	int total = 0;

	(void)state;
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.1", "<race@example.net>", NULL);
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	for (int i = 0; i < 16; i++) {
		r[i] = (struct racer){cfg, &key, 1700000001000ULL, 0};
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		total += r[i].admitted;
	}
	assert_int_equal(total, 5);
	session_close(s);
	ratelimit_stop();
}

/* ---- the check ----------------------------------------------------------- */

static const char *check_conf =
    "trusted_networks = [ ];\n"
    "ratelimit: { rules = (\n"
    "  { name = \"msg\"; key = [ \"sender\" ]; count = \"messages\"; limits = [ \"2/1h\" ]; },\n"
    "  { name = \"rcpt\"; key = [ \"sender\" ]; count = \"recipients\"; limits = [ \"3/1h\" ];\n"
    "    action = \"reject\"; },\n"
    "  { name = \"conn\"; key = [ \"client_ip\" ]; count = \"connections\"; limits = [ \"100/1h\" "
    "]; },\n"
    "  { name = \"w\"; key = [ \"sasl_user\" ]; count = \"recipients\"; limits = [ \"1/1h\" ];\n"
    "    action = \"warn\"; when = \"authenticated\"; },\n"
    "  { name = \"h\"; key = [ \"helo\" ]; count = \"messages\"; limits = [ \"1/1h\" ];\n"
    "    action = \"hold\"; when = \"unauthenticated\"; }\n"
    "); };\n";

/* The count of rule's counter for key now (window of its first limit). */
static uint64_t
count_of(struct config *cfg, size_t rule, const struct rate_value *key)
{
	const struct rate_rule *r = &cfg->ratelimit.rules[rule];
	struct rate_window w;
	char name[COUNTER_KEY_MAX + 1];
	uint64_t v = 99999;

	ratelimit_window(ratelimit_now_ms(), r->limits.items[0].period, &w);
	ratelimit_key_name(name, sizeof(name), cfg->memcached.key_prefix, r->name,
			   r->limits.items[0].period, w.index, key->digest);
	assert_true(ratelimit_peek(name, true, &v));
	return v;
}

static void
test_check_verdicts(void **state)
{
	struct config *cfg = load_text(check_conf);
	struct session *s;
	struct verdict v;
	struct rate_value k;
	char buf[128];

	(void)state;
	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	snprintf(buf, sizeof(buf), "<check-%d@example.net>", (int)getpid());
	s = session_with(cfg, "192.0.2.9", buf, NULL);
	session_set_helo(s, "mx.example.net");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &k));

	/* Messages: 2 admitted; the hold rule (1 per HELO) holds the second. */
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_DUNNO);
	assert_true(rl(s)->connection_charged);
	check_ratelimit.end(s, rl(s), true);
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_HOLD);
	assert_string_equal(v.subject, "rate limit \"h\" exceeded for mx.example.net");
	check_ratelimit.end(s, rl(s), true);
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_string_equal(v.reply.code, "450");
	assert_string_equal(v.reply.dsn, "4.7.1");
	snprintf(buf, sizeof(buf),
		 "<check-%d@example.net>: Rate limit \"msg\" exceeded, try again later",
		 (int)getpid());
	assert_string_equal(v.reply.text, buf);
	/* Refused: not charged. */
	assert_int_equal(count_of(cfg, 0, &k), 2);

	/* Recipients: reject after 3; an aborted transaction gives them back. */
	rl(s)->ncharges = 0;
	field_set(&s->tx.rcpt, "<a@example.org>");
	for (int i = 0; i < 3; i++)
		assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO);
	v = run(s, STAGE_RCPT);
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_string_equal(v.reply.code, "550");
	assert_string_equal(v.reply.dsn, "5.7.1");
	assert_int_equal(count_of(cfg, 1, &k), 3);
	assert_int_equal(rl(s)->ncharges, 1);
	assert_int_equal(rl(s)->charges[0].count, 3);
	check_ratelimit.end(s, rl(s), false);
	assert_int_equal(count_of(cfg, 1, &k), 0);
	assert_int_equal(rl(s)->ncharges, 0);
	session_close(s);
	ratelimit_stop();
}

static void
test_check_warn_and_when(void **state)
{
	struct config *cfg = load_text(check_conf);
	struct session *s;
	struct verdict v;

	(void)state;
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.10", "<warn@example.net>", "Carol@Example.com");
	field_set(&s->tx.rcpt, "<x@example.org>");
	assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO);
	v = run(s, STAGE_RCPT);
	assert_int_equal(v.kind, VERDICT_WARN);
	assert_string_equal(v.subject, "rate limit \"w\" exceeded for carol@example.com");
	/* The hold rule is for unauthenticated clients only: no HELO needed here. */
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	session_close(s);
	ratelimit_stop();
}

static void
test_check_hostile_values(void **state)
{
	struct config *cfg = load_text(check_conf);
	struct session *s;
	struct verdict v;
	char big[2000];

	(void)state;
	assert_true(ratelimit_start(cfg));
	memset(big, 'A', sizeof(big) - 1);
	big[0] = '<';
	big[5] = '\r';
	big[6] = '\n';
	big[7] = '%';
	big[8] = (char)0xff;
	big[sizeof(big) - 1] = '\0';
	s = session_with(cfg, "192.0.2.11", big, NULL);
	session_set_helo(s, "x y\r\nz");
	for (int i = 0; i < 4; i++) {
		v = run(s, STAGE_MAIL);
		check_ratelimit.end(s, rl(s), true);
	}
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_null(strpbrk(v.reply.text, "\r\n"));
	assert_true(strlen(v.reply.text) < REPLY_MAX);
	session_close(s);
	ratelimit_stop();
}

/* A memcached nobody listens on: every operation fails at once (connection refused). */
static struct config *
dead_server_config(const char *on_error)
{
	char text[2048];

	snprintf(
	    text, sizeof(text),
	    "trusted_networks = [ ];\n"
	    "memcached: { servers = [ \"127.0.0.1:1\" ]; timeout_ms = 200; on_error = \"%s\"; };\n"
	    "ratelimit: { rules = (\n"
	    "  { name = \"a\"; key = [ \"sender\" ]; count = \"messages\"; limits = [ \"2/1h\" ]; "
	    "},\n"
	    "  { name = \"b\"; key = [ \"client_ip\" ]; count = \"messages\"; limits = [ \"9/1h\" "
	    "]; }\n"
	    "); };\n",
	    on_error);
	return load_text(text);
}

static void
test_store_errors(void **state)
{
	struct config *cfg;
	struct session *s;
	struct verdict v;
	uint64_t t0 = ratelimit_now_ms();

	(void)state;
	/* accept: no opinion is given by us; policy.c lets it through. */
	cfg = dead_server_config("accept");
	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.20", "<dead@example.net>", NULL);
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_ERROR);
	assert_string_equal(v.subject, "dead@example.net");
	assert_int_equal(rl(s)->ncharges, 0);
	/* The breaker is open now: the next event does not wait at all. */
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_ERROR);
	assert_true(ratelimit_now_ms() - t0 < 2000);
	session_close(s);
	ratelimit_stop();

	/* local: the in-process store keeps limiting. */
	cfg = dead_server_config("local");
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.21", "<local@example.net>", NULL);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	assert_true(rl(s)->ncharges == 2 && rl(s)->charges[0].local);
	check_ratelimit.end(s, rl(s), true);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	check_ratelimit.end(s, rl(s), true);
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_string_equal(v.reply.code, "450");
	session_close(s);
	ratelimit_stop();

	/* tempfail: refused at once, and nothing stays charged. */
	cfg = dead_server_config("tempfail");
	assert_true(ratelimit_start(cfg));
	s = session_with(cfg, "192.0.2.22", "<tf@example.net>", NULL);
	v = run(s, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_ERROR);
	assert_int_equal(rl(s)->ncharges, 0);
	assert_false(rl(s)->connection_charged);
	session_close(s);
	ratelimit_stop();
}

static void
test_reload(void **state)
{
	struct config *mem = load_text(check_conf), *dead = dead_server_config("accept");
	struct session *s;

	(void)state;
	assert_true(ratelimit_start(mem));
	config_hold(mem);
	s = session_with(mem, "192.0.2.30", "<reload@example.net>", NULL);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	check_ratelimit.end(s, rl(s), true);
	/* New servers: sessions count there from now on ... */
	ratelimit_reload(dead);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_ERROR);
	/* ... and back: the in-process counters survived the reloads. */
	ratelimit_reload(mem);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	check_ratelimit.end(s, rl(s), true);
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_REFUSE);
	session_close(s);
	ratelimit_stop();
	config_release(mem);
	config_release(dead);
}

static void
test_many_recipients(void **state)
{
	struct config *cfg = load_text("trusted_networks = [ ];\n"
				       "ratelimit: { rules = (\n"
				       "  { name = \"to\"; key = [ \"recipient\" ]; count = "
				       "\"recipients\"; limits = [ \"5/1h\" ]; }\n"
				       "); };\n");
	struct session *s;
	char rcpt[64];
	struct rate_value k;
	unsigned left = 0;

	(void)state;
	assert_true(ratelimit_start(cfg));
	config_hold(cfg);
	s = session_with(cfg, "192.0.2.40", "<many@example.net>", NULL);
	/* More distinct counters than a transaction remembers: no crash, the rest stay charged. */
	for (int i = 0; i < RATELIMIT_TX_CHARGES + 6; i++) {
		snprintf(rcpt, sizeof(rcpt), "<r%d-%d@example.org>", i, (int)getpid());
		field_set(&s->tx.rcpt, rcpt);
		assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO);
	}
	assert_int_equal(rl(s)->ncharges, RATELIMIT_TX_CHARGES);
	assert_true(rl(s)->charges_lost);
	check_ratelimit.end(s, rl(s), false);
	for (int i = 0; i < RATELIMIT_TX_CHARGES + 6; i++) {
		snprintf(rcpt, sizeof(rcpt), "<r%d-%d@example.org>", i, (int)getpid());
		field_set(&s->tx.rcpt, rcpt);
		assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &k));
		left += (unsigned)count_of(cfg, 0, &k);
	}
	assert_int_equal(left, 6);
	session_close(s);
	ratelimit_stop();
	config_release(cfg);
}

/* ---- count = "distinct" and the global key --------------------------------- */

static const char *distinct_rules =
    "trusted_networks = [ ];\n"
    "ratelimit: { rules = (\n"
    "  { name = \"hrp\"; key = [ \"client_ip\" ]; count = \"distinct\"; distinct = \"helo\";\n"
    "    limits = [ \"3/1m\" ]; },\n"
    "  { name = \"dict\"; key = [ \"client_ip\" ]; count = \"distinct\"; distinct = \"recipient\";\n"
    "    limits = [ \"4/1h\" ]; action = \"reject\"; },\n"
    "  { name = \"site\"; key = [ ]; count = \"messages\"; limits = [ \"2/1h\" ]; }\n"
    "); };\n";

/* The rules above, counted in memcached on port (0: in process), under a key prefix of this run. */
static struct config *
distinct_config(unsigned port)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "memcached: { servers = [ %s%s%.0u%s ]; key_prefix = \"d%d:\"; };\n%s",
		 port ? "\"127.0.0.1" : "", port ? ":" : "", port, port ? "\"" : "",
		 (int)getpid(), distinct_rules);
	return load_text(text);
}

/* The count of rule's counter for key in the window of its first limit at now_ms. */
static uint64_t
count_at(const struct config *cfg, size_t rule, const struct rate_value *key, uint64_t now_ms)
{
	const struct rate_rule *r = &cfg->ratelimit.rules[rule];
	struct rate_window w;
	char name[COUNTER_KEY_MAX + 1];
	uint64_t v = 99999;

	ratelimit_window(now_ms, r->limits.items[0].period, &w);
	ratelimit_key_name(name, sizeof(name), cfg->memcached.key_prefix, r->name,
			   r->limits.items[0].period, w.index, key->digest);
	assert_true(ratelimit_peek(name, cfg->memcached.servers.count == 0, &v));
	return v;
}

/* Charge rule 0 (hrp) of cfg for session s greeting with helo at now_ms, keeping it if over. */
static enum rate_outcome
charge_helo_kept(const struct config *cfg, struct session *s, const char *helo, uint64_t now_ms,
		 bool keep_over)
{
	const struct rate_rule *rule = &cfg->ratelimit.rules[0];
	struct rate_value key;
	uint8_t value[RATELIMIT_DIGEST_SIZE];
	const struct rate_limit *over;

	session_set_helo(s, helo);
	assert_true(check_ratelimit_key(rule, s, &key));
	assert_true(check_ratelimit_distinct(rule, s, &key, value));
	return ratelimit_charge_distinct(cfg, 0, &rule->limits, &key, value, now_ms, keep_over,
					 &over);
}

/* Charge rule 0 (hrp) of cfg for session s greeting with helo at now_ms. */
static enum rate_outcome
charge_helo(const struct config *cfg, struct session *s, const char *helo, uint64_t now_ms)
{
	return charge_helo_kept(cfg, s, helo, now_ms, false);
}

/*
 * The window arithmetic of count = "distinct" (limit 3 a minute): a new
 * value counts, a repeat does not, a new value over the limit is refused
 * and stays new, the previous window weighs in, and fresh windows start
 * afresh.
 */
static void
distinct_arithmetic(struct config *cfg)
{
	static const struct {
		uint64_t at_ms;	       /* after a minute boundary */
		const char *helo;
		enum rate_outcome outcome;
		uint64_t count;	       /* the counter of the window then */
	} steps[] = {
		{1000, "a.example", RATE_ADMIT, 1},
		{2000, "A.Example", RATE_ADMIT, 1}, /* a repeat, in any case: not counted */
		{3000, "b.example", RATE_ADMIT, 2},
		{4000, "c.example", RATE_ADMIT, 3},
		/* A fourth value is over: refused, not counted, and still new when it comes again. */
		{5000, "d.example", RATE_OVER, 3},
		{6000, "d.example", RATE_OVER, 3},
		{7000, "b.example", RATE_ADMIT, 3}, /* the values counted still pass */
		/* Next window: the 3 weigh in full at first, so even a known value is over ... */
		{60001, "a.example", RATE_OVER, 0},
		/* ... half way, one value fits (1 + 3/2 <= 3), a second does not (2 + 3/2 > 3) ... */
		{90000, "a.example", RATE_ADMIT, 1},
		{90001, "a.example", RATE_ADMIT, 1},
		{90002, "e.example", RATE_OVER, 1},
		/* ... and two windows on, 3 new values again, the fourth over. */
		{240000, "a.example", RATE_ADMIT, 1},
		{240000, "b.example", RATE_ADMIT, 2},
		{240000, "d.example", RATE_ADMIT, 3},
		{240000, "e.example", RATE_OVER, 3},
	};
	uint64_t base = 1700000040000ULL; /* a minute boundary */
	struct session *s;
	struct rate_value key;

	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	config_hold(cfg);
	s = session_with(cfg, "192.0.2.60", "<d@example.net>", NULL);
	session_set_helo(s, "a.example");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		uint64_t now = base + steps[i].at_ms;

		if (charge_helo(cfg, s, steps[i].helo, now) != steps[i].outcome ||
		    count_at(cfg, 0, &key, now) != steps[i].count)
			fail_msg("step %zu (%s at +%llu ms): not %s with a count of %llu", i,
				 steps[i].helo, (unsigned long long)steps[i].at_ms,
				 steps[i].outcome == RATE_ADMIT ? "admitted" : "refused",
				 (unsigned long long)steps[i].count);
	}
	/*
	 * Kept over (hold, warn): a fourth value is counted although over, and
	 * then even a repeat is over while the count is.
	 */
	session_set_helo(s, "a.example");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], s, &key));
	base += 600000;
	assert_int_equal(charge_helo_kept(cfg, s, "a.example", base, true), RATE_ADMIT);
	assert_int_equal(charge_helo_kept(cfg, s, "a.example", base, true), RATE_ADMIT);
	assert_int_equal(charge_helo_kept(cfg, s, "b.example", base, true), RATE_ADMIT);
	assert_int_equal(charge_helo_kept(cfg, s, "c.example", base, true), RATE_ADMIT);
	assert_int_equal(charge_helo_kept(cfg, s, "d.example", base, true), RATE_OVER);
	assert_int_equal(count_at(cfg, 0, &key, base), 4);
	assert_int_equal(charge_helo_kept(cfg, s, "a.example", base, true), RATE_OVER);
	assert_int_equal(charge_helo_kept(cfg, s, "d.example", base, true), RATE_OVER);
	assert_int_equal(count_at(cfg, 0, &key, base), 4);
	session_close(s);
	ratelimit_stop();
	config_release(cfg);
}

/*
 * Through the check: distinct recipients at RCPT (a repeat passes, the
 * fifth new one gets the rule's reply, an aborted transaction gives
 * nothing back), distinct HELOs at MAIL, and the global key shared by
 * every client, shown as "*".
 */
static void
distinct_check(struct config *cfg)
{
	struct session *s, *t;
	struct verdict v;
	struct rate_value k;
	char rcpt[64];

	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	config_hold(cfg);
	s = session_with(cfg, "192.0.2.61", "<c@example.net>", NULL);
	session_set_helo(s, "one.example");
	for (int i = 0; i < 4; i++) {
		snprintf(rcpt, sizeof(rcpt), "<u%d@example.org>", i);
		field_set(&s->tx.rcpt, rcpt);
		assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO);
		assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO); /* the same again */
	}
	field_set(&s->tx.rcpt, "<u9@example.org>");
	v = run(s, STAGE_RCPT);
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_string_equal(v.reply.code, "550");
	assert_string_equal(v.reply.text, "<192.0.2.61>: Rate limit \"dict\" exceeded, try again later");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[1], s, &k));
	check_ratelimit.end(s, rl(s), false);
	assert_int_equal(count_at(cfg, 1, &k, ratelimit_now_ms()), 4);
	field_set(&s->tx.rcpt, "<u0@example.org>");
	assert_int_equal(run(s, STAGE_RCPT).kind, VERDICT_DUNNO);

	/* The global key: two messages from two clients, then a third is refused for "*". */
	assert_int_equal(run(s, STAGE_MAIL).kind, VERDICT_DUNNO);
	check_ratelimit.end(s, rl(s), true);
	config_hold(cfg); /* a session takes a reference over */
	t = session_with(cfg, "198.51.100.62", "<other@example.com>", NULL);
	session_set_helo(t, "two.example");
	assert_int_equal(run(t, STAGE_MAIL).kind, VERDICT_DUNNO);
	check_ratelimit.end(t, rl(t), true);
	v = run(t, STAGE_MAIL);
	assert_int_equal(v.kind, VERDICT_REFUSE);
	assert_string_equal(v.reply.code, "450");
	assert_string_equal(v.reply.text, "<*>: Rate limit \"site\" exceeded, try again later");
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[2], t, &k));
	assert_string_equal(k.text, "*");
	assert_int_equal(count_at(cfg, 2, &k, ratelimit_now_ms()), 2);
	/* The HELOs of both clients were counted at MAIL, each for its own client. */
	assert_true(check_ratelimit_key(&cfg->ratelimit.rules[0], t, &k));
	assert_int_equal(count_at(cfg, 0, &k, ratelimit_now_ms()), 1);
	session_close(t);
	session_close(s);
	ratelimit_stop();
	config_release(cfg);
}

/* Threads racing with distinct values of one key. */
struct distinct_racer {
	const struct config *cfg;
	int first, step, total; /* values first, first + step, ... below total */
	uint64_t now;
	int admitted;
};

static void *
distinct_racer_main(void *arg)
{
	struct distinct_racer *r = arg;
	struct session *s;
	char helo[64];

	config_hold((struct config *)r->cfg); /* the session takes it over */
	s = session_with((struct config *)r->cfg, "192.0.2.63", "<r@example.net>", NULL);

	for (int i = r->first; i < r->total; i += r->step) {
		snprintf(helo, sizeof(helo), "h%d.example", i);
		if (charge_helo(r->cfg, s, helo, r->now) == RATE_ADMIT)
			r->admitted++;
	}
	session_close(s);
	return NULL;
}

/* 16 threads, 3 + 37 distinct values once each: exactly 3 admitted; then all again: the same 3. */
static void
distinct_threads(struct config *cfg)
{
	struct distinct_racer r[16];
	pthread_t t[16];
	int total = 0;

	assert_non_null(cfg);
	assert_true(ratelimit_start(cfg));
	for (int round = 0; round < 2; round++) {
		total = 0;
		for (int i = 0; i < 16; i++) {
			r[i] = (struct distinct_racer){cfg, i, 16, 40, 1700000001000ULL, 0};
			assert_int_equal(pthread_create(&t[i], NULL, distinct_racer_main, &r[i]), 0);
		}
		for (int i = 0; i < 16; i++) {
			pthread_join(t[i], NULL);
			total += r[i].admitted;
		}
		assert_int_equal(total, 3);
	}
	ratelimit_stop();
	config_release(cfg);
}

static void
test_distinct_memory(void **state)
{
	(void)state;
	distinct_arithmetic(distinct_config(0));
	distinct_check(distinct_config(0));
	distinct_threads(distinct_config(0));
}

static void
test_distinct_memcached(void **state)
{
	unsigned port = ((struct mc_fixture *)*state)->port;

	distinct_arithmetic(distinct_config(port));
	distinct_check(distinct_config(port));
	distinct_threads(distinct_config(port));
}

/* The store's add: created once, EXISTS after, and again once expired or deleted. */
static void
test_memory_store_add(void **state)
{
	struct counter_store *cs = counter_store_memory_create(64, fake_clock);

	(void)state;
	assert_non_null(cs);
	assert_int_equal(counter_store_add(cs, "m", 1, 10), STORE_OK);
	assert_int_equal(counter_store_add(cs, "m", 1, 10), STORE_EXISTS);
	fake_now += 10000;
	assert_int_equal(counter_store_add(cs, "m", 1, 10), STORE_OK);
	assert_int_equal(counter_store_del(cs, "m", 1), STORE_OK);
	assert_int_equal(counter_store_add(cs, "m", 1, 10), STORE_OK);
	counter_store_destroy(cs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_window_edges),
	    cmocka_unit_test(test_window_weights),
	    cmocka_unit_test(test_limit_parsing),
	    cmocka_unit_test(test_class_parsing),
	    cmocka_unit_test(test_prefix_grouping),
	    cmocka_unit_test(test_key_values),
	    cmocka_unit_test(test_key_names),
	    cmocka_unit_test(test_class_matching),
	    cmocka_unit_test(test_memory_store),
	    cmocka_unit_test(test_memory_store_cap),
	    cmocka_unit_test(test_memory_store_threads),
	    cmocka_unit_test(test_admission_burst),
	    cmocka_unit_test(test_admission_sliding),
	    cmocka_unit_test(test_admission_all_windows),
	    cmocka_unit_test(test_admission_bytes),
	    cmocka_unit_test(test_admission_threads),
	    cmocka_unit_test(test_check_verdicts),
	    cmocka_unit_test(test_check_warn_and_when),
	    cmocka_unit_test(test_check_hostile_values),
	    cmocka_unit_test(test_store_errors),
	    cmocka_unit_test(test_reload),
	    cmocka_unit_test(test_many_recipients),
	    cmocka_unit_test(test_memory_store_add),
	    cmocka_unit_test(test_distinct_memory),
	    cmocka_unit_test_setup_teardown(test_distinct_memcached, mc_fixture_setup, mc_fixture_teardown),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
