/*
 * milter_proto.c - the milter protocol of mxgate's own engine: packets in,
 * replies out, for one connection (see engine.h, milter_builtin.h).
 *
 * A packet is a 4-byte big-endian length, a command byte and length-1
 * bytes of data.  The MTA's packets are parsed from a per-connection input
 * buffer, each is handled in order, and the replies they produce collect in
 * an output buffer that milter_pool.c writes once before the next read.
 * Anything malformed (a length over ENGINE_MAX_DATA, a string without its
 * NUL, a command before negotiation, an unknown command) ends the
 * connection, as libmilter does: the MTA then applies its own default for a
 * broken filter (Postfix's milter_default_action, tempfail by default).  So
 * does a failed allocation (a buffer, a macro list): never a step run on
 * half its input.
 * Macro lists are kept as the MTA sent them, one per stage, and read in
 * place; an odd number of strings drops the last name, never reads past
 * the list.  The in-memory connections of the unit tests and the fuzzer,
 * and the engine's table (milter_engine_builtin, its run-time in
 * milter_pool.c) are here too.
 *
 * Thread-safety: a connection is touched only by the thread serving it.
 */
#include "milter_builtin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

#define ENGINE_HEADER		4		/* the length word */
#define ENGINE_IN_START		8192
#define ENGINE_OUT_START	1024

/* ---- replies ------------------------------------------------------------ */

static bool
out_reserve(struct milter_conn *c, size_t more)
{
	size_t	cap = c->out_cap ? c->out_cap : ENGINE_OUT_START;
	uint8_t *p;

	if (c->out_len + more <= c->out_cap)
		return true;
	while (cap < c->out_len + more)
		cap *= 2;
	if ((p = realloc(c->out, cap)) == NULL) {
		c->out_failed = true;
		return false;
	}
	c->out = p;
	c->out_cap = cap;
	return true;
}

/* Queue a packet of command cmd whose data is the n strings/blobs of parts. */
static void
out_packet(struct milter_conn *c, char cmd, const void *const *parts, const size_t *lens, int n)
{
	size_t	total = 1;
	uint32_t be;

	for (int i = 0; i < n; i++)
		total += lens[i];
	if (!out_reserve(c, ENGINE_HEADER + total))
		return;
	be = htonl((uint32_t)total);
	memcpy(c->out + c->out_len, &be, ENGINE_HEADER);
	c->out[c->out_len + ENGINE_HEADER] = (uint8_t)cmd;
	c->out_len += ENGINE_HEADER + 1;
	for (int i = 0; i < n; i++) {
		memcpy(c->out + c->out_len, parts[i], lens[i]);
		c->out_len += lens[i];
	}
}

static void
out_simple(struct milter_conn *c, char cmd)
{
	out_packet(c, cmd, NULL, NULL, 0);
}

/*
 * The reply to a step: nothing when the MTA was told this step needs none
 * (nr_bit agreed), else the status, with the text of milter_setreply()
 * when its class matches.
 */
static void
out_status(struct milter_conn *c, unsigned long nr_bit, sfsistat r)
{
	bool	refuse = (r == SMFIS_REJECT || r == SMFIS_TEMPFAIL);

	if (nr_bit == 0 || !(c->steps & nr_bit)) {
		if (refuse && c->reply[0] == (r == SMFIS_REJECT ? '5' : '4')) {
			const void *part = c->reply;
			size_t	len = strlen(c->reply) + 1;

			out_packet(c, SMFIR_REPLYCODE, &part, &len, 1);
		} else if (refuse)
			out_simple(c, r == SMFIS_REJECT ? SMFIR_REJECT : SMFIR_TEMPFAIL);
		else if (r == SMFIS_ACCEPT)
			out_simple(c, SMFIR_ACCEPT);
		else if (r == SMFIS_DISCARD)
			out_simple(c, SMFIR_DISCARD);
		else
			out_simple(c, SMFIR_CONTINUE);
	}
	c->reply[0] = '\0';
}

/* ---- what callbacks call ---------------------------------------------- */

static void *
proto_getpriv(const struct milter_conn *c)
{
	return c->priv;
}

static void
proto_setpriv(struct milter_conn *c, void *priv)
{
	c->priv = priv;
}

/* The value of name in one stage's list, or NULL. */
static const char *
macro_find(const char *list, size_t len, const char *name, size_t name_len)
{
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *value = memchr(p, '\0', (size_t)(end - p));
		const char *next;

		if (value == NULL || ++value >= end)
			return NULL;	/* a name without its value */
		if ((next = memchr(value, '\0', (size_t)(end - value))) == NULL)
			return NULL;
		if ((size_t)(value - 1 - p) == name_len && memcmp(p, name, name_len) == 0)
			return value;
		p = next + 1;
	}
	return NULL;
}

static const char *
proto_getsymval(const struct milter_conn *c, const char *name)
{
	/* The latest stage first: a macro the MTA sent again is newer there. */
	static const int order[] = {SMFIM_EOM, SMFIM_EOH, SMFIM_DATA, SMFIM_ENVRCPT,
				    SMFIM_ENVFROM, SMFIM_HELO, SMFIM_CONNECT};
	char	alt[4];
	size_t	len = strlen(name), alt_len = 0;

	/* Sendmail names one-letter macros "i", Postfix as asked: "{i}". */
	if (len == 3 && name[0] == '{' && name[2] == '}') {
		alt[0] = name[1];
		alt_len = 1;
	} else if (len == 1) {
		alt[0] = '{', alt[1] = name[0], alt[2] = '}';
		alt_len = 3;
	}
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *list = c->macros[order[i]], *v;

		if (list == NULL)
			continue;
		if ((v = macro_find(list, c->macros_len[order[i]], name, len)) != NULL ||
		    (alt_len && (v = macro_find(list, c->macros_len[order[i]], alt, alt_len)) != NULL))
			return v;
	}
	return NULL;
}

static int
proto_setsymlist(struct milter_conn *c, int stage, const char *macros)
{
	char   *copy;

	if (stage < SMFIM_FIRST || stage > SMFIM_LAST || macros == NULL)
		return -1;
	if ((copy = strdup(macros)) == NULL)
		return -1;
	free(c->symlist[stage]);
	c->symlist[stage] = copy;
	return 0;
}

/* "N.N.N" with 1-3 digits in the second and third parts (RFC 3463), class as code. */
static bool
dsn_valid(const char *dsn, char class)
{
	const char *p = dsn;

	if (p[0] != class || p[1] != '.')
		return false;
	p += 2;
	for (int part = 0; part < 2; part++) {
		int	digits = 0;

		while (*p >= '0' && *p <= '9' && digits < 4)
			p++, digits++;
		if (digits < 1 || digits > 3 || *p != (part == 0 ? '.' : '\0'))
			return false;
		p++;
	}
	return true;
}

static int
proto_setreply(struct milter_conn *c, const char *code, const char *dsn, const char *text)
{
	int	n;

	if (code == NULL || strlen(code) != 3 || (code[0] != '4' && code[0] != '5') ||
	    code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9')
		return -1;
	/* As smfi_setreply(): always a DSN, the class's generic one when none is given. */
	if (dsn == NULL)
		dsn = code[0] == '4' ? "4.0.0" : "5.0.0";
	if (!dsn_valid(dsn, code[0]))
		return -1;
	if (text != NULL && strpbrk(text, "\r\n") != NULL)
		return -1;
	n = snprintf(c->reply, sizeof(c->reply), "%s %s%s%s", code, dsn, text ? " " : "", text ? text : "");
	if (n < 0 || (size_t)n >= sizeof(c->reply)) {
		c->reply[0] = '\0';
		return -1;
	}
	return 0;
}

static int
proto_quarantine(struct milter_conn *c, const char *reason)
{
	const void *part = reason;
	size_t	len;

	if (!c->in_eom || !(c->actions & SMFIF_QUARANTINE) || reason == NULL || *reason == '\0')
		return -1;
	len = strlen(reason) + 1;
	out_packet(c, SMFIR_QUARANTINE, &part, &len, 1);
	return c->out_failed ? -1 : 0;
}

static int
proto_addheader(struct milter_conn *c, const char *name, const char *value)
{
	const void *parts[2] = {name, value};
	size_t	lens[2];

	if (!c->in_eom || !(c->actions & SMFIF_ADDHDRS) || name == NULL || *name == '\0' || value == NULL)
		return -1;
	lens[0] = strlen(name) + 1;
	lens[1] = strlen(value) + 1;
	out_packet(c, SMFIR_ADDHEADER, parts, lens, 2);
	return c->out_failed ? -1 : 0;
}

/* ---- the MTA's packets -------------------------------------------------- */

static void
macros_clear(struct milter_conn *c, int from_stage)
{
	for (int i = from_stage; i < ENGINE_STAGES; i++) {
		free(c->macros[i]);
		c->macros[i] = NULL;
		c->macros_len[i] = 0;
	}
}

static uint32_t
get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, sizeof(v));
}

/* SMFIC_OPTNEG: what the filter wants of what the MTA offers, and the macro lists. */
static bool
on_optneg(struct milter_conn *c, const uint8_t *data, size_t len)
{
	unsigned long version, mta_actions, mta_steps, want_actions = 0, want_steps = 0;
	uint8_t	head[MILTER_OPTLEN];
	const void *parts[1 + 2 * ENGINE_STAGES];
	size_t	lens[1 + 2 * ENGINE_STAGES];
	uint8_t	stage_be[ENGINE_STAGES][4];
	int	n = 0;

	if (c->negotiated || len < MILTER_OPTLEN || (version = get_u32(data)) < 2)
		return false;
	if ((mta_actions = get_u32(data + 4)) == 0)
		mta_actions = SMFI_V1_ACTS;
	if ((mta_steps = get_u32(data + 8)) == 0)
		mta_steps = SMFI_V1_PROT;
	if (c->cb->negotiate != NULL &&
	    c->cb->negotiate(c, mta_actions, mta_steps, &want_actions, &want_steps) != SMFIS_CONTINUE)
		return false;
	c->actions = want_actions & mta_actions;
	c->steps = want_steps & mta_steps;
	c->negotiated = true;
	put_u32(head, version < SMFI_PROT_VERSION ? (uint32_t)version : SMFI_PROT_VERSION);
	put_u32(head + 4, (uint32_t)c->actions);
	put_u32(head + 8, (uint32_t)c->steps);
	parts[n] = head;
	lens[n++] = sizeof(head);
	if (c->actions & SMFIF_SETSYMLIST) {
		for (int i = 0; i < ENGINE_STAGES; i++) {
			if (c->symlist[i] == NULL)
				continue;
			put_u32(stage_be[i], (uint32_t)i);
			parts[n] = stage_be[i];
			lens[n++] = 4;
			parts[n] = c->symlist[i];
			lens[n++] = strlen(c->symlist[i]) + 1;
		}
	}
	out_packet(c, SMFIC_OPTNEG, parts, lens, n);
	return true;
}

/*
 * The MTA's commands for SMTP steps: the stage whose macros an
 * SMFIC_MACRO packet for it carries (-1: mxgate keeps none), and the
 * SMFIP_NR_* bit that waives its reply (0: it always has one).
 */
static const struct proto_cmd {
	uint8_t	cmd;
	int	stage;
	unsigned long nr_bit;
} proto_cmds[] = {
	{SMFIC_CONNECT, SMFIM_CONNECT, SMFIP_NR_CONN},
	{SMFIC_HELO, SMFIM_HELO, SMFIP_NR_HELO},
	{SMFIC_MAIL, SMFIM_ENVFROM, SMFIP_NR_MAIL},
	{SMFIC_RCPT, SMFIM_ENVRCPT, SMFIP_NR_RCPT},
	{SMFIC_DATA, SMFIM_DATA, SMFIP_NR_DATA},
	{SMFIC_HEADER, -1, SMFIP_NR_HDR},
	{SMFIC_EOH, SMFIM_EOH, SMFIP_NR_EOH},
	{SMFIC_BODY, -1, SMFIP_NR_BODY},
	{SMFIC_BODYEOB, SMFIM_EOM, 0},
	{SMFIC_UNKNOWN, -1, SMFIP_NR_UNKN},
};

/* The row of cmd, or NULL for a command that is not an SMTP step. */
static const struct proto_cmd *
cmd_row(uint8_t cmd)
{
	for (size_t i = 0; i < sizeof(proto_cmds) / sizeof(proto_cmds[0]); i++)
		if (proto_cmds[i].cmd == cmd)
			return &proto_cmds[i];
	return NULL;
}

/* An SMFIC_MACRO packet; false (the connection ends) when it cannot be kept. */
static bool
on_macro(struct milter_conn *c, const uint8_t *data, size_t len)
{
	const struct proto_cmd *row;
	char   *copy;

	if (len == 0 || (row = cmd_row(data[0])) == NULL || row->stage < 0)
		return true;
	data++, len--;
	/* Keep whole strings only: up to the last NUL. */
	while (len > 0 && data[len - 1] != '\0')
		len--;
	/* Out of memory: the step would run without the MTA's macros; end it instead. */
	if ((copy = malloc(len ? len : 1)) == NULL)
		return false;
	memcpy(copy, data, len);
	free(c->macros[row->stage]);
	c->macros[row->stage] = copy;
	c->macros_len[row->stage] = len;
	return true;
}

/*
 * The client address of an SMFIC_CONNECT packet (family byte, port, then
 * the address as text from p on), into *ss; NULL for anything short of
 * that: an unknown client.
 */
static const struct sockaddr *
connect_addr(const uint8_t *p, size_t left, struct sockaddr_storage *ss)
{
	char	text[INET6_ADDRSTRLEN + 8];
	char	family;
	uint16_t port;
	const uint8_t *a, *end;
	size_t	alen;

	memset(ss, 0, sizeof(*ss));
	if (left <= 3 || (*p != SMFIA_INET && *p != SMFIA_INET6))
		return NULL;
	family = (char)*p;
	a = p + 3;
	end = memchr(a, '\0', left - 3);
	alen = end ? (size_t)(end - a) : 0;
	memcpy(&port, p + 1, 2);
	if (alen > 5 && strncasecmp((const char *)a, "IPv6:", 5) == 0)
		a += 5, alen -= 5;
	if (end == NULL || alen >= sizeof(text))
		return NULL;
	memcpy(text, a, alen);
	text[alen] = '\0';
	if (family == SMFIA_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return NULL;
		sin->sin_family = AF_INET;
		sin->sin_port = port;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return NULL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
	}
	return (const struct sockaddr *)ss;
}

/* SMFIC_CONNECT: the host name, then the address connect_addr() reads. */
static bool
on_connect(struct milter_conn *c, const uint8_t *data, size_t len)
{
	const uint8_t *nul = memchr(data, '\0', len);
	struct sockaddr_storage ss;
	const struct sockaddr *addr;
	sfsistat r = SMFIS_CONTINUE;

	if (nul == NULL)
		return false;
	addr = connect_addr(nul + 1, len - (size_t)(nul + 1 - data), &ss);
	if (c->cb->connect != NULL)
		r = c->cb->connect(c, (const char *)data, addr);
	out_status(c, SMFIP_NR_CONN, r);
	return true;
}

/* Split NUL-terminated strings into argv (at most ENGINE_MAX_ARGS); false if malformed. */
static bool
split_args(const uint8_t *data, size_t len, char **argv)
{
	size_t	n = 0, start = 0;

	if (len == 0 || data[len - 1] != '\0')
		return false;
	for (size_t i = 0; i < len && n < ENGINE_MAX_ARGS; i++) {
		if (data[i] == '\0') {
			argv[n++] = (char *)data + start;
			start = i + 1;
		}
	}
	argv[n] = NULL;
	return true;
}

/* HELO, MAIL, RCPT, DATA: the filter's callback for the step, and its reply. */
static bool
on_step(struct milter_conn *c, uint8_t cmd, const uint8_t *data, size_t len)
{
	const struct milter_callbacks *cb = c->cb;
	char   *argv[ENGINE_MAX_ARGS + 1];
	sfsistat r = SMFIS_CONTINUE;

	if (cmd == SMFIC_HELO) {
		if (memchr(data, '\0', len) == NULL)
			return false;
		if (cb->helo != NULL)
			r = cb->helo(c, (const char *)data);
	} else if (cmd == SMFIC_MAIL) {
		if (!split_args(data, len, argv))
			return false;
		/* Macros of a previous transaction's later stages are stale now. */
		macros_clear(c, SMFIM_ENVRCPT);
		if (cb->envfrom != NULL)
			r = cb->envfrom(c, argv);
	} else if (cmd == SMFIC_RCPT) {
		if (!split_args(data, len, argv))
			return false;
		if (cb->envrcpt != NULL)
			r = cb->envrcpt(c, argv);
	} else if (cmd == SMFIC_DATA) {
		if (cb->data != NULL)
			r = cb->data(c);
	} else if (cmd == SMFIC_HEADER) {
		const uint8_t *value = memchr(data, '\0', len);

		/* "NAME\0VALUE\0" */
		if (value == NULL || len == 0 || data[len - 1] != '\0')
			return false;
		if (cb->header != NULL)
			r = cb->header(c, (const char *)data, (const char *)value + 1);
	} else if (cmd == SMFIC_BODY) {
		if (cb->body != NULL)
			r = cb->body(c, data, len);
	}
	/* End of header, unknown command: no callback, a reply. */
	out_status(c, cmd_row(cmd)->nr_bit, r);
	return true;
}

/*
 * End of message: header and quarantine allowed during the callback; the
 * transaction ends.  The packet may carry the body's last chunk, which
 * the filter sees first (as libmilter hands it to xxfi_body).
 */
static bool
on_eom(struct milter_conn *c, const uint8_t *data, size_t len)
{
	sfsistat r = SMFIS_CONTINUE;

	if (len > 0 && c->cb->body != NULL)
		(void)c->cb->body(c, data, len);
	c->in_eom = true;
	if (c->cb->eom != NULL)
		r = c->cb->eom(c);
	c->in_eom = false;
	out_status(c, 0, r);
	macros_clear(c, SMFIM_ENVFROM);
	return true;
}

/* One packet; false when the connection must end. */
static bool
on_packet(struct milter_conn *c, uint8_t cmd, const uint8_t *data, size_t len)
{
	if (cmd == SMFIC_OPTNEG)
		return on_optneg(c, data, len);
	if (!c->negotiated)
		return false;
	switch (cmd) {
	case SMFIC_MACRO:
		return on_macro(c, data, len);
	case SMFIC_CONNECT:
		return on_connect(c, data, len);
	case SMFIC_BODYEOB:
		return on_eom(c, data, len);
	case SMFIC_ABORT:
		if (c->cb->abort != NULL)
			c->cb->abort(c);
		macros_clear(c, SMFIM_ENVFROM);
		return true;
	case SMFIC_QUIT_NC:
		/* The end of one SMTP connection; the next follows on this socket. */
		if (c->cb->close != NULL)
			c->cb->close(c);
		macros_clear(c, SMFIM_CONNECT);
		return true;
	case SMFIC_QUIT:
		return false;
	default:
		/* The other steps; an unknown command ends the connection. */
		return cmd_row(cmd) != NULL && on_step(c, cmd, data, len);
	}
}

/* Handle every whole packet in the input buffer; false when the connection must end. */
bool
proto_process(struct milter_conn *c)
{
	size_t	off = 0;
	bool	open = true;

	while (c->in_len - off >= ENGINE_HEADER) {
		uint32_t len = get_u32(c->in + off);

		if (len == 0 || len - 1 > ENGINE_MAX_DATA) {
			log_warning("milter protocol: packet of %lu bytes, connection closed", (unsigned long)len);
			open = false;
			break;
		}
		if (c->in_len - off < ENGINE_HEADER + (size_t)len)
			break;
		open = on_packet(c, c->in[off + ENGINE_HEADER], c->in + off + ENGINE_HEADER + 1, len - 1);
		off += ENGINE_HEADER + (size_t)len;
		if (!open || c->out_failed)
			break;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return open && !c->out_failed;
}

/* Room for the rest of the packet being read (or one more read); false if out of memory. */
bool
proto_in_reserve(struct milter_conn *c)
{
	size_t	need = ENGINE_IN_START, cap;
	uint8_t *p;

	if (c->in_len >= ENGINE_HEADER) {
		uint32_t len = get_u32(c->in);

		if (len > 0 && len - 1 <= ENGINE_MAX_DATA && ENGINE_HEADER + (size_t)len > need)
			need = ENGINE_HEADER + (size_t)len;
	}
	if (need <= c->in_len)
		need = c->in_len + ENGINE_IN_START;
	if (need <= c->in_cap)
		return true;
	for (cap = c->in_cap ? c->in_cap : ENGINE_IN_START; cap < need; cap *= 2)
		;
	if ((p = realloc(c->in, cap)) == NULL)
		return false;
	c->in = p;
	c->in_cap = cap;
	return true;
}

/* ---- connections -------------------------------------------------------- */

struct milter_conn *
proto_conn_new(const struct milter_callbacks *cb, int fd)
{
	struct milter_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->cb = cb;
	return c;
}

/* The end of a connection: the filter's close, then everything freed. */
void
proto_conn_free(struct milter_conn *c)
{
	if (c == NULL)
		return;
	if (c->cb->close != NULL)
		c->cb->close(c);
	macros_clear(c, SMFIM_CONNECT);
	for (int i = 0; i < ENGINE_STAGES; i++)
		free(c->symlist[i]);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

struct milter_conn *
milter_conn_new(const struct milter_callbacks *cb)
{
	milter_use(&milter_engine_builtin);
	return proto_conn_new(cb, -1);
}

bool
milter_conn_feed(struct milter_conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (!c->closed && len > 0) {
		size_t	n;

		if (!proto_in_reserve(c)) {
			c->closed = true;
			break;
		}
		n = c->in_cap - c->in_len < len ? c->in_cap - c->in_len : len;
		memcpy(c->in + c->in_len, p, n);
		c->in_len += n;
		p += n, len -= n;
		if (!proto_process(c))
			c->closed = true;
	}
	return !c->closed;
}

const uint8_t *
milter_conn_output(struct milter_conn *c, size_t *len)
{
	*len = c->out_len;
	c->out_len = 0;
	return c->out;
}

void
milter_conn_free(struct milter_conn *c)
{
	proto_conn_free(c);
}

const struct milter_engine milter_engine_builtin = {
	.name = "builtin",
	.conn = {proto_getpriv, proto_setpriv, proto_getsymval},
	.mta = {proto_setsymlist, proto_setreply, proto_quarantine, proto_addheader},
	.serve = {.listen = pool_listen, .run = pool_run, .stop = pool_stop},
};
