/*
 * test_cidr.c - network prefix parsing and matching, IPv4, IPv6 and
 * v4-mapped addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"

static bool
matches(const char *net, const char *addr)
{
	struct cidr c;
	struct ipaddr a;

	assert_true(cidr_parse(net, &c));
	assert_true(ipaddr_parse(addr, &a));
	return cidr_match(&c, &a);
}

static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "/", "1.2.3.4/", "1.2.3.4/33", "::1/129", "1.2.3/8", "1.2.3.4/8x",
		"1.2.3.4/-1", "01.2.3.4", "1.2.3.4.5", "host", "1.2.3.4/0008", "::1%lo",
		"1.2.3.4 /8", "300.1.1.1", "fe80::1::2",
	};
	struct cidr c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cidr_parse(bad[i], &c));
}

/* A network, an address, and whether the one holds the other. */
struct match_row {
	const char *net, *addr;
	bool	match;
};

/* Fail on the first row whose answer differs. */
static void
check_matches(const struct match_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (matches(rows[i].net, rows[i].addr) != rows[i].match)
			fail_msg("%s %s %s", rows[i].net,
			    rows[i].match ? "does not hold" : "holds", rows[i].addr);
	}
}

static void
test_ipv4(void **state)
{
	static const struct match_row rows[] = {
		{ "127.0.0.0/8", "127.1.2.3", true },
		{ "127.0.0.0/8", "128.0.0.1", false },
		{ "192.0.2.0/25", "192.0.2.127", true },
		{ "192.0.2.0/25", "192.0.2.128", false },
		{ "0.0.0.0/0", "203.0.113.9", true },
		{ "192.0.2.7", "192.0.2.7", true },
		{ "192.0.2.7", "192.0.2.8", false },
		/* host bits in the network are ignored */
		{ "10.1.2.3/8", "10.200.0.1", true },
	};

	(void)state;
	check_matches(rows, sizeof(rows) / sizeof(rows[0]));
}

static void
test_ipv6(void **state)
{
	static const struct match_row rows[] = {
		{ "::1/128", "::1", true },
		{ "::1/128", "::2", false },
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/33", "2001:db8:8000::1", false },
		{ "2001:db8::/32", "192.0.2.1", false },
		{ "192.0.2.0/24", "2001:db8::1", false },
	};

	(void)state;
	check_matches(rows, sizeof(rows) / sizeof(rows[0]));
}

static void
test_v4_mapped(void **state)
{
	struct sockaddr_in6 sin6;
	struct ipaddr a;
	struct cidr c;
	char	text[64];

	(void)state;
	assert_true(matches("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_true(matches("::ffff:10.0.0.0/104", "10.9.8.7"));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	ipaddr_from_sockaddr((struct sockaddr *)&sin6, &a);
	assert_int_equal(a.family, AF_INET);
	ipaddr_format(&a, text, sizeof(text));
	assert_string_equal(text, "192.0.2.1");
	assert_true(cidr_parse("192.0.2.0/24", &c));
	assert_true(cidr_match(&c, &a));
}

static void
test_unknown_address(void **state)
{
	struct ipaddr a;
	struct cidr c;
	char	text[64];

	(void)state;
	ipaddr_from_sockaddr(NULL, &a);
	assert_int_equal(a.family, AF_UNSPEC);
	ipaddr_format(&a, text, sizeof(text));
	assert_string_equal(text, "unknown");
	assert_true(cidr_parse("0.0.0.0/0", &c));
	assert_false(cidr_match(&c, &a));
}

static void
test_list(void **state)
{
	struct cidr_list list = {0};
	struct cidr c;
	struct ipaddr a;

	(void)state;
	assert_true(cidr_parse("192.0.2.0/24", &c));
	assert_true(cidr_list_add(&list, &c));
	assert_true(cidr_parse("2001:db8::/32", &c));
	assert_true(cidr_list_add(&list, &c));
	assert_true(ipaddr_parse("2001:db8::5", &a));
	assert_true(cidr_list_match(&list, &a));
	assert_true(ipaddr_parse("198.51.100.1", &a));
	assert_false(cidr_list_match(&list, &a));
	cidr_list_free(&list);
	assert_int_equal(list.count, 0);
}

static void
test_mask(void **state)
{
	struct ipaddr a;
	char	text[64];

	(void)state;
	assert_true(ipaddr_parse("2001:db8:1:2:3:4:5:6", &a));
	ipaddr_mask(&a, 64);
	ipaddr_format(&a, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2::");
	assert_true(ipaddr_parse("192.0.2.77", &a));
	ipaddr_mask(&a, 26);
	ipaddr_format(&a, text, sizeof(text));
	assert_string_equal(text, "192.0.2.64");
}

/* RFC 5321 address literals: the tag decides the family; anything else is refused. */
static void
test_literal(void **state)
{
	static const char *const bad[] = {
		"", "[]", "[1.2.3.4", "1.2.3.4]", "1.2.3.4", "[1.2.3]", "[1.2.3.256]",
		"[2001:db8::1]", "[IPv6:]", "[IPv6:1.2.3.4]", "[IPv6:zz::1]", "[ipv4:1.2.3.4]",
		"[IPv6:2001:db8::1%eth0]", "[ 1.2.3.4]",
	};
	struct ipaddr a, b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ipaddr_parse_literal(bad[i], strlen(bad[i]), &a))
			fail_msg("\"%s\" parsed as an address literal", bad[i]);
	assert_false(ipaddr_parse_literal("[1.2.3.4]\0", 10, &a));
	assert_true(ipaddr_parse_literal("[192.0.2.1]", 11, &a));
	assert_true(ipaddr_parse("192.0.2.1", &b));
	assert_true(ipaddr_equal(&a, &b));
	/* The v4-mapped form is the IPv4 address; the tag in any case. */
	assert_true(ipaddr_parse_literal("[ipv6:::FFFF:192.0.2.1]", 23, &a));
	assert_true(ipaddr_equal(&a, &b));
	assert_true(ipaddr_parse_literal("[IPv6:2001:DB8:0::1]", 20, &a));
	assert_true(ipaddr_parse("2001:db8::1", &b));
	assert_true(ipaddr_equal(&a, &b));
	assert_true(ipaddr_parse("2001:db8::2", &b));
	assert_false(ipaddr_equal(&a, &b));
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_false(ipaddr_equal(&a, &b));	/* AF_UNSPEC equals nothing */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_unknown_address),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_literal),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
