/*
 * test_address.c - unit tests for address.c, quota_resolve.c and the
 * maildir source's paths: RCPT TO parsing into Postfix's lookup form
 * (quoting, case, recipient_delimiter sets and their exceptions, hostile
 * bytes and lengths), virtual(5)-style resolution against a fake in-memory
 * quota_source (aliases, alias domains, catch-all precedence, extensions,
 * self-reference, loops, depth and width limits, errors), the maildir
 * path builder (nothing leaves maildir_root) and the maildir source on a
 * fixture tree.  Output is TAP, for automake's tap-driver.sh.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "address.h"
#include "config.h"
#include "quota_resolve.h"
#include "quota_source.h"
#include "fake_source.h"
#include "fixture.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* ---- parsing ------------------------------------------------------------ */

struct parse_row {
	const char *text;
	size_t	len;
	const char *delims;
	enum address_status status;
	const char *full, *base, *ext;
};

#define R(s, d, st, f, b, e)	{ (s), sizeof(s) - 1, (d), (st), (f), (b), (e) }
#define BAD(s, st)		R(s, "+", st, NULL, NULL, NULL)

static void
test_parse_rows(void **state)
{
	static const struct parse_row rows[] = {
		R("<bob@example.org>", "+", ADDRESS_OK, "bob@example.org", "bob@example.org", ""),
		R("bob@example.org", "+", ADDRESS_OK, "bob@example.org", "bob@example.org", ""),
		R("<Bob@Example.ORG>", "+", ADDRESS_OK, "bob@example.org", "bob@example.org", ""),
		R("<bob@example.org.>", "+", ADDRESS_OK, "bob@example.org", "bob@example.org", ""),
		R("<bob+ext@example.org>", "+", ADDRESS_OK, "bob+ext@example.org",
		  "bob@example.org", "ext"),
		R("<bob+a+b@x.example>", "+", ADDRESS_OK, "bob+a+b@x.example", "bob@x.example", "a+b"),
		R("<bob+@x.example>", "+", ADDRESS_OK, "bob+@x.example", "bob@x.example", ""),
		R("<+ext@x.example>", "+", ADDRESS_OK, "+ext@x.example", "+ext@x.example", ""),
		R("<bob-ext@x.example>", "+", ADDRESS_OK, "bob-ext@x.example", "bob-ext@x.example", ""),
		R("<bob-ext@x.example>", "+-", ADDRESS_OK, "bob-ext@x.example", "bob@x.example", "ext"),
		R("<bob_e+x@x.example>", "+_", ADDRESS_OK, "bob_e+x@x.example", "bob@x.example",
		  "e+x"),
		R("<bob+ext@x.example>", "", ADDRESS_OK, "bob+ext@x.example", "bob+ext@x.example", ""),
		/* reserved local parts are never split */
		R("<MAILER-DAEMON@x.example>", "-", ADDRESS_OK, "mailer-daemon@x.example",
		  "mailer-daemon@x.example", ""),
		R("<double-bounce@x.example>", "-", ADDRESS_OK, "double-bounce@x.example",
		  "double-bounce@x.example", ""),
		R("<owner-list@x.example>", "-", ADDRESS_OK, "owner-list@x.example",
		  "owner-list@x.example", ""),
		R("<list-request@x.example>", "-", ADDRESS_OK, "list-request@x.example",
		  "list-request@x.example", ""),
		R("<list-request@x.example>", "+", ADDRESS_OK, "list-request@x.example",
		  "list-request@x.example", ""),
		R("<postmaster+x@x.example>", "+", ADDRESS_OK, "postmaster+x@x.example",
		  "postmaster@x.example", "x"),
		/* source routes are ignored */
		R("<@relay.example,@b.example:bob@example.org>", "+", ADDRESS_OK,
		  "bob@example.org", "bob@example.org", ""),
		/* quoting: unquoted when a dot-string, re-quoted when not */
		R("<\"bob\"@example.org>", "+", ADDRESS_OK, "bob@example.org", "bob@example.org", ""),
		R("<\"Bob Smith\"@example.org>", "+", ADDRESS_OK, "\"bob smith\"@example.org",
		  "\"bob smith\"@example.org", ""),
		R("<\"b\\\"o\"@example.org>", "+", ADDRESS_OK, "\"b\\\"o\"@example.org",
		  "\"b\\\"o\"@example.org", ""),
		R("<\"a@b\"@example.org>", "+", ADDRESS_OK, "\"a@b\"@example.org",
		  "\"a@b\"@example.org", ""),
		R("<a..b@example.org>", "+", ADDRESS_OK, "\"a..b\"@example.org",
		  "\"a..b\"@example.org", ""),
		R("<bob%other@example.org>", "+", ADDRESS_OK, "bob%other@example.org",
		  "bob%other@example.org", ""),
		R("<../../etc@example.org>", "+", ADDRESS_OK, "\"../../etc\"@example.org",
		  "\"../../etc\"@example.org", ""),
		R("<a/b@example.org>", "+", ADDRESS_OK, "a/b@example.org", "a/b@example.org", ""),
		R("<J\xc3\xb6rg@Ex\xc3\xa4mple.ORG>", "+", ADDRESS_OK,
		  "j\xc3\xb6rg@ex\xc3\xa4mple.org", "j\xc3\xb6rg@ex\xc3\xa4mple.org", ""),
		/* no address */
		BAD("<>", ADDRESS_EMPTY),
		BAD("", ADDRESS_EMPTY),
		BAD("<@relay.example:>", ADDRESS_EMPTY),
		BAD("<bob>", ADDRESS_NO_DOMAIN),
		BAD("bob", ADDRESS_NO_DOMAIN),
		BAD("<bob@>", ADDRESS_NO_DOMAIN),
		BAD("<bob@.>", ADDRESS_NO_DOMAIN),
		/* hostile or broken */
		BAD("<bob", ADDRESS_INVALID),
		BAD("bob>", ADDRESS_INVALID),
		BAD("<", ADDRESS_INVALID),
		BAD(">", ADDRESS_INVALID),
		BAD("<@relay.example>", ADDRESS_INVALID),
		BAD("<@example.org>", ADDRESS_INVALID),
		BAD("<bob\\x@example.org>", ADDRESS_INVALID),
		BAD("<\"bob@example.org>", ADDRESS_INVALID),
		BAD("<\"bob\"x@example.org>", ADDRESS_INVALID),
		BAD("<\"bob\\\">", ADDRESS_INVALID),
		BAD("<\"bo\rb\"@example.org>", ADDRESS_INVALID),
		BAD("<bob\r\n@example.org>", ADDRESS_INVALID),
		BAD("<bob@example.org\r\nRCPT TO:<x@y>>", ADDRESS_INVALID),
		BAD("<bob@exa mple.org>", ADDRESS_INVALID),
		BAD("<bob smith@example.org>", ADDRESS_INVALID),
		BAD("<bob@[192.0.2.1]>", ADDRESS_INVALID),
		BAD("<bob@example..org>", ADDRESS_INVALID),
		BAD("<bob@.example.org>", ADDRESS_INVALID),
		BAD("<bob@example.org..>", ADDRESS_INVALID),	/* found by fuzz_address */
		BAD("<bob@..>", ADDRESS_INVALID),
		BAD("<bob@@example.org>", ADDRESS_INVALID),
		BAD("<bob@x@example.org>", ADDRESS_INVALID),
		BAD("<bob@example.org/../..>", ADDRESS_INVALID),
		BAD("<bo\0b@example.org>", ADDRESS_INVALID),
		BAD("<bob@exa\0mple.org>", ADDRESS_INVALID),
		BAD("<b\x7fob@example.org>", ADDRESS_INVALID),
		BAD("<(comment)bob@example.org>", ADDRESS_INVALID),
	};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		struct address a;
		enum address_status st = address_parse(rows[i].text, rows[i].len, rows[i].delims, &a);

		if (st != rows[i].status)
			fail_msg("row %zu (%s): status %s, expected %s", i, rows[i].text,
				 address_status_name(st), address_status_name(rows[i].status));
		if (st != ADDRESS_OK)
			continue;
		assert_string_equal(a.full, rows[i].full);
		assert_string_equal(a.base, rows[i].base);
		assert_string_equal(a.ext, rows[i].ext);
		assert_true(strlen(a.full) < sizeof(a.full));
	}
}

/* Local parts and domains at and over the limits; and any byte at all. */
static void
test_parse_lengths(void **state)
{
	char	buf[4096];
	struct address a;
	size_t	n;

	(void)state;
	/* 255-byte local part fits, 256 does not; a 1 KiB one is refused */
	for (size_t len = 250; len <= 1024; len += (len < 260 ? 1 : 200)) {
		buf[0] = '<';
		memset(buf + 1, 'a', len);
		n = 1 + len + (size_t)sprintf(buf + 1 + len, "@example.org>");
		assert_int_equal(address_parse(buf, n, "+", &a),
				 len < ADDRESS_LOCAL_MAX ? ADDRESS_OK : ADDRESS_TOO_LONG);
	}
	/* a local part needing quotes that no longer fits once quoted */
	buf[0] = '<';
	buf[1] = '"';
	memset(buf + 2, ' ', 254);
	n = 256 + (size_t)sprintf(buf + 256, "\"@example.org>");
	assert_int_equal(address_parse(buf, n, "+", &a), ADDRESS_TOO_LONG);
	/* domains: 255 fits, 256 does not */
	for (size_t len = 254; len <= 600; len += (len < 258 ? 1 : 300)) {
		n = (size_t)sprintf(buf, "<bob@");
		memset(buf + n, 'd', len);
		n += len;
		buf[n++] = '>';
		assert_int_equal(address_parse(buf, n, "+", &a),
				 len < ADDRESS_DOMAIN_MAX ? ADDRESS_OK : ADDRESS_TOO_LONG);
	}
	/* every single byte as a local part: parsed or refused, never more */
	for (int c = 0; c < 256; c++) {
		buf[0] = '<';
		buf[1] = (char)c;
		n = 2 + (size_t)sprintf(buf + 2, "@example.org>");
		enum address_status st = address_parse(buf, n, "+", &a);

		if (c < 0x20 || c == 0x7f || c == '\\' || c == '"' || c == '(' || c == ')' ||
		    c == '<' || c == '>' || c == ',' || c == ';' || c == ':' || c == '[' ||
		    c == ']' || c == ' ' || c == '@')
			assert_int_not_equal(st, ADDRESS_OK);
		else
			assert_int_equal(st, ADDRESS_OK);
	}
}

static void
test_display(void **state)
{
	const char *p;
	size_t	n;

	(void)state;
	address_display("<Bob@X>", 7, &p, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "Bob@X", 5);
	address_display("bob@x", 5, &p, &n);
	assert_int_equal(n, 5);
	address_display("<", 1, &p, &n);
	assert_int_equal(n, 1);
	address_display("<>", 2, &p, &n);
	assert_int_equal(n, 0);
}

/* ---- a fake source ------------------------------------------------------- */

static const struct fake_row fake_aliases[] = {
	{"bob@example.org", "bob@example.org", 0},
	{"bob+special@example.org", "alice@example.org", 0},
	{"sales@example.org", "alice@example.org, carol@example.org", 0},
	{"info@example.org", "Sales@Example.ORG", 0},
	{"ext@example.org", "someone@remote.example", 0},
	{"mixed@example.org", "alice@example.org,someone@remote.example", 0},
	{"loop1@example.org", "loop2@example.org", 0},
	{"loop2@example.org", "loop1@example.org", 0},
	{"dup@example.org", "alice@example.org, alice@example.org, sales@example.org", 0},
	{"pipe@example.org", "|/usr/bin/vacation, , bob", 0},
	{"broken@example.org", NULL, 0},	/* the source fails */
	{"partly@example.org", "alice@example.org, broken@example.org", 0},
	{"@catchall.example", "catch@catchall.example", 0},
	{"named@catchall.example", "named@catchall.example", 0},
	{"d0@example.org", "d1@example.org", 0},
	{"d1@example.org", "d2@example.org", 0},
	{"d2@example.org", "d3@example.org", 0},
	{"d3@example.org", "d4@example.org", 0},
	{"d4@example.org", "d5@example.org", 0},
	{"d5@example.org", "d6@example.org", 0},
	{"d6@example.org", "d7@example.org", 0},
	{"d7@example.org", "d8@example.org", 0},
	{"d8@example.org", "d9@example.org", 0},
	{"d9@example.org", "d10@example.org", 0},
	{"d10@example.org", "d11@example.org", 0},
	{"d11@example.org", "alice@example.org", 0},
	{"short0@example.org", "d8@example.org", 0},
	{"wide@example.org", "w1@w.example,w2@w.example,w3@w.example,w4@w.example,"
	 "w5@w.example,w6@w.example,w7@w.example,w8@w.example,w9@w.example,w10@w.example,"
	 "w11@w.example,w12@w.example,w13@w.example,w14@w.example,w15@w.example,"
	 "w16@w.example,w17@w.example", 0},
};

static const struct fake_row fake_alias_domains[] = {
	{"alias.example", "Example.ORG", 0},
	{"self.example", "self.example", 0},
	{"bad.example", NULL, 0},
};

static const struct fake_row fake_mailboxes[] = {
	{"bob@example.org", "/v/example.org/bob/", 1000},
	{"alice@example.org", "/v/example.org/alice/", 2000},
	{"carol@example.org", "/v/example.org/carol/", 0},
	{"solo@example.org", "/v/example.org/solo/", 10},	/* no alias row */
	{"catch@catchall.example", "/v/catchall.example/catch/", 5},
	{"direct@catchall.example", "/v/catchall.example/direct/", 5},
	{"named@catchall.example", "/v/catchall.example/named/", 5},
	{"bob@self.example", "/v/self.example/bob/", 5},
	{"w1@w.example", "/v/w/1", 1}, {"w2@w.example", "/v/w/2", 1},
	{"w3@w.example", "/v/w/3", 1}, {"w4@w.example", "/v/w/4", 1},
	{"w5@w.example", "/v/w/5", 1}, {"w6@w.example", "/v/w/6", 1},
	{"w7@w.example", "/v/w/7", 1}, {"w8@w.example", "/v/w/8", 1},
	{"w9@w.example", "/v/w/9", 1}, {"w10@w.example", "/v/w/10", 1},
	{"w11@w.example", "/v/w/11", 1}, {"w12@w.example", "/v/w/12", 1},
	{"w13@w.example", "/v/w/13", 1}, {"w14@w.example", "/v/w/14", 1},
	{"w15@w.example", "/v/w/15", 1}, {"w16@w.example", "/v/w/16", 1},
	{"w17@w.example", "/v/w/17", 1},
};

static struct fake_tables fake_tables = {
	.aliases = fake_aliases, .naliases = NROWS(fake_aliases),
	.alias_domains = fake_alias_domains, .nalias_domains = NROWS(fake_alias_domains),
	.mailboxes = fake_mailboxes, .nmailboxes = NROWS(fake_mailboxes),
};

static struct quota_source fake = {.ops = &fake_source_ops, .state = &fake_tables};

/* Resolve text; returns the status, fills res. */
static enum source_status
resolve_text(const char *text, const char *delims, struct resolution *res)
{
	struct address a;

	assert_int_equal(address_parse(text, strlen(text), delims, &a), ADDRESS_OK);
	fake_calls = 0;
	return quota_resolve(&fake, &a, delims, res);
}

/* Assert that text resolves, without limits, to exactly the mailboxes listed (NULL-ended). */
static void
expect_mailboxes(const char *text, size_t nother, ...)
{
	struct resolution *res = malloc(sizeof(*res));
	const char *want;
	size_t	n = 0;
	va_list ap;

	assert_non_null(res);
	if (resolve_text(text, "+", res) != SOURCE_OK)
		fail_msg("%s: resolution failed", text);
	va_start(ap, nother);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (n >= res->nmailboxes || strcmp(res->mailboxes[n].address, want) != 0)
			fail_msg("%s: mailbox %zu is %s, expected %s", text, n,
				 n < res->nmailboxes ? res->mailboxes[n].address : "(none)", want);
		n++;
	}
	va_end(ap);
	if (n != res->nmailboxes || res->nother != nother || res->limited)
		fail_msg("%s: %zu mailboxes (expected %zu), %zu other (expected %zu), limited %d",
			 text, res->nmailboxes, n, res->nother, nother, res->limited);
	free(res);
}

static void
test_resolve(void **state)
{
	struct resolution *res = malloc(sizeof(*res));

	(void)state;
	assert_non_null(res);
	/* a mailbox with its own alias row (postfixadmin), and one without */
	expect_mailboxes("<bob@example.org>", 0, "bob@example.org", NULL);
	expect_mailboxes("<solo@example.org>", 0, "solo@example.org", NULL);
	assert_int_equal(resolve_text("<bob@example.org>", "+", res), SOURCE_OK);
	assert_int_equal(res->lookups, 2);	/* alias, mailbox */
	assert_string_equal(res->mailboxes[0].mailbox.maildir, "/v/example.org/bob/");
	assert_int_equal(res->mailboxes[0].mailbox.quota, 1000);
	/* case, extension: the extension's own alias wins, else the base address */
	expect_mailboxes("<Bob+Foo@EXAMPLE.org>", 0, "bob@example.org", NULL);
	expect_mailboxes("<bob+special@example.org>", 0, "alice@example.org", NULL);
	expect_mailboxes("<solo+x@example.org>", 0, "solo@example.org", NULL);
	/* aliases, nested, case in the goto list, duplicates counted once */
	expect_mailboxes("<sales@example.org>", 0, "alice@example.org", "carol@example.org", NULL);
	expect_mailboxes("<info@example.org>", 0, "alice@example.org", "carol@example.org", NULL);
	expect_mailboxes("<dup@example.org>", 0, "alice@example.org", "carol@example.org", NULL);
	/* remote targets are no local mailbox */
	expect_mailboxes("<ext@example.org>", 1, NULL);
	expect_mailboxes("<mixed@example.org>", 1, "alice@example.org", NULL);
	expect_mailboxes("<pipe@example.org>", 2, NULL);
	/* no such address: no mailbox, no error */
	expect_mailboxes("<nobody@example.org>", 1, NULL);
	expect_mailboxes("<nobody@elsewhere.example>", 1, NULL);
	/* a loop resolves to nothing and stops */
	expect_mailboxes("<loop1@example.org>", 0, NULL);
	/* alias domains: rewritten to the target domain, aliases and extension kept */
	expect_mailboxes("<bob@alias.example>", 0, "bob@example.org", NULL);
	expect_mailboxes("<Sales+x@Alias.Example>", 0, "alice@example.org", "carol@example.org",
			 NULL);
	expect_mailboxes("<bob@self.example>", 0, "bob@self.example", NULL);
	/* a catch-all takes precedence over a mailbox without an alias row, as in Postfix */
	expect_mailboxes("<direct@catchall.example>", 0, "catch@catchall.example", NULL);
	expect_mailboxes("<anything@catchall.example>", 0, "catch@catchall.example", NULL);
	expect_mailboxes("<named@catchall.example>", 0, "named@catchall.example", NULL);
	/* within the depth limit */
	expect_mailboxes("<short0@example.org>", 0, "alice@example.org", NULL);

	/* too deep, too wide: said so */
	assert_int_equal(resolve_text("<d0@example.org>", "+", res), SOURCE_OK);
	assert_true(res->limited);
	assert_int_equal(resolve_text("<wide@example.org>", "+", res), SOURCE_OK);
	assert_true(res->limited);
	assert_int_equal(res->nmailboxes, RESOLVE_MAX_MAILBOXES);

	/* errors are errors, wherever they happen */
	assert_int_equal(resolve_text("<broken@example.org>", "+", res), SOURCE_ERROR);
	assert_int_equal(resolve_text("<partly@example.org>", "+", res), SOURCE_ERROR);
	assert_int_equal(resolve_text("<x@bad.example>", "+", res), SOURCE_ERROR);
	free(res);
}

/* A source without alias functions (NULL pointers) resolves mailboxes only. */
static void
test_resolve_no_aliases(void **state)
{
	static const struct quota_source_ops ops = {
		.name = "mailboxes-only", .mailbox = fake_source_mailbox,
	};
	struct quota_source src = {.ops = &ops, .state = &fake_tables};
	struct resolution *res = malloc(sizeof(*res));
	struct address a;

	(void)state;
	assert_non_null(res);
	assert_int_equal(address_parse("<sales@example.org>", 19, "+", &a), ADDRESS_OK);
	assert_int_equal(quota_resolve(&src, &a, "+", res), SOURCE_OK);
	assert_int_equal(res->nmailboxes, 0);
	assert_int_equal(address_parse("<bob+x@example.org>", 19, "+", &a), ADDRESS_OK);
	assert_int_equal(quota_resolve(&src, &a, "+", res), SOURCE_OK);
	assert_int_equal(res->nmailboxes, 1);
	assert_string_equal(res->mailboxes[0].address, "bob@example.org");
	free(res);
}

/* ---- maildir paths and the maildir source ----------------------------------- */

static void
test_maildir_path(void **state)
{
	static const struct {
		const char *root, *tmpl, *address, *want;	/* want NULL: refused */
	} rows[] = {
		{"/var/vmail", "%d/%l/", "bob@example.org", "/var/vmail/example.org/bob/"},
		{"/var/vmail/", "%d/%l/", "bob@example.org", "/var/vmail/example.org/bob/"},
		{"/var/vmail", "%u", "bob@example.org", "/var/vmail/bob@example.org"},
		{"/var/vmail", "%d/%l/Maildir", "bob@example.org",
		 "/var/vmail/example.org/bob/Maildir"},
		{"/", "%d/%l", "bob@example.org", "/example.org/bob"},
		{"/var/vmail", "%d/%l/", "bob%x@example.org", "/var/vmail/example.org/bob%x/"},
		{"/var/vmail", "%d/%l/", "\"b o\"@example.org", "/var/vmail/example.org/\"b o\"/"},
		{"/var/vmail", "%d/%l/", "..@example.org", NULL},
		{"/var/vmail", "%d/%l/", ".@example.org", NULL},
		{"/var/vmail", "%d/%l/", "a/b@example.org", NULL},
		{"/var/vmail", "%d/%l/", "\"../../etc\"@example.org", NULL},
		{"/var/vmail", "%d/%l/", "bob@..", NULL},
		{"/var/vmail", "%d/%l/", "bob@.", NULL},
		{"/var/vmail", "%d/%l/", "bob@a/b", NULL},
		{"/var/vmail", "%d/%l/", "b\nob@example.org", NULL},
		{"/var/vmail", "%d/%l/", "@example.org", NULL},
		{"/var/vmail", "%d/%l/", "bob", NULL},
		{"/var/vmail", "%d/.%l", ".@example.org", NULL},	/* makes ".." */
		{"/var/vmail", "%d/%l%%", "bob@example.org", "/var/vmail/example.org/bob%"},
		{"/var/vmail", "%x", "bob@example.org", NULL},
		{"/var/vmail", "%", "bob@example.org", NULL},
	};
	char	buf[QUOTA_SOURCE_VALUE_MAX], longaddr[600];

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		bool	ok = quota_source_maildir_path(rows[i].root, rows[i].tmpl, rows[i].address,
						       buf, sizeof(buf));

		if (ok != (rows[i].want != NULL) || (ok && strcmp(buf, rows[i].want) != 0))
			fail_msg("%s %s %s: %s", rows[i].root, rows[i].tmpl, rows[i].address,
				 ok ? buf : "refused");
	}
	/* a path that does not fit is refused, not cut */
	memset(longaddr, 'a', 400);
	strcpy(longaddr + 400, "@example.org");
	assert_false(quota_source_maildir_path("/var/vmail", "%u/%u/%u", longaddr, buf, 1024));
	assert_true(quota_source_maildir_path("/var/vmail", "%u", longaddr, buf, 1024));
}

static char tmpdir[256];

/* mkdir -p */
static void
mkdirs(const char *path)
{
	char	buf[1024];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* Write text to dir/name. */
static void
put(const char *dir, const char *name, const char *text)
{
	char	path[1024];
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

static void
test_maildir_source(void **state)
{
	struct config *cfg = config_load(NULL, NULL, NULL);
	struct quota_source *src;
	struct quota_mailbox mb;
	char	dir[512], link[512];

	(void)state;
	assert_non_null(cfg);
	assert_true(fixture_mkdtemp(tmpdir, sizeof(tmpdir), "test_address"));
	free(cfg->quota.maildir_root);
	cfg->quota.maildir_root = strdup(tmpdir);

	snprintf(dir, sizeof(dir), "%s/example.org/bob", tmpdir);
	mkdirs(dir);
	put(dir, "maildirsize", "1000S,10C\n200 2\n");
	snprintf(dir, sizeof(dir), "%s/example.org/nolimit", tmpdir);
	mkdirs(dir);
	snprintf(dir, sizeof(dir), "%s/example.org/garbage", tmpdir);
	mkdirs(dir);
	put(dir, "maildirsize", "\x01\x02garbage\n");
	snprintf(dir, sizeof(dir), "%s/example.org/bob", tmpdir);
	snprintf(link, sizeof(link), "%s/example.org/linked", tmpdir);
	assert_int_equal(symlink(dir, link), 0);

	assert_non_null(src = quota_source_maildir_open(cfg));
	assert_string_equal(src->ops->name, "maildir");
	assert_int_equal(src->ops->mailbox(src, "bob@example.org", &mb), SOURCE_OK);
	assert_int_equal(mb.quota, 1000);
	snprintf(dir, sizeof(dir), "%s/example.org/bob/", tmpdir);
	assert_string_equal(mb.maildir, dir);
	assert_int_equal(src->ops->mailbox(src, "nolimit@example.org", &mb), SOURCE_OK);
	assert_int_equal(mb.quota, 0);
	assert_int_equal(src->ops->mailbox(src, "garbage@example.org", &mb), SOURCE_OK);
	assert_int_equal(mb.quota, 0);
	assert_int_equal(src->ops->mailbox(src, "nobody@example.org", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "bob@example.net", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "..@example.org", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "bob@..", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "a/b@example.org", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "@example.org", &mb), SOURCE_NOT_FOUND);
	assert_int_equal(src->ops->mailbox(src, "linked@example.org", &mb), SOURCE_ERROR);
	assert_null(src->ops->alias);	/* no aliases without SQL */
	assert_null(src->ops->alias_domain);
	src->ops->close(src);
	config_release(cfg);
	fixture_rmtree(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rows),
		cmocka_unit_test(test_parse_lengths),
		cmocka_unit_test(test_display),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_resolve_no_aliases),
		cmocka_unit_test(test_maildir_path),
		cmocka_unit_test(test_maildir_source),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
