/*
 * session.c - per-connection and per-transaction state.
 *
 * Thread-safety: a session is touched by one callback at a time (see
 * session.h); the only shared thing is the id counter, an atomic.
 */
#include "session.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks.h"
#include "reply.h"
#include "stats.h"

static atomic_ulong next_id = 1;

struct session *
session_open(struct config *cfg, size_t extra)
{
	struct session *s = calloc(1, sizeof(*s) + extra);

	if (s == NULL) {
		config_release(cfg);
		return NULL;
	}
	s->cfg = cfg;
	s->id = atomic_fetch_add(&next_id, 1);
	stats_session(true);
	s->addr.family = AF_UNSPEC;
	strcpy(s->client_addr, "unknown");
	strcpy(s->client_name, "unknown");
	return s;
}

void
session_close(struct session *s)
{
	if (s == NULL)
		return;
	config_release(s->cfg);
	free(s);
	stats_session(false);
}

bool
copy_string(char *dst, size_t size, const char *src)
{
	size_t	len = src ? strlen(src) : 0;

	if (len >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return false;
	}
	memcpy(dst, src ? src : "", len + 1);
	return true;
}

bool
field_set(struct field *f, const char *src)
{
	f->len = src ? strlen(src) : 0;
	f->truncated = !copy_string(f->text, sizeof(f->text), src);
	if (f->truncated)
		f->len = sizeof(f->text) - 1;
	return !f->truncated;
}

void
session_set_client(struct session *s, const char *name, const struct sockaddr *addr)
{
	ipaddr_from_sockaddr(addr, &s->addr);
	ipaddr_format(&s->addr, s->client_addr, sizeof(s->client_addr));
	/* The MTA sends "[addr]" for a client without a verified name; Postfix logs "unknown". */
	if (name != NULL && *name != '\0' && *name != '[')
		reply_printable(s->client_name, sizeof(s->client_name), name, strlen(name));
	s->trusted = s->addr.family != AF_UNSPEC &&
	    cidr_list_match(&s->cfg->trusted_networks, &s->addr);
}

/* One of the server's addresses from a macro; a listener's wildcard (0.0.0.0, ::) is none. */
static void
server_addr(const char *text, struct ipaddr *out)
{
	static const uint8_t zero[16];

	if (text == NULL || !ipaddr_parse(text, out) ||
	    memcmp(out->bytes, zero, out->family == AF_INET ? 4 : 16) == 0)
		out->family = AF_UNSPEC;
}

void
session_set_server(struct session *s, const char *daemon_addr, const char *if_addr)
{
	server_addr(daemon_addr, &s->own_addr[0]);
	server_addr(if_addr, &s->own_addr[1]);
}

void
session_set_helo(struct session *s, const char *name)
{
	size_t	len = strlen(name);
	const struct config *cfg = s->cfg;

	/* Classified in full, whatever its length; only the copy is cut. */
	s->helo_verdict = hostname_classify(name, len, cfg->helo.reject_non_fqdn,
					    cfg->helo.reject_invalid);
	s->helo_seen = true;
	s->helo_own = check_helo_own_name(s, name, len);
	reply_printable(s->helo, sizeof(s->helo), name, len);
	if (len >= sizeof(s->helo))
		memcpy(s->helo + sizeof(s->helo) - 4, "...", 4);
	/* As Postfix shows a HELO name in its replies and logs (smtpd.c: neuter()). */
	for (char *p = s->helo; (p = strpbrk(p, " <>()\\\";@")) != NULL; p++)
		*p = '?';
}

void
session_reset_transaction(struct session *s)
{
	memset(&s->tx, 0, sizeof(s->tx));
}

/* SIZE= among the MAIL FROM parameters, 0 when absent or malformed. */
static unsigned long
mail_size(char **argv)
{
	for (int i = 1; argv[i] != NULL; i++) {
		if (strncasecmp(argv[i], "SIZE=", 5) == 0) {
			char   *end;
			unsigned long v = strtoul(argv[i] + 5, &end, 10);

			if (*end == '\0' && argv[i][5] >= '0' && argv[i][5] <= '9')
				return v;
		}
	}
	return 0;
}

void
session_begin_transaction(struct session *s, char **argv)
{
	session_reset_transaction(s);
	s->tx.active = true;
	field_set(&s->tx.sender, argv[0] ? argv[0] : "");
	s->tx.size = argv[0] ? mail_size(argv) : 0;
}

void
session_set_rcpt(struct session *s, const char *rcpt)
{
	field_set(&s->tx.rcpt, rcpt ? rcpt : "");
	s->tx.rcpts_seen++;
}

bool
session_authenticated(const struct session *s)
{
	return s->tx.auth_user[0] != '\0';
}
