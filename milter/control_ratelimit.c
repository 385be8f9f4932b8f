/*
 * control_ratelimit.c - "ratelimit show RULE FIELD=VALUE..." and
 * "ratelimit reset RULE FIELD=VALUE...": the counters one key of one rule
 * holds now, and clearing them.
 *
 * FIELD is a part of the rule's key (client_ip, sender, sender_domain,
 * sasl_user, recipient, recipient_domain, helo), and every part must be
 * given; client_ip may also be given to a rule that does not count by it,
 * to choose among its CIDR classes.  The key value is built exactly as
 * the check builds it, by check_ratelimit_key() over a session filled
 * with the fields, so the counters are the check's own.  For each limit
 * that applies (the class's, if one matches) both the current and the
 * previous window's counters are read (show) or deleted (reset): in
 * memcached when servers are configured, and in process when there are
 * none or memcached.on_error = "local" (where events are counted while
 * memcached does not answer).  After a reset the key starts afresh: its
 * next event is admitted at once.
 *
 * Thread-safety: runs on the control thread; reads the current
 * configuration snapshot and the thread-safe counter stores only.
 */
#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check_ratelimit.h"
#include "counter_store.h"
#include "policy.h"
#include "ratelimit.h"
#include "session.h"

/* The key parts, in the order of ratelimit.h "Keys". */
enum { F_CLIENT_IP, F_SENDER, F_SENDER_DOMAIN, F_SASL_USER, F_RECIPIENT, F_RECIPIENT_DOMAIN,
       F_HELO, NFIELDS };

/* Their names and rule key bits. */
static const struct {
	const char *name;
	unsigned bit;
} fields[NFIELDS] = {
	{"client_ip", RATE_KEY_CLIENT_IP},	   {"sender", RATE_KEY_SENDER},
	{"sender_domain", RATE_KEY_SENDER_DOMAIN}, {"sasl_user", RATE_KEY_SASL_USER},
	{"recipient", RATE_KEY_RECIPIENT},	   {"recipient_domain", RATE_KEY_RECIPIENT_DOMAIN},
	{"helo", RATE_KEY_HELO},
};

/* One request, parsed. */
struct rl_request {
	bool reset;
	const struct rate_rule *rule;
	const char *value[NFIELDS]; /* NULL: not given */
};

/* Where a key's counters are: memcached and/or the in-process store. */
struct rl_stores {
	bool remote, local;
};

/* The rule named name in cfg, or NULL. */
static const struct rate_rule *
find_rule(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++)
		if (strcmp(cfg->ratelimit.rules[i].name, name) == 0)
			return &cfg->ratelimit.rules[i];
	return NULL;
}

/* The field index of "NAME=..." (*value after the '='), or -1. */
static int
field_of(const char *arg, const char **value)
{
	const char *eq = strchr(arg, '=');

	if (eq == NULL)
		return -1;
	for (int i = 0; i < NFIELDS; i++)
		if (strlen(fields[i].name) == (size_t)(eq - arg) &&
		    strncmp(arg, fields[i].name, (size_t)(eq - arg)) == 0) {
			*value = eq + 1;
			return i;
		}
	return -1;
}

/* Parse the FIELD=VALUE words; false (and the 400) when one is wrong or a key part is missing. */
static bool
parse_fields(int argc, char **argv, struct rl_request *rq, struct control_out *out)
{
	char missing[256] = "";

	for (int i = 3; i < argc; i++) {
		const char *value;
		int f = field_of(argv[i], &value);

		if (f < 0) {
			control_fail(out, 400, "%.100s: not FIELD=VALUE with FIELD a key part", argv[i]);
			return false;
		}
		if (rq->value[f] != NULL || (!(rq->rule->keys & fields[f].bit) &&
					     fields[f].bit != RATE_KEY_CLIENT_IP)) {
			control_fail(out, 400, "%s: %s", fields[f].name, rq->value[f] ?
				     "given twice" : "not a part of this rule's key");
			return false;
		}
		rq->value[f] = value;
	}
	for (int f = 0; f < NFIELDS; f++)
		if ((rq->rule->keys & fields[f].bit) && rq->value[f] == NULL)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
				 "%s%s", missing[0] ? " " : "", fields[f].name);
	if (missing[0] != '\0') {
		control_fail(out, 400, "rule \"%s\" needs: %s", rq->rule->name, missing);
		return false;
	}
	return true;
}

/* Set an address field from VALUE (or, for a domain part, "@VALUE"); false when too long. */
static bool
set_address(struct field *f, const char *address, const char *domain)
{
	char buf[SESSION_PATH_MAX + 2];

	if (address != NULL)
		return field_set(f, address);
	if (domain == NULL)
		return true;
	snprintf(buf, sizeof(buf), "@%s", domain);
	return strlen(domain) < SESSION_PATH_MAX && field_set(f, buf);
}

/* True when an address's domain (after its last '@') is domain, case ignored. */
static bool
same_domain(const char *address, const char *domain)
{
	const char *at = strrchr(address, '@');
	size_t n;

	if (at == NULL)
		return domain[0] == '\0';
	n = strlen(at + 1);
	if (n > 0 && at[n] == '>')
		n--; /* "<a@b>" */
	return strlen(domain) == n && strncasecmp(at + 1, domain, n) == 0;
}

/* Fill s from the fields as the milter would have; false (and the 400) on a bad value. */
static bool
fill_session(struct session *s, const struct rl_request *rq, struct control_out *out)
{
	const char *const *v = rq->value;

	if (v[F_CLIENT_IP] != NULL) {
		if (!ipaddr_parse(v[F_CLIENT_IP], &s->addr)) {
			control_fail(out, 400, "client_ip: %.100s is not an IP address",
				     v[F_CLIENT_IP]);
			return false;
		}
		ipaddr_format(&s->addr, s->client_addr, sizeof(s->client_addr));
	}
	if ((v[F_SENDER] && v[F_SENDER_DOMAIN] && !same_domain(v[F_SENDER], v[F_SENDER_DOMAIN])) ||
	    (v[F_RECIPIENT] && v[F_RECIPIENT_DOMAIN] &&
	     !same_domain(v[F_RECIPIENT], v[F_RECIPIENT_DOMAIN]))) {
		control_fail(out, 400, "a domain part does not match its address");
		return false;
	}
	if (!set_address(&s->tx.sender, v[F_SENDER], v[F_SENDER_DOMAIN]) ||
	    !set_address(&s->tx.rcpt, v[F_RECIPIENT], v[F_RECIPIENT_DOMAIN]) ||
	    (v[F_SASL_USER] &&
	     !copy_string(s->tx.auth_user, sizeof(s->tx.auth_user), v[F_SASL_USER]))) {
		control_fail(out, 400, "a value is longer than a session holds");
		return false;
	}
	if (v[F_HELO] != NULL)
		session_set_helo(s, v[F_HELO]);
	return true;
}

/* Read (show) or delete (reset) one counter; *deleted counts the counters that were there. */
static bool
counter_op(const struct rl_request *rq, const char *name, bool local, uint64_t *value,
	   unsigned *deleted)
{
	bool existed = false, ok;

	*value = 0;
	if (!rq->reset)
		return ratelimit_peek(name, local, value);
	ok = ratelimit_delete(name, local, &existed);
	*deleted += existed;
	return ok;
}

/* What one store holds for one limit. */
struct rl_reading {
	char cur_key[COUNTER_KEY_MAX + 1], prev_key[COUNTER_KEY_MAX + 1];
	uint64_t current, previous;
	bool ok, admitted;
};

/* Read or delete the current and previous window of lim in one store. */
static void
window_op(const struct config *cfg, const struct rl_request *rq, const struct rate_value *key,
	  const struct rate_limit *lim, const struct rate_window *w, bool local,
	  struct rl_reading *r, unsigned *deleted)
{
	const char *prefix = cfg->memcached.key_prefix;
	bool ok = true;

	memset(r, 0, sizeof(*r));
	if (ratelimit_key_name(r->cur_key, sizeof(r->cur_key), prefix, rq->rule->name,
			       lim->period, w->index, key->digest) == 0)
		r->cur_key[0] = '\0';
	if (w->index == 0 ||
	    ratelimit_key_name(r->prev_key, sizeof(r->prev_key), prefix, rq->rule->name,
			       lim->period, w->index - 1, key->digest) == 0)
		r->prev_key[0] = '\0';
	if (r->cur_key[0] != '\0')
		ok = counter_op(rq, r->cur_key, local, &r->current, deleted);
	if (r->prev_key[0] != '\0')
		ok = counter_op(rq, r->prev_key, local, &r->previous, deleted) && ok;
	r->ok = ok;
	/* The check charges first: the next event is admitted when one more is within. */
	r->admitted = ok && ratelimit_within(r->current + 1, r->previous, w, lim->count);
}

/* One store's reading of one limit, as text or JSON. */
static void
write_reading(struct control_out *out, bool json, bool reset, const char *store,
	      const struct rl_reading *r, const struct rate_window *w, bool first)
{
	uint64_t est = ratelimit_estimate(r->current, r->previous, w);

	if (json) {
		/* The keys hold memcached.key_prefix and the rule's name: escaped. */
		control_printf(out, "%s{\"store\":\"%s\",\"ok\":%s,\"current_key\":", first ? "" : ",",
			       store, r->ok ? "true" : "false");
		control_json_string(out, r->cur_key);
		control_printf(out, ",\"previous_key\":");
		control_json_string(out, r->prev_key);
		if (!reset)
			control_printf(out, ",\"current\":%llu,\"previous\":%llu,\"weighted\":%llu,"
				       "\"next\":\"%s\"", (unsigned long long)r->current,
				       (unsigned long long)r->previous, (unsigned long long)est,
				       r->admitted ? "admitted" : "over");
		control_printf(out, "}");
		return;
	}
	if (reset)
		control_printf(out, "  %s: %s %s, %s\n", store, r->ok ? "cleared" : "ERROR clearing",
			       r->cur_key, r->prev_key[0] ? r->prev_key : "(no previous window)");
	else if (!r->ok)
		control_printf(out, "  %s: could not read\n", store);
	else
		control_printf(out, "  %s: current %llu, previous %llu, weighted %llu: next %s\n",
			       store, (unsigned long long)r->current,
			       (unsigned long long)r->previous, (unsigned long long)est,
			       r->admitted ? "admitted" : "over");
}

/* Every limit in every store: show or reset; *errors counts the store failures. */
static void
run_limits(struct control_out *out, bool json, const struct config *cfg,
	   const struct rl_request *rq, const struct rate_value *key,
	   const struct rate_limits *limits, struct rl_stores stores, unsigned *deleted,
	   unsigned *errors, bool *admitted)
{
	uint64_t now = ratelimit_now_ms();

	for (size_t i = 0; i < limits->count; i++) {
		const struct rate_limit *lim = &limits->items[i];
		struct rate_window w;
		struct rl_reading r;
		bool first = true;

		ratelimit_window(now, lim->period, &w);
		if (json)
			control_printf(out, "%s{\"count\":%lu,\"period\":%lu,\"window\":%llu,"
				       "\"elapsed_ms\":%llu,\"stores\":[", i ? "," : "", lim->count,
				       lim->period, (unsigned long long)w.index,
				       (unsigned long long)w.elapsed_ms);
		else
			control_printf(out, "limit %lu/%lus (window %llu, %llu ms in):\n", lim->count,
				       lim->period, (unsigned long long)w.index,
				       (unsigned long long)w.elapsed_ms);
		for (int local = 0; local < 2; local++) {
			if (!(local ? stores.local : stores.remote))
				continue;
			window_op(cfg, rq, key, lim, &w, local, &r, deleted);
			*errors += !r.ok;
			/* memcached when configured: the in-process store is its fallback. */
			if (first)
				*admitted = *admitted && r.admitted;
			write_reading(out, json, rq->reset, local ? "in-process" : "memcached", &r,
				      &w, first);
			first = false;
		}
		if (json)
			control_printf(out, "]}");
	}
}

/* The answer for a parsed request over session s. */
static void
answer(struct control_out *out, bool json, struct session *s, const struct rl_request *rq)
{
	const struct config *cfg = s->cfg;
	struct rl_stores stores = {cfg->memcached.servers.count > 0,
				   cfg->memcached.servers.count == 0 ||
				       cfg->memcached.on_error == ON_ERROR_LOCAL};
	struct rate_value *key = malloc(sizeof(*key));
	const struct rate_limits *limits;
	unsigned deleted = 0, errors = 0;
	bool admitted = true;
	int class_index;

	if (key == NULL || !check_ratelimit_key(rq->rule, s, key)) {
		control_fail(out, key ? 400 : 500, key ? "nothing to count by" : "out of memory");
		free(key);
		return;
	}
	limits = ratelimit_limits(rq->rule, key, &s->addr, &class_index);
	if (json) {
		control_printf(out, "{\"rule\":");
		control_json_string(out, rq->rule->name);
		control_printf(out, ",\"command\":\"%s\",\"enabled\":%s,\"key\":",
			       rq->reset ? "reset" : "show", cfg->ratelimit.enabled ? "true" : "false");
		control_json_string(out, key->text);
		control_printf(out, ",\"class\":%d,\"limits\":[", class_index);
	} else
		control_printf(out, "rule %s%s: key %s, %s%s\n", rq->rule->name,
			       cfg->ratelimit.enabled ? "" : " (rate limits disabled)", key->text,
			       class_index < 0 ? "the rule's own limits" : "limits of class ",
			       class_index < 0 ? "" : rq->rule->classes[class_index].match);
	run_limits(out, json, cfg, rq, key, limits, stores, &deleted, &errors, &admitted);
	if (json && rq->reset)
		control_printf(out, "],\"deleted\":%u,\"errors\":%u}\n", deleted, errors);
	else if (json)
		control_printf(out, "],\"next\":\"%s\",\"errors\":%u}\n",
			       admitted ? "admitted" : "over", errors);
	else if (rq->reset)
		control_printf(out, "deleted %u counter%s\n", deleted, deleted == 1 ? "" : "s");
	else
		control_printf(out, "next event: %s\n", limits->count == 0 ? "admitted (no limits)"
			       : !errors ? (admitted ? "admitted" : "over") : "unknown (store error)");
	if (errors > 0)
		control_fail(out, 503, "%u counter store operation%s failed", errors,
			     errors == 1 ? "" : "s");
	free(key);
}

void
control_cmd_ratelimit(int argc, char **argv, bool json, struct control_out *out)
{
	struct rl_request rq = {0};
	struct config *cfg;
	struct session *s;

	if (argc < 3 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "reset") != 0)) {
		control_fail(out, 400, "usage: ratelimit show|reset RULE FIELD=VALUE...");
		return;
	}
	rq.reset = strcmp(argv[1], "reset") == 0;
	if ((cfg = config_current()) == NULL) {
		control_fail(out, 503, "no configuration loaded");
		return;
	}
	if ((rq.rule = find_rule(cfg, argv[2])) == NULL) {
		control_fail(out, 404, "no rate-limit rule \"%.64s\"", argv[2]);
		config_release(cfg);
		return;
	}
	if (!parse_fields(argc, argv, &rq, out)) {
		config_release(cfg);
		return;
	}
	/* The session holds the reference from here on. */
	if ((s = policy_session_open(cfg)) == NULL) {
		control_fail(out, 500, "out of memory");
		return;
	}
	if (fill_session(s, &rq, out))
		answer(out, json, s, &rq);
	session_close(s);
}
