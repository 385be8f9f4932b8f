/*
 * test_engine.c - unit tests for the builtin milter protocol engine (milter_proto.c),
 * through its in-memory connections (milter_conn_new/feed/output/free)
 * and a table of stub callbacks defined here, not callbacks.c.
 *
 * Covers option negotiation (version, masks, macro lists), the replies of
 * each step with and without SMFIP_NR_*, MAIL/RCPT argument splitting,
 * reply codes, EOM actions, macro look-up, packets split across feeds or
 * batched in one, the protocol errors that end a connection, SMFIC_QUIT_NC
 * and the close callback.  Replies are compared byte for byte.
 * Output is TAP, for automake's tap-driver.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <libmilter/mfdef.h>

#include "engine.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
/* A string literal's bytes and length, embedded NULs included, its own NUL not. */
#define D(lit)		(lit), sizeof(lit) - 1
#define ALL_ACTIONS	SMFI_CURR_ACTS
#define ALL_STEPS	SMFI_CURR_PROT

/* ---- packets -------------------------------------------------------------- */

/* A byte string: packets to feed, or the replies expected. */
struct bytes {
	uint8_t	b[8192];
	size_t	len;
};

static void
add(struct bytes *o, const void *data, size_t len)
{
	assert_true(o->len + len <= sizeof(o->b));
	if (len > 0)
		memcpy(o->b + o->len, data, len);
	o->len += len;
}

static void
add_u32(struct bytes *o, uint32_t v)
{
	uint32_t be = htonl(v);

	add(o, &be, sizeof(be));
}

/* One packet: length word, command byte, data. */
static void
put(struct bytes *o, char cmd, const void *data, size_t len)
{
	add_u32(o, (uint32_t)len + 1);
	add(o, &cmd, 1);
	add(o, data, len);
}

/* A packet whose data is a string literal, embedded NULs included. */
#define PUT(o, cmd, lit)	put((o), (cmd), (lit), sizeof(lit) - 1)
/* A packet without data (a reply such as 'c'). */
#define PUT0(o, cmd)		put((o), (cmd), NULL, 0)

static void
put_optneg(struct bytes *o, uint32_t version, uint32_t actions, uint32_t steps)
{
	struct bytes d = {.len = 0};

	add_u32(&d, version);
	add_u32(&d, actions);
	add_u32(&d, steps);
	put(o, SMFIC_OPTNEG, d.b, d.len);
}

/* ---- stub callbacks --------------------------------------------------- */

enum step { ST_CONNECT, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_EOM, ST_STEPS };

/* What a step's stub does: milter_setreply() when code is set, then return ret. */
struct plan {
	sfsistat ret;
	const char *code, *dsn, *text;
};

static struct {
	unsigned long want_actions, want_steps;	/* negotiate asks for these */
	unsigned long offered_actions, offered_steps;	/* negotiate was offered these */
	const char *symlist[SMFIM_LAST + 1];	/* negotiate sets these */
	struct plan plan[ST_STEPS];
	bool	try_actions;			/* each step adds a header and quarantines */
	int	setreply_rc, addheader_rc, quarantine_rc;
	int	calls[ST_STEPS], negotiates, aborts, closes;
	char	hostname[64], addr[INET6_ADDRSTRLEN], helo[64];
	int	family;
	unsigned port;
	void   *priv_seen;			/* milter_getpriv() in helo */
	int	argc;
	char	argv[ENGINE_MAX_ARGS + 2][32];
} st;

static int
reset_stubs(void **state)
{
	(void)state;
	memset(&st, 0, sizeof(st));
	st.addheader_rc = st.quarantine_rc = st.setreply_rc = 99;
	return 0;
}

static sfsistat
step(struct milter_conn *c, enum step s)
{
	const struct plan *p = &st.plan[s];

	st.calls[s]++;
	if (st.try_actions) {
		st.addheader_rc = milter_addheader(c, "X-Test", "yes");
		st.quarantine_rc = milter_quarantine(c, "held");
	}
	if (p->code != NULL)
		st.setreply_rc = milter_setreply(c, p->code, p->dsn, p->text);
	return p->ret;
}

static sfsistat
stub_negotiate(struct milter_conn *c, unsigned long actions, unsigned long steps,
	       unsigned long *want_actions, unsigned long *want_steps)
{
	st.negotiates++;
	st.offered_actions = actions;
	st.offered_steps = steps;
	*want_actions = st.want_actions;
	*want_steps = st.want_steps;
	for (int i = SMFIM_FIRST; i <= SMFIM_LAST; i++)
		if (st.symlist[i] != NULL)
			assert_int_equal(milter_setsymlist(c, i, st.symlist[i]), 0);
	return SMFIS_CONTINUE;
}

static void
record_addr(const struct sockaddr *addr)
{
	st.family = addr ? addr->sa_family : AF_UNSPEC;
	st.addr[0] = '\0';
	st.port = 0;
	if (st.family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;

		inet_ntop(AF_INET, &sin->sin_addr, st.addr, sizeof(st.addr));
		st.port = ntohs(sin->sin_port);
	} else if (st.family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;

		inet_ntop(AF_INET6, &sin6->sin6_addr, st.addr, sizeof(st.addr));
		st.port = ntohs(sin6->sin6_port);
	}
}

static sfsistat
stub_connect(struct milter_conn *c, const char *hostname, const struct sockaddr *addr)
{
	snprintf(st.hostname, sizeof(st.hostname), "%s", hostname);
	record_addr(addr);
	milter_setpriv(c, &st);
	return step(c, ST_CONNECT);
}

static sfsistat
stub_helo(struct milter_conn *c, const char *name)
{
	snprintf(st.helo, sizeof(st.helo), "%s", name);
	st.priv_seen = milter_getpriv(c);
	return step(c, ST_HELO);
}

/* Copy argv (one more than the engine may hand on, to see a missing NULL). */
static void
record_argv(char **argv)
{
	for (st.argc = 0; st.argc <= ENGINE_MAX_ARGS && argv[st.argc] != NULL; st.argc++)
		snprintf(st.argv[st.argc], sizeof(st.argv[0]), "%s", argv[st.argc]);
}

static sfsistat
stub_envfrom(struct milter_conn *c, char **argv)
{
	record_argv(argv);
	return step(c, ST_MAIL);
}

static sfsistat
stub_envrcpt(struct milter_conn *c, char **argv)
{
	record_argv(argv);
	return step(c, ST_RCPT);
}

static sfsistat
stub_data(struct milter_conn *c)
{
	return step(c, ST_DATA);
}

static sfsistat
stub_eom(struct milter_conn *c)
{
	return step(c, ST_EOM);
}

static void
stub_abort(struct milter_conn *c)
{
	(void)c;
	st.aborts++;
}

static void
stub_close(struct milter_conn *c)
{
	(void)c;
	st.closes++;
}

static const struct milter_callbacks stubs = {
	.negotiate = stub_negotiate,
	.connect = stub_connect,
	.helo = stub_helo,
	.envfrom = stub_envfrom,
	.envrcpt = stub_envrcpt,
	.data = stub_data,
	.eom = stub_eom,
	.abort = stub_abort,
	.close = stub_close,
};

/* ---- helpers ---------------------------------------------------------- */

/* Feed all of in; the feed must give ok and exactly the bytes of want. */
static void
feed_expect(struct milter_conn *c, const struct bytes *in, bool ok, const struct bytes *want)
{
	const uint8_t *out;
	size_t	len;

	assert_int_equal(milter_conn_feed(c, in->b, in->len), ok);
	out = milter_conn_output(c, &len);
	assert_int_equal(len, want->len);
	if (len > 0)
		assert_memory_equal(out, want->b, len);
}

/* The replies so far must be none. */
static void
expect_no_output(struct milter_conn *c)
{
	size_t	len = 99;

	milter_conn_output(c, &len);
	assert_int_equal(len, 0);
}

/*
 * One option negotiation: the filter wants want_*, the MTA offers offer_*
 * at version; the reply must be OPTNEG with reply_* (and no macro lists).
 */
struct optneg {
	uint32_t version, offer_actions, offer_steps;
	unsigned long want_actions, want_steps;
	uint32_t reply_version, reply_actions, reply_steps;
};

/* A new connection negotiated as n says, reply checked. */
static struct milter_conn *
optneg_expect(const struct optneg *n)
{
	struct milter_conn *c;
	struct bytes in = {.len = 0}, want = {.len = 0};

	st.want_actions = n->want_actions;
	st.want_steps = n->want_steps;
	assert_non_null(c = milter_conn_new(&stubs));
	put_optneg(&in, n->version, n->offer_actions, n->offer_steps);
	put_optneg(&want, n->reply_version, n->reply_actions, n->reply_steps);
	feed_expect(c, &in, true, &want);
	return c;
}

/* A connection negotiated as a version-6 MTA offering everything, reply checked. */
static struct milter_conn *
open_conn(unsigned long want_actions, unsigned long want_steps)
{
	const struct optneg n = {SMFI_PROT_VERSION, ALL_ACTIONS, ALL_STEPS, want_actions, want_steps,
				 SMFI_PROT_VERSION, (uint32_t)want_actions, (uint32_t)want_steps};

	return optneg_expect(&n);
}

/* Feed one packet whose data is len bytes at data; expect the one reply packet. */
static void
step_expect(struct milter_conn *c, char cmd, const void *data, size_t len, char reply)
{
	struct bytes in = {.len = 0}, want = {.len = 0};

	put(&in, cmd, data, len);
	if (reply != 0)
		PUT0(&want, reply);
	feed_expect(c, &in, true, &want);
}

#define STEP(c, cmd, lit, reply)	step_expect((c), (cmd), (lit), sizeof(lit) - 1, (reply))

/* ---- option negotiation ----------------------------------------------- */

static void
test_optneg_version(void **state)
{
	static const struct {
		uint32_t mta, reply;
	} rows[] = {{6, 6}, {2, 2}, {3, 3}, {5, 5}, {7, 6}, {0xffffffff, 6}};

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		const struct optneg n = {rows[i].mta, ALL_ACTIONS, ALL_STEPS, SMFIF_ADDHDRS, SMFIP_NR_CONN,
					 rows[i].reply, SMFIF_ADDHDRS, SMFIP_NR_CONN};

		milter_conn_free(optneg_expect(&n));
	}
}

/* The offer as the negotiate callback saw it. */
static void
expect_offered(unsigned long actions, unsigned long steps)
{
	assert_int_equal(st.offered_actions, actions);
	assert_int_equal(st.offered_steps, steps);
}

static void
test_optneg_masks(void **state)
{
	const struct optneg n = {
		6, SMFIF_ADDHDRS | SMFIF_CHGHDRS, SMFIP_NR_CONN | SMFIP_NOHELO,
		SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST, SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL,
		6, SMFIF_ADDHDRS, SMFIP_NR_CONN,
	};

	(void)state;
	st.symlist[SMFIM_CONNECT] = "j";	/* not sent: SETSYMLIST not offered */
	milter_conn_free(optneg_expect(&n));
	expect_offered(SMFIF_ADDHDRS | SMFIF_CHGHDRS, SMFIP_NR_CONN | SMFIP_NOHELO);
}

/* An MTA offering 0 offers what a version-1 filter could have. */
static void
test_optneg_zero_offer(void **state)
{
	const struct optneg n = {2, 0, 0, ALL_ACTIONS, ALL_STEPS, 2, SMFI_V1_ACTS, SMFI_V1_PROT};

	(void)state;
	milter_conn_free(optneg_expect(&n));
	expect_offered(SMFI_V1_ACTS, SMFI_V1_PROT);
}

static void
test_optneg_symlist(void **state)
{
	struct milter_conn *c = milter_conn_new(&stubs);
	struct bytes in = {.len = 0}, want = {.len = 0}, d = {.len = 0};

	(void)state;
	st.want_actions = SMFIF_ADDHDRS | SMFIF_SETSYMLIST;
	st.want_steps = SMFIP_NR_CONN;
	st.symlist[SMFIM_EOH] = "{msg_id}";
	st.symlist[SMFIM_CONNECT] = "{daemon_name} j";
	st.symlist[SMFIM_ENVFROM] = "{auth_authen} i";
	put_optneg(&in, 6, ALL_ACTIONS, ALL_STEPS);
	add_u32(&d, 6);
	add_u32(&d, SMFIF_ADDHDRS | SMFIF_SETSYMLIST);
	add_u32(&d, SMFIP_NR_CONN);
	add_u32(&d, SMFIM_CONNECT);
	add(&d, "{daemon_name} j", 16);
	add_u32(&d, SMFIM_ENVFROM);
	add(&d, "{auth_authen} i", 16);
	add_u32(&d, SMFIM_EOH);
	add(&d, "{msg_id}", 9);
	put(&want, SMFIC_OPTNEG, d.b, d.len);
	feed_expect(c, &in, true, &want);
	milter_conn_free(c);
}

/* ---- the replies of each step ------------------------------------------ */

/* Each step's packet, and the SMFIP_NR_* bit that silences its reply. */
static const struct {
	char	cmd;
	const char *data;
	size_t	len;
	unsigned long nr;
} nr_rows[] = {
	{SMFIC_CONNECT, D("mx.example\0" "4\0\031" "192.0.2.1\0"), SMFIP_NR_CONN},
	{SMFIC_HELO, D("mx.example\0"), SMFIP_NR_HELO},
	{SMFIC_MAIL, D("<a@example.org>\0"), SMFIP_NR_MAIL},
	{SMFIC_RCPT, D("<b@example.net>\0"), SMFIP_NR_RCPT},
	{SMFIC_DATA, D(""), SMFIP_NR_DATA},
	{SMFIC_HEADER, D("Subject\0hi\0"), SMFIP_NR_HDR},
	{SMFIC_EOH, D(""), SMFIP_NR_EOH},
	{SMFIC_BODY, D("text\r\n"), SMFIP_NR_BODY},
	{SMFIC_UNKNOWN, D("XYZZY\0"), SMFIP_NR_UNKN},
};

static void
run_nr_rows(unsigned long steps)
{
	struct milter_conn *c = open_conn(0, steps);

	for (size_t i = 0; i < NROWS(nr_rows); i++) {
		bool	silent = (steps & nr_rows[i].nr) != 0;

		step_expect(c, nr_rows[i].cmd, nr_rows[i].data, nr_rows[i].len,
			    silent ? 0 : SMFIR_CONTINUE);
	}
	/* EOM always has a reply */
	STEP(c, SMFIC_BODYEOB, "", SMFIR_CONTINUE);
	milter_conn_free(c);
}

static void
test_no_reply_agreed(void **state)
{
	(void)state;
	run_nr_rows(SMFIP_NR_CONN | SMFIP_NR_HELO);
	assert_int_equal(st.calls[ST_CONNECT], 1);
	assert_int_equal(st.calls[ST_HELO], 1);
	run_nr_rows(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
		    SMFIP_NR_DATA | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_UNKN);
	assert_int_equal(st.calls[ST_EOM], 2);
}

static void
test_reply_when_not_agreed(void **state)
{
	(void)state;
	run_nr_rows(0);
	run_nr_rows(SMFIP_NR_MAIL);
	assert_int_equal(st.calls[ST_CONNECT], 2);
	assert_int_equal(st.calls[ST_HELO], 2);
}

/* With the reply waived, a refusal is not sent either. */
static void
test_no_reply_ignores_status(void **state)
{
	struct milter_conn *c;

	(void)state;
	c = open_conn(0, SMFIP_NR_HELO);
	st.plan[ST_HELO] = (struct plan){SMFIS_REJECT, "550", "5.7.1", "no"};
	STEP(c, SMFIC_HELO, "x\0", 0);
	/* and the text set there is not kept for a later step */
	st.plan[ST_MAIL] = (struct plan){SMFIS_REJECT, NULL, NULL, NULL};
	STEP(c, SMFIC_MAIL, "<a@b>\0", SMFIR_REJECT);
	milter_conn_free(c);
}

/* ---- connect and helo -------------------------------------------------- */

static void
test_connect_addresses(void **state)
{
	static const struct {
		const char *data;
		size_t	len;
		int	family;
		const char *addr;
		unsigned port;
	} rows[] = {
		{D("mail.example\0" "4\0\031" "192.0.2.1\0"), AF_INET, "192.0.2.1", 25},
		{D("mail.example\0" "6\001\273" "IPv6:2001:db8::1\0"), AF_INET6, "2001:db8::1", 443},
		{D("mail.example\0" "6\0\031" "ipv6:2001:db8::2\0"), AF_INET6, "2001:db8::2", 25},
		{D("mail.example\0" "6\0\031" "2001:db8::3\0"), AF_INET6, "2001:db8::3", 25},
		{D("mail.example\0" "4\0\031" "192.0.2.256\0"), AF_UNSPEC, "", 0},
		{D("mail.example\0" "4\0\031" "IPv6:\0"), AF_UNSPEC, "", 0},
		{D("mail.example\0" "4\0\031" "192.0.2.1"), AF_UNSPEC, "", 0},	/* no NUL */
		{D("mail.example\0" "L\0\0" "/run/sock\0"), AF_UNSPEC, "", 0},
		{D("mail.example\0" "U"), AF_UNSPEC, "", 0},
		{D("mail.example\0"), AF_UNSPEC, "", 0},
	};
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		st.family = -1;
		step_expect(c, SMFIC_CONNECT, rows[i].data, rows[i].len, SMFIR_CONTINUE);
		assert_string_equal(st.hostname, "mail.example");
		assert_int_equal(st.family, rows[i].family);
		assert_string_equal(st.addr, rows[i].addr);
		assert_int_equal(st.port, rows[i].port);
	}
	milter_conn_free(c);
}

static void
test_helo_and_priv(void **state)
{
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	assert_null(milter_getpriv(c));
	STEP(c, SMFIC_CONNECT, "h\0U", SMFIR_CONTINUE);
	STEP(c, SMFIC_HELO, "mx.example\0", SMFIR_CONTINUE);
	assert_string_equal(st.helo, "mx.example");
	assert_ptr_equal(st.priv_seen, &st);
	/* the name ends at its first NUL */
	STEP(c, SMFIC_HELO, "a\0b\0", SMFIR_CONTINUE);
	assert_string_equal(st.helo, "a");
	milter_conn_free(c);
}

/* ---- MAIL and RCPT arguments ------------------------------------------- */

static void
test_mail_rcpt_argv(void **state)
{
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	STEP(c, SMFIC_MAIL, "<a@example.org>\0SIZE=1024\0BODY=8BITMIME\0", SMFIR_CONTINUE);
	assert_int_equal(st.argc, 3);
	assert_string_equal(st.argv[0], "<a@example.org>");
	assert_string_equal(st.argv[1], "SIZE=1024");
	assert_string_equal(st.argv[2], "BODY=8BITMIME");
	STEP(c, SMFIC_RCPT, "<b@example.net>\0", SMFIR_CONTINUE);
	assert_int_equal(st.argc, 1);
	assert_string_equal(st.argv[0], "<b@example.net>");
	STEP(c, SMFIC_RCPT, "<>\0\0NOTIFY=NEVER\0", SMFIR_CONTINUE);
	assert_int_equal(st.argc, 3);
	assert_string_equal(st.argv[1], "");
	assert_string_equal(st.argv[2], "NOTIFY=NEVER");
	assert_int_equal(st.calls[ST_MAIL], 1);
	assert_int_equal(st.calls[ST_RCPT], 2);
	milter_conn_free(c);
}

/* cmd with the address and n-1 arguments "Xi=i". */
static void
many_args(struct milter_conn *c, char cmd, int n)
{
	struct bytes d = {.len = 0};

	add(&d, "<a@example.org>", 16);
	for (int i = 1; i < n; i++) {
		char	arg[16];

		add(&d, arg, (size_t)snprintf(arg, sizeof(arg), "X%d=%d", i, i) + 1);
	}
	step_expect(c, cmd, d.b, d.len, SMFIR_CONTINUE);
}

static void
test_many_args(void **state)
{
	static const struct {
		int	sent, handed;
	} rows[] = {{63, 63}, {64, 64}, {65, 64}, {100, 64}, {500, 64}};
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		many_args(c, SMFIC_MAIL, rows[i].sent);
		assert_int_equal(st.argc, rows[i].handed);
		assert_string_equal(st.argv[0], "<a@example.org>");
		assert_string_equal(st.argv[62], "X62=62");
		many_args(c, SMFIC_RCPT, rows[i].sent);
		assert_int_equal(st.argc, rows[i].handed);
	}
	assert_string_equal(st.argv[63], "X63=63");
	milter_conn_free(c);
}

/* ---- statuses and reply codes ------------------------------------------ */

static void
test_reply_codes(void **state)
{
	static const struct {
		struct plan plan;
		int	setreply_rc;
		char	cmd;
		const char *data;	/* with its NUL */
	} rows[] = {
		{{SMFIS_REJECT, "550", "5.7.1", "text"}, 0, SMFIR_REPLYCODE, "550 5.7.1 text"},
		{{SMFIS_TEMPFAIL, "451", "4.3.2", "busy"}, 0, SMFIR_REPLYCODE, "451 4.3.2 busy"},
		/* without a DSN, the class's generic one, as smfi_setreply() */
		{{SMFIS_REJECT, "554", NULL, NULL}, 0, SMFIR_REPLYCODE, "554 5.0.0"},
		{{SMFIS_REJECT, "550", NULL, "no dsn"}, 0, SMFIR_REPLYCODE, "550 5.0.0 no dsn"},
		{{SMFIS_TEMPFAIL, "421", NULL, "bye"}, 0, SMFIR_REPLYCODE, "421 4.0.0 bye"},
		{{SMFIS_REJECT, "550", "5.123.456", NULL}, 0, SMFIR_REPLYCODE, "550 5.123.456"},
		{{SMFIS_TEMPFAIL, "550", "5.7.1", "text"}, 0, SMFIR_TEMPFAIL, NULL},
		{{SMFIS_REJECT, "451", "4.3.2", "busy"}, 0, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, NULL, NULL, NULL}, 99, SMFIR_REJECT, NULL},
		{{SMFIS_TEMPFAIL, NULL, NULL, NULL}, 99, SMFIR_TEMPFAIL, NULL},
		{{SMFIS_CONTINUE, "550", "5.7.1", "text"}, 0, SMFIR_CONTINUE, NULL},
		{{SMFIS_ACCEPT, "550", "5.7.1", "text"}, 0, SMFIR_ACCEPT, NULL},
		{{SMFIS_ACCEPT, NULL, NULL, NULL}, 99, SMFIR_ACCEPT, NULL},
		{{SMFIS_DISCARD, NULL, NULL, NULL}, 99, SMFIR_DISCARD, NULL},
		{{SMFIS_REJECT, "250", "2.0.0", "ok"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "4.7.1", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "5.7", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "5..1", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "5.7.1.", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "5.7.1234", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "", "x"}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "55", NULL, NULL}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "5x0", NULL, NULL}, -1, SMFIR_REJECT, NULL},
		{{SMFIS_REJECT, "550", "5.7.1", "a\r\nb"}, -1, SMFIR_REJECT, NULL},
	};
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	for (size_t i = 0; i < NROWS(rows); i++) {
		struct bytes in = {.len = 0}, want = {.len = 0};

		st.setreply_rc = 99;
		st.plan[ST_RCPT] = rows[i].plan;
		PUT(&in, SMFIC_RCPT, "<b@example.net>\0");
		put(&want, rows[i].cmd, rows[i].data, rows[i].data ? strlen(rows[i].data) + 1 : 0);
		feed_expect(c, &in, true, &want);
		assert_int_equal(st.setreply_rc, rows[i].setreply_rc);
		/* the text is for that one reply: a later plain refusal has none */
		st.plan[ST_RCPT] = (struct plan){SMFIS_REJECT, NULL, NULL, NULL};
		STEP(c, SMFIC_RCPT, "<c@example.net>\0", SMFIR_REJECT);
	}
	milter_conn_free(c);
}

/* A text too long for ENGINE_REPLY_MAX is refused, not cut. */
static void
test_reply_too_long(void **state)
{
	char	text[ENGINE_REPLY_MAX];
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	st.plan[ST_MAIL] = (struct plan){SMFIS_REJECT, "550", "5.7.1", text};
	STEP(c, SMFIC_MAIL, "<a@b>\0", SMFIR_REJECT);
	assert_int_equal(st.setreply_rc, -1);
	milter_conn_free(c);
}

/* ---- end of message ---------------------------------------------------- */

/* MAIL, RCPT, DATA, then EOM fed with the replies expected of the first three. */
static void
transaction(struct milter_conn *c)
{
	STEP(c, SMFIC_MAIL, "<a@example.org>\0", SMFIR_CONTINUE);
	STEP(c, SMFIC_RCPT, "<b@example.net>\0", SMFIR_CONTINUE);
	STEP(c, SMFIC_DATA, "", SMFIR_CONTINUE);
}

/* The results of the stubs' milter_addheader() and milter_quarantine(). */
static void
expect_actions(int addheader_rc, int quarantine_rc)
{
	assert_int_equal(st.addheader_rc, addheader_rc);
	assert_int_equal(st.quarantine_rc, quarantine_rc);
}

/* EOM with try_actions: the stubs' header and quarantine, then the reply cmd (data with its NUL). */
static void
eom_expect(struct milter_conn *c, char cmd, const char *data)
{
	struct bytes in = {.len = 0}, want = {.len = 0};

	PUT(&in, SMFIC_BODYEOB, "");
	PUT(&want, SMFIR_ADDHEADER, "X-Test\0yes\0");
	PUT(&want, SMFIR_QUARANTINE, "held\0");
	put(&want, cmd, data, data ? strlen(data) + 1 : 0);
	feed_expect(c, &in, true, &want);
}

static void
test_eom_actions(void **state)
{
	struct milter_conn *c = open_conn(SMFIF_ADDHDRS | SMFIF_QUARANTINE, 0);

	(void)state;
	st.try_actions = true;
	transaction(c);
	/* refused before EOM, with nothing queued */
	expect_actions(-1, -1);
	st.plan[ST_EOM] = (struct plan){SMFIS_REJECT, "550", "5.7.1", "spam"};
	eom_expect(c, SMFIR_REPLYCODE, "550 5.7.1 spam");
	expect_actions(0, 0);
	/* after EOM, refused again */
	STEP(c, SMFIC_MAIL, "<a@example.org>\0", SMFIR_CONTINUE);
	expect_actions(-1, -1);
	milter_conn_free(c);
}

static void
test_eom_accept(void **state)
{
	struct milter_conn *c = open_conn(SMFIF_ADDHDRS | SMFIF_QUARANTINE, 0);

	(void)state;
	transaction(c);
	st.try_actions = true;
	st.plan[ST_EOM].ret = SMFIS_ACCEPT;
	eom_expect(c, SMFIR_ACCEPT, NULL);
	milter_conn_free(c);
}

/*
 * OPTNEG (version 6, the MTA offering offer and no steps) and EOM in one
 * feed, on callbacks cb: the reply agrees to agreed, then EOM adds the
 * header packet hdr (its len bytes) and continues.
 */
static void
optneg_eom_expect(const struct milter_callbacks *cb, uint32_t offer, uint32_t agreed, const char *hdr,
		  size_t len)
{
	struct milter_conn *c = milter_conn_new(cb);
	struct bytes in = {.len = 0}, want = {.len = 0};

	st.want_actions = SMFIF_ADDHDRS | SMFIF_QUARANTINE;
	put_optneg(&in, 6, offer, 0);
	PUT(&in, SMFIC_BODYEOB, "");
	put_optneg(&want, 6, agreed, 0);
	put(&want, SMFIR_ADDHEADER, hdr, len);
	PUT0(&want, SMFIR_CONTINUE);
	feed_expect(c, &in, true, &want);
	milter_conn_free(c);
}

/* Asked for but not offered by the MTA, or not asked for: refused at EOM. */
static void
test_eom_actions_not_agreed(void **state)
{
	struct milter_conn *c;

	(void)state;
	st.try_actions = true;
	optneg_eom_expect(&stubs, SMFIF_ADDHDRS, SMFIF_ADDHDRS, D("X-Test\0yes\0"));
	expect_actions(0, -1);

	c = open_conn(0, 0);
	STEP(c, SMFIC_BODYEOB, "", SMFIR_CONTINUE);
	expect_actions(-1, -1);
	milter_conn_free(c);
}

/* Empty names and reasons are refused even at EOM. */
static sfsistat
eom_bad_args(struct milter_conn *c)
{
	assert_int_equal(milter_addheader(c, "", "v"), -1);
	assert_int_equal(milter_addheader(c, NULL, "v"), -1);
	assert_int_equal(milter_addheader(c, "X-A", NULL), -1);
	assert_int_equal(milter_quarantine(c, ""), -1);
	assert_int_equal(milter_quarantine(c, NULL), -1);
	assert_int_equal(milter_addheader(c, "X-Empty", ""), 0);
	return SMFIS_CONTINUE;
}

static void
test_eom_bad_args(void **state)
{
	struct milter_callbacks cb = stubs;

	(void)state;
	cb.eom = eom_bad_args;
	optneg_eom_expect(&cb, ALL_ACTIONS, SMFIF_ADDHDRS | SMFIF_QUARANTINE, D("X-Empty\0\0"));
}

/* ---- macros ------------------------------------------------------------ */

/* A macro look-up and what it must give (value NULL: not there). */
struct symval {
	const char *name, *value;
};

/* A packet fed (with the reply STEP expects), then names looked up. */
struct script_row {
	char	cmd;
	const char *data;
	size_t	len;
	char	reply;
	struct symval expect[13];	/* up to a NULL name */
};

/* Each row of a script in turn, on a connection negotiated with nothing waived. */
static void
run_script(const struct script_row *rows, size_t n)
{
	struct milter_conn *c = open_conn(0, 0);

	for (size_t i = 0; i < n; i++) {
		print_message("# row %zu\n", i);
		step_expect(c, rows[i].cmd, rows[i].data, rows[i].len, rows[i].reply);
		for (const struct symval *e = rows[i].expect; e->name != NULL; e++) {
			const char *v = milter_getsymval(c, e->name);

			if (e->value == NULL)
				assert_null(v);
			else
				assert_string_equal(v, e->value);
		}
	}
	milter_conn_free(c);
}

static void
test_getsymval_names(void **state)
{
	static const struct script_row rows[] = {
		{SMFIC_MACRO, D("Ci\0Q1\0{j}\0mx.example\0{daemon_name}\0smtpd\0_\0unk\0"), 0,
		 {{"i", "Q1"}, {"{i}", "Q1"}, {"j", "mx.example"}, {"{j}", "mx.example"},
		  {"{daemon_name}", "smtpd"}, {"_", "unk"}, {"daemon_name", NULL}, {"{daemon_name", NULL},
		  {"{x}", NULL}, {"x", NULL}, {"Q1", NULL}, {"", NULL}}},
	};

	(void)state;
	run_script(rows, NROWS(rows));
}

static void
test_getsymval_stages(void **state)
{
	static const struct script_row rows[] = {
		{SMFIC_MACRO, D("C{client_name}\0conn\0i\0at-connect\0"), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D("Mi\0at-mail\0{mail_addr}\0a@b\0"), 0, {{"i", "at-mail"}, {"{client_name}", "conn"}}},
		{SMFIC_MACRO, D("R{i}\0at-rcpt\0{rcpt_addr}\0c@d\0"), 0, {{"i", "at-rcpt"}}},
		{SMFIC_MACRO, D("Ni\0at-eoh\0"), 0, {{"i", "at-eoh"}}},
		{SMFIC_MACRO, D("Ei\0at-eom\0"), 0, {{"i", "at-eom"}}},
		/* the MAIL-stage macros and later ones go with the transaction */
		{SMFIC_ABORT, D(""), 0,
		 {{"i", "at-connect"}, {"{mail_addr}", NULL}, {"{rcpt_addr}", NULL}, {"{client_name}", "conn"}}},
	};

	(void)state;
	run_script(rows, NROWS(rows));
	assert_int_equal(st.aborts, 1);
}

/* A new MAIL drops the RCPT-stage macros of the transaction before. */
static void
test_macros_new_transaction(void **state)
{
	static const struct script_row rows[] = {
		{SMFIC_MACRO, D("M{mail_addr}\0a@b\0"), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D("R{rcpt_addr}\0c@d\0"), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D("T{x}\0data\0"), 0, {{NULL, NULL}}},
		{SMFIC_MAIL, D("<a@b>\0"), SMFIR_CONTINUE, {{"{mail_addr}", "a@b"}, {"{rcpt_addr}", NULL}, {"x", NULL}}},
		/* and EOM ends the transaction */
		{SMFIC_BODYEOB, D(""), SMFIR_CONTINUE, {{"{mail_addr}", NULL}}},
	};

	(void)state;
	run_script(rows, NROWS(rows));
}

static void
test_macros_malformed(void **state)
{
	static const struct script_row rows[] = {
		/* an odd number of strings: the last name has no value */
		{SMFIC_MACRO, D("Ca\0x\0b\0"), 0, {{"a", "x"}, {"b", NULL}}},
		/* an unterminated last string is dropped */
		{SMFIC_MACRO, D("Ha\0y\0b\0zz"), 0, {{"a", "y"}, {"b", NULL}}},
		{SMFIC_MACRO, D("Mc\0w\0d"), 0, {{"d", NULL}, {"c", "w"}}},
		/* no strings at all, no stage byte, an unknown stage: all harmless */
		{SMFIC_MACRO, D("R"), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D("Tnot terminated"), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D(""), 0, {{NULL, NULL}}},
		{SMFIC_MACRO, D("Zz\0v\0"), 0, {{"z", NULL}, {"a", "y"}}},
		{SMFIC_HELO, D("x\0"), SMFIR_CONTINUE, {{NULL, NULL}}},
	};

	(void)state;
	run_script(rows, NROWS(rows));
}

/* ---- framing ------------------------------------------------------------ */

/* A packet by its command and data. */
struct packet {
	char	cmd;
	const char *data;
	size_t	len;
};

/* The packets of rows[0..n) one after the other. */
static void
put_packets(struct bytes *o, const struct packet *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(o, rows[i].cmd, rows[i].data, rows[i].len);
}

/* A whole Postfix-like session, and the replies it should get. */
static void
session(struct bytes *in, struct bytes *want)
{
	static const struct packet fed[] = {
		{SMFIC_MACRO, D("Cj\0mx.example\0{daemon_name}\0smtpd\0")},
		{SMFIC_CONNECT, D("client.example\0" "4\xc3\x50" "198.51.100.7\0")},
		{SMFIC_HELO, D("client.example\0")},
		{SMFIC_MACRO, D("Mi\0" "4XyZ1\0")},
		{SMFIC_MAIL, D("<a@example.org>\0SIZE=2048\0")},
		{SMFIC_RCPT, D("<b@example.net>\0")},
		{SMFIC_DATA, D("")},
		{SMFIC_HEADER, D("Subject\0hello\0")},
		{SMFIC_EOH, D("")},
		{SMFIC_BODY, D("hello\r\n")},
		{SMFIC_BODYEOB, D("")},
		{SMFIC_ABORT, D("")},
		{SMFIC_QUIT_NC, D("")},
		{SMFIC_CONNECT, D("other.example\0" "6\0\031" "IPv6:2001:db8::7\0")},
		{SMFIC_QUIT, D("")},
	};
	static const struct packet replies[] = {
		{SMFIC_OPTNEG, D("\0\0\0\6" "\0\0\1\x21" "\0\0\0\x80" "\0\0\0\2" "i\0")},
		{SMFIR_CONTINUE, D("")},				/* CONNECT */
		{SMFIR_CONTINUE, D("")},				/* HELO */
		{SMFIR_CONTINUE, D("")},				/* MAIL */
		{SMFIR_REPLYCODE, D("451 4.7.1 later\0")},		/* RCPT */
		{SMFIR_CONTINUE, D("")},				/* DATA; HEADER has none */
		{SMFIR_CONTINUE, D("")},				/* EOH */
		{SMFIR_CONTINUE, D("")},				/* BODY */
		{SMFIR_ADDHEADER, D("X-Test\0yes\0")},			/* EOM */
		{SMFIR_QUARANTINE, D("held\0")},
		{SMFIR_CONTINUE, D("")},
		{SMFIR_CONTINUE, D("")},				/* the second CONNECT */
	};

	st.want_actions = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST;
	st.want_steps = SMFIP_NR_HDR;
	st.symlist[SMFIM_ENVFROM] = "i";
	st.try_actions = true;
	st.plan[ST_RCPT] = (struct plan){SMFIS_TEMPFAIL, "451", "4.7.1", "later"};
	put_optneg(in, 6, ALL_ACTIONS, ALL_STEPS);
	put_packets(in, fed, NROWS(fed));
	put_packets(want, replies, NROWS(replies));
}

/* Feed in cut at the offsets of cuts (ascending); the replies, concatenated, and the last result. */
static bool
feed_cut(const struct bytes *in, const size_t *cuts, size_t ncuts, struct bytes *out)
{
	struct milter_conn *c = milter_conn_new(&stubs);
	size_t	from = 0;
	bool	ok = true;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t	to = i < ncuts ? cuts[i] : in->len, len;
		const uint8_t *p;

		ok = milter_conn_feed(c, in->b + from, to - from);
		p = milter_conn_output(c, &len);
		add(out, p, len);
		from = to;
	}
	milter_conn_free(c);
	return ok;
}

static void
test_session_one_feed(void **state)
{
	static struct bytes in, want, out;

	(void)state;
	in.len = want.len = out.len = 0;
	session(&in, &want);
	assert_false(feed_cut(&in, NULL, 0, &out));
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.b, want.b, want.len);
	assert_int_equal(st.calls[ST_CONNECT], 2);
	assert_int_equal(st.calls[ST_EOM], 1);
	assert_int_equal(st.aborts, 1);
	assert_int_equal(st.closes, 2);		/* QUIT_NC, then the end */
	assert_string_equal(st.addr, "2001:db8::7");
	assert_int_equal(st.family, AF_INET6);
}

static void
test_session_byte_at_a_time(void **state)
{
	static struct bytes in, want, out;
	static size_t cuts[sizeof(in.b)];

	(void)state;
	in.len = want.len = out.len = 0;
	session(&in, &want);
	for (size_t i = 0; i < in.len - 1; i++)
		cuts[i] = i + 1;
	assert_false(feed_cut(&in, cuts, in.len - 1, &out));
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.b, want.b, want.len);
	assert_int_equal(st.closes, 2);
}

/* Every way of cutting the session in two feeds. */
static void
test_session_two_feeds(void **state)
{
	static struct bytes in, want, out;

	(void)state;
	in.len = want.len = 0;
	session(&in, &want);
	for (size_t cut = 0; cut <= in.len; cut++) {
		out.len = 0;
		assert_false(feed_cut(&in, &cut, 1, &out));
		assert_int_equal(out.len, want.len);
		assert_memory_equal(out.b, want.b, want.len);
	}
}

/* The largest packet allowed, 65535 bytes of data, then one over. */
static void
test_largest_packet(void **state)
{
	size_t	size = ENGINE_MAX_DATA + 5;
	uint8_t *big = calloc(1, size);
	struct milter_conn *c = open_conn(0, 0);
	struct bytes want = {.len = 0};
	const uint8_t *out;
	size_t	len;

	(void)state;
	assert_non_null(big);
	memcpy(big, "\0\1\0\0" "L" "Subject", 12);
	assert_true(milter_conn_feed(c, big, size));
	PUT0(&want, SMFIR_CONTINUE);
	out = milter_conn_output(c, &len);
	assert_int_equal(len, want.len);
	assert_memory_equal(out, want.b, len);
	/* 65536 bytes of data: refused as soon as its length is read */
	assert_false(milter_conn_feed(c, "\0\1\0\1", 4));
	expect_no_output(c);
	free(big);
	milter_conn_free(c);
}

/* ---- protocol errors ---------------------------------------------------- */

static const struct {
	const char *what;
	bool	negotiate;	/* first a good OPTNEG */
	const char *bytes;
	size_t	len;
} bad_rows[] = {
	{"HELO before OPTNEG", false, D("\0\0\0\3Hx\0")},
	{"MACRO before OPTNEG", false, D("\0\0\0\4DCj\0")},
	{"CONNECT before OPTNEG", false, D("\0\0\0\4Ch\0U")},
	{"length 0", true, D("\0\0\0\0")},
	{"length 0 before OPTNEG", false, D("\0\0\0\0")},
	{"length 65537", true, D("\0\1\0\1")},
	{"length 2^32-1", true, D("\xff\xff\xff\xff")},
	{"HELO without NUL", true, D("\0\0\0\3Hmx")},
	{"HELO without data", true, D("\0\0\0\1H")},
	{"MAIL without data", true, D("\0\0\0\1M")},
	{"MAIL without final NUL", true, D("\0\0\0\4M<a>")},
	{"RCPT without data", true, D("\0\0\0\1R")},
	{"CONNECT without NUL", true, D("\0\0\0\3Chh")},
	{"CONNECT without data", true, D("\0\0\0\1C")},
	{"unknown command", true, D("\0\0\0\1Z")},
	{"unknown command with data", true, D("\0\0\0\3zab")},
	{"QUIT", true, D("\0\0\0\1Q")},
	{"OPTNEG version 1", false, D("\0\0\0\rO\0\0\0\1\0\0\0\0\0\0\0\0")},
	{"OPTNEG version 0", false, D("\0\0\0\rO\0\0\0\0\0\0\0\x3f\0\0\0\x3f")},
	{"OPTNEG short", false, D("\0\0\0\x0bO\0\0\0\6\0\0\0\0\0\0")},
	{"OPTNEG twice", true, D("\0\0\0\rO\0\0\0\6\0\0\0\0\0\0\0\0")},
};

static void
test_protocol_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < NROWS(bad_rows); i++) {
		struct milter_conn *c;

		print_message("# %s\n", bad_rows[i].what);
		st.closes = 0;
		c = bad_rows[i].negotiate ? open_conn(0, 0) : milter_conn_new(&stubs);
		assert_false(milter_conn_feed(c, bad_rows[i].bytes, bad_rows[i].len));
		expect_no_output(c);
		/* closed for good: a good packet now gets nothing */
		assert_false(milter_conn_feed(c, "\0\0\0\1T", 5));
		expect_no_output(c);
		assert_int_equal(st.closes, 0);
		milter_conn_free(c);
		assert_int_equal(st.closes, 1);
	}
}

/* The packets before the bad one in the same feed get their replies. */
static void
test_error_after_good_packets(void **state)
{
	struct milter_conn *c = open_conn(0, 0);
	struct bytes in = {.len = 0}, want = {.len = 0};

	(void)state;
	PUT(&in, SMFIC_HELO, "a\0");
	PUT(&in, SMFIC_MAIL, "<a@b>\0");
	PUT(&in, 'Z', "");
	PUT(&in, SMFIC_RCPT, "<c@d>\0");
	PUT0(&want, SMFIR_CONTINUE);
	PUT0(&want, SMFIR_CONTINUE);
	feed_expect(c, &in, false, &want);
	assert_int_equal(st.calls[ST_RCPT], 0);
	milter_conn_free(c);
}

/* The negotiate callback refusing ends the connection without a reply. */
static sfsistat
negotiate_refuse(struct milter_conn *c, unsigned long actions, unsigned long steps,
		 unsigned long *want_actions, unsigned long *want_steps)
{
	(void)c, (void)actions, (void)steps, (void)want_actions, (void)want_steps;
	return SMFIS_TEMPFAIL;
}

static void
test_negotiate_refused(void **state)
{
	struct milter_callbacks cb = stubs;
	struct milter_conn *c;
	struct bytes in = {.len = 0}, want = {.len = 0};

	(void)state;
	cb.negotiate = negotiate_refuse;
	c = milter_conn_new(&cb);
	put_optneg(&in, 6, ALL_ACTIONS, ALL_STEPS);
	feed_expect(c, &in, false, &want);
	milter_conn_free(c);
}

/* ---- the end of a connection ------------------------------------------- */

static void
test_quit_nc(void **state)
{
	struct milter_conn *c = open_conn(0, 0);

	(void)state;
	STEP(c, SMFIC_MACRO, "C{client_addr}\0" "192.0.2.1\0", 0);
	STEP(c, SMFIC_CONNECT, "first.example\0" "4\0\031" "192.0.2.1\0", SMFIR_CONTINUE);
	STEP(c, SMFIC_HELO, "first.example\0", SMFIR_CONTINUE);
	STEP(c, SMFIC_QUIT_NC, "", 0);
	assert_int_equal(st.closes, 1);
	assert_null(milter_getsymval(c, "{client_addr}"));
	/* the next SMTP connection on the same milter connection */
	STEP(c, SMFIC_MACRO, "C{client_addr}\0" "192.0.2.2\0", 0);
	STEP(c, SMFIC_CONNECT, "second.example\0" "4\0\031" "192.0.2.2\0", SMFIR_CONTINUE);
	assert_int_equal(st.calls[ST_CONNECT], 2);
	assert_string_equal(st.hostname, "second.example");
	assert_string_equal(st.addr, "192.0.2.2");
	assert_string_equal(milter_getsymval(c, "{client_addr}"), "192.0.2.2");
	STEP(c, SMFIC_HELO, "second.example\0", SMFIR_CONTINUE);
	assert_int_equal(st.closes, 1);
	milter_conn_free(c);
	assert_int_equal(st.closes, 2);
}

static void
test_close_once(void **state)
{
	struct milter_conn *c;

	(void)state;
	/* never negotiated */
	assert_non_null(c = milter_conn_new(&stubs));
	milter_conn_free(c);
	assert_int_equal(st.closes, 1);
	/* a transaction under way */
	c = open_conn(0, 0);
	STEP(c, SMFIC_CONNECT, "h\0U", SMFIR_CONTINUE);
	transaction(c);
	assert_int_equal(st.closes, 1);
	milter_conn_free(c);
	assert_int_equal(st.closes, 2);
	/* after QUIT */
	c = open_conn(0, 0);
	assert_false(milter_conn_feed(c, "\0\0\0\1Q", 5));
	assert_int_equal(st.closes, 2);
	milter_conn_free(c);
	assert_int_equal(st.closes, 3);
	assert_int_equal(st.aborts, 0);
}

/* Without callbacks every step continues; nothing is called. */
static void
test_no_callbacks(void **state)
{
	static const struct milter_callbacks none;
	struct milter_conn *c = milter_conn_new(&none);
	struct bytes in = {.len = 0}, want = {.len = 0};

	(void)state;
	put_optneg(&in, 6, ALL_ACTIONS, ALL_STEPS);
	PUT(&in, SMFIC_CONNECT, "h\0U");
	PUT(&in, SMFIC_MAIL, "<a@b>\0");
	PUT(&in, SMFIC_BODYEOB, "");
	PUT(&in, SMFIC_ABORT, "");
	PUT(&in, SMFIC_QUIT_NC, "");
	PUT(&want, SMFIC_OPTNEG, "\0\0\0\6\0\0\0\0\0\0\0\0");
	PUT0(&want, SMFIR_CONTINUE);
	PUT0(&want, SMFIR_CONTINUE);
	PUT0(&want, SMFIR_CONTINUE);
	feed_expect(c, &in, true, &want);
	milter_conn_free(c);
}

#define T(f)	cmocka_unit_test_setup(f, reset_stubs)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_optneg_version),
		T(test_optneg_masks),
		T(test_optneg_zero_offer),
		T(test_optneg_symlist),
		T(test_no_reply_agreed),
		T(test_reply_when_not_agreed),
		T(test_no_reply_ignores_status),
		T(test_connect_addresses),
		T(test_helo_and_priv),
		T(test_mail_rcpt_argv),
		T(test_many_args),
		T(test_reply_codes),
		T(test_reply_too_long),
		T(test_eom_actions),
		T(test_eom_accept),
		T(test_eom_actions_not_agreed),
		T(test_eom_bad_args),
		T(test_getsymval_names),
		T(test_getsymval_stages),
		T(test_macros_new_transaction),
		T(test_macros_malformed),
		T(test_session_one_feed),
		T(test_session_byte_at_a_time),
		T(test_session_two_feeds),
		T(test_largest_packet),
		T(test_protocol_errors),
		T(test_error_after_good_packets),
		T(test_negotiate_refused),
		T(test_quit_nc),
		T(test_close_once),
		T(test_no_callbacks),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
