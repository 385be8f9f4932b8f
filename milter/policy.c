/*
 * policy.c - run the checks of a stage; the only place that turns a
 * backend error into a temporary failure or a pass, and that applies
 * dry_run.
 *
 * Thread-safety: reads the session's configuration snapshot only.
 */
#include "policy.h"

#include <string.h>

#include "log.h"

/* on_error of a check, from the snapshot. */
typedef enum on_error on_error_fn(const struct config *cfg);

struct check_row {
	const char *name;
	unsigned stages;		/* enum stage bits */
	check_fn *run;
	on_error_fn *on_error;		/* NULL: the check has no backend */
};

static enum on_error
quota_on_error(const struct config *cfg)
{
	return cfg->quota.on_error;
}

static enum on_error
memcached_on_error(const struct config *cfg)
{
	return cfg->memcached.on_error;
}

/* Cheapest and broadest first; rate limits last (see checks.h). */
static const struct check_row checks[] = {
	{"overload", STAGE_MAIL, check_overload, NULL},
	{"helo", STAGE_MAIL | STAGE_RCPT, check_helo, NULL},
	{"quota", STAGE_RCPT, check_quota, quota_on_error},
	{"ratelimit", STAGE_MAIL | STAGE_RCPT, check_ratelimit, memcached_on_error},
};

static const char *
stage_name(enum stage stage)
{
	return stage == STAGE_MAIL ? "MAIL" : "RCPT";
}

/* A backend failure: tempfail or pass, as the check's on_error says. */
static void
policy_backend_error(struct session *s, enum stage stage, const struct check_row *row,
		     struct verdict *v)
{
	enum on_error how = row->on_error ? row->on_error(s->cfg) : ON_ERROR_TEMPFAIL;

	if (how == ON_ERROR_TEMPFAIL &&
	    reply_set(&v->reply, 451, "4.3.0", v->subject, strlen(v->subject),
		      "Temporary lookup failure")) {
		v->kind = VERDICT_REFUSE;
		return;
	}
	log_decision(s, "accept", stage_name(stage), v, "backend failure, on_error=accept");
	v->kind = VERDICT_DUNNO;
}

void
policy_run(struct session *s, enum stage stage, struct verdict *out)
{
	memset(out, 0, sizeof(*out));
	if (s->trusted)
		return;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		const struct check_row *row = &checks[i];

		if ((row->stages & stage) == 0)
			continue;
		out->check = row->name;
		row->run(s, stage, out);
		if (out->kind == VERDICT_ERROR)
			policy_backend_error(s, stage, row, out);
		if (out->kind != VERDICT_DUNNO)
			break;
	}
	if (out->kind == VERDICT_DUNNO)
		return;
	if (out->kind == VERDICT_REFUSE && s->cfg->dry_run) {
		log_decision(s, "reject_warning", stage_name(stage), out, NULL);
		out->kind = VERDICT_DUNNO;
		return;
	}
	log_decision(s, out->kind == VERDICT_REFUSE ? "reject" :
		     out->kind == VERDICT_HOLD ? "hold" : "warn",
		     stage_name(stage), out, out->subject);
}

void
policy_transaction_end(struct session *s, bool accepted)
{
	if (!s->tx.active)
		return;
	check_ratelimit_end(s, accepted);
	s->tx.active = false;
}
