/*
 * test_control_cmds.c - the control socket's explain and ratelimit
 * commands (control_explain.c, control_ratelimit.c), called as the
 * control thread calls them.
 *
 * explain: an alias domain and an alias chain to two full mailboxes (the
 * fake quota source of fake_source.c over real fixture maildirs) gives the
 * 552 verdict and lists every target; room left, SIZE, a second call
 * answered by the cache, a failing source (on_error tempfail and accept),
 * dry_run, the real maildir source with a walk, a malformed address,
 * quota disabled.  ratelimit: a rule charged to its limit through
 * the check itself (the in-process store), show says "over", reset
 * deletes the counters and the next event is admitted; missing and
 * unknown fields, an unknown rule; then the same against a real memcached
 * started on a free loopback port; the previous window is reset too (and
 * ratelimit.c's cache of its memcached count).  --json answers are parsed
 * by python3.
 * Output is TAP, for automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check_ratelimit.h"
#include "checks.h"
#include "config.h"
#include "control.h"
#include "fake_source.h"
#include "fixture.h"
#include "mc_server.h"
#include "policy.h"
#include "quota.h"
#include "ratelimit.h"
#include "session.h"

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------- */

/* Load a configuration from text, install it, and return a reference to it. */
static struct config *
install_text(const char *text)
{
	char path[512];
	FILE *fp;
	struct config *cfg;

	snprintf(path, sizeof(path), "%s/mxgate.conf", tmpdir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	cfg = config_load(path, NULL, NULL);
	assert_non_null(cfg);
	config_install(cfg);
	return config_current();
}

/* Run one command line as the dispatcher would (--json taken out); out is to be freed. */
static void
run_cmd(control_cmd_fn *fn, const char *line, struct control_out *out)
{
	char buf[CONTROL_REQUEST_MAX], *argv[CONTROL_ARGS_MAX];
	int argc, n = 0;
	bool json = false;

	memset(out, 0, sizeof(*out));
	out->status = 200;
	snprintf(buf, sizeof(buf), "%s", line);
	argc = control_split(buf, argv, CONTROL_ARGS_MAX);
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			argv[n++] = argv[i];
	}
	fn(n, argv, json, out);
	if (getenv("TEST_VERBOSE") != NULL)
		fprintf(stderr, "# %s -> %d %s\n%s", line, out->status, out->message,
			out->buf ? out->buf : "");
}

/* The body, "" when none. */
static const char *
body(const struct control_out *out)
{
	return out->buf ? out->buf : "";
}

/* Assert that the body contains needle. */
static void
assert_has(const struct control_out *out, const char *needle)
{
	if (strstr(body(out), needle) == NULL)
		fail_msg("\"%s\" not in:\n%s", needle, body(out));
}

/* Assert that the body contains every string of a NULL-terminated list. */
static void
assert_has_all(const struct control_out *out, const char *const *needles)
{
	for (; *needles != NULL; needles++)
		assert_has(out, *needles);
}

#define ASSERT_HAS(out, ...) assert_has_all(out, (const char *const[]){__VA_ARGS__, NULL})

/* Run line and assert its status, and its message unless message is NULL. */
static void
expect_status(control_cmd_fn *fn, const char *line, int status, const char *message)
{
	struct control_out out;

	run_cmd(fn, line, &out);
	assert_int_equal(out.status, status);
	if (message != NULL)
		assert_string_equal(out.message, message);
	control_out_free(&out);
}

/* True when python3 parses text as one JSON object. */
static bool
json_parses(const char *text)
{
	FILE *p = popen("python3 -c 'import json,sys; d=json.load(sys.stdin); "
			"sys.exit(0 if isinstance(d, dict) else 1)'",
			"w");

	if (p == NULL)
		return false;
	fputs(text, p);
	return pclose(p) == 0;
}

/* Make maildir tmpdir/name (cur/ and new/) with a maildirsize of text (NULL: none). */
static void
maildir(const char *name, const char *text)
{
	static const char *const parts[] = {"", "/cur", "/new"};
	char path[1024];
	FILE *fp;

	for (size_t i = 0; i < NROWS(parts); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", tmpdir, name, parts[i]);
		mkdir(path, 0755);
	}
	snprintf(path, sizeof(path), "%s/%s/maildirsize", tmpdir, name);
	if (text != NULL) {
		assert_non_null(fp = fopen(path, "w"));
		fputs(text, fp);
		fclose(fp);
	}
}

/* ---- explain ------------------------------------------------------------- */

static const struct fake_row aliases[] = {
	{"info@example.org", "team@example.org", 0},
	{"team@example.org", "bob@example.org, carl@example.org", 0},
};

static const struct fake_row alias_domains[] = {
	{"alias.example", "example.org", 0},
};

static const struct fake_row mailboxes[] = {
	{"bob@example.org", "bob", 1000},   /* 1200 used: full */
	{"carl@example.org", "carl", 1000}, /* 1500 used: full */
	{"alice@example.org", "alice", 2000}, /* 100 used */
};

static struct fake_tables tables = {
	.aliases = aliases, .naliases = NROWS(aliases),
	.alias_domains = alias_domains, .nalias_domains = NROWS(alias_domains),
	.mailboxes = mailboxes, .nmailboxes = NROWS(mailboxes),
	.maildir_root = tmpdir,
};

/* A configuration with maildir_root at the fixture and extra text after it. */
static struct config *
install_quota(const char *extra)
{
	char text[2048];

	snprintf(text, sizeof(text), "quota: { maildir_root = \"%s\"; %s };\n", tmpdir, extra);
	return install_text(text);
}

/* Start the quota service for cfg on the fake source; cfg. */
static struct config *
start_on(struct config *cfg)
{
	static struct quota_source src = {.ops = &fake_source_ops, .state = &tables};

	assert_true(quota_start_with(cfg, &src, false));
	return cfg;
}

/* The same with install_quota(extra). */
static struct config *
start_fake(const char *extra)
{
	return start_on(install_quota(extra));
}

static void
test_explain_alias_chain_full(void **state)
{
	struct config *cfg = start_fake("");
	struct control_out out;

	(void)state;
	run_cmd(control_cmd_explain, "explain <Info+News@Alias.Example>", &out);
	assert_int_equal(out.status, 200);
	ASSERT_HAS(&out,
	    "lookup form: info+news@alias.example (base info@alias.example, "
	    "extension \"news\", domain alias.example",
	    "alias_domain alias.example: found -> example.org",
	    "alias info@example.org: found -> team@example.org",
	    "alias team@example.org: found -> bob@example.org, carl@example.org",
	    "mailbox bob@example.org: found",
	    "mailbox carl@example.org: found",
	    "alias domain: alias.example -> example.org",
	    "targets: 2 local mailboxes, 0 others",
	    "quota: 1000 bytes (fake), limit with grace 1000",
	    "usage: 1200 bytes (maildirsize), with this message 1200: full",
	    "verdict: 552 5.2.2 <Info+News@Alias.Example>: Recipient address "
	    "rejected: Mailbox full\n");
	control_out_free(&out);

	/* Asked again within cache_ttl: the same verdict, from the cache. */
	run_cmd(control_cmd_explain, "explain info+news@alias.example", &out);
	ASSERT_HAS(&out,
	    "alias info@example.org: found -> team@example.org (cached)",
	    "usage: 1200 bytes (cache)",
	    "verdict: 552 5.2.2");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);
}

static void
test_explain_json(void **state)
{
	struct config *cfg = start_fake("cache_ttl = 0;");
	struct control_out out;

	(void)state;
	run_cmd(control_cmd_explain, "explain info@alias.example --json", &out);
	assert_int_equal(out.status, 200);
	assert_true(json_parses(body(&out)));
	ASSERT_HAS(&out,
	    "\"verdict\":\"full\",\"action\":\"reject\"",
	    "\"reply\":\"552 5.2.2 <info@alias.example>: Recipient address "
	    "rejected: Mailbox full\"",
	    "\"key\":\"team@example.org\",\"result\":\"found\",\"cached\":false,"
	    "\"value\":\"bob@example.org, carl@example.org\"",
	    "\"address\":\"carl@example.org\"",
	    "\"usage_from\":\"maildirsize\"");
	control_out_free(&out);
	/* Room left: no opinion, in JSON too. */
	run_cmd(control_cmd_explain, "explain alice@example.org --json", &out);
	assert_true(json_parses(body(&out)));
	ASSERT_HAS(&out,
	    "\"verdict\":\"no_opinion\"",
	    "\"reply\":\"no opinion: room left\"");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);
}

static void
test_explain_size_and_errors(void **state)
{
	struct config *cfg = start_fake("");
	struct control_out out;
	char text[1024];

	(void)state;
	run_cmd(control_cmd_explain, "explain alice@example.org", &out);
	ASSERT_HAS(&out,
	    "usage: 100 bytes (maildirsize), with this message 100: room left",
	    "verdict: no opinion: room left\n");
	control_out_free(&out);
	run_cmd(control_cmd_explain, "explain alice@example.org --size 5000", &out);
	ASSERT_HAS(&out,
	    "with this message 5100: full",
	    "verdict: 552 5.2.2 <alice@example.org>");
	control_out_free(&out);
	run_cmd(control_cmd_explain, "explain nobody@elsewhere.example", &out);
	assert_has(&out, "verdict: no opinion: no local mailbox\n");
	control_out_free(&out);
	/* A source that cannot answer: the 451 of on_error = tempfail. */
	fake_failing = true;
	run_cmd(control_cmd_explain, "explain bob@example.org", &out);
	fake_failing = false;
	ASSERT_HAS(&out,
	    "alias bob@example.org: error",
	    "verdict: 451 4.3.0 <bob@example.org>: Temporary lookup failure\n");
	control_out_free(&out);
	/* The parser's reason for a malformed address; a malformed request. */
	expect_status(control_cmd_explain, "explain bob", 400, "bob: no domain");
	expect_status(control_cmd_explain, "explain bob@example.org --size ten", 400, NULL);
	expect_status(control_cmd_explain, "explain", 400, NULL);
	quota_stop();
	config_release(cfg);

	/* on_error = accept lets it through; dry_run only logs the refusal. */
	cfg = start_fake("on_error = \"accept\";");
	fake_failing = true;
	run_cmd(control_cmd_explain, "explain bob@example.org", &out);
	fake_failing = false;
	assert_has(&out, "verdict: accepted: source lookup failed, on_error = accept\n");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);
	snprintf(text, sizeof(text), "dry_run = true;\nquota: { maildir_root = \"%s\"; };\n",
		 tmpdir);
	cfg = start_on(install_text(text));
	run_cmd(control_cmd_explain, "explain bob@example.org --json", &out);
	assert_true(json_parses(body(&out)));
	assert_has(&out, "\"action\":\"reject_warning\"");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);

	/* Quota disabled: said so. */
	cfg = install_quota("enabled = false;");
	run_cmd(control_cmd_explain, "explain bob@example.org", &out);
	assert_int_equal(out.status, 200);
	assert_string_equal(body(&out), "quota check disabled\n");
	control_out_free(&out);
	config_release(cfg);
}

static void
test_explain_maildir_source(void **state)
{
	struct config *cfg = install_quota("");
	struct control_out out;
	char path[1024];
	FILE *fp;

	(void)state;
	/* A quota line and a usage line that does not parse: usage from a walk. */
	mkdir(strcat(strcpy(path, tmpdir), "/example.net"), 0755);
	maildir("example.net/walk", "1000S\nnot a usage line\n");
	snprintf(path, sizeof(path), "%s/example.net/walk/cur/1700000000.M1P1.host,S=1500:2,S",
		 tmpdir);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_true(quota_start_with(cfg, NULL, false));
	run_cmd(control_cmd_explain, "explain walk+x@example.net", &out);
	ASSERT_HAS(&out,
	    "source: maildir",
	    "alias walk+x@example.net: not asked",
	    "alias domain: example.net: the source has no alias domains",
	    "quota: 1000 bytes (maildirsize quota line)",
	    "usage: 1500 bytes (directory walk)",
	    "verdict: 552 5.2.2 <walk+x@example.net>");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);
}

/* A mailbox full by its Maildir++ message limit says so, in text and JSON. */
static void
test_explain_full_by_count(void **state)
{
	struct config *cfg = install_quota("");
	struct control_out out;
	char path[1024];

	(void)state;
	mkdir(strcat(strcpy(path, tmpdir), "/example.com"), 0755);
	maildir("example.com/many", "0S,5C\n3000 5\n");
	maildir("example.com/some", "0S,5C\n3000 4\n");
	assert_true(quota_start_with(cfg, NULL, false));
	run_cmd(control_cmd_explain, "explain many@example.com", &out);
	ASSERT_HAS(&out,
	    "quota: no byte limit (maildirsize quota line)",
	    "usage: 3000 bytes (maildirsize), with this message 3000: no byte limit",
	    "messages: 5, limit with grace 5: full by count",
	    "verdict: 552 5.2.2 <many@example.com>: Recipient address rejected: Mailbox full");
	control_out_free(&out);
	run_cmd(control_cmd_explain, "explain many@example.com --json", &out);
	ASSERT_HAS(&out, "\"count\":5,\"count_limit\":5,\"full_by_count\":true",
	    "\"full\":true", "\"verdict\":\"full\"");
	control_out_free(&out);
	run_cmd(control_cmd_explain, "explain some@example.com", &out);
	ASSERT_HAS(&out, "messages: 4, limit with grace 5: room left", "verdict: no opinion");
	control_out_free(&out);
	quota_stop();
	config_release(cfg);
}

/* ---- ratelimit ----------------------------------------------------------- */

static const char rl_rules[] =
    "ratelimit: { rules = (\n"
    "  { name = \"client\"; key = [ \"client_ip\" ]; count = \"messages\"; "
    "limits = [ \"2/1h\", \"5/1d\" ]; },\n"
    "  { name = \"pair\"; key = [ \"sender\", \"client_ip\" ]; count = \"messages\"; "
    "limits = [ \"9/1h\" ]; },\n"
    "  { name = \"fast\"; key = [ \"helo\" ]; count = \"messages\"; "
    "limits = [ \"1/1s\" ]; }\n"
    "); };\n";

/* A session from ip with sender, on the current configuration. */
static struct session *
client(const char *ip, const char *sender)
{
	struct session *s = policy_session_open(config_current());

	assert_non_null(s);
	assert_true(ipaddr_parse(ip, &s->addr));
	ipaddr_format(&s->addr, s->client_addr, sizeof(s->client_addr));
	s->tx.active = true;
	field_set(&s->tx.sender, sender);
	return s;
}

/* One message through the rate-limit check; its transaction accepted. */
static enum verdict_kind
message(struct session *s)
{
	struct verdict v;
	void *st = policy_check_state(s, &check_ratelimit);

	memset(&v, 0, sizeof(v));
	check_ratelimit.run(s, st, STAGE_MAIL, &v);
	check_ratelimit.end(s, st, true);
	return v.kind;
}

/* Run "ratelimit VERB client client_ip=IP[ --json]". */
static void
rl_client(struct control_out *out, const char *verb, const char *ip, bool json)
{
	char line[256];

	snprintf(line, sizeof(line), "ratelimit %s client client_ip=%s%s", verb, ip,
		 json ? " --json" : "");
	run_cmd(control_cmd_ratelimit, line, out);
}

/* Assert that the body has "STORE: current C, previous 0, weighted C: next NEXT". */
static void
assert_reading(const struct control_out *out, const char *store, int count, const char *next)
{
	char want[256];

	snprintf(want, sizeof(want), "%s: current %d, previous 0, weighted %d: next %s", store,
		 count, count, next);
	assert_has(out, want);
}

/* Charge to the limit, show "over", reset, admitted again: in whichever store cfg counts. */
static void
show_reset_cycle(const char *ip, const char *store)
{
	struct session *s = client(ip, "<a@example.org>");
	struct control_out out;
	char want[256];

	assert_int_equal(message(s), VERDICT_DUNNO);
	assert_int_equal(message(s), VERDICT_DUNNO);
	assert_int_equal(message(s), VERDICT_REFUSE);
	rl_client(&out, "show", ip, false);
	assert_int_equal(out.status, 200);
	snprintf(want, sizeof(want), "rule client: key %s, the rule's own limits\n", ip);
	ASSERT_HAS(&out,
	    want,
	    "limit 2/3600s");
	assert_reading(&out, store, 2, "over");
	ASSERT_HAS(&out,
	    "limit 5/86400s",
	    "next event: over\n");
	control_out_free(&out);

	rl_client(&out, "show", ip, true);
	assert_true(json_parses(body(&out)));
	ASSERT_HAS(&out,
	    "\"current\":2,\"previous\":0,\"weighted\":2,\"next\":\"over\"",
	    "\"next\":\"over\",\"errors\":0}");
	control_out_free(&out);

	rl_client(&out, "reset", ip, true);
	assert_int_equal(out.status, 200);
	assert_true(json_parses(body(&out)));
	/* One counter per limit: no previous window has any. */
	assert_has(&out, "\"deleted\":2,\"errors\":0}");
	control_out_free(&out);

	/* Let through at once, and counted afresh. */
	assert_int_equal(message(s), VERDICT_DUNNO);
	rl_client(&out, "show", ip, false);
	assert_reading(&out, store, 1, "admitted");
	assert_has(&out, "next event: admitted\n");
	control_out_free(&out);
	rl_client(&out, "reset", ip, false);
	assert_has(&out, "deleted 2 counters\n");
	control_out_free(&out);
	session_close(s);
}

/*
 * The previous window counts too (a rule by HELO name, so that the
 * sessions without one do not meet it): one event in a 1 s window, then the
 * next window refuses (the previous one still weighs), reset clears both
 * (and, for memcached, ratelimit.c's cache of the previous count), and the
 * next event is admitted in the same window.
 */
static void
previous_window_reset(const char *ip, const char *helo)
{
	struct session *s = client(ip, "<b@example.org>");
	struct control_out out;
	char line[256];
	struct timespec ts;
	uint64_t left;

	session_set_helo(s, helo);
	assert_int_equal(message(s), VERDICT_DUNNO);
	left = 1000 - ratelimit_now_ms() % 1000 + 20;
	ts.tv_sec = (time_t)(left / 1000);
	ts.tv_nsec = (long)(left % 1000) * 1000000L;
	assert_int_equal(nanosleep(&ts, NULL), 0);
	/* Early in the next window: 1 + nearly all of the previous 1 is over 1. */
	assert_int_equal(message(s), VERDICT_REFUSE);
	snprintf(line, sizeof(line), "ratelimit show fast helo=%s", helo);
	run_cmd(control_cmd_ratelimit, line, &out);
	assert_has(&out, "current 0, previous 1,");
	control_out_free(&out);
	snprintf(line, sizeof(line), "ratelimit reset fast helo=%s", helo);
	run_cmd(control_cmd_ratelimit, line, &out);
	assert_int_equal(out.status, 200);
	control_out_free(&out);
	assert_int_equal(message(s), VERDICT_DUNNO);
	session_close(s);
}

static void
test_ratelimit_in_process(void **state)
{
	struct config *cfg = install_text(rl_rules);

	(void)state;
	assert_true(ratelimit_start(cfg));
	show_reset_cycle("192.0.2.9", "in-process");
	previous_window_reset("192.0.2.10", "Fast.Example.NET");
	ratelimit_stop();
	config_release(cfg);
}

static void
test_ratelimit_requests(void **state)
{
	struct config *cfg = install_text(rl_rules);
	struct session *s;
	struct control_out out;

	(void)state;
	assert_true(ratelimit_start(cfg));
	/* Two key parts, counted by the check and shown with both. */
	s = client("2001:db8::1", "<Pair@Example.org>");
	assert_int_equal(message(s), VERDICT_DUNNO);
	session_close(s);
	run_cmd(control_cmd_ratelimit,
		"ratelimit show pair sender=<pair@example.org> client_ip=2001:db8::2", &out);
	assert_int_equal(out.status, 200);
	ASSERT_HAS(&out,
	    "key 2001:db8::/64,pair@example.org, the rule's own limits",
	    "current 1, previous 0, weighted 1: next admitted");
	control_out_free(&out);

	expect_status(control_cmd_ratelimit, "ratelimit show pair sender=a@example.org", 400,
		      "rule \"pair\" needs: client_ip");
	expect_status(control_cmd_ratelimit, "ratelimit reset pair", 400,
		      "rule \"pair\" needs: client_ip sender");
	expect_status(control_cmd_ratelimit, "ratelimit show nosuch client_ip=192.0.2.1", 404, NULL);
	expect_status(control_cmd_ratelimit, "ratelimit show client helo=mx.example.org", 400, NULL);
	expect_status(control_cmd_ratelimit, "ratelimit show client colour=blue", 400, NULL);
	expect_status(control_cmd_ratelimit, "ratelimit show client client_ip=300.1.1.1", 400, NULL);
	expect_status(control_cmd_ratelimit, "ratelimit flush client client_ip=192.0.2.1", 400, NULL);
	ratelimit_stop();
	config_release(cfg);
}

/* ---- against a real memcached -------------------------------------------- */

static void
test_ratelimit_memcached(void **state)
{
	unsigned port = ((struct mc_fixture *)*state)->port;
	char text[2048];
	struct config *cfg;
	struct control_out out;

	(void)state;
	snprintf(text, sizeof(text),
		 "memcached: { servers = [ \"127.0.0.1:%u\" ]; on_error = \"local\"; "
		 "key_prefix = \"t%d:\"; };\n%s",
		 port, (int)getpid(), rl_rules);
	cfg = install_text(text);
	assert_true(ratelimit_start(cfg));
	show_reset_cycle("198.51.100.7", "memcached");
	previous_window_reset("198.51.100.8", "mc.example.net");
	/* on_error = local: the in-process counters are shown too (none here). */
	rl_client(&out, "show", "198.51.100.7", false);
	assert_reading(&out, "in-process", 0, "admitted");
	control_out_free(&out);
	ratelimit_stop();
	config_release(cfg);
}

/* The fixture maildirs every explain test reads. */
static int
setup(void **state)
{
	(void)state;
	if (!fixture_mkdtemp(tmpdir, sizeof(tmpdir), "test_control_cmds"))
		return -1;
	maildir("bob", "1000S\n1200 12\n");
	maildir("carl", "1000S\n1500 15\n");
	maildir("alice", "2000S\n100 1\n");
	return 0;
}

/* Drop the installed configuration and the fixture. */
static int
teardown(void **state)
{
	(void)state;
	config_shutdown();
	return fixture_rmtree(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_explain_alias_chain_full),
	    cmocka_unit_test(test_explain_json),
	    cmocka_unit_test(test_explain_size_and_errors),
	    cmocka_unit_test(test_explain_maildir_source),
	    cmocka_unit_test(test_explain_full_by_count),
	    cmocka_unit_test(test_ratelimit_in_process),
	    cmocka_unit_test(test_ratelimit_requests),
	    cmocka_unit_test_setup_teardown(test_ratelimit_memcached, mc_fixture_setup, mc_fixture_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
