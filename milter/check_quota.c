/*
 * check_quota.c - refuse a recipient whose mailbox is full, at RCPT TO,
 * with "552 5.2.2 <RCPT>: Recipient address rejected: Mailbox full" (code
 * and DSN from quota.reply_code / reply_dsn).
 *
 * The recipient is parsed into Postfix's lookup form (address.c) and
 * judged by the quota service (quota.c); SIZE= counts when
 * use_message_size.  An address that cannot be parsed, was cut, or
 * resolves to no local mailbox gets no opinion: the MTA decides.  A
 * source or maildir that could not be read is VERDICT_ERROR with the
 * recipient as subject, so that policy.c applies on_error.  The reply
 * shows the recipient as the client wrote it.  Thread-safety: reads the
 * session; the quota service is thread-safe.
 */
#include <string.h>

#include "address.h"
#include "checks.h"
#include "log.h"
#include "quota.h"

/* Copy len bytes of the recipient into the verdict's subject (cut if need be). */
static void
set_subject(struct verdict *v, const char *rcpt, size_t len)
{
	if (len >= sizeof(v->subject))
		len = sizeof(v->subject) - 1;
	memcpy(v->subject, rcpt, len);
	v->subject[len] = '\0';
}

static void
quota_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	const struct field *rcpt = &s->tx.rcpt;
	struct quota_result res;
	struct address addr;
	enum address_status ast;
	const char *shown;
	size_t	shown_len;

	(void)state;
	if (!cfg->quota.enabled || stage != STAGE_RCPT)
		return;
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
		break;
	}
}

static enum on_error
quota_on_error(const struct config *cfg)
{
	return cfg->quota.on_error;
}

const struct check check_quota = {
	.name = "quota", .stages = STAGE_RCPT, .run = quota_run, .on_error = quota_on_error,
	.start = quota_start, .reload = quota_reload, .stop = quota_stop,
};
