/*
 * fuzz_milter.c - libFuzzer target for the builtin milter protocol engine (milter_proto.c).
 *
 * The input is a control byte, then the bytes an MTA sends.  They are fed
 * to an in-memory connection (milter_conn_new) in four pieces cut where
 * the control byte says, and again in one piece.  The stub callbacks use
 * what they are handed: every macro they might ask for, argv to its NULL,
 * the address, reply texts made of the client's strings, and at EOM a
 * header and a quarantine.  Checked: every reply packet is well formed (a
 * length >= 1 within the output, a known command, the strings each
 * command carries), the negotiation reply agrees with the offer, header
 * and quarantine succeed exactly at EOM with the action agreed, a closed
 * connection stays closed and silent, and the replies do not depend on
 * how the input was cut.  Built with clang -fsanitize=fuzzer, or with
 * standalone_main.c to replay a corpus.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmilter/mfdef.h>

#include "engine.h"
#include "log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCUTS	3

/* What one run has seen. */
static struct {
	bool	negotiated;
	unsigned long actions, steps;	/* agreed: all the MTA offered */
	unsigned closes;
	size_t	sink;			/* lengths read, so the reads happen */
} fz;

/* One run: its replies, collected, and whether the connection is still open. */
struct run {
	uint8_t *out;
	size_t	len, cap;
	bool	open;
};

/* ---- stub callbacks --------------------------------------------------- */

static void
use_macros(const struct milter_conn *c)
{
	static const char *const names[] = {
		"i", "{i}", "j", "{j}", "_", "{daemon_name}", "{client_addr}", "{client_name}",
		"{mail_addr}", "{rcpt_addr}", "{auth_authen}", "{x}", "",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = milter_getsymval(c, names[i]);

		if (v != NULL)
			fz.sink += strlen(v);
	}
}

/* A status chosen by the client's string s, with a reply text made of s. */
static sfsistat
verdict(struct milter_conn *c, const char *s)
{
	static const char *const codes[] = {"550", "451", "554", "250", "5x0"};
	static const sfsistat rets[] = {SMFIS_CONTINUE, SMFIS_REJECT, SMFIS_TEMPFAIL,
					SMFIS_ACCEPT, SMFIS_DISCARD, SMFIS_CONTINUE};
	unsigned k = (unsigned char)s[0];

	if (k & 1) {
		const char *code = codes[(k >> 1) % 5];
		const char *dsn = (k & 0x20) ? NULL : code[0] == '5' ? "5.7.1" : "4.7.1";
		int	rc = milter_setreply(c, code, dsn, s);

		assert(rc == 0 || rc == -1);
		if (strpbrk(s, "\r\n") != NULL || code[0] == '2' || code[1] == 'x')
			assert(rc == -1);
		else if (strlen(s) < 100)
			assert(rc == 0);
	}
	return rets[(k >> 4) % 6];
}

/* Outside EOM header and quarantine are refused. */
static void
no_actions(struct milter_conn *c)
{
	int	header = milter_addheader(c, "X-Fuzz", "x");
	int	quarantine = milter_quarantine(c, "fuzz");

	assert(header == -1 && quarantine == -1);
}

static sfsistat
fz_negotiate(struct milter_conn *c, unsigned long actions, unsigned long steps,
	     unsigned long *want_actions, unsigned long *want_steps)
{
	int	rc[4];

	assert(!fz.negotiated);
	fz.negotiated = true;
	fz.actions = *want_actions = actions;
	fz.steps = *want_steps = steps;
	rc[0] = milter_setsymlist(c, SMFIM_CONNECT, "j {daemon_name} {client_addr}");
	rc[1] = milter_setsymlist(c, SMFIM_ENVFROM, "i {auth_authen}");
	rc[2] = milter_setsymlist(c, SMFIM_LAST + 1, "x");
	rc[3] = milter_setsymlist(c, -1, "x");
	assert(rc[0] == 0 && rc[1] == 0 && rc[2] == -1 && rc[3] == -1);
	no_actions(c);
	return SMFIS_CONTINUE;
}

static sfsistat
fz_connect(struct milter_conn *c, const char *hostname, const struct sockaddr *addr)
{
	char	text[INET6_ADDRSTRLEN];

	if (addr != NULL) {
		const void *a;
		const char *ok;

		assert(addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
		if (addr->sa_family == AF_INET)
			a = &((const struct sockaddr_in *)addr)->sin_addr;
		else
			a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		ok = inet_ntop(addr->sa_family, a, text, sizeof(text));
		assert(ok != NULL);
	}
	use_macros(c);
	no_actions(c);
	return verdict(c, hostname);
}

static sfsistat
fz_helo(struct milter_conn *c, const char *name)
{
	use_macros(c);
	no_actions(c);
	return verdict(c, name);
}

/* argv: at least the address, at most ENGINE_MAX_ARGS, ended by NULL. */
static sfsistat
fz_args(struct milter_conn *c, char **argv)
{
	int	n = 0;

	assert(argv[0] != NULL);
	while (argv[n] != NULL) {
		fz.sink += strlen(argv[n]);
		assert(++n <= ENGINE_MAX_ARGS);
	}
	use_macros(c);
	no_actions(c);
	return verdict(c, argv[n - 1]);
}

static sfsistat
fz_data(struct milter_conn *c)
{
	const char *i = milter_getsymval(c, "i");

	no_actions(c);
	return verdict(c, i ? i : "");
}

static sfsistat
fz_eom(struct milter_conn *c)
{
	const char *i = milter_getsymval(c, "i"), *reason = milter_getsymval(c, "{client_name}");
	char	value[64];
	int	header, quarantine;

	snprintf(value, sizeof(value), "%s", i ? i : "");
	if (reason == NULL)
		reason = "fuzz";
	header = milter_addheader(c, "X-Fuzz", value);
	quarantine = milter_quarantine(c, reason);
	assert(header == ((fz.actions & SMFIF_ADDHDRS) ? 0 : -1));
	assert(quarantine == ((fz.actions & SMFIF_QUARANTINE) && *reason != '\0' ? 0 : -1));
	return verdict(c, value);
}

static void
fz_abort(struct milter_conn *c)
{
	use_macros(c);
	no_actions(c);
}

static void
fz_close(struct milter_conn *c)
{
	use_macros(c);
	fz.closes++;
}

static const struct milter_callbacks fz_callbacks = {
	.negotiate = fz_negotiate,	/* everything offered; macro lists, good and bad */
	.connect = fz_connect,		/* an address only of a family it names */
	.helo = fz_helo,
	.envfrom = fz_args,		/* argv within ENGINE_MAX_ARGS, ended by NULL */
	.envrcpt = fz_args,
	.data = fz_data,
	.eom = fz_eom,			/* header and quarantine exactly as agreed */
	.abort = fz_abort,
	.close = fz_close,		/* counted: at least once a run */
};

/* ---- the replies -------------------------------------------------------- */

/* n strings, each ended by its NUL, make up exactly len bytes. */
static bool
strings(const uint8_t *p, size_t len, int n)
{
	for (int i = 0; i < n; i++) {
		const uint8_t *nul = memchr(p, '\0', len);

		if (nul == NULL)
			return false;
		len -= (size_t)(nul - p) + 1;
		p = nul + 1;
	}
	return len == 0;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The reply to OPTNEG: version 2-6, what was offered, then stage/list pairs. */
static void
check_optneg(const uint8_t *p, size_t len)
{
	assert(fz.negotiated && len >= 12);
	assert(be32(p) >= 2 && be32(p) <= SMFI_PROT_VERSION);
	assert(be32(p + 4) == (uint32_t)fz.actions);
	assert(be32(p + 8) == (uint32_t)fz.steps);
	p += 12, len -= 12;
	assert(len == 0 || (fz.actions & SMFIF_SETSYMLIST));
	while (len > 0) {
		const uint8_t *nul;

		assert(len > 4 && be32(p) <= SMFIM_LAST);
		assert((nul = memchr(p + 4, '\0', len - 4)) != NULL);
		len -= (size_t)(nul + 1 - p);
		p = nul + 1;
	}
}

static void
check_packet(uint8_t cmd, const uint8_t *p, size_t len)
{
	switch (cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
		assert(len == 0);
		break;
	case SMFIR_REPLYCODE:
		assert(strings(p, len, 1) && len >= 4 && len <= ENGINE_REPLY_MAX);
		assert(p[0] == '4' || p[0] == '5');
		break;
	case SMFIR_ADDHEADER:
		assert(strings(p, len, 2) && p[0] != '\0');
		break;
	case SMFIR_QUARANTINE:
		assert(strings(p, len, 1) && p[0] != '\0');
		break;
	case SMFIC_OPTNEG:
		check_optneg(p, len);
		break;
	default:
		assert(!"unknown reply command");
	}
}

/* Every packet whole: a length >= 1 covering the command, then its data. */
static void
check_output(const uint8_t *out, size_t len)
{
	while (len > 0) {
		uint32_t n;

		assert(len >= 5);
		n = be32(out);
		assert(n >= 1 && n <= len - 4);
		check_packet(out[4], out + 5, n - 1);
		out += 4 + (size_t)n;
		len -= 4 + (size_t)n;
	}
}

/* ---- feeding ------------------------------------------------------------ */

static void
collect(struct run *r, struct milter_conn *c)
{
	size_t	len;
	const uint8_t *out = milter_conn_output(c, &len);

	check_output(out, len);
	assert(r->open || len == 0);
	if (r->len + len > r->cap) {
		size_t	cap = r->cap ? r->cap : 4096;

		while (cap < r->len + len)
			cap *= 2;
		if ((r->out = realloc(r->out, cap)) == NULL)
			abort();
		r->cap = cap;
	}
	if (len > 0)
		memcpy(r->out + r->len, out, len);
	r->len += len;
}

/* Feed data in pieces ending at cuts (ascending), then the rest. */
static unsigned
run(struct run *r, const uint8_t *data, size_t size, const size_t *cuts, int ncuts)
{
	struct milter_conn *c;
	size_t	from = 0;

	memset(&fz, 0, sizeof(fz));
	if ((c = milter_conn_new(&fz_callbacks)) == NULL)
		abort();
	r->open = true;
	for (int i = 0; i <= ncuts; i++) {
		size_t	to = i < ncuts ? cuts[i] : size;
		bool	open = milter_conn_feed(c, data + from, to - from);

		assert(r->open || !open);	/* closed stays closed */
		collect(r, c);
		r->open = open;
		from = to;
	}
	milter_conn_free(c);
	assert(fz.closes >= 1);
	return fz.closes;
}

/* Cuts from the control byte: inside the first header, at an eighth, one byte later. */
static void
cut_points(uint8_t key, size_t size, size_t *cuts)
{
	cuts[0] = key & 0x0f;
	cuts[1] = size * ((key >> 4) & 7) / 8;
	cuts[2] = (key & 0x80) ? cuts[1] + 1 : size;
	for (int i = 0; i < NCUTS; i++) {
		if (cuts[i] > size)
			cuts[i] = size;
		if (i > 0 && cuts[i] < cuts[i - 1])
			cuts[i] = cuts[i - 1];
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run pieces = {NULL, 0, 0, false}, whole = {NULL, 0, 0, false};
	size_t	cuts[NCUTS];
	unsigned closes, closes_whole;

	if (size < 1)
		return 0;
	log_set_level(LOG_LEVEL_ERROR);	/* no syslog line per bad length */
	cut_points(data[0], size - 1, cuts);
	closes = run(&pieces, data + 1, size - 1, cuts, NCUTS);
	closes_whole = run(&whole, data + 1, size - 1, NULL, 0);
	assert(closes_whole == closes);
	assert(pieces.open == whole.open);
	assert(pieces.len == whole.len);
	assert(pieces.len == 0 || memcmp(pieces.out, whole.out, pieces.len) == 0);
	free(pieces.out);
	free(whole.out);
	return 0;
}
