/*
 * check_helo.c - refuse a client whose HELO/EHLO name is not a valid
 * fully-qualified host name, with Postfix's own replies.
 *
 * The name is classified once, when it arrives (session_set_helo); the
 * verdict is given at enforce_at, as Postfix does with smtpd_delay_reject,
 * so that a client that authenticates after EHLO is exempt.  No HELO at
 * all means no opinion.
 *
 * helo.reject_own_names: a client that greets with one of the server's own
 * names, or with an address literal of one of its own addresses (listed
 * there, or the connection's {daemon_addr} / {if_addr}), gets "554 5.7.1
 * <NAME>: Helo command rejected: You are not me", after the syntax and
 * FQDN rules and with their exemptions.  Thread-safety: reads the session
 * only.
 */
#include <string.h>

#include "checks.h"

/* True when the connection's {daemon_name} is listed in exempt_daemons. */
static bool
exempt_daemon(const struct session *s)
{
	const struct string_list *list = &s->cfg->helo.exempt_daemons;

	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->items[i], s->daemon_name) == 0)
			return true;
	return false;
}

bool
check_helo_exempt(const struct session *s)
{
	if (s->cfg->helo.exempt_authenticated && session_authenticated(s))
		return true;
	return s->daemon_name[0] && exempt_daemon(s);
}

/* True when the literal addr is one of the listed literals or one of the connection's own addresses. */
static bool
own_address(const struct session *s, const struct ipaddr *addr)
{
	const struct string_list *list = &s->cfg->helo.reject_own_names;
	struct ipaddr listed;

	for (size_t i = 0; i < sizeof(s->own_addr) / sizeof(s->own_addr[0]); i++)
		if (ipaddr_equal(&s->own_addr[i], addr))
			return true;
	for (size_t i = 0; i < list->count; i++)
		if (ipaddr_parse_literal(list->items[i], strlen(list->items[i]), &listed) &&
		    ipaddr_equal(&listed, addr))
			return true;
	return false;
}

bool
check_helo_own_name(const struct session *s, const char *name, size_t len)
{
	const struct string_list *list = &s->cfg->helo.reject_own_names;
	struct ipaddr addr;

	if (list->count == 0)
		return false;
	if (len > 0 && name[0] == '[')
		return ipaddr_parse_literal(name, len, &addr) && own_address(s, &addr);
	for (size_t i = 0; i < list->count; i++)
		if (list->items[i][0] != '[' &&
		    hostname_same(list->items[i], strlen(list->items[i]), name, len))
			return true;
	return false;
}

static void
helo_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	enum stage enforce = cfg->helo.enforce_at == ENFORCE_MAIL ? STAGE_MAIL : STAGE_RCPT;
	unsigned code;
	const char *text, *dsn = "5.5.2";

	(void)state;
	if (!cfg->helo.enabled || stage != enforce || !s->helo_seen)
		return;
	if (check_helo_exempt(s))
		return;
	switch (s->helo_verdict) {
	case HOSTNAME_OK:
		if (!s->helo_own)
			return;
		code = 554;
		dsn = "5.7.1";
		text = "Helo command rejected: You are not me";
		break;
	case HOSTNAME_NOT_FQDN:
		code = 504;
		text = "Helo command rejected: need fully-qualified hostname";
		break;
	case HOSTNAME_INVALID:
		code = 501;
		text = "Helo command rejected: Invalid name";
		break;
	case HOSTNAME_BAD_LITERAL:
	default:
		code = 501;
		text = "Helo command rejected: invalid ip address";
		break;
	}
	if (reply_set(&v->reply, code, dsn, s->helo, strlen(s->helo), text))
		v->kind = VERDICT_REFUSE;
}

const struct check check_helo = {
	.name = "helo", .stages = STAGE_MAIL | STAGE_RCPT, .run = helo_run,
};
