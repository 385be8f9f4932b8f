/*
 * check_helo.c - refuse a client whose HELO/EHLO name is not a valid
 * fully-qualified host name, with Postfix's own replies.
 *
 * The name is classified once, when it arrives (session_set_helo); the
 * verdict is given at enforce_at, as Postfix does with smtpd_delay_reject,
 * so that a client that authenticates after EHLO is exempt.  No HELO at
 * all means no opinion.  Thread-safety: reads the session only.
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

static void
helo_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	enum stage enforce = cfg->helo.enforce_at == ENFORCE_MAIL ? STAGE_MAIL : STAGE_RCPT;
	unsigned code;
	const char *text;

	(void)state;
	if (!cfg->helo.enabled || stage != enforce || !s->helo_seen)
		return;
	if (check_helo_exempt(s))
		return;
	switch (s->helo_verdict) {
	case HOSTNAME_OK:
		return;
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
	if (reply_set(&v->reply, code, "5.5.2", s->helo, strlen(s->helo), text))
		v->kind = VERDICT_REFUSE;
}

const struct check check_helo = {
	.name = "helo", .stages = STAGE_MAIL | STAGE_RCPT, .run = helo_run,
};
