/*
 * check_quota.c - refuse a recipient whose mailbox is full, at RCPT TO,
 * with "552 5.2.2 <RCPT>: Recipient address rejected: Mailbox full" (code
 * and DSN from quota.reply_code / reply_dsn).
 *
 * The recipient is parsed into Postfix's lookup form (address.c) and
 * judged by the quota service (quota.c); SIZE= counts when
 * use_message_size, and a mailbox full by its Maildir++ message limit
 * gets the same reply as one full by bytes.  An address that cannot be parsed, was cut, or
 * resolves to no local mailbox gets no opinion: the MTA decides.  A
 * source or maildir that could not be read is VERDICT_ERROR with the
 * recipient as subject, so that policy.c applies on_error.  The reply
 * shows the recipient as the client wrote it.
 *
 * quota.check_real_size: a message without SIZE= was judged at RCPT as if
 * it were empty.  The recipients let through with a local mailbox are kept
 * (in the check's state), the message goes on to end of message with its
 * header and body events, and there each is judged again with the real
 * size.  When every recipient the MTA accepted is then over quota, the
 * message is refused with the quota reply; when only some are, it is
 * accepted and logged: a milter cannot refuse single recipients at end of
 * message, and refusing the message would lose the others' mail.  Whether
 * an RCPT was accepted is known only at the next command (a later check
 * may refuse it), so the last one kept is settled then, against
 * tx.rcpts_accepted.  Thread-safety: reads the session; the quota service
 * is thread-safe.
 */
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "checks.h"
#include "log.h"
#include "quota.h"

#define EOM_RCPTS_MAX	1000	/* recipients judged again at end of message */

/* The check's state in a session: the recipients to judge with the real size. */
struct quota_state {
	char  **rcpts;		/* as the client wrote them */
	size_t	n, cap;
	bool	pending;	/* rcpts[n - 1]: its RCPT's fate is not known yet */
	unsigned pending_at;	/* tx.rcpts_accepted when it was kept */
	bool	lost;		/* more than EOM_RCPTS_MAX: not judged at end of message */
};

/* The last recipient kept was refused after all (by a later check) when no RCPT was accepted since. */
static void
settle(struct session *s, struct quota_state *st)
{
	if (st->pending && s->tx.rcpts_accepted == st->pending_at)
		free(st->rcpts[--st->n]);
	st->pending = false;
}

/* Keep a recipient that was let through with a local mailbox. */
static void
keep_rcpt(struct session *s, struct quota_state *st, const struct field *rcpt)
{
	char   *copy;

	if (st->n == st->cap) {
		size_t	cap = st->cap ? 2 * st->cap : 8;
		char  **grown = cap <= EOM_RCPTS_MAX ? realloc(st->rcpts, cap * sizeof(*grown)) : NULL;

		if (grown == NULL) {
			st->lost = true;
			return;
		}
		st->rcpts = grown, st->cap = cap;
	}
	if ((copy = strdup(rcpt->text)) == NULL) {
		st->lost = true;
		return;
	}
	st->rcpts[st->n++] = copy;
	st->pending = true;
	st->pending_at = s->tx.rcpts_accepted;
	s->tx.count_size = s->tx.needs_eom = true;
}

/* Copy len bytes of the recipient into the verdict's subject (cut if need be). */
static void
set_subject(struct verdict *v, const char *rcpt, size_t len)
{
	if (len >= sizeof(v->subject))
		len = sizeof(v->subject) - 1;
	memcpy(v->subject, rcpt, len);
	v->subject[len] = '\0';
}

/* The real size judged for every recipient accepted: refuse when all are over quota. */
static void
judge_real_size(struct session *s, struct quota_state *st, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	unsigned long long size = s->tx.message_size;
	size_t	full = 0, first = 0;

	settle(s, st);
	if (st->lost || st->n == 0 || st->n != s->tx.rcpts_accepted) {
		log_debug("quota: message of %llu bytes not judged: %s", size,
			  st->lost ? "too many recipients" : "some recipients have no local mailbox");
		return;
	}
	for (size_t i = 0; i < st->n; i++) {
		struct quota_result res;
		struct address addr;

		if (address_parse(st->rcpts[i], strlen(st->rcpts[i]), cfg->quota.recipient_delimiter,
				  &addr) == ADDRESS_OK &&
		    quota_check(cfg, &addr, size, &res) == QUOTA_FULL) {
			if (full++ == 0)
				first = i;
			log_debug("quota: %s: mailbox %s full with the message's %llu bytes",
				  addr.full, res.mailbox, size);
		}
	}
	if (full == st->n) {
		const char *shown;
		size_t	shown_len;

		address_display(st->rcpts[first], strlen(st->rcpts[first]), &shown, &shown_len);
		if (reply_set(&v->reply, cfg->quota.reply_code, cfg->quota.reply_dsn, shown,
			      shown_len, "Recipient address rejected: Mailbox full"))
			v->kind = VERDICT_REFUSE;
	} else if (full > 0)
		log_info("%s: quota: message of %llu bytes accepted although %zu of its %zu "
			 "recipients are over quota with it (a milter cannot refuse single "
			 "recipients at end of message)",
			 s->tx.queue_id[0] ? s->tx.queue_id : "NOQUEUE", size, full, st->n);
}

static void
quota_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	const struct field *rcpt = &s->tx.rcpt;
	struct quota_state *st = state;
	bool	real_size = cfg->quota.check_real_size && s->tx.size == 0;
	struct quota_result res;
	struct address addr;
	enum address_status ast;
	const char *shown;
	size_t	shown_len;

	if (!cfg->quota.enabled || (stage == STAGE_EOM && !real_size))
		return;
	if (stage == STAGE_EOM) {
		judge_real_size(s, st, v);
		return;
	}
	if (real_size)
		settle(s, st);
	if (rcpt->truncated) {
		log_debug("quota: recipient not looked up: longer than %zu bytes", sizeof(rcpt->text));
		return;
	}
	ast = address_parse(rcpt->text, rcpt->len, cfg->quota.recipient_delimiter, &addr);
	if (ast != ADDRESS_OK) {
		log_debug("quota: recipient not looked up: %s", address_status_name(ast));
		return;
	}
	address_display(rcpt->text, rcpt->len, &shown, &shown_len);
	switch (quota_check(cfg, &addr, s->tx.size, &res)) {
	case QUOTA_FULL:
		if (res.by_count)
			log_debug("quota: %s: mailbox %s full by count: %llu messages, limit %llu",
				  addr.full, res.mailbox, res.count, res.count_limit);
		else
			log_debug("quota: %s: mailbox %s full: %llu bytes used, limit %llu, SIZE=%lu",
				  addr.full, res.mailbox, res.usage, res.limit, s->tx.size);
		if (reply_set(&v->reply, cfg->quota.reply_code, cfg->quota.reply_dsn, shown,
			      shown_len, "Recipient address rejected: Mailbox full"))
			v->kind = VERDICT_REFUSE;
		break;
	case QUOTA_ERROR:
		/* The breaker logged its opening once: no line per recipient. */
		log_msg(res.skipped ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "quota: %s: %s%s%s",
			addr.full, res.why, res.mailbox[0] ? " for " : "", res.mailbox);
		v->kind = VERDICT_ERROR;
		v->out_of_memory = res.out_of_memory;
		set_subject(v, shown, shown_len);
		break;
	case QUOTA_NO_OPINION:
	default:
		log_debug("quota: %s: %s", addr.full, res.why ? res.why : "no opinion");
		if (real_size && res.nmailboxes > 0)
			keep_rcpt(s, st, rcpt);
		break;
	}
}

/* The transaction ended: forget its recipients. */
static void
quota_end(struct session *s, void *state, bool accepted)
{
	struct quota_state *st = state;

	(void)s, (void)accepted;
	for (size_t i = 0; i < st->n; i++)
		free(st->rcpts[i]);
	free(st->rcpts);
	memset(st, 0, sizeof(*st));
}

static enum on_error
quota_on_error(const struct config *cfg)
{
	return cfg->quota.on_error;
}

const struct check check_quota = {
	.name = "quota", .stages = STAGE_RCPT | STAGE_EOM, .state_size = sizeof(struct quota_state),
	.run = quota_run, .end = quota_end, .on_error = quota_on_error,
	.start = quota_start, .reload = quota_reload, .stop = quota_stop,
};
