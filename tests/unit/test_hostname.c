/*
 * test_hostname.c - unit tests for the Postfix-compatible HELO classifier.
 *
 * Every row gives the verdict Postfix 3.7.11 reaches with both
 * restrictions (reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname,
 * in that order), with reject_non_fqdn_helo_hostname alone and with
 * reject_invalid_helo_hostname alone.  The expectations were derived from
 * Postfix's sources (smtpd_check.c, valid_hostname.c,
 * valid_mailhost_addr.c) and cross-checked against those functions.
 * Output is TAP, for automake's tap-driver.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checks.h"
#include "policy.h"
#include "config.h"
#include "hostname.h"
#include "session.h"

#define OK	HOSTNAME_OK
#define NF	HOSTNAME_NOT_FQDN
#define INV	HOSTNAME_INVALID
#define LIT	HOSTNAME_BAD_LITERAL

struct row {
	const char *name;
	size_t	len;
	enum hostname_verdict both;	/* invalid, then non_fqdn */
	enum hostname_verdict nf;	/* reject_non_fqdn_helo_hostname only */
	enum hostname_verdict inv;	/* reject_invalid_helo_hostname only */
};

/* A literal's length is taken with sizeof, so embedded NULs count. */
#define ROW(s, b, n, i)	{ (s), sizeof(s) - 1, (b), (n), (i) }
#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* Print name with non-printable bytes escaped, for failure messages. */
static void
print_name(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			print_error("%c", c);
		else
			print_error("\\x%02x", c);
	}
}

/* Check one name under the three flag combinations that enable a check. */
static void
check(const char *name, size_t len, enum hostname_verdict both,
    enum hostname_verdict nf, enum hostname_verdict inv)
{
	enum hostname_verdict got[3];
	const enum hostname_verdict want[3] = { both, nf, inv };
	char   *copy;
	int	k;

	/* An exact-size heap copy lets ASan catch a read past the end. */
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, name, len);
	got[0] = hostname_classify(copy, len, true, true);
	got[1] = hostname_classify(copy, len, true, false);
	got[2] = hostname_classify(copy, len, false, true);
	assert_int_equal(hostname_classify(copy, len, false, false), OK);
	free(copy);
	for (k = 0; k < 3; k++) {
		if (got[k] != want[k]) {
			print_error("name \"");
			print_name(name, len);
			print_error("\" (%zu bytes), flags %s: got %d, want %d\n",
			    len, k == 0 ? "both" : k == 1 ? "non_fqdn" :
			    "invalid", (int)got[k], (int)want[k]);
			fail();
		}
	}
}

static void
check_rows(const struct row *rows, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		check(rows[i].name, rows[i].len, rows[i].both, rows[i].nf,
		    rows[i].inv);
}

/* Build a name of labels of label_len 'a's joined by dots, total_len long. */
static size_t
make_name(char *buf, size_t total_len, size_t label_len)
{
	size_t	i, run = 0;

	for (i = 0; i < total_len; i++) {
		if (run == label_len && i + 1 < total_len) {
			buf[i] = '.';
			run = 0;
		} else {
			buf[i] = 'a';
			run++;
		}
	}
	return total_len;
}

static void
test_valid_names(void **state)
{
	static const struct row rows[] = {
		ROW("mail.example.com", OK, OK, OK),
		ROW("MX1.Example.COM", OK, OK, OK),
		ROW("a.b", OK, OK, OK),
		ROW("localhost.localdomain", OK, OK, OK),
		ROW("123.example", OK, OK, OK),
		ROW("mail.example.123", OK, OK, OK),
		ROW("ma-il.ex--ample.com", OK, OK, OK),
		ROW("xn--bcher-kva.example", OK, OK, OK),
		ROW("a.b.c.d.e.f.g.h.i.j.k", OK, OK, OK),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_single_label(void **state)
{
	static const struct row rows[] = {
		ROW("localhost", NF, NF, OK),
		ROW("usuario-10c7392", NF, NF, OK),
		ROW("ylmf-pc", NF, NF, OK),
		ROW("WIN-ABC123DEF", NF, NF, OK),
		ROW("a", NF, NF, OK),
		ROW("x1", NF, NF, OK),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_trailing_dot(void **state)
{
	static const struct row rows[] = {
		/* One trailing dot is dropped before the checks... */
		ROW("mail.example.com.", OK, OK, OK),
		ROW("localhost.", NF, NF, OK),
		ROW("a.", NF, NF, OK),
		/* ...but not two, and not a lone dot. */
		ROW("mail.example.com..", INV, NF, INV),
		ROW("a..", INV, NF, INV),
		ROW(".", INV, NF, INV),
		ROW("..", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_misplaced_dots(void **state)
{
	static const struct row rows[] = {
		ROW(".example.com", INV, NF, INV),
		ROW("mail..example.com", INV, NF, INV),
		ROW("...", INV, NF, INV),
		ROW(".a", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_hyphens(void **state)
{
	static const struct row rows[] = {
		ROW("-mail.example.com", INV, NF, INV),
		ROW("mail-.example.com", INV, NF, INV),
		ROW("mail.-example.com", INV, NF, INV),
		ROW("mail.example-.com", INV, NF, INV),
		ROW("mail.example.com-", INV, NF, INV),
		ROW("mail.example.com-.", INV, NF, INV),
		ROW("-", INV, NF, INV),
		ROW("a-", INV, NF, INV),
		ROW("a-b", NF, NF, OK),
		/* A hyphen makes a label non-numeric (Postfix >= 2.7). */
		ROW("1-2.3", OK, OK, OK),
		ROW("1.2-3", OK, OK, OK),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_underscore(void **state)
{
	static const struct row rows[] = {
		ROW("mail_1.example.com", OK, OK, OK),
		ROW("_dmarc.example.com", OK, OK, OK),
		ROW("mail.example_.com", OK, OK, OK),
		ROW("_", NF, NF, OK),
		ROW("_._", OK, OK, OK),
		ROW("1_2.3", OK, OK, OK),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_numeric(void **state)
{
	static const struct row rows[] = {
		/* All digits and dots: never an FQDN, but a bare IPv4
		 * address still passes reject_invalid_helo_hostname. */
		ROW("1.2.3.4", NF, NF, OK),
		ROW("1.2.3.4.", NF, NF, OK),
		ROW("0.0.0.0", NF, NF, OK),
		ROW("255.255.255.255", NF, NF, OK),
		ROW("123", INV, NF, INV),
		ROW("1.2.3", INV, NF, INV),
		ROW("1.2.3.4.5", INV, NF, INV),
		ROW("1.2.3.256", INV, NF, INV),
		ROW("300.1.1.1", INV, NF, INV),
		ROW("0.1.2.3", INV, NF, INV),
		ROW("01.2.3.4", NF, NF, OK),
		ROW("1.2.3.4..", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_bare_ipv6(void **state)
{
	static const struct row rows[] = {
		ROW("::1", NF, NF, OK),
		ROW("2001:db8::1", NF, NF, OK),
		ROW("::ffff:1.2.3.4", NF, NF, OK),
		ROW("2001:db8::1.", NF, NF, OK),
		ROW("IPv6:::1", INV, NF, INV),
		ROW("2001:db8::g", INV, NF, INV),
		ROW(":", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_label_length(void **state)
{
	char	buf[128];
	size_t	n;

	(void)state;
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".example.com", 12);
	check(buf, 75, OK, OK, OK);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".example.com", 12);
	check(buf, 76, INV, NF, INV);
	/* The label length counts hyphens too. */
	memset(buf, 'a', 63);
	buf[31] = '-';
	memcpy(buf + 63, ".com", 4);
	check(buf, 67, OK, OK, OK);
	/* Last label, and a lone label. */
	memcpy(buf, "mail.", 5);
	memset(buf + 5, '7', 63);
	check(buf, 68, OK, OK, OK);
	memset(buf + 5, '7', 64);
	check(buf, 69, INV, NF, INV);
	n = make_name(buf, 63, 63);
	check(buf, n, NF, NF, OK);
	n = make_name(buf, 64, 64);
	check(buf, n, INV, NF, INV);
}

static void
test_name_length(void **state)
{
	char	buf[600];

	(void)state;
	check(buf, make_name(buf, 255, 50), OK, OK, OK);
	check(buf, make_name(buf, 256, 50), INV, NF, INV);
	/* The trailing dot is dropped before the length is checked. */
	make_name(buf, 255, 50);
	buf[255] = '.';
	check(buf, 256, OK, OK, OK);
	buf[256] = '.';
	check(buf, 257, INV, NF, INV);
	check(buf, make_name(buf, 599, 63), INV, NF, INV);
}

static void
test_bad_characters(void **state)
{
	static const struct row rows[] = {
		ROW("mail%example.com", INV, NF, INV),
		ROW("user@example.com", INV, NF, INV),
		ROW("\"mail.example.com\"", INV, NF, INV),
		ROW("'mail.example.com'", INV, NF, INV),
		ROW("mail example.com", INV, NF, INV),
		ROW("mail.example.com:25", INV, NF, INV),
		ROW("mail/example.com", INV, NF, INV),
		ROW("mail\\.example.com", INV, NF, INV),
		ROW("*.example.com", INV, NF, INV),
		ROW("mail.example.com]", INV, NF, INV),
		ROW("<mail.example.com>", INV, NF, INV),
		ROW("mail\r.example.com", INV, NF, INV),
		ROW("mail\t.example.com", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_non_ascii(void **state)
{
	static const struct row rows[] = {
		/* Without SMTPUTF8 any byte >= 0x80 is an invalid character. */
		ROW("b\xc3\xbc" "cher.example", INV, NF, INV),
		ROW("b\xfc" "cher.example", INV, NF, INV),
		ROW("mail.example.com\xff", INV, NF, INV),
		ROW("\xe2\x80\x8bmail.example.com", INV, NF, INV),
		ROW("[1.2.3.4\xc2\xa0]", LIT, LIT, LIT),
		ROW("\xc3\xa9", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_nul(void **state)
{
	static const struct row rows[] = {
		ROW("mail\0.example.com", INV, NF, INV),
		ROW("mail.example.com\0", INV, NF, INV),
		ROW("\0mail.example.com", INV, NF, INV),
		ROW("mail.example.com\0.", INV, NF, INV),
		ROW("1.2.3.4\0", INV, NF, INV),
		ROW("::1\0", INV, NF, INV),
		ROW("\0", INV, NF, INV),
		ROW("[1.2.3.4\0]", LIT, LIT, LIT),
		ROW("[IPv6:::1\0]", LIT, LIT, LIT),
		ROW("[1.2.3.4]\0", LIT, LIT, LIT),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_empty(void **state)
{
	(void)state;
	check("", 0, INV, NF, INV);
	assert_false(hostname_valid("", 0));
	assert_false(hostname_valid_ipv4("", 0));
	assert_false(hostname_valid_ipv6("", 0));
}

static void
test_literal_ipv4(void **state)
{
	static const struct row rows[] = {
		ROW("[1.2.3.4]", OK, OK, OK),
		ROW("[127.0.0.1]", OK, OK, OK),
		ROW("[0.0.0.0]", OK, OK, OK),
		ROW("[255.255.255.255]", OK, OK, OK),
		ROW("[01.002.3.4]", OK, OK, OK),
		ROW("[1.2.3]", LIT, LIT, LIT),
		ROW("[1.2.3.4.5]", LIT, LIT, LIT),
		ROW("[1.2.3.256]", LIT, LIT, LIT),
		ROW("[300.1.1.1]", LIT, LIT, LIT),
		ROW("[0.1.2.3]", LIT, LIT, LIT),
		ROW("[1..2.3]", LIT, LIT, LIT),
		ROW("[1.2.3.4.]", LIT, LIT, LIT),
		ROW("[.1.2.3.4]", LIT, LIT, LIT),
		ROW("[1.2.3.-4]", LIT, LIT, LIT),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_literal_ipv6(void **state)
{
	static const struct row rows[] = {
		ROW("[IPv6:::1]", OK, OK, OK),
		ROW("[IPv6:2001:db8::1]", OK, OK, OK),
		ROW("[ipv6:2001:DB8::1]", OK, OK, OK),
		ROW("[IPV6:::]", OK, OK, OK),
		ROW("[IPv6:1::]", OK, OK, OK),
		ROW("[IPv6:::ffff:1.2.3.4]", OK, OK, OK),
		ROW("[IPv6:1:2:3:4:5:6:7:8]", OK, OK, OK),
		ROW("[IPv6:1:2:3:4:5:6:1.2.3.4]", OK, OK, OK),
		/* Postfix does not insist on eight fields. */
		ROW("[IPv6:1:2:3]", OK, OK, OK),
		ROW("[IPv6:zz]", LIT, LIT, LIT),
		ROW("[IPv6:]", LIT, LIT, LIT),
		ROW("[IPv6:1:2]", LIT, LIT, LIT),
		ROW("[IPv6::1:2]", LIT, LIT, LIT),
		ROW("[IPv6:1:2:]", LIT, LIT, LIT),
		ROW("[IPv6::::]", LIT, LIT, LIT),
		ROW("[IPv6:1::2::3]", LIT, LIT, LIT),
		ROW("[IPv6:12345::1]", LIT, LIT, LIT),
		ROW("[IPv6:1:2:3:4:5:6:7:8:9]", LIT, LIT, LIT),
		ROW("[IPv6:1:2:3:4:5:6:7:1.2.3.4]", LIT, LIT, LIT),
		ROW("[IPv6:::ffff:1.2.3]", LIT, LIT, LIT),
		ROW("[IPv6:::ffff:a.2.3.4]", LIT, LIT, LIT),
		ROW("[IPv6:::1%eth0]", LIT, LIT, LIT),
		ROW("[IPv6:1.2.3.4]", LIT, LIT, LIT),
		ROW("[IPv6 ::1]", LIT, LIT, LIT),
		/* No tag: the IPv4 syntax applies. */
		ROW("[::1]", LIT, LIT, LIT),
		ROW("[2001:db8::1]", LIT, LIT, LIT),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

static void
test_literal_malformed(void **state)
{
	static const struct row rows[] = {
		ROW("[]", LIT, LIT, LIT),
		ROW("[", LIT, LIT, LIT),
		ROW("[]]", LIT, LIT, LIT),
		ROW("[1.2.3.4", LIT, LIT, LIT),
		ROW("[1.2.3.4].", LIT, LIT, LIT),
		ROW("[1.2.3.4]]", LIT, LIT, LIT),
		ROW("[[1.2.3.4]]", LIT, LIT, LIT),
		ROW("[mail.example.com]", LIT, LIT, LIT),
		ROW("[localhost]", LIT, LIT, LIT),
		/* Only a leading '[' makes a literal. */
		ROW("1.2.3.4]", INV, NF, INV),
		ROW("]", INV, NF, INV),
	};

	(void)state;
	check_rows(rows, NROWS(rows));
}

/* One call of a hostname_valid*() helper: the text, the length passed, the answer. */
struct helper_row {
	const char *text;
	size_t	len;
	bool	valid;
};

/* Call fn on each row and fail on the first answer that differs. */
static void
check_helper(bool (*fn)(const char *, size_t), const char *fn_name,
    const struct helper_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fn(rows[i].text, rows[i].len) != rows[i].valid)
			fail_msg("%s(\"%s\", %zu) is not %s", fn_name, rows[i].text,
			    rows[i].len, rows[i].valid ? "true" : "false");
	}
}

static void
test_helper_hostname(void **state)
{
	static const struct helper_row rows[] = {
		{ "a", 1, true },
		{ "a.b", 3, true },
		{ "_", 1, true },
		{ "1-2", 3, true },
		{ "1.2", 3, false },
		{ "a.", 2, false },	/* no dot stripping here */
		{ "a.b", 2, false },	/* length is honoured */
		{ "a.bX", 3, true },
		{ "a-", 2, false },
		{ "-a", 2, false },
	};

	(void)state;
	check_helper(hostname_valid, "hostname_valid", rows, NROWS(rows));
}

static void
test_helper_ipv4(void **state)
{
	static const struct helper_row rows[] = {
		{ "1.2.3.4", 7, true },
		{ "00.0.0.0", 8, true },
		{ "1.2.3.0004", 10, true },
		{ "1.2.3.45", 7, true },	/* "1.2.3.4" */
		{ "000.1.1.1", 9, false },
		{ "1.2.3.4.", 8, false },
		{ "1.2.3.4", 6, false },	/* "1.2.3." */
		{ "1.2.3.999", 9, false },
		{ "1.2.3.4 ", 8, false },
		{ "0x1.2.3.4", 9, false },
	};

	(void)state;
	check_helper(hostname_valid_ipv4, "hostname_valid_ipv4", rows, NROWS(rows));
}

static void
test_helper_ipv6(void **state)
{
	static const struct helper_row rows[] = {
		{ "::", 2, true },
		{ "::1", 3, true },
		{ "1::", 3, true },
		{ "1:2:3", 5, true },
		{ "FFFF::abcd", 10, true },
		{ "::1.2.3.4", 9, true },
		{ "1:2", 3, false },
		{ ":1:2", 4, false },
		{ ":::", 3, false },
		{ "fffff::", 7, false },
		{ "::0.1.2.3", 9, false },
		{ "1.2.3.4", 7, false },
		{ "1:2:3", 4, false },	/* "1:2:" */
	};

	(void)state;
	check_helper(hostname_valid_ipv6, "hostname_valid_ipv6", rows, NROWS(rows));
}

/* With both flags, the verdict is the first refusal: invalid, then non-FQDN. */
static void
test_flag_composition(void **state)
{
	static const char *const names[] = {
		"mail.example.com", "localhost", "a..b", "1.2.3.4", "123",
		"::1", "[1.2.3.4]", "[1.2.3]", "bad!name", "x.", "", "[",
	};
	size_t	i;

	(void)state;
	for (i = 0; i < NROWS(names); i++) {
		size_t	len = strlen(names[i]);
		enum hostname_verdict nf, inv, both;

		nf = hostname_classify(names[i], len, true, false);
		inv = hostname_classify(names[i], len, false, true);
		both = hostname_classify(names[i], len, true, true);
		assert_int_equal(both, inv != OK ? inv : nf);
		/* Alone, the non-FQDN check refuses every invalid name too. */
		assert_int_not_equal(nf, INV);
		if (inv == INV)
			assert_int_equal(nf, NF);
		assert_true(inv == OK || inv == INV || inv == LIT);
	}
}

/*
 * The reply a client gets at RCPT TO, through session_set_helo() and
 * check_helo, for the names a site sees most: a malformed name is
 * refused as invalid (501) before the FQDN check could answer 504.
 */
/* check_helo's verdict at RCPT for the session's HELO: want is the reply, NULL for none. */
static void
expect_verdict(struct session *s, const char *helo, const char *want)
{
	struct verdict v;
	char	got[sizeof(v.reply.text) + 32];

	memset(&v, 0, sizeof(v));
	check_helo.run(s, NULL, STAGE_RCPT, &v);
	if (want == NULL) {
		if (v.kind == VERDICT_REFUSE)
			print_error("HELO \"%s\": refused with %s %s %s\n", helo,
			    v.reply.code, v.reply.dsn, v.reply.text);
		assert_int_not_equal(v.kind, VERDICT_REFUSE);
	} else {
		assert_int_equal(v.kind, VERDICT_REFUSE);
		snprintf(got, sizeof(got), "%s %s %s", v.reply.code,
		    v.reply.dsn, v.reply.text);
		assert_string_equal(got, want);
	}
}

static void
expect_reply(bool reject_non_fqdn, bool reject_invalid, const char *helo,
    const char *want)
{
	struct config *cfg = config_load(NULL, NULL, NULL);
	struct session *s;

	assert_non_null(cfg);
	cfg->helo.enabled = true;
	cfg->helo.enforce_at = ENFORCE_RCPT;
	cfg->helo.reject_non_fqdn = reject_non_fqdn;
	cfg->helo.reject_invalid = reject_invalid;
	s = policy_session_open(cfg);
	assert_non_null(s);
	session_set_helo(s, helo);
	expect_verdict(s, helo, want);
	session_close(s);	/* releases cfg: the session held its reference */
}

static void
test_reply_malformed_501(void **state)
{
	static const char *const names[][2] = {
		{ "ex..ample.com", "ex..ample.com" },
		{ "-bad.example.com", "-bad.example.com" },
		{ "bad-.example.com", "bad-.example.com" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com" },
		/* The name is shown as Postfix shows it: a space becomes '?'. */
		{ "exa mple.com", "exa?mple.com" },
		{ "example.com..", "example.com.." },
		{ "%s%n%x.example.com", "%s%n%x.example.com" },
		{ "mail%example.com", "mail%example.com" },
		{ "123", "123" },
		{ "1.2.3.256", "1.2.3.256" },
	};
	char	want[512];
	size_t	i;

	(void)state;
	assert_int_equal(strlen(names[3][0]), 64 + 12);
	for (i = 0; i < NROWS(names); i++) {
		snprintf(want, sizeof(want),
		    "501 5.5.2 <%s>: Helo command rejected: Invalid name",
		    names[i][1]);
		expect_reply(true, true, names[i][0], want);
		/* With the FQDN check off the reply is the same. */
		expect_reply(false, true, names[i][0], want);
		/* Without the syntax check, Postfix's reject_non_fqdn_helo_hostname
		 * alone refuses a malformed name as not fully qualified. */
		snprintf(want, sizeof(want),
		    "504 5.5.2 <%s>: Helo command rejected: need fully-qualified hostname",
		    names[i][1]);
		expect_reply(true, false, names[i][0], want);
		expect_reply(false, false, names[i][0], NULL);
	}
}

static void
test_reply_not_fqdn_504(void **state)
{
	static const char *const names[] = {
		"localhost", "usuario-10c7392", "localhost.", "1.2.3.4", "::1",
	};
	char	want[512];
	size_t	i;

	(void)state;
	for (i = 0; i < NROWS(names); i++) {
		snprintf(want, sizeof(want),
		    "504 5.5.2 <%s>: Helo command rejected: need fully-qualified hostname",
		    names[i]);
		expect_reply(true, true, names[i], want);
		expect_reply(true, false, names[i], want);
		/* Well-formed (or a bare address): the syntax check passes it. */
		expect_reply(false, true, names[i], NULL);
	}
	expect_reply(true, true, "mail.example.com", NULL);
	expect_reply(true, true, "[1.2.3.4]", NULL);
}

static void
test_reply_bad_literal(void **state)
{
	static const char want[] =
	    "501 5.5.2 <[1.2.3.256]>: Helo command rejected: invalid ip address";

	(void)state;
	expect_reply(true, true, "[1.2.3.256]", want);
	expect_reply(true, false, "[1.2.3.256]", want);
	expect_reply(false, true, "[1.2.3.256]", want);
	expect_reply(false, false, "[1.2.3.256]", NULL);
}

/* A configuration whose reject_own_names holds the names given (freed with it). */
static struct config *
own_names_config(const char *const *names, size_t n)
{
	struct config *cfg = config_load(NULL, NULL, NULL);

	assert_non_null(cfg);
	cfg->helo.reject_own_names.items = calloc(n, sizeof(char *));
	assert_non_null(cfg->helo.reject_own_names.items);
	for (size_t i = 0; i < n; i++)
		assert_non_null(cfg->helo.reject_own_names.items[i] = strdup(names[i]));
	cfg->helo.reject_own_names.count = n;
	return cfg;
}

/* The verdict at RCPT for helo on a connection to daemon_addr, authenticated or not. */
static void
expect_own(const char *daemon_addr, bool authenticated, const char *helo, const char *want)
{
	static const char *const names[] = {
		"mx1.example.org", "Example.ORG.", "[192.0.2.1]", "[IPv6:2001:DB8::25]",
	};
	struct config *cfg = own_names_config(names, NROWS(names));
	struct session *s = policy_session_open(cfg);

	assert_non_null(s);
	session_set_server(s, daemon_addr, NULL);
	session_set_helo(s, helo);
	if (authenticated)
		strcpy(s->tx.auth_user, "alice");
	expect_verdict(s, helo, want);
	session_close(s);
}

/* reject_own_names: names in any case and with one trailing dot, listed and own literals. */
static void
test_own_names(void **state)
{
	static const char *const refused[] = {
		"mx1.example.org", "MX1.Example.Org", "mx1.example.org.", "example.org",
		"EXAMPLE.org", "[192.0.2.1]", "[IPv6:2001:db8::25]", "[ipv6:2001:db8:0:0::25]",
		"[198.51.100.7]", "[IPv6:2001:db8::7]", "[IPv6:::ffff:192.0.2.1]",
	};
	static const char *const passed[] = {
		"mx2.example.org", "sub.example.org", "example.org.uk",
		"[192.0.2.2]", "[IPv6:2001:db8::26]", "[198.51.100.8]", "[IPv6:::ffff:192.0.2.2]",
	};
	char	want[256];

	(void)state;
	for (size_t i = 0; i < NROWS(refused); i++) {
		/* The own address is the IPv4 one on some connections, the IPv6 one on others. */
		const char *daemon = i % 2 ? "2001:db8::7" : "198.51.100.7";

		if (strstr(refused[i], "::7") != NULL)
			daemon = "2001:db8::7";
		else if (strstr(refused[i], ".7]") != NULL)
			daemon = "::ffff:198.51.100.7";
		snprintf(want, sizeof(want), "554 5.7.1 <%s>: Helo command rejected: You are not me",
			 refused[i]);
		expect_own(daemon, false, refused[i], want);
		/* Authenticated clients are exempt, as from the other HELO rules. */
		expect_own(daemon, true, refused[i], NULL);
	}
	for (size_t i = 0; i < NROWS(passed); i++)
		expect_own("198.51.100.7", false, passed[i], NULL);
	/* A listener's wildcard address is no address of the server's own. */
	expect_own("0.0.0.0", false, "[0.0.0.0]", NULL);
	expect_own("::", false, "[IPv6:::]", NULL);
	/* The syntax rules come first: a malformed name or literal is 501, not 554. */
	expect_own("198.51.100.7", false, "mx1.example.org..",
		   "501 5.5.2 <mx1.example.org..>: Helo command rejected: Invalid name");
	expect_own("198.51.100.7", false, "[198.51.100.700]",
		   "501 5.5.2 <[198.51.100.700]>: Helo command rejected: invalid ip address");
}

/* Without reject_own_names, the server's own literal is a valid HELO. */
static void
test_own_names_empty(void **state)
{
	struct config *cfg = config_load(NULL, NULL, NULL);
	struct session *s;

	(void)state;
	assert_non_null(cfg);
	s = policy_session_open(cfg);
	assert_non_null(s);
	session_set_server(s, "192.0.2.1", NULL);
	session_set_helo(s, "[192.0.2.1]");
	expect_verdict(s, "[192.0.2.1]", NULL);
	session_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_names),
		cmocka_unit_test(test_single_label),
		cmocka_unit_test(test_trailing_dot),
		cmocka_unit_test(test_misplaced_dots),
		cmocka_unit_test(test_hyphens),
		cmocka_unit_test(test_underscore),
		cmocka_unit_test(test_numeric),
		cmocka_unit_test(test_bare_ipv6),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_bad_characters),
		cmocka_unit_test(test_non_ascii),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_literal_ipv4),
		cmocka_unit_test(test_literal_ipv6),
		cmocka_unit_test(test_literal_malformed),
		cmocka_unit_test(test_helper_hostname),
		cmocka_unit_test(test_helper_ipv4),
		cmocka_unit_test(test_helper_ipv6),
		cmocka_unit_test(test_flag_composition),
		cmocka_unit_test(test_reply_malformed_501),
		cmocka_unit_test(test_reply_not_fqdn_504),
		cmocka_unit_test(test_reply_bad_literal),
		cmocka_unit_test(test_own_names),
		cmocka_unit_test(test_own_names_empty),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
