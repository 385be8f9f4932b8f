/*
 * check_ratelimit.c - which rate-limit rules count at which stage, and
 * what a rule over its limit means for the mail.
 *
 * Stages (mxgate.conf(5), "RATE LIMITS"): count = "connections" and "messages" at MAIL FROM,
 * "recipients" at each RCPT TO, "distinct" at RCPT TO for distinct =
 * "recipient" and at MAIL FROM otherwise.  A connection is counted at its first
 * MAIL FROM that is let through; a message at MAIL FROM, given back if its
 * transaction is not accepted; a recipient at its RCPT TO, given back
 * likewise.  Every rule that applies is charged for the event (charge
 * first, see ratelimit.h); the first one over its limit with action
 * tempfail or reject refuses the event, and then every counter the event
 * was charged to is given back.  hold and warn let the event through,
 * charged, and are carried out at end of message (policy.c, callbacks.c).
 * A distinct value is never given back (ratelimit.h, "Distinct values"):
 * once its rule has counted it, it stays counted for the window, whatever
 * becomes of the event or the transaction.
 *
 * A store that cannot answer: on_error = "tempfail" refuses the event at
 * once (VERDICT_ERROR; policy.c gives "451 4.3.0 <KEY>: Temporary lookup
 * failure"); "accept" goes on with the other rules, so keys on servers
 * that do answer are still limited; "local" never gets here (ratelimit.c
 * counts in process instead).
 *
 * Key values are digested with SHA-256 from nettle: a well-kept library
 * (GnuTLS's), with a plain allocation-free API, no global initialisation
 * and nothing to lock, and a digest for which nobody can make two key
 * values share a counter on purpose (a client choosing addresses cannot
 * land on another client's counter).
 *
 * Thread-safety: touches only the session and the thread-safe stores.
 */
#include "check_ratelimit.h"

#include <arpa/inet.h>
#include <assert.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define EVENT_CHARGES_ON_STACK 32

static_assert(RATELIMIT_TEXT_MAX >= 6 * SESSION_PATH_MAX, "a key value's text holds six paths");

/* What one event has been charged so far, to give back or to keep. */
struct event {
	struct rate_charge *items;
	size_t n;
};

/* ---- key values ---------------------------------------------------------- */

/* ASCII lower-case copy of len bytes of src, cut to size. */
static size_t
lower_copy(const char *src, size_t len, char *out, size_t size)
{
	if (len >= size)
		len = size - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
	out[len] = '\0';
	return len;
}

/* An address as counted: one pair of enclosing <> dropped, ASCII lower-cased. */
static size_t
normalise_address(const struct field *f, char *out, size_t size)
{
	const char *p = f->text;
	size_t len = f->len;

	if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
		p++;
		len -= 2;
	}
	return lower_copy(p, len, out, size);
}

/* The domain of a normalised address: after the last '@', "" without one. */
static const char *
address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* Add one "NAME:LENGTH:VALUE" part to the digest and "VALUE" to the text. */
static void
key_add(struct sha256_ctx *ctx, struct rate_value *key, const char *name, const char *value,
	size_t len, const char *shown)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%s:%zu:", name, len);
	size_t room, slen = strlen(shown);

	sha256_update(ctx, (size_t)n, (const uint8_t *)head);
	sha256_update(ctx, len, (const uint8_t *)value);
	if (key->len > 0 && key->len + 1 < sizeof(key->text))
		key->text[key->len++] = ',';
	room = sizeof(key->text) - 1 - key->len;
	if (slen > room)
		slen = room;
	memcpy(key->text + key->len, shown, slen);
	key->len += slen;
	key->text[key->len] = '\0';
}

/* An address part: the address as counted, or only its domain. */
static void
key_add_address(struct sha256_ctx *ctx, struct rate_value *key, const char *name,
		const struct field *f, bool domain_only)
{
	char buf[SESSION_PATH_MAX];
	size_t len = normalise_address(f, buf, sizeof(buf));
	const char *d = domain_only ? address_domain(buf) : buf;

	key_add(ctx, key, name, d, domain_only ? strlen(d) : len, d);
}

/* A name part (SASL user, HELO): lower-cased. */
static void
key_add_lower(struct sha256_ctx *ctx, struct rate_value *key, const char *name, const char *src)
{
	char buf[SESSION_PATH_MAX];
	size_t len = lower_copy(src, strlen(src), buf, sizeof(buf));

	key_add(ctx, key, name, buf, len, buf);
}

bool
check_ratelimit_key(const struct rate_rule *rule, const struct session *s, struct rate_value *key)
{
	struct sha256_ctx ctx;
	char net[INET6_ADDRSTRLEN + 8];
	unsigned keys = rule->keys;

	memset(key, 0, sizeof(*key));
	if (((keys & RATE_KEY_CLIENT_IP) && s->addr.family == AF_UNSPEC) ||
	    ((keys & RATE_KEY_SASL_USER) && s->tx.auth_user[0] == '\0') ||
	    ((keys & RATE_KEY_HELO) && !s->helo_seen))
		return false;
	sha256_init(&ctx);
	if (keys & RATE_KEY_CLIENT_IP) {
		struct ipaddr group;
		unsigned prefix = ratelimit_group(&s->addr, rule->ipv4_prefix, rule->ipv6_prefix,
						  &group, net, sizeof(net));
		bool whole = prefix == (s->addr.family == AF_INET ? 32u : 128u);
		char shown[INET6_ADDRSTRLEN];

		ipaddr_format(&group, shown, sizeof(shown));
		key_add(&ctx, key, "client_ip", net, strlen(net), whole ? shown : net);
	}
	if (keys & RATE_KEY_SENDER)
		key_add_address(&ctx, key, "sender", &s->tx.sender, false);
	if (keys & RATE_KEY_SENDER_DOMAIN)
		key_add_address(&ctx, key, "sender_domain", &s->tx.sender, true);
	if (keys & RATE_KEY_SASL_USER)
		key_add_lower(&ctx, key, "sasl_user", s->tx.auth_user);
	if (keys & RATE_KEY_RECIPIENT)
		key_add_address(&ctx, key, "recipient", &s->tx.rcpt, false);
	if (keys & RATE_KEY_RECIPIENT_DOMAIN)
		key_add_address(&ctx, key, "recipient_domain", &s->tx.rcpt, true);
	if (keys & RATE_KEY_HELO)
		key_add_lower(&ctx, key, "helo", s->helo);
	if (keys == 0) /* key = [ ]: one counter for every client */
		key_add(&ctx, key, "global", "", 0, "*");
	sha256_digest(&ctx, RATELIMIT_DIGEST_SIZE, key->digest);
	return true;
}

bool
check_ratelimit_distinct(const struct rate_rule *rule, const struct session *s,
			 const struct rate_value *key, uint8_t value[RATELIMIT_DIGEST_SIZE])
{
	struct rate_rule part = *rule;
	struct rate_value v;
	struct sha256_ctx ctx;

	/* The value is what a rule keyed by that field alone would count by. */
	part.keys = rule->distinct;
	if (!check_ratelimit_key(&part, s, &v))
		return false;
	sha256_init(&ctx);
	sha256_update(&ctx, RATELIMIT_DIGEST_SIZE, key->digest);
	sha256_update(&ctx, RATELIMIT_DIGEST_SIZE, v.digest);
	sha256_digest(&ctx, RATELIMIT_DIGEST_SIZE, value);
	return true;
}

/* ---- the check ----------------------------------------------------------- */

/* Does rule's when = fit this client? */
static bool
rule_for_client(const struct rate_rule *rule, const struct session *s)
{
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

/* Does rule count at this stage, for this client? */
static bool
rule_applies(const struct rate_rule *rule, const struct session *s,
	     const struct ratelimit_state *st, enum stage stage)
{
	switch (rule->count) {
	case RATE_COUNT_CONNECTIONS:
		if (stage != STAGE_MAIL || st->connection_charged)
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
	case RATE_COUNT_BYTES:
		/* SIZE= at MAIL; without it, the real size at end of message. */
		if (stage != (s->tx.size > 0 ? STAGE_MAIL : STAGE_EOM))
			return false;
		break;
	case RATE_COUNT_DISTINCT:
		if (stage != (rule->distinct == RATE_KEY_RECIPIENT ? STAGE_RCPT : STAGE_MAIL))
			return false;
		break;
	}
	return rule_for_client(rule, s);
}

/*
 * MAIL FROM without SIZE=: a count = "bytes" rule for this client waits
 * for the real size, so the message goes on to end of message with its
 * header and body events.  With SIZE=, a message that goes there anyway
 * (hold, warn, another check) has its charge corrected (correct_sizes()).
 */
static void
note_size_wanted(struct session *s)
{
	const struct config *cfg = s->cfg;

	if (s->tx.size > 0)
		return;
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++)
		if (cfg->ratelimit.rules[i].count == RATE_COUNT_BYTES &&
		    rule_for_client(&cfg->ratelimit.rules[i], s)) {
			s->tx.count_size = s->tx.needs_eom = true;
			return;
		}
}

/* What one event of rule counts: 1, or the message's bytes. */
static uint64_t
rule_amount(const struct rate_rule *rule, const struct session *s, enum stage stage)
{
	if (rule->count != RATE_COUNT_BYTES)
		return 1;
	return stage == STAGE_EOM ? s->tx.message_size : s->tx.size;
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
transaction_record(const struct config *cfg, struct ratelimit_state *st,
		   const struct rate_charge *c)
{
	for (unsigned i = 0; i < st->ncharges; i++)
		if (same_counters(cfg, &st->charges[i], c)) {
			st->charges[i].count += c->count;
			return;
		}
	if (st->ncharges < RATELIMIT_TX_CHARGES)
		st->charges[st->ncharges++] = *c;
	else
		st->charges_lost = true;
}

/* The event is let through: keep its charges. */
static void
event_commit(const struct config *cfg, struct ratelimit_state *st, enum stage stage,
	     const struct event *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		if (cfg->ratelimit.rules[ev->items[i].rule].count != RATE_COUNT_CONNECTIONS)
			transaction_record(cfg, st, &ev->items[i]);
	if (stage == STAGE_MAIL)
		st->connection_charged = true;
}

/*
 * End of message of a transaction whose bytes were charged from SIZE= and
 * whose real size was counted too: charge the difference, or give it back.
 * Never a refusal: the client declared its size and was admitted for it.
 */
static void
correct_sizes(struct session *s, struct ratelimit_state *st)
{
	const struct config *cfg = s->cfg;
	uint64_t real = s->tx.message_size;

	if (s->tx.size == 0 || real == 0) /* 0: no header or body event came */
		return;
	for (unsigned i = 0; i < st->ncharges; i++) {
		struct rate_charge *c = &st->charges[i], diff = *c;
		const struct rate_limit *over;
		struct rate_value key;

		if (cfg->ratelimit.rules[c->rule].count != RATE_COUNT_BYTES || c->count == real)
			continue;
		if (real < c->count) {
			diff.count = c->count - real;
			ratelimit_give_back(cfg, &diff);
			c->count = real;
			continue;
		}
		/* The key value again, for ratelimit_charge(): same rule, same client. */
		if (!check_ratelimit_key(&cfg->ratelimit.rules[c->rule], s, &key))
			continue;
		if (ratelimit_charge(cfg, c->rule, ratelimit_charge_limits(cfg, c), c->class_index,
				     &key, real - c->count, c->time_ms, true, &diff, &over) !=
		    RATE_ERROR)
			c->count = real;
	}
}

/* The check's on_error: memcached's ("local" never reaches a check). */
static enum on_error
ratelimit_on_error(const struct config *cfg)
{
	return cfg->memcached.on_error;
}

/* A hold or warn rule is over its limit: remember it for later; hold outranks warn. */
static void
note_later(struct verdict *later, const struct rate_rule *rule, const struct rate_value *key)
{
	if (later->kind == VERDICT_HOLD ||
	    (rule->action != RATE_ACTION_HOLD && later->kind == VERDICT_WARN))
		return;
	if (later->kind == VERDICT_ERROR)
		log_warning("ratelimit: memcached failed for %s; rule \"%s\" decides",
			    later->subject, rule->name);
	later->kind = rule->action == RATE_ACTION_HOLD ? VERDICT_HOLD : VERDICT_WARN;
	set_subject(later, rule, key);
}

static void
ratelimit_run(struct session *s, void *state, enum stage stage, struct verdict *v)
{
	const struct config *cfg = s->cfg;
	struct ratelimit_state *st = state;
	struct rate_charge on_stack[EVENT_CHARGES_ON_STACK];
	struct event ev = {on_stack, 0};
	struct verdict later = {.kind = VERDICT_DUNNO}; /* hold, warn or error */
	struct rate_value key;
	uint8_t value[RATELIMIT_DIGEST_SIZE];
	uint64_t now;

	if (!cfg->ratelimit.enabled || cfg->ratelimit.nrules == 0)
		return;
	if (cfg->ratelimit.nrules > EVENT_CHARGES_ON_STACK &&
	    (ev.items = calloc(cfg->ratelimit.nrules, sizeof(*ev.items))) == NULL) {
		log_warning("ratelimit: out of memory for %zu rules", cfg->ratelimit.nrules);
		v->kind = VERDICT_ERROR;
		v->out_of_memory = true;
		return;
	}
	if (stage == STAGE_MAIL)
		note_size_wanted(s);
	else if (stage == STAGE_EOM)
		correct_sizes(s, st);
	now = ratelimit_now_ms();
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++) {
		const struct rate_rule *rule = &cfg->ratelimit.rules[i];
		const struct rate_limits *limits;
		const struct rate_limit *over;
		bool lets_through =
		    rule->action == RATE_ACTION_HOLD || rule->action == RATE_ACTION_WARN;
		int class_index;
		enum rate_outcome r;

		if (!rule_applies(rule, s, st, stage) || !check_ratelimit_key(rule, s, &key))
			continue;
		limits = ratelimit_limits(rule, &key, &s->addr, &class_index);
		if (limits->count == 0)
			continue; /* a class without limits */
		if (rule->count == RATE_COUNT_DISTINCT) {
			if (!check_ratelimit_distinct(rule, s, &key, value))
				continue;
			r = ratelimit_charge_distinct(cfg, i, limits, &key, value, now, lets_through,
						      &over);
			if (r == RATE_ADMIT)
				continue; /* nothing to give back */
		} else {
			r = ratelimit_charge(cfg, i, limits, class_index, &key,
					     rule_amount(rule, s, stage), now, lets_through,
					     &ev.items[ev.n], &over);
			if (r == RATE_ADMIT) {
				ev.n++;
				continue;
			}
		}
		if (r == RATE_ERROR) {
			if (later.kind == VERDICT_DUNNO) {
				later.kind = VERDICT_ERROR;
				ascii_copy(later.subject, sizeof(later.subject), key.text, key.len);
			}
			if (ratelimit_on_error(cfg) == ON_ERROR_TEMPFAIL)
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
		/* hold or warn: the event goes through, charged. */
		if (rule->count != RATE_COUNT_DISTINCT)
			ev.n++;
		note_later(&later, rule, &key);
	}
	if (later.kind == VERDICT_ERROR && ratelimit_on_error(cfg) == ON_ERROR_TEMPFAIL) {
		/* policy.c turns this into a 451: nothing may stay charged. */
		event_give_back(cfg, &ev);
	} else
		event_commit(cfg, st, stage, &ev);
	if (later.kind != VERDICT_DUNNO) {
		v->kind = later.kind;
		memcpy(v->subject, later.subject, sizeof(v->subject));
	}
out:
	if (ev.items != on_stack)
		free(ev.items);
}

/* The transaction ended: give its charges back unless it was accepted. */
static void
ratelimit_end(struct session *s, void *state, bool accepted)
{
	struct ratelimit_state *st = state;

	if (!accepted) {
		for (unsigned i = 0; i < st->ncharges; i++)
			ratelimit_give_back(s->cfg, &st->charges[i]);
		if (st->charges_lost)
			log_info("ratelimit: transaction of %s[%s] charged more than %d counters: "
				 "the rest stay charged",
				 s->client_name, s->client_addr, RATELIMIT_TX_CHARGES);
	}
	st->ncharges = 0;
	st->charges_lost = false;
}

const struct check check_ratelimit = {
	.name = "ratelimit", .stages = STAGE_MAIL | STAGE_RCPT | STAGE_EOM,
	.state_size = sizeof(struct ratelimit_state),
	.run = ratelimit_run, .end = ratelimit_end, .on_error = ratelimit_on_error,
	.start = ratelimit_start, .reload = ratelimit_reload, .stop = ratelimit_stop,
};
