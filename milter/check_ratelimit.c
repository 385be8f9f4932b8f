/*
 * check_ratelimit.c - which rate-limit rules count at which stage, and
 * what a rule over its limit means for the mail.
 *
 * Stages (README.md "Rate limits"): count = "connections" and "messages" at MAIL FROM,
 * "recipients" at each RCPT TO.  A connection is counted at its first
 * MAIL FROM that is let through; a message at MAIL FROM, given back if its
 * transaction is not accepted; a recipient at its RCPT TO, given back
 * likewise.  Every rule that applies is charged for the event (charge
 * first, see ratelimit.h); the first one over its limit with action
 * tempfail or reject refuses the event, and then every counter the event
 * was charged to is given back.  hold and warn let the event through,
 * charged, and are carried out at end of message (callbacks.c).
 *
 * A store that cannot answer: on_error = "tempfail" refuses the event at
 * once (VERDICT_ERROR; policy.c gives "451 4.3.0 <KEY>: Temporary lookup
 * failure"); "accept" goes on with the other rules, so keys on servers
 * that do answer are still limited; "local" never gets here (ratelimit.c
 * counts in process instead).
 *
 * Thread-safety: touches only the session and the thread-safe stores.
 */
#include "checks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ratelimit.h"

#define EVENT_CHARGES_ON_STACK 32

/* What one event has been charged so far, to give back or to keep. */
struct event {
	struct rate_charge *items;
	size_t n;
};

/* Does rule count at this stage, for this client? */
static bool
rule_applies(const struct rate_rule *rule, const struct session *s, enum stage stage)
{
	switch (rule->count) {
	case RATE_COUNT_CONNECTIONS:
		if (stage != STAGE_MAIL || s->rate_connection_charged)
			return false;
		break;
	case RATE_COUNT_MESSAGES:
		if (stage != STAGE_MAIL)
			return false;
		break;
	case RATE_COUNT_RECIPIENTS:
		if (stage != STAGE_RCPT)
			return false;
		break;
	}
	switch (rule->when) {
	case RATE_WHEN_AUTHENTICATED:
		return session_authenticated(s);
	case RATE_WHEN_UNAUTHENTICATED:
		return !session_authenticated(s);
	case RATE_WHEN_ANY:
		break;
	}
	return true;
}

/* Printable ASCII copy of len bytes (anything else becomes '?'), cut to size. */
static void
ascii_copy(char *dst, size_t size, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[o] = '\0';
}

/* "rate limit "RULE" exceeded for KEY": the hold reason and the warning header. */
static void
set_subject(struct verdict *v, const struct rate_rule *rule, const struct rate_value *key)
{
	int n =
	    snprintf(v->subject, sizeof(v->subject), "rate limit \"%s\" exceeded for ", rule->name);

	if (n > 0 && (size_t)n < sizeof(v->subject))
		ascii_copy(v->subject + n, sizeof(v->subject) - (size_t)n, key->text, key->len);
}

/* 450 4.7.1 (550 5.7.1 for reject) <KEY>: Rate limit "RULE" exceeded, try again later */
static void
set_refusal(struct verdict *v, const struct rate_rule *rule, const struct rate_value *key)
{
	char message[128];
	bool reject = rule->action == RATE_ACTION_REJECT;

	snprintf(message, sizeof(message), "Rate limit \"%s\" exceeded, try again later",
		 rule->name);
	if (reply_set(&v->reply, reject ? 550 : 450, reject ? "5.7.1" : "4.7.1", key->text,
		      key->len, message))
		v->kind = VERDICT_REFUSE;
	set_subject(v, rule, key);
}

/* Give back everything the event was charged. */
static void
event_give_back(const struct config *cfg, struct event *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		ratelimit_give_back(cfg, &ev->items[i]);
	ev->n = 0;
}

/* True when a and b were charged to the same counters. */
static bool
same_counters(const struct config *cfg, const struct rate_charge *a, const struct rate_charge *b)
{
	const struct rate_limits *limits;

	if (a->rule != b->rule || a->class_index != b->class_index || a->local != b->local ||
	    memcmp(a->digest, b->digest, sizeof(a->digest)) != 0)
		return false;
	limits = ratelimit_charge_limits(cfg, a);
	for (size_t i = 0; i < limits->count; i++) {
		struct rate_window wa, wb;

		ratelimit_window(a->time_ms, limits->items[i].period, &wa);
		ratelimit_window(b->time_ms, limits->items[i].period, &wb);
		if (wa.index != wb.index)
			return false;
	}
	return true;
}

/* Remember a charge of the transaction, to give it back if it is not accepted. */
static void
transaction_record(struct session *s, const struct rate_charge *c)
{
	struct transaction *tx = &s->tx;

	for (unsigned i = 0; i < tx->nrate_charges; i++)
		if (same_counters(s->cfg, &tx->rate_charges[i], c)) {
			tx->rate_charges[i].count += c->count;
			return;
		}
	if (tx->nrate_charges < SESSION_RATE_CHARGES)
		tx->rate_charges[tx->nrate_charges++] = *c;
	else
		tx->rate_charges_lost = true;
}

/* The event is let through: keep its charges. */
static void
event_commit(struct session *s, enum stage stage, const struct event *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		if (s->cfg->ratelimit.rules[ev->items[i].rule].count != RATE_COUNT_CONNECTIONS)
			transaction_record(s, &ev->items[i]);
	if (stage == STAGE_MAIL)
		s->rate_connection_charged = true;
}

void
check_ratelimit(struct session *s, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	struct rate_charge on_stack[EVENT_CHARGES_ON_STACK];
	struct event ev = {on_stack, 0};
	struct verdict later = {.kind = VERDICT_DUNNO}; /* hold, warn or error */
	struct rate_value key;
	uint64_t now;

	if (!cfg->ratelimit.enabled || cfg->ratelimit.nrules == 0)
		return;
	if (cfg->ratelimit.nrules > EVENT_CHARGES_ON_STACK &&
	    (ev.items = calloc(cfg->ratelimit.nrules, sizeof(*ev.items))) == NULL) {
		snprintf(v->subject, sizeof(v->subject), "out of memory");
		v->kind = VERDICT_ERROR;
		return;
	}
	now = ratelimit_now_ms();
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++) {
		const struct rate_rule *rule = &cfg->ratelimit.rules[i];
		const struct rate_limits *limits;
		const struct rate_limit *over;
		bool lets_through =
		    rule->action == RATE_ACTION_HOLD || rule->action == RATE_ACTION_WARN;
		int class_index;
		enum rate_outcome r;

		if (!rule_applies(rule, s, stage) || !ratelimit_key_value(rule, s, &key))
			continue;
		limits = ratelimit_limits(rule, &key, &s->addr, &class_index);
		if (limits->count == 0)
			continue; /* a class without limits */
		r = ratelimit_charge(cfg, i, limits, class_index, &key, now, lets_through,
				     &ev.items[ev.n], &over);
		if (r == RATE_ADMIT) {
			ev.n++;
			continue;
		}
		if (r == RATE_ERROR) {
			if (later.kind == VERDICT_DUNNO) {
				later.kind = VERDICT_ERROR;
				ascii_copy(later.subject, sizeof(later.subject), key.text, key.len);
			}
			if (cfg->memcached.on_error == ON_ERROR_TEMPFAIL)
				break;
			continue;
		}
		if (!lets_through) {
			event_give_back(cfg, &ev);
			set_refusal(v, rule, &key);
			log_debug("ratelimit: rule \"%s\" over %lu/%lus", rule->name, over->count,
				  over->period);
			goto out;
		}
		/* hold or warn: the event goes through, charged; hold outranks warn. */
		ev.n++;
		if (later.kind != VERDICT_HOLD &&
		    (rule->action == RATE_ACTION_HOLD || later.kind != VERDICT_WARN)) {
			if (later.kind == VERDICT_ERROR)
				log_warning(
				    "ratelimit: memcached failed for %s; rule \"%s\" decides",
				    later.subject, rule->name);
			later.kind = rule->action == RATE_ACTION_HOLD ? VERDICT_HOLD : VERDICT_WARN;
			set_subject(&later, rule, &key);
		}
	}
	if (later.kind == VERDICT_ERROR && cfg->memcached.on_error == ON_ERROR_TEMPFAIL) {
		/* policy.c turns this into a 451: nothing may stay charged. */
		event_give_back(cfg, &ev);
	} else
		event_commit(s, stage, &ev);
	if (later.kind != VERDICT_DUNNO) {
		v->kind = later.kind;
		memcpy(v->subject, later.subject, sizeof(v->subject));
	}
out:
	if (ev.items != on_stack)
		free(ev.items);
}

void
check_ratelimit_end(struct session *s, bool accepted)
{
	struct transaction *tx = &s->tx;

	if (!accepted) {
		for (unsigned i = 0; i < tx->nrate_charges; i++)
			ratelimit_give_back(s->cfg, &tx->rate_charges[i]);
		if (tx->rate_charges_lost)
			log_info("ratelimit: transaction of %s[%s] charged more than %d counters: "
				 "the rest stay charged",
				 s->client_name, s->client_addr, SESSION_RATE_CHARGES);
	}
	tx->nrate_charges = 0;
	tx->rate_charges_lost = false;
}
