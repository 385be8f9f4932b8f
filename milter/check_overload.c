/*
 * check_overload.c - while the server is overloaded, MAIL FROM from an
 * unauthenticated client gets "451 4.3.2 Server busy, try again later".
 *
 * The verdict comes from overload.c's sampler through one atomic load: no
 * lock and no file system access here.  Trusted clients never reach the
 * checks (policy.c); authenticated ones ({auth_authen}) always pass.
 * Thread-safety: reads the session and the atomic word only.
 */
#include "checks.h"
#include "overload.h"

static void
overload_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	(void)state;
	if (stage != STAGE_MAIL || !s->cfg->overload.enabled || session_authenticated(s))
		return;
	if (!overload_active())
		return;
	if (reply_set(&v->reply, 451, "4.3.2", NULL, 0, "Server busy, try again later"))
		v->kind = VERDICT_REFUSE;
}

const struct check check_overload = {
	.name = "overload", .stages = STAGE_MAIL, .run = overload_run,
	.start = overload_start, .reload = overload_reload, .stop = overload_stop,
};
