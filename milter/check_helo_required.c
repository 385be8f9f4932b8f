/*
 * check_helo_required.c - helo.required: MAIL FROM from a client that sent
 * no HELO/EHLO gets Postfix's own smtpd_helo_required reply,
 * "503 5.5.1 Error: send HELO/EHLO first".
 *
 * Off by default; part of the HELO rules, so it needs helo.enabled and
 * spares the clients they spare (check_helo_exempt).  Thread-safety: reads
 * the session only.
 */
#include "checks.h"

static void
helo_required_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;

	(void)state;
	(void)stage;
	if (!cfg->helo.enabled || !cfg->helo.required || s->helo_seen || check_helo_exempt(s))
		return;
	if (reply_set(&v->reply, 503, "5.5.1", NULL, 0, "Error: send HELO/EHLO first"))
		v->kind = VERDICT_REFUSE;
}

const struct check check_helo_required = {
	.name = "helo", .stages = STAGE_MAIL, .run = helo_required_run,
};
