/*
 * engine.c - mxgate's milter protocol engine (see engine.h).
 *
 * A packet is a 4-byte big-endian length, a command byte and length-1
 * bytes of data.  The MTA's packets are parsed from a per-connection input
 * buffer, each is handled in order, and the replies they produce collect in
 * an output buffer written once before the next read.  Anything malformed
 * (a length over ENGINE_MAX_DATA, a string without its NUL, a command
 * before negotiation, an unknown command) ends the connection, as libmilter
 * does: the MTA then applies its own default for a broken filter
 * (Postfix's milter_default_action, tempfail by default).  Macro lists are
 * kept as the MTA sent them, one per stage, and read in place; an odd
 * number of strings drops the last name, never reads past the list.
 *
 * Thread-safety: a connection is touched only by the thread serving it;
 * the engine's shared state (the pool counters, the list of open
 * connections for milter_stop) is under one mutex, never held across I/O.
 */
#include "engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmilter/mfdef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define ENGINE_HEADER		4		/* the length word */
#define ENGINE_IN_START		8192
#define ENGINE_OUT_START	1024
#define ENGINE_START_THREADS	4		/* waiting in accept() from the start */
#define ENGINE_MAX_IDLE		32		/* more idle threads than this exit */
#define ENGINE_MAX_THREADS	4096		/* connections served at once */
#define ENGINE_STOP_WAIT_S	5		/* then a warning names the threads stop waits for */
#define ENGINE_STAGES		(SMFIM_LAST + 1)

struct milter_conn {
	int	fd;			/* -1: in memory (milter_conn_new) */
	const struct milter_callbacks *cb;
	void   *priv;
	bool	negotiated;
	bool	in_eom;			/* header and quarantine actions allowed */
	bool	closed;			/* in memory: the connection would have ended */
	unsigned long actions;		/* SMFIF_* agreed with the MTA */
	unsigned long steps;		/* SMFIP_* agreed with the MTA */
	char   *symlist[ENGINE_STAGES];	/* macro names asked for, by stage */
	char   *macros[ENGINE_STAGES];	/* "name\0value\0..." as sent, by stage */
	size_t	macros_len[ENGINE_STAGES];
	char	reply[ENGINE_REPLY_MAX];	/* "" or the text of the next refusal */
	uint8_t *in;
	size_t	in_len, in_cap;
	uint8_t *out;
	size_t	out_len, out_cap;
	bool	out_failed;		/* a reply could not be buffered */
	struct milter_conn *prev, *next;	/* open connections (milter_stop) */
};

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

void   *
milter_getpriv(const struct milter_conn *c)
{
	return c->priv;
}

void
milter_setpriv(struct milter_conn *c, void *priv)
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

const char *
milter_getsymval(const struct milter_conn *c, const char *name)
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

int
milter_setsymlist(struct milter_conn *c, int stage, const char *macros)
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

int
milter_setreply(struct milter_conn *c, const char *code, const char *dsn, const char *text)
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

int
milter_quarantine(struct milter_conn *c, const char *reason)
{
	const void *part = reason;
	size_t	len;

	if (!c->in_eom || !(c->actions & SMFIF_QUARANTINE) || reason == NULL || *reason == '\0')
		return -1;
	len = strlen(reason) + 1;
	out_packet(c, SMFIR_QUARANTINE, &part, &len, 1);
	return c->out_failed ? -1 : 0;
}

int
milter_addheader(struct milter_conn *c, const char *name, const char *value)
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

/* The stage of an SMFIC_MACRO packet's command byte, -1 for one mxgate keeps none of. */
static int
macro_stage(uint8_t cmd)
{
	switch (cmd) {
	case SMFIC_CONNECT:
		return SMFIM_CONNECT;
	case SMFIC_HELO:
		return SMFIM_HELO;
	case SMFIC_MAIL:
		return SMFIM_ENVFROM;
	case SMFIC_RCPT:
		return SMFIM_ENVRCPT;
	case SMFIC_DATA:
		return SMFIM_DATA;
	case SMFIC_BODYEOB:
		return SMFIM_EOM;
	case SMFIC_EOH:
		return SMFIM_EOH;
	default:
		return -1;
	}
}

static void
on_macro(struct milter_conn *c, const uint8_t *data, size_t len)
{
	int	stage;
	char   *copy;

	if (len == 0 || (stage = macro_stage(data[0])) < 0)
		return;
	data++, len--;
	/* Keep whole strings only: up to the last NUL. */
	while (len > 0 && data[len - 1] != '\0')
		len--;
	if ((copy = malloc(len ? len : 1)) == NULL)
		return;
	memcpy(copy, data, len);
	free(c->macros[stage]);
	c->macros[stage] = copy;
	c->macros_len[stage] = len;
}

static bool
on_connect(struct milter_conn *c, const uint8_t *data, size_t len)
{
	const uint8_t *nul = memchr(data, '\0', len), *p;
	struct sockaddr_storage ss;
	const struct sockaddr *addr = NULL;
	char	text[INET6_ADDRSTRLEN + 8];
	sfsistat r = SMFIS_CONTINUE;

	if (nul == NULL)
		return false;
	p = nul + 1;
	memset(&ss, 0, sizeof(ss));
	/* family byte, port, address: anything short of that is an unknown client */
	if (len - (size_t)(p - data) > 3 && (*p == SMFIA_INET || *p == SMFIA_INET6)) {
		char	family = (char)*p;
		uint16_t port;
		const uint8_t *a = p + 3, *end = memchr(a, '\0', len - (size_t)(a - data));
		size_t	alen = end ? (size_t)(end - a) : 0;

		memcpy(&port, p + 1, 2);
		if (alen > 5 && strncasecmp((const char *)a, "IPv6:", 5) == 0)
			a += 5, alen -= 5;
		if (end != NULL && alen < sizeof(text)) {
			memcpy(text, a, alen);
			text[alen] = '\0';
			if (family == SMFIA_INET) {
				struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

				if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
					sin->sin_family = AF_INET;
					sin->sin_port = port;
					addr = (struct sockaddr *)sin;
				}
			} else {
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

				if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
					sin6->sin6_family = AF_INET6;
					sin6->sin6_port = port;
					addr = (struct sockaddr *)sin6;
				}
			}
		}
	}
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

/* One packet; false when the connection must end. */
static bool
on_packet(struct milter_conn *c, uint8_t cmd, const uint8_t *data, size_t len)
{
	char   *argv[ENGINE_MAX_ARGS + 1];
	const struct milter_callbacks *cb = c->cb;
	sfsistat r = SMFIS_CONTINUE;

	if (cmd == SMFIC_OPTNEG)
		return on_optneg(c, data, len);
	if (!c->negotiated)
		return false;
	switch (cmd) {
	case SMFIC_MACRO:
		on_macro(c, data, len);
		return true;
	case SMFIC_CONNECT:
		return on_connect(c, data, len);
	case SMFIC_HELO:
		if (memchr(data, '\0', len) == NULL)
			return false;
		if (cb->helo != NULL)
			r = cb->helo(c, (const char *)data);
		out_status(c, SMFIP_NR_HELO, r);
		return true;
	case SMFIC_MAIL:
		if (!split_args(data, len, argv))
			return false;
		/* Macros of a previous transaction's later stages are stale now. */
		macros_clear(c, SMFIM_ENVRCPT);
		if (cb->envfrom != NULL)
			r = cb->envfrom(c, argv);
		out_status(c, SMFIP_NR_MAIL, r);
		return true;
	case SMFIC_RCPT:
		if (!split_args(data, len, argv))
			return false;
		if (cb->envrcpt != NULL)
			r = cb->envrcpt(c, argv);
		out_status(c, SMFIP_NR_RCPT, r);
		return true;
	case SMFIC_DATA:
		if (cb->data != NULL)
			r = cb->data(c);
		out_status(c, SMFIP_NR_DATA, r);
		return true;
	case SMFIC_HEADER:
		out_status(c, SMFIP_NR_HDR, r);
		return true;
	case SMFIC_EOH:
		out_status(c, SMFIP_NR_EOH, r);
		return true;
	case SMFIC_BODY:
		out_status(c, SMFIP_NR_BODY, r);
		return true;
	case SMFIC_UNKNOWN:
		out_status(c, SMFIP_NR_UNKN, r);
		return true;
	case SMFIC_BODYEOB:
		c->in_eom = true;
		if (cb->eom != NULL)
			r = cb->eom(c);
		c->in_eom = false;
		out_status(c, 0, r);
		macros_clear(c, SMFIM_ENVFROM);
		return true;
	case SMFIC_ABORT:
		if (cb->abort != NULL)
			cb->abort(c);
		macros_clear(c, SMFIM_ENVFROM);
		return true;
	case SMFIC_QUIT_NC:
		/* The end of one SMTP connection; the next follows on this socket. */
		if (cb->close != NULL)
			cb->close(c);
		macros_clear(c, SMFIM_CONNECT);
		return true;
	case SMFIC_QUIT:
	default:
		return false;
	}
}

/* Handle every whole packet in the input buffer; false when the connection must end. */
static bool
conn_process(struct milter_conn *c)
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
static bool
in_reserve(struct milter_conn *c)
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

static struct milter_conn *
conn_new(const struct milter_callbacks *cb, int fd)
{
	struct milter_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->cb = cb;
	return c;
}

/* The end of a connection: the filter's close, then everything freed. */
static void
conn_free(struct milter_conn *c)
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
	return conn_new(cb, -1);
}

bool
milter_conn_feed(struct milter_conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (!c->closed && len > 0) {
		size_t	n;

		if (!in_reserve(c)) {
			c->closed = true;
			break;
		}
		n = c->in_cap - c->in_len < len ? c->in_cap - c->in_len : len;
		memcpy(c->in + c->in_len, p, n);
		c->in_len += n;
		p += n, len -= n;
		if (!conn_process(c))
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
	conn_free(c);
}

/* Write the queued replies; false when the MTA is gone. */
static bool
conn_flush(struct milter_conn *c)
{
	size_t	off = 0;

	while (off < c->out_len) {
		ssize_t	n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	c->out_len = 0;
	return true;
}

/* Serve one accepted connection until it ends. */
static void
conn_serve(struct milter_conn *c)
{
	for (;;) {
		ssize_t	n;
		bool	open;

		if (!in_reserve(c))
			break;
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* the MTA closed, or idle_timeout (SO_RCVTIMEO) passed */
		c->in_len += (size_t)n;
		open = conn_process(c);
		if (c->out_len > 0 && !conn_flush(c))
			break;
		if (!open)
			break;
	}
}

/* ---- listening and the thread pool -------------------------------------- */

static struct {
	int	fd;
	char	unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct milter_callbacks *cb;
	unsigned timeout;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned threads, idle;
	bool	stopping;
	struct milter_conn *open;
} eng = {
	.fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int	fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (*path == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
		log_error("milter socket path \"%s\": empty or too long", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("milter socket %s: exists and is not a socket", path);
			return -1;
		}
		/* Left by an earlier run, unless a running mxgate still answers on it. */
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(fd);
			log_error("milter socket %s: another process is listening on it", path);
			return -1;
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, SOMAXCONN) != 0) {
		log_error("milter socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	strcpy(eng.unix_path, path);
	return fd;
}

static int
listen_inet(int family, const char *where)
{
	char	port[64], host[256];
	const char *at = strchr(where, '@');
	struct addrinfo hints, *res = NULL, *ai;
	int	fd = -1, err, one = 1;
	size_t	plen = at ? (size_t)(at - where) : strlen(where);

	if (plen == 0 || plen >= sizeof(port) || (at && strlen(at + 1) >= sizeof(host))) {
		log_error("milter socket: bad port or host in \"%s\"", where);
		return -1;
	}
	memcpy(port, where, plen);
	port[plen] = '\0';
	host[0] = '\0';
	if (at != NULL) {
		const char *h = at + 1;
		size_t	hlen = strlen(h);

		if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']')
			h++, hlen -= 2;
		memcpy(host, h, hlen);
		host[hlen] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0) {
		log_error("milter socket %s: %s", where, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	if (fd < 0)
		log_error("milter socket %s: %s", where, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int
milter_listen(const char *spec)
{
	int	fd;

	if (strncasecmp(spec, "unix:", 5) == 0)
		fd = listen_unix(spec + 5);
	else if (strncasecmp(spec, "local:", 6) == 0)
		fd = listen_unix(spec + 6);
	else if (strncasecmp(spec, "inet:", 5) == 0)
		fd = listen_inet(AF_INET, spec + 5);
	else if (strncasecmp(spec, "inet6:", 6) == 0)
		fd = listen_inet(AF_INET6, spec + 6);
	else if (spec[0] == '/')
		fd = listen_unix(spec);	/* smfi_setconn() takes a bare path too */
	else {
		log_error("milter socket \"%s\": want inet:PORT@HOST, inet6:PORT@HOST or unix:PATH", spec);
		return -1;
	}
	if (fd < 0)
		return -1;
	eng.fd = fd;
	return 0;
}

static void *worker_main(void *arg);

/* One more thread waiting in accept(); with eng.lock held. */
static void
spawn_locked(void)
{
	pthread_t t;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker_main, NULL) == 0) {
		eng.threads++;
		eng.idle++;
	} else
		log_warning("cannot start a milter thread: %s", strerror(errno));
	pthread_attr_destroy(&attr);
}

/*
 * How long a connection may wait on the MTA (SO_RCVTIMEO, SO_SNDTIMEO), and
 * no Nagle delay for TCP (the replies of a batch go out in one write
 * anyway).  Linux copies a TCP listener's options to each accepted socket,
 * so they are set once on the listener; a unix socket's connections
 * inherit nothing and are set one by one.
 */
static void
socket_options(int fd, bool tcp)
{
	struct timeval tv = {.tv_sec = (time_t)eng.timeout};
	int	one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void *
worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&eng.lock);
	for (;;) {
		struct milter_conn *c;
		int	fd, err;

		/* idle: waiting in accept() */
		pthread_mutex_unlock(&eng.lock);
		fd = accept4(eng.fd, NULL, NULL, SOCK_CLOEXEC);
		err = errno;
		pthread_mutex_lock(&eng.lock);
		if (eng.stopping) {
			if (fd >= 0)
				close(fd);
			eng.idle--;
			break;
		}
		if (fd < 0) {
			if (err != EINTR && err != ECONNABORTED && err != EAGAIN) {
				/* Out of descriptors or memory: pause, log once in a while. */
				static time_t logged;	/* under eng.lock */
				time_t	now = time(NULL);
				bool	say = now - logged >= 10;

				if (say)
					logged = now;
				pthread_mutex_unlock(&eng.lock);
				if (say)
					log_warning("milter accept: %s", strerror(err));
				usleep(100000);
				pthread_mutex_lock(&eng.lock);
			}
			continue;
		}
		if ((c = conn_new(eng.cb, fd)) == NULL) {
			close(fd);
			continue;
		}
		/* busy: the last idle thread starts a spare before it serves */
		if (--eng.idle == 0 && eng.threads < ENGINE_MAX_THREADS)
			spawn_locked();
		c->next = eng.open;
		if (eng.open != NULL)
			eng.open->prev = c;
		eng.open = c;
		pthread_mutex_unlock(&eng.lock);

		if (eng.unix_path[0] != '\0')
			socket_options(fd, false);
		conn_serve(c);

		pthread_mutex_lock(&eng.lock);
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			eng.open = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		pthread_mutex_unlock(&eng.lock);
		conn_free(c);	/* the filter's close runs outside the lock */
		pthread_mutex_lock(&eng.lock);
		if (eng.stopping || eng.idle >= ENGINE_MAX_IDLE)
			break;
		eng.idle++;
	}
	eng.threads--;
	pthread_cond_broadcast(&eng.changed);
	pthread_mutex_unlock(&eng.lock);
	return NULL;
}

int
milter_run(const struct milter_callbacks *cb, unsigned idle_timeout)
{
	struct timespec until;

	if (eng.fd < 0)
		return -1;
	pthread_mutex_lock(&eng.lock);
	eng.cb = cb;
	eng.timeout = idle_timeout;
	if (eng.unix_path[0] == '\0')
		socket_options(eng.fd, true);
	for (int i = 0; i < ENGINE_START_THREADS; i++)
		spawn_locked();
	if (eng.threads == 0) {
		pthread_mutex_unlock(&eng.lock);
		return -1;
	}
	while (!eng.stopping)
		pthread_cond_wait(&eng.changed, &eng.lock);
	/*
	 * Wake the threads in accept() and end the open connections: an MTA in
	 * mid-conversation sees the filter go away and applies its default
	 * action, as it would when a libmilter filter exits.
	 */
	shutdown(eng.fd, SHUT_RDWR);
	for (struct milter_conn *c = eng.open; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	/*
	 * Every thread must be gone before main() tears down what callbacks
	 * use; a thread still in a callback is bounded by its back end's
	 * timeout, so this ends.
	 */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ENGINE_STOP_WAIT_S;
	while (eng.threads > 0) {
		if (pthread_cond_timedwait(&eng.changed, &eng.lock, &until) == ETIMEDOUT) {
			log_warning("stopping: waiting for %u milter threads still in a callback", eng.threads);
			until.tv_sec += 3600;
		}
	}
	pthread_mutex_unlock(&eng.lock);
	close(eng.fd);
	eng.fd = -1;
	if (eng.unix_path[0] != '\0')
		unlink(eng.unix_path);
	return 0;
}

void
milter_stop(void)
{
	pthread_mutex_lock(&eng.lock);
	eng.stopping = true;
	pthread_cond_broadcast(&eng.changed);
	pthread_mutex_unlock(&eng.lock);
}
