/*
 * milter_load.c - a load driver that speaks the milter protocol (version 6)
 * to mxgate directly, without an MTA, and reports RCPT verdicts per second
 * and latency percentiles.
 *
 *   milter_load -p SOCKET [-c THREADS] [-d SECONDS] [-n SESSIONS]
 *               [-m MSGS] [-r RCPTS] [-k CLIENTS] [-u RECIPIENTS]
 *               [-H HELO] [-a AUTHUSER] [-t TIMEOUT] [-L FILE] [-M] [-N] [-x] [-Z] [-q]
 *
 * Each thread runs milter sessions one after another, as an MTA's smtpd
 * processes do: negotiate (offering what Postfix 3.7 offers, and taking the
 * filter's macro lists), connect, HELO, then for each message MAIL, RCPTs,
 * DATA (end of message too when the filter does not accept at DATA), and
 * QUIT.  Steps the filter asked no reply for are sent together with the
 * next step that has one, in one write, and TCP_NODELAY is set (-N turns it
 * off), so the driver measures mxgate rather than Nagle's algorithm.
 * -x sends no macro packets at all: what the filter would cost if it asked
 * for no macros (the difference measures one macro packet per step).
 * Clients come from 198.18.0.0/15 (RFC 2544's benchmark range: never
 * routed, never in trusted_networks by default), recipients are
 * userN@example.org, so rate-limit and quota keys spread over -k and -u
 * values.
 *
 * Bounded everywhere: -d seconds (default 10, at most 600) and -n sessions
 * end the run, every socket read and write has a deadline (-t, default
 * 10 s), and a packet longer than 64 KiB ends its session as an error.
 * Output: a human summary, then one "RESULT key=value ..." line for scripts.
 * -M mixes in what a long run must survive: one session in five greets
 * with "localhost" (refused at RCPT), one in seven with a 900-byte HELO,
 * one in eleven sends a 4000-byte sender, and one in nine drops its
 * connection after its first RCPT reply, with no QUIT (counted as a
 * completed session: the drop is the point).
 * MAIL carries SIZE=5120, as Postfix passes on a client's SIZE=.  -Z sends
 * no SIZE=, and a message the filter still wants after DATA is sent as
 * Postfix would send a 5 KB one: ten headers, then the body in one chunk
 * (each only when the filter did not decline it at negotiation): what
 * counting the real size costs.
 * -L FILE appends one line per session to FILE, for a test that checks
 * each verdict: "SESSION M:V R:V R:V ...", V being the reply's code for a
 * custom reply ("552") and else the reply's letter ("c" continue, "a"
 * accept, "t" tempfail, "r" reject), one per MAIL and RCPT answered in
 * order, and " FAILED" at the end of a session that did not complete.
 * Exit status 0 when every session completed, 1 when any failed, 2 on
 * usage errors.
 *
 * Thread-safety: each thread owns its connection and its statistics; the
 * only shared words are the stop flag and the session counter (atomics).
 */
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_PACKET		65536
#define LOAD_MAX_THREADS	512
#define LOAD_MAX_SECONDS	600
#define LOAD_STAGES		(SMFIM_LAST + 1)

/* What Postfix 3.7 offers at negotiation (milter8.c, protocol 6). */
#define LOAD_OFFER_ACTIONS	(SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | \
				 SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE | \
				 SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)
#define LOAD_OFFER_PROTOCOL	(SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | \
				 SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | \
				 SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | \
				 SMFIP_NODATA | SMFIP_SKIP | SMFIP_RCPT_REJ | \
				 SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | \
				 SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | \
				 SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_HDR_LEADSPC)

struct load_options {
	const char *socket;		/* inet:PORT@HOST or unix:PATH */
	unsigned threads;
	double	seconds;
	unsigned long sessions;		/* 0: until seconds run out */
	unsigned msgs, rcpts;		/* per session, per message */
	unsigned clients, recipients;	/* distinct client IPs, recipient names */
	const char *helo, *auth_user;
	double	timeout;
	bool	nodelay, quiet, no_macros;
	const char *verdict_log;	/* -L FILE, or NULL */
	bool	mixed;			/* -M */
	bool	no_size;		/* -Z */
};

/* Verdicts by kind, for MAIL and RCPT. */
enum load_kind { KIND_CONTINUE, KIND_ACCEPT, KIND_REJECT, KIND_TEMPFAIL, KIND_OTHER, KIND_COUNT };

static const char *const kind_names[KIND_COUNT] = {
	"continue", "accept", "reject", "tempfail", "other"
};

struct load_stats {
	unsigned long sessions, sessions_failed, messages;
	unsigned long mail[KIND_COUNT], rcpt[KIND_COUNT];
	uint32_t *lat;			/* RCPT round trips, microseconds */
	size_t	nlat, cap;
	uint32_t *sess_lat;		/* whole sessions, microseconds */
	size_t	nsess, sess_cap;
	char	first_error[256];
};

struct load_conn {
	int	fd;
	unsigned long actions, protocol;
	char   *macros[LOAD_STAGES];	/* the filter's lists, or NULL: defaults */
	char	wbuf[LOAD_MAX_PACKET];
	size_t	wlen;
	char	rbuf[LOAD_MAX_PACKET];
	size_t	rlen;
	char	rcmd;
	char	verdicts[1024];		/* -L: this session's " M:V R:V ..." */
	size_t	vlen;
	bool	dropped;		/* -M: the session hung up mid-transaction */
};

/* -M: a long HELO and a long sender (well inside one packet). */
static char long_helo[901], long_sender[4003];

struct load_thread {
	pthread_t tid;
	unsigned index;
	struct load_stats st;
};

static struct load_options opt;
static FILE *verdict_file;		/* -L */
static pthread_mutex_t verdict_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop_flag;
static atomic_ulong sessions_started;
static struct timespec run_start;
static struct sockaddr_storage target;
static socklen_t target_len;

/* Macros Postfix sends at each stage when the filter gives no list. */
static const char *const default_macros[LOAD_STAGES] = {
	"j {daemon_name} v",
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	"i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
	"{rcpt_addr} {rcpt_host} {rcpt_mailer}",
	"i",
	"i",
	"",
};

static void
usage(void)
{
	fprintf(stderr,
		"usage: milter_load -p SOCKET [-c THREADS] [-d SECONDS] [-n SESSIONS]\n"
		"                   [-m MSGS] [-r RCPTS] [-k CLIENTS] [-u RECIPIENTS]\n"
		"                   [-H HELO] [-a AUTHUSER] [-t TIMEOUT] [-L FILE] [-M] [-N] [-x] [-Z] [-q]\n");
	exit(2);
}

/* Seconds since t0. */
static double
elapsed_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Microseconds since t0, saturated to 32 bits. */
static uint32_t
micros_since(const struct timespec *t0)
{
	double	us = elapsed_since(t0) * 1e6;

	return us >= 4294967295.0 ? UINT32_MAX : (uint32_t)us;
}

/* Append v to a growing array; false when out of memory. */
static bool
samples_push(uint32_t **arr, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		size_t	ncap = *cap ? *cap * 2 : 4096;
		uint32_t *p = realloc(*arr, ncap * sizeof(**arr));

		if (p == NULL)
			return false;
		*arr = p;
		*cap = ncap;
	}
	(*arr)[(*n)++] = v;
	return true;
}

/* Parse -p into target; false with a message on a bad spec. */
static bool
target_parse(const char *spec)
{
	memset(&target, 0, sizeof(target));
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&target;
		const char *path = strchr(spec, ':') + 1;

		if (strlen(path) >= sizeof(un->sun_path))
			return false;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		target_len = sizeof(*un);
		return true;
	}
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
		char	port[16], host[256];
		const char *p = strchr(spec, ':') + 1, *at = strchr(p, '@');
		struct addrinfo hints, *res;

		if (at == NULL || (size_t)(at - p) >= sizeof(port) || strlen(at + 1) >= sizeof(host))
			return false;
		memcpy(port, p, at - p);
		port[at - p] = '\0';
		strcpy(host, at + 1);
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = spec[4] == '6' ? AF_INET6 : AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			return false;
		memcpy(&target, res->ai_addr, res->ai_addrlen);
		target_len = res->ai_addrlen;
		freeaddrinfo(res);
		return true;
	}
	return false;
}

/* Record the first error of a thread. */
static void
stats_error(struct load_stats *st, const char *what)
{
	if (st->first_error[0] == '\0')
		snprintf(st->first_error, sizeof(st->first_error), "%s%s%s", what,
			 errno ? ": " : "", errno ? strerror(errno) : "");
}

/* Open a connection with read/write deadlines; -1 on failure. */
static int
conn_open(void)
{
	struct timeval tv;
	int	fd, one = 1;

	if ((fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	tv.tv_sec = (time_t)opt.timeout;
	tv.tv_usec = (suseconds_t)((opt.timeout - (double)tv.tv_sec) * 1e6);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (target.ss_family != AF_UNIX && opt.nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&target, target_len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Queue one packet: command byte and a payload of len bytes. */
static bool
conn_queue(struct load_conn *c, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)(len + 1));

	if (c->wlen + 5 + len > sizeof(c->wbuf)) {
		errno = EMSGSIZE;
		return false;
	}
	memcpy(c->wbuf + c->wlen, &n, 4);
	c->wbuf[c->wlen + 4] = cmd;
	if (len > 0)
		memcpy(c->wbuf + c->wlen + 5, data, len);
	c->wlen += 5 + len;
	return true;
}

/* Send everything queued, in one write where the kernel allows. */
static bool
conn_flush(struct load_conn *c)
{
	size_t	off = 0;

	while (off < c->wlen) {
		ssize_t	n = send(c->fd, c->wbuf + off, c->wlen - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	c->wlen = 0;
	return true;
}

/* Read exactly len bytes within the socket's deadline. */
static bool
read_full(int fd, void *buf, size_t len)
{
	size_t	off = 0;

	while (off < len) {
		ssize_t	n = recv(fd, (char *)buf + off, len - off, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = ECONNRESET;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

/* Flush, then read one packet into c->rcmd / c->rbuf (NUL-terminated). */
static bool
conn_read(struct load_conn *c)
{
	uint32_t n;

	if (c->wlen > 0 && !conn_flush(c))
		return false;
	if (!read_full(c->fd, &n, 4))
		return false;
	n = ntohl(n);
	if (n == 0 || n > LOAD_MAX_PACKET - 1) {
		errno = EPROTO;
		return false;
	}
	if (!read_full(c->fd, &c->rcmd, 1) || !read_full(c->fd, c->rbuf, n - 1))
		return false;
	c->rlen = n - 1;
	c->rbuf[c->rlen] = '\0';
	return true;
}

/* Read until a final reply (skipping progress and modification packets). */
static bool
conn_reply(struct load_conn *c)
{
	for (int i = 0; i < 64; i++) {
		if (!conn_read(c))
			return false;
		switch (c->rcmd) {
		case SMFIR_PROGRESS:
		case SMFIR_ADDHEADER:
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
		case SMFIR_QUARANTINE:
		case SMFIR_ADDRCPT:
		case SMFIR_DELRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_CHGFROM:
		case SMFIR_REPLBODY:
			continue;
		default:
			return true;
		}
	}
	errno = EPROTO;
	return false;
}

/* The kind of the last final reply. */
static enum load_kind
reply_kind(const struct load_conn *c)
{
	switch (c->rcmd) {
	case SMFIR_CONTINUE:
		return KIND_CONTINUE;
	case SMFIR_ACCEPT:
		return KIND_ACCEPT;
	case SMFIR_REJECT:
		return KIND_REJECT;
	case SMFIR_TEMPFAIL:
		return KIND_TEMPFAIL;
	case SMFIR_REPLYCODE:
		return c->rbuf[0] == '4' ? KIND_TEMPFAIL : c->rbuf[0] == '5' ? KIND_REJECT : KIND_OTHER;
	default:
		return KIND_OTHER;
	}
}

/* The value this driver gives macro name in the current session. */
static const char *
macro_value(const char *name, const char *queue_id, const char *rcpt, const char *sender)
{
	if (strcmp(name, "j") == 0 || strcmp(name, "{j}") == 0)
		return "mx.test.example";
	if (strcmp(name, "{daemon_name}") == 0)
		return "smtpd";
	if (strcmp(name, "v") == 0 || strcmp(name, "{v}") == 0)
		return "Postfix 3.7.11";
	if (strcmp(name, "i") == 0 || strcmp(name, "{i}") == 0)
		return queue_id;
	if (strcmp(name, "{auth_authen}") == 0)
		return opt.auth_user ? opt.auth_user : NULL;
	if (strcmp(name, "{auth_type}") == 0)
		return opt.auth_user ? "PLAIN" : NULL;
	if (strcmp(name, "{mail_addr}") == 0)
		return sender;
	if (strcmp(name, "{rcpt_addr}") == 0)
		return rcpt;
	if (strcmp(name, "{mail_mailer}") == 0 || strcmp(name, "{rcpt_mailer}") == 0)
		return "smtp";
	return NULL;			/* Postfix sends nothing for an undefined macro */
}

/* Queue the macro packet of stage (before command cmd), if it has any macro. */
static bool
conn_queue_macros(struct load_conn *c, int stage, char cmd, const char *queue_id,
		  const char *rcpt, const char *sender)
{
	const char *list = c->macros[stage] ? c->macros[stage] : default_macros[stage];
	char	buf[2048], name[128];
	size_t	len = 0;

	buf[len++] = cmd;
	while (!opt.no_macros && *list != '\0') {
		size_t	n = strcspn(list, " ,");
		const char *value;

		if (n > 0 && n < sizeof(name)) {
			memcpy(name, list, n);
			name[n] = '\0';
			value = macro_value(name, queue_id, rcpt, sender);
			if (value != NULL) {
				size_t	nl = strlen(name) + 1, vl = strlen(value) + 1;

				if (len + nl + vl > sizeof(buf))
					break;
				memcpy(buf + len, name, nl);
				memcpy(buf + len + nl, value, vl);
				len += nl + vl;
			}
		}
		list += n;
		list += strspn(list, " ,");
	}
	if (len == 1)
		return true;
	return conn_queue(c, SMFIC_MACRO, buf, len);
}

/* Negotiate; keeps the filter's protocol flags and macro lists. */
static bool
conn_negotiate(struct load_conn *c)
{
	uint32_t v[3] = {htonl(SMFI_PROT_VERSION), htonl(LOAD_OFFER_ACTIONS),
			 htonl(LOAD_OFFER_PROTOCOL)};
	size_t	off;

	if (!conn_queue(c, SMFIC_OPTNEG, v, sizeof(v)) || !conn_read(c))
		return false;
	if (c->rcmd != SMFIC_OPTNEG || c->rlen < 12) {
		errno = EPROTO;
		return false;
	}
	memcpy(v, c->rbuf, 12);
	c->actions = ntohl(v[1]);
	c->protocol = ntohl(v[2]);
	/* Then pairs of (uint32 stage, NUL-terminated list) when SETSYMLIST was taken. */
	for (off = 12; off + 4 < c->rlen;) {
		uint32_t stage;
		size_t	len;

		memcpy(&stage, c->rbuf + off, 4);
		stage = ntohl(stage);
		off += 4;
		len = strnlen(c->rbuf + off, c->rlen - off);
		if (stage < LOAD_STAGES) {
			free(c->macros[stage]);
			c->macros[stage] = strndup(c->rbuf + off, len);
		}
		off += len + 1;
	}
	return true;
}

/* Count a verdict and, for RCPT, its latency; -L: note it for the session's line. */
static void
stats_verdict(struct load_conn *c, struct load_stats *st, bool rcpt, enum load_kind kind,
	      const struct timespec *t0)
{
	if (verdict_file != NULL && c->vlen + 16 < sizeof(c->verdicts)) {
		int	n;

		if (c->rcmd == SMFIR_REPLYCODE && c->rlen >= 3)
			n = snprintf(c->verdicts + c->vlen, sizeof(c->verdicts) - c->vlen, " %c:%.3s",
				     rcpt ? 'R' : 'M', c->rbuf);
		else
			n = snprintf(c->verdicts + c->vlen, sizeof(c->verdicts) - c->vlen, " %c:%c",
				     rcpt ? 'R' : 'M', c->rcmd);
		if (n > 0)
			c->vlen += (size_t)n;
	}
	if (rcpt) {
		st->rcpt[kind]++;
		samples_push(&st->lat, &st->nlat, &st->cap, micros_since(t0));
	} else {
		st->mail[kind]++;
	}
}

/* -Z: ten headers and a 5 KB body, each unless declined, with a reply unless waived. */
static bool
session_content(struct load_conn *c)
{
	char	body[5000], hdr[128];

	if ((c->protocol & SMFIP_NOHDRS) == 0)
		for (int i = 0; i < 10; i++) {
			int	n = snprintf(hdr, sizeof(hdr), "X-Load-%d%cheader number %d of the message", i,
					     '\0', i);

			if (!conn_queue(c, SMFIC_HEADER, hdr, (size_t)n + 1))
				return false;
			if ((c->protocol & SMFIP_NR_HDR) == 0 && !conn_reply(c))
				return false;
		}
	if ((c->protocol & SMFIP_NOBODY) == 0) {
		memset(body, 'b', sizeof(body));
		if (!conn_queue(c, SMFIC_BODY, body, sizeof(body)))
			return false;
		if ((c->protocol & SMFIP_NR_BODY) == 0 && !conn_reply(c))
			return false;
	}
	return true;
}

/* One message: MAIL, RCPTs, DATA (and end of message if still wanted). */
static bool
session_message(struct load_conn *c, struct load_stats *st, unsigned long sess, unsigned msg)
{
	char	sender[sizeof(long_sender)], rcpt[128], qid[32], arg[sizeof(long_sender) + 16];
	struct timespec t0;
	unsigned accepted = 0;
	bool	reply;

	snprintf(qid, sizeof(qid), "%lX%02X", sess, msg & 0xff);
	snprintf(sender, sizeof(sender), "<sender%lu@example.net>", sess % 997);
	if (opt.mixed && sess % 11 == 5)
		memcpy(sender, long_sender, sizeof(long_sender));
	if (!conn_queue_macros(c, SMFIM_ENVFROM, SMFIC_MAIL, qid, NULL, sender))
		return false;
	/* "sender\0SIZE=5120\0" as Postfix sends MAIL's argument and parameters. */
	memcpy(arg, sender, strlen(sender) + 1);
	memcpy(arg + strlen(sender) + 1, "SIZE=5120", 10);
	if (!conn_queue(c, SMFIC_MAIL, arg, strlen(sender) + 1 + (opt.no_size ? 0 : 10)))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((c->protocol & SMFIP_NOMAIL) == 0 && (c->protocol & SMFIP_NR_MAIL) == 0) {
		if (!conn_reply(c))
			return false;
		enum load_kind k = reply_kind(c);

		stats_verdict(c, st, false, k, &t0);
		if (k == KIND_REJECT || k == KIND_TEMPFAIL)
			return conn_queue(c, SMFIC_ABORT, NULL, 0);
	}
	for (unsigned r = 0; r < opt.rcpts; r++) {
		unsigned long u = (sess * opt.msgs * opt.rcpts + (unsigned long)msg * opt.rcpts + r) %
		    opt.recipients;

		snprintf(rcpt, sizeof(rcpt), "<user%lu@example.org>", u);
		if ((c->protocol & SMFIP_NORCPT) != 0)
			break;
		if (!conn_queue_macros(c, SMFIM_ENVRCPT, SMFIC_RCPT, qid, rcpt, sender) ||
		    !conn_queue(c, SMFIC_RCPT, rcpt, strlen(rcpt) + 1))
			return false;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		reply = (c->protocol & SMFIP_NR_RCPT) == 0;
		if (!reply) {
			accepted++;
			continue;
		}
		if (!conn_reply(c))
			return false;
		stats_verdict(c, st, true, reply_kind(c), &t0);
		if (reply_kind(c) == KIND_CONTINUE || reply_kind(c) == KIND_ACCEPT)
			accepted++;
		if (opt.mixed && sess % 9 == 4) {
			c->dropped = true;	/* hang up mid-transaction */
			return false;
		}
	}
	if (accepted == 0)
		return conn_queue(c, SMFIC_ABORT, NULL, 0);
	st->messages++;
	if ((c->protocol & SMFIP_NODATA) == 0) {
		if (!conn_queue_macros(c, SMFIM_DATA, SMFIC_DATA, qid, NULL, sender) ||
		    !conn_queue(c, SMFIC_DATA, NULL, 0))
			return false;
		if ((c->protocol & SMFIP_NR_DATA) == 0) {
			if (!conn_reply(c))
				return false;
			if (c->rcmd == SMFIR_ACCEPT)
				return true;	/* the MTA sends nothing more for this message */
			if (c->rcmd != SMFIR_CONTINUE)
				return conn_queue(c, SMFIC_ABORT, NULL, 0);
		}
	}
	/* The filter still wants the message: its header and body (-Z), then end of message. */
	if (opt.no_size && !session_content(c))
		return false;
	if ((c->protocol & SMFIP_NOEOH) == 0) {
		if (!conn_queue(c, SMFIC_EOH, NULL, 0))
			return false;
		if ((c->protocol & SMFIP_NR_EOH) == 0 && !conn_reply(c))
			return false;
	}
	if (!conn_queue_macros(c, SMFIM_EOM, SMFIC_BODYEOB, qid, NULL, sender) ||
	    !conn_queue(c, SMFIC_BODYEOB, NULL, 0) || !conn_reply(c))
		return false;
	return true;
}

/* One SMTP session's worth of milter traffic on a new connection. */
static bool
session_run(struct load_stats *st, unsigned long sess)
{
	struct load_conn *c = calloc(1, sizeof(*c));
	char	client[32], conn[128];
	struct timespec t0;
	unsigned long ci = sess % opt.clients;
	bool	ok = false;
	size_t	len;
	uint16_t port = htons(40000 + (uint16_t)(sess % 20000));

	if (c == NULL)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	errno = 0;
	if ((c->fd = conn_open()) < 0) {
		stats_error(st, "connect");
		free(c);
		return false;
	}
	if (!conn_negotiate(c)) {
		stats_error(st, "negotiate");
		goto out;
	}
	snprintf(client, sizeof(client), "198.%lu.%lu.%lu", 18 + ((ci >> 16) & 1),
		 (ci >> 8) & 0xff, ci & 0xff);
	if ((c->protocol & SMFIP_NOCONNECT) == 0) {
		/* hostname\0 family port(2) address\0 */
		len = (size_t)snprintf(conn, sizeof(conn), "client%lu.example.net", ci) + 1;
		conn[len++] = SMFIA_INET;
		memcpy(conn + len, &port, 2);
		len += 2;
		memcpy(conn + len, client, strlen(client) + 1);
		len += strlen(client) + 1;
		if (!conn_queue_macros(c, SMFIM_CONNECT, SMFIC_CONNECT, "", NULL, NULL) ||
		    !conn_queue(c, SMFIC_CONNECT, conn, len))
			goto fail;
		if ((c->protocol & SMFIP_NR_CONN) == 0 && !conn_reply(c))
			goto fail;
	}
	if ((c->protocol & SMFIP_NOHELO) == 0) {
		const char *helo = opt.helo;

		if (opt.mixed && sess % 5 == 2)
			helo = "localhost";
		else if (opt.mixed && sess % 7 == 3)
			helo = long_helo;
		if (!conn_queue_macros(c, SMFIM_HELO, SMFIC_HELO, "", NULL, NULL) ||
		    !conn_queue(c, SMFIC_HELO, helo, strlen(helo) + 1))
			goto fail;
		if ((c->protocol & SMFIP_NR_HELO) == 0 && !conn_reply(c))
			goto fail;
	}
	for (unsigned m = 0; m < opt.msgs; m++) {
		if (!session_message(c, st, sess, m)) {
			if (c->dropped) {
				ok = true;
				goto out;
			}
			goto fail;
		}
	}
	if (!conn_queue(c, SMFIC_QUIT, NULL, 0) || !conn_flush(c))
		goto fail;
	ok = true;
	goto out;
fail:
	stats_error(st, "session");
out:
	close(c->fd);
	if (verdict_file != NULL) {
		pthread_mutex_lock(&verdict_lock);
		fprintf(verdict_file, "%lu%.*s%s\n", sess, (int)c->vlen, c->verdicts,
			ok ? "" : " FAILED");
		pthread_mutex_unlock(&verdict_lock);
	}
	for (int i = 0; i < LOAD_STAGES; i++)
		free(c->macros[i]);
	free(c);
	if (ok)
		samples_push(&st->sess_lat, &st->nsess, &st->sess_cap, micros_since(&t0));
	return ok;
}

/* A worker: sessions until the run's time or session budget is spent. */
static void *
thread_main(void *arg)
{
	struct load_thread *t = arg;

	while (!atomic_load(&stop_flag)) {
		unsigned long sess = atomic_fetch_add(&sessions_started, 1);

		if ((opt.sessions > 0 && sess >= opt.sessions) ||
		    elapsed_since(&run_start) >= opt.seconds)
			break;
		if (session_run(&t->st, sess))
			t->st.sessions++;
		else
			t->st.sessions_failed++;
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of sorted samples, nearest rank. */
static uint32_t
percentile(const uint32_t *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n + 0.5);
	if (i > 0)
		i--;
	return v[i < n ? i : n - 1];
}

/* Parse a positive number option, or exit with usage. */
static unsigned long
parse_count(const char *text, unsigned long min, unsigned long max)
{
	char   *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		usage();
	return v;
}

static void
parse_options(int argc, char **argv)
{
	int	ch;

	opt.threads = 8;
	opt.seconds = 10;
	opt.msgs = 1;
	opt.rcpts = 1;
	opt.clients = 1000;
	opt.recipients = 1000;
	opt.helo = "client.example.net";
	opt.timeout = 10;
	opt.nodelay = true;
	while ((ch = getopt(argc, argv, "p:c:d:n:m:r:k:u:H:a:t:L:MNxZq")) != -1) {
		switch (ch) {
		case 'p':
			opt.socket = optarg;
			break;
		case 'c':
			opt.threads = (unsigned)parse_count(optarg, 1, LOAD_MAX_THREADS);
			break;
		case 'd':
			opt.seconds = strtod(optarg, NULL);
			if (!(opt.seconds > 0 && opt.seconds <= LOAD_MAX_SECONDS))
				usage();
			break;
		case 'n':
			opt.sessions = parse_count(optarg, 1, 100000000);
			break;
		case 'm':
			opt.msgs = (unsigned)parse_count(optarg, 1, 1000);
			break;
		case 'r':
			opt.rcpts = (unsigned)parse_count(optarg, 1, 1000);
			break;
		case 'k':
			opt.clients = (unsigned)parse_count(optarg, 1, 131072);
			break;
		case 'u':
			opt.recipients = (unsigned)parse_count(optarg, 1, 100000000);
			break;
		case 'H':
			opt.helo = optarg;
			break;
		case 'a':
			opt.auth_user = optarg;
			break;
		case 't':
			opt.timeout = strtod(optarg, NULL);
			if (!(opt.timeout > 0 && opt.timeout <= 120))
				usage();
			break;
		case 'L':
			opt.verdict_log = optarg;
			break;
		case 'M':
			opt.mixed = true;
			break;
		case 'N':
			opt.nodelay = false;
			break;
		case 'x':
			opt.no_macros = true;
			break;
		case 'Z':
			opt.no_size = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.socket == NULL)
		usage();
	if (!target_parse(opt.socket)) {
		fprintf(stderr, "milter_load: bad socket \"%s\" (inet:PORT@ADDR or unix:PATH)\n",
			opt.socket);
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	static struct load_thread threads[LOAD_MAX_THREADS];
	struct load_stats total;
	double	secs;
	unsigned long rcpts = 0, mails = 0;
	const char *error = NULL;
	int	status;

	parse_options(argc, argv);
	/* -M: "aaa...a.example.net" and "<xxx...x@example.net>". */
	memset(long_helo, 'a', sizeof(long_helo) - 1);
	memcpy(long_helo + sizeof(long_helo) - 13, ".example.net", 13);
	long_sender[0] = '<';
	memset(long_sender + 1, 'x', sizeof(long_sender) - 2);
	memcpy(long_sender + sizeof(long_sender) - 15, "@example.net>", 14);
	if (opt.verdict_log != NULL && (verdict_file = fopen(opt.verdict_log, "a")) == NULL) {
		fprintf(stderr, "milter_load: %s: %s\n", opt.verdict_log, strerror(errno));
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&total, 0, sizeof(total));
	clock_gettime(CLOCK_MONOTONIC, &run_start);
	for (unsigned i = 0; i < opt.threads; i++) {
		threads[i].index = i;
		if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0) {
			fprintf(stderr, "milter_load: cannot start thread %u\n", i);
			atomic_store(&stop_flag, true);
			opt.threads = i;
			break;
		}
	}
	for (unsigned i = 0; i < opt.threads; i++) {
		struct load_stats *st = &threads[i].st;

		pthread_join(threads[i].tid, NULL);
		total.sessions += st->sessions;
		total.sessions_failed += st->sessions_failed;
		total.messages += st->messages;
		for (int k = 0; k < KIND_COUNT; k++) {
			total.mail[k] += st->mail[k];
			total.rcpt[k] += st->rcpt[k];
		}
		for (size_t j = 0; j < st->nlat; j++)
			samples_push(&total.lat, &total.nlat, &total.cap, st->lat[j]);
		for (size_t j = 0; j < st->nsess; j++)
			samples_push(&total.sess_lat, &total.nsess, &total.sess_cap, st->sess_lat[j]);
		if (error == NULL && st->first_error[0] != '\0')
			error = st->first_error;
	}
	secs = elapsed_since(&run_start);
	qsort(total.lat, total.nlat, sizeof(uint32_t), cmp_u32);
	qsort(total.sess_lat, total.nsess, sizeof(uint32_t), cmp_u32);
	for (int k = 0; k < KIND_COUNT; k++) {
		rcpts += total.rcpt[k];
		mails += total.mail[k];
	}
	if (!opt.quiet) {
		printf("milter_load: %s, %u threads, %.2f s, %lu sessions (%lu failed), %lu messages\n",
		       opt.socket, opt.threads, secs, total.sessions, total.sessions_failed,
		       total.messages);
		printf("  RCPT verdicts: %lu, %.0f/s:", rcpts, rcpts / secs);
		for (int k = 0; k < KIND_COUNT; k++)
			printf(" %s %lu", kind_names[k], total.rcpt[k]);
		printf("\n  MAIL verdicts: %lu:", mails);
		for (int k = 0; k < KIND_COUNT; k++)
			printf(" %s %lu", kind_names[k], total.mail[k]);
		printf("\n  RCPT latency (us): p50 %u p90 %u p99 %u max %u\n",
		       percentile(total.lat, total.nlat, 50), percentile(total.lat, total.nlat, 90),
		       percentile(total.lat, total.nlat, 99), percentile(total.lat, total.nlat, 100));
		printf("  session (us): p50 %u p90 %u p99 %u\n",
		       percentile(total.sess_lat, total.nsess, 50),
		       percentile(total.sess_lat, total.nsess, 90),
		       percentile(total.sess_lat, total.nsess, 99));
		if (error != NULL)
			printf("  first error: %s\n", error);
	}
	printf("RESULT threads=%u seconds=%.3f sessions=%lu failed=%lu messages=%lu rcpt=%lu "
	       "rcpt_per_s=%.0f rcpt_continue=%lu rcpt_reject=%lu rcpt_tempfail=%lu "
	       "p50_us=%u p90_us=%u p99_us=%u max_us=%u session_p50_us=%u\n",
	       opt.threads, secs, total.sessions, total.sessions_failed, total.messages, rcpts,
	       rcpts / secs, total.rcpt[KIND_CONTINUE] + total.rcpt[KIND_ACCEPT],
	       total.rcpt[KIND_REJECT], total.rcpt[KIND_TEMPFAIL],
	       percentile(total.lat, total.nlat, 50), percentile(total.lat, total.nlat, 90),
	       percentile(total.lat, total.nlat, 99), percentile(total.lat, total.nlat, 100),
	       percentile(total.sess_lat, total.nsess, 50));
	status = total.sessions_failed == 0 && total.sessions > 0 ? 0 : 1;
	if (verdict_file != NULL && fclose(verdict_file) != 0) {
		fprintf(stderr, "milter_load: %s: %s\n", opt.verdict_log, strerror(errno));
		status = 1;
	}
	for (unsigned i = 0; i < opt.threads; i++) {
		free(threads[i].st.lat);
		free(threads[i].st.sess_lat);
	}
	free(total.lat);
	free(total.sess_lat);
	return status;
}
