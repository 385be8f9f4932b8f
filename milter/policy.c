/*
 * policy.c - run the check table (checks.c) for a stage; the only place
 * that turns a backend error into a temporary failure or a pass, that
 * applies dry_run, and that writes the decision line.
 *
 * Each check's per-connection state lives after the session, in one
 * allocation, at an offset given by the table.  Thread-safety: touches
 * the session (one callback at a time) and reads its configuration
 * snapshot only.
 */
#include "policy.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reply.h"
#include "stats.h"

/* A check's state size, rounded up so that the next one stays aligned. */
static size_t
state_span(const struct check *check)
{
	size_t	a = alignof(max_align_t);

	return (check->state_size + a - 1) / a * a;
}

struct session *
policy_session_open(struct config *cfg)
{
	size_t	extra = 0;

	for (size_t i = 0; i < check_count; i++)
		extra += state_span(check_table[i]);
	return session_open(cfg, extra);
}

/* The state of the check in row i. */
static void *
row_state(struct session *s, size_t i)
{
	size_t	offset = 0;

	if (check_table[i]->state_size == 0)
		return NULL;
	for (size_t j = 0; j < i; j++)
		offset += state_span(check_table[j]);
	return s->check_state + offset;
}

void   *
policy_check_state(struct session *s, const struct check *check)
{
	for (size_t i = 0; i < check_count; i++)
		if (check_table[i] == check)
			return row_state(s, i);
	return NULL;
}

/* Printable copy of an envelope address without the <> the MTA may have sent. */
static void
log_address(char *buf, size_t size, const struct field *f)
{
	const char *p = f->text;
	size_t	len = f->len;

	if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
		p++;
		len -= 2;
	}
	reply_printable(buf, size, p, len);
}

/*
 * The decision line, as mxgate(8), "LOGGING", fixes it: "QUEUEID: ACTION:
 * STAGE from NAME[ADDR]: CODE DSN TEXT; from=<..> to=<..> helo=<..>
 * check=CHECK".  action is "reject", "reject_warning", "hold", "warn" or
 * "accept" (a backend failure let through); every client string in it is
 * printable and bounded.
 */
static void
log_decision(const struct session *s, const char *action, enum stage stage,
	     const struct verdict *v, const char *detail)
{
	char	from[300], to[300];
	const struct transaction *tx = &s->tx;
	bool	rcpt = stage == STAGE_RCPT, refuse = v->kind == VERDICT_REFUSE;
	const char *step = rcpt ? "RCPT" : stage == STAGE_EOM ? "END-OF-MESSAGE" : "MAIL";

	log_address(from, sizeof(from), &tx->sender);
	log_address(to, sizeof(to), &tx->rcpt);
	log_info("%s: %s: %s from %s[%s]: %s%s%s%s%s; from=<%s>%s%s%s helo=<%.300s> check=%s",
		 tx->queue_id[0] ? tx->queue_id : "NOQUEUE", action, step,
		 s->client_name, s->client_addr,
		 refuse ? v->reply.code : "", refuse ? " " : "",
		 refuse ? v->reply.dsn : "", refuse ? " " : "",
		 refuse ? v->reply.text : detail,
		 from, rcpt ? " to=<" : "", rcpt ? to : "", rcpt ? ">" : "",
		 s->helo, v->check);
}

/* A backend failure: tempfail or pass, as the check's on_error says. */
static void
policy_backend_error(struct session *s, enum stage stage, size_t row, struct verdict *v)
{
	const struct check *check = check_table[row];
	enum on_error how = check->on_error && !v->out_of_memory ? check->on_error(s->cfg)
	    : ON_ERROR_TEMPFAIL;

	if (how == ON_ERROR_TEMPFAIL &&
	    reply_set(&v->reply, 451, "4.3.0", v->subject[0] ? v->subject : NULL,
		      strlen(v->subject), "Temporary lookup failure")) {
		v->kind = VERDICT_REFUSE;
		return;
	}
	log_decision(s, "accept", stage, v, "backend failure, on_error=accept");
	stats_decision(row, STATS_ACCEPT_ON_ERROR);
	v->kind = VERDICT_DUNNO;
}

/* A hold or a warning is carried out at end of message: remember it. */
static void
policy_defer(struct session *s, const struct verdict *v)
{
	struct transaction *tx = &s->tx;

	tx->needs_eom = true;
	if (v->kind == VERDICT_HOLD) {
		tx->hold = true;
		copy_string(tx->hold_reason, sizeof(tx->hold_reason), v->subject);
	} else if (tx->warning[0] == '\0')
		copy_string(tx->warning, sizeof(tx->warning), v->subject);
}

void
policy_run(struct session *s, enum stage stage, struct verdict *out)
{
	size_t	row = 0;

	memset(out, 0, sizeof(*out));
	if (s->trusted)
		return;
	for (; row < check_count; row++) {
		const struct check *check = check_table[row];

		if ((check->stages & stage) == 0)
			continue;
		out->check = check->name;
		check->run(s, row_state(s, row), stage, out);
		if (out->kind == VERDICT_ERROR)
			policy_backend_error(s, stage, row, out);
		if (out->kind != VERDICT_DUNNO)
			break;
	}
	if (out->kind == VERDICT_DUNNO)
		return;
	if (out->kind == VERDICT_REFUSE && s->cfg->dry_run) {
		log_decision(s, "reject_warning", stage, out, NULL);
		stats_decision(row, STATS_REJECT_WARNING);
		out->kind = VERDICT_DUNNO;
		return;
	}
	log_decision(s, out->kind == VERDICT_REFUSE ? "reject" :
		     out->kind == VERDICT_HOLD ? "hold" : "warn", stage, out, out->subject);
	stats_decision(row, out->kind == VERDICT_REFUSE ? STATS_REJECT :
		       out->kind == VERDICT_HOLD ? STATS_HOLD : STATS_WARN);
	if (out->kind == VERDICT_HOLD || out->kind == VERDICT_WARN)
		policy_defer(s, out);
}

void
policy_transaction_end(struct session *s, bool accepted)
{
	/* Even without MAIL FROM: an RCPT the MTA sent out of order may have charged something. */
	for (size_t i = 0; i < check_count; i++)
		if (check_table[i]->end != NULL)
			check_table[i]->end(s, row_state(s, i), accepted);
	session_reset_transaction(s);
}
