/*
 * ratelimit_config.c - parse ratelimit.rules: a list of groups, each a
 * rule with a name, a key, what it counts, "N/PERIOD" limits and classes
 * that give some values limits of their own.  A rule's shape is its own,
 * so it is read here field by field rather than through config.c's key
 * tables; the errors go through the same loader and read the same way.
 *
 * Contract: see ratelimit_config.h.  A rule's cross-checks (it needs a
 * name, a key setting (key = [ ] is one global counter), limits or
 * classes; a key its count can use; count = "distinct" with its distinct
 * field and no other count with one; a name not used before) are made
 * right after its fields are read.
 *
 * Thread-safety: touches only the configuration being loaded or freed.
 */
#include "ratelimit_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const count_words[] = {
	"connections", "messages", "recipients", "bytes", "distinct", NULL,
};
static const char *const when_words[] = {"any", "authenticated", "unauthenticated", NULL};
static const char *const action_words[] = {"tempfail", "reject", "hold", "warn", NULL};
static const char *const key_words[] = {
	"client_ip", "sender", "sender_domain", "sasl_user", "recipient",
	"recipient_domain", "helo", NULL,
};
/* distinct = "...": the fields whose values can be told apart, as rate_key bits. */
static const char *const distinct_words[] = {"helo", "recipient", "sender", "client_ip", NULL};
static const unsigned distinct_bits[] = {RATE_KEY_HELO, RATE_KEY_RECIPIENT, RATE_KEY_SENDER,
					 RATE_KEY_CLIENT_IP};

/* What parse_field() saw of a rule, for check_rule(). */
struct rule_seen {
	bool	key, limits, classes;
	const config_setting_t *distinct;	/* the distinct setting, for its line */
};

bool
config_parse_limit(const char *text, struct rate_limit *out)
{
	unsigned long n = 0, k = 0, unit;
	const char *p = text;
	int	digits = 0;

	for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
		n = n * 10 + (unsigned long)(*p - '0');
	/* K, M, G: binary multiples, for count = "bytes" ("50M/1h"). */
	if (*p == 'K' || *p == 'k')
		n <<= 10, p++;
	else if (*p == 'M')
		n <<= 20, p++;
	else if (*p == 'G')
		n <<= 30, p++;
	if (digits == 0 || n == 0 || *p++ != '/')
		return false;
	for (digits = 0; *p >= '0' && *p <= '9' && digits < 7; p++, digits++)
		k = k * 10 + (unsigned long)(*p - '0');
	if (digits == 0)
		k = 1;
	switch (*p++) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		return false;
	}
	/* memcached reads a TTL over 30 days as a point in time. */
	if (*p != '\0' || k == 0 || k * unit > 30UL * 86400)
		return false;
	out->count = n;
	out->period = k * unit;
	return true;
}

/* Empty a list of limits. */
static void
limits_free(struct rate_limits *limits)
{
	free(limits->items);
	limits->items = NULL;
	limits->count = 0;
}

/* Room for one element per item of s, and a spare so that none is NULL; NULL reported. */
static void *
calloc_items(struct loader *ld, const config_setting_t *s, size_t size)
{
	void   *items = calloc((size_t)config_setting_length(s) + 1, size);

	if (items == NULL)
		loader_out_of_memory(ld, s);
	return items;
}

/* limits = [ "N/PERIOD", ... ]: replaces *out. */
static void
parse_limits(struct loader *ld, const config_setting_t *s, struct rate_limits *out)
{
	int	t = config_setting_type(s);

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		loader_error(ld, s, "limits: expected a list such as [ \"100/1m\", \"2000/1h\" ]");
		return;
	}
	limits_free(out);
	if ((out->items = calloc_items(ld, s, sizeof(*out->items))) == NULL)
		return;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || !config_parse_limit(v, &out->items[out->count]))
			loader_error(ld, e, "limits: bad limit \"%s\" (expected N/PERIOD, "
				     "e.g. 100/1m; PERIOD in s, m, h or d, at most 30d)",
				     v ? v : "(not a string)");
		else
			out->count++;
	}
}

/* Rule names go into counter keys and log lines: a short word. */
static bool
valid_rule_name(const char *name)
{
	size_t	len = strlen(name);

	if (len == 0 || len >= CONFIG_MAX_RULE_NAME)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

/* match = "..." of a class; a client_ip rule's non-glob match is a network. */
static void
parse_match(struct loader *ld, const struct rate_rule *rule, struct rate_class *c,
	    const config_setting_t *f)
{
	const char *v = config_setting_get_string(f);

	if (v == NULL) {
		loader_error(ld, f, "match: expected a string");
		return;
	}
	if (!loader_set_string(ld, f, &c->match, v))
		return;
	if (rule->keys == RATE_KEY_CLIENT_IP && strpbrk(v, "*?[") == NULL) {
		if (!cidr_parse(v, &c->cidr))
			loader_error(ld, f, "match: bad network \"%s\"", v);
		c->is_cidr = true;
	}
}

/* classes = ( { match = "..."; limits = [ ... ]; }, ... ) of a rule whose key is known. */
static void
parse_classes(struct loader *ld, struct rate_rule *rule, const config_setting_t *s)
{
	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		loader_error(ld, s, "classes: expected a list ( { match = \"...\"; limits = [ ... ]; }, ... )");
		return;
	}
	if ((rule->classes = calloc_items(ld, s, sizeof(*rule->classes))) == NULL)
		return;
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		struct rate_class *c = &rule->classes[rule->nclasses++];
		bool	have_match = false, have_limits = false;

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			loader_error(ld, g, "classes: element %d is not a group { ... }", i + 1);
			continue;
		}
		for (int j = 0; j < config_setting_length(g); j++) {
			const config_setting_t *f = config_setting_get_elem(g, (unsigned)j);
			const char *fname = config_setting_name(f);

			if (strcmp(fname, "match") == 0) {
				have_match = config_setting_get_string(f) != NULL;
				parse_match(ld, rule, c, f);
			} else if (strcmp(fname, "limits") == 0) {
				parse_limits(ld, f, &c->limits);
				have_limits = true;
			} else
				loader_error(ld, f, "unknown setting \"%s\" in a class", fname);
		}
		if (!have_match || !have_limits)
			loader_error(ld, g, "class %d: needs both match and limits", i + 1);
	}
}

/* key = [ "client_ip", ... ]: the bits of rule->keys. */
static void
parse_key(struct loader *ld, struct rate_rule *rule, const config_setting_t *f)
{
	int	t = config_setting_type(f), v;

	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		loader_error(ld, f, "key: expected a list such as [ \"client_ip\" ]");
		return;
	}
	for (int i = 0; i < config_setting_length(f); i++)
		if (loader_get_enum(ld, config_setting_get_elem(f, (unsigned)i), key_words, &v))
			rule->keys |= 1u << v;
}

/*
 * One field of a rule other than classes (read last, as their matching
 * depends on the key); false for an unknown one.
 */
static bool
parse_field(struct loader *ld, struct rate_rule *rule, const config_setting_t *f,
	    struct rule_seen *seen)
{
	const char *fname = config_setting_name(f), *name;
	unsigned long whole;
	int	v;

	if (strcmp(fname, "name") == 0) {
		if ((name = config_setting_get_string(f)) == NULL || !valid_rule_name(name))
			loader_error(ld, f, "name: expected 1 to %d letters, digits, '_', '.' or '-'",
				     CONFIG_MAX_RULE_NAME - 1);
		else
			snprintf(rule->name, sizeof(rule->name), "%s", name);
	} else if (strcmp(fname, "key") == 0) {
		parse_key(ld, rule, f);
		seen->key = true;
	} else if (strcmp(fname, "distinct") == 0) {
		seen->distinct = f;
		if (loader_get_enum(ld, f, distinct_words, &v))
			rule->distinct = distinct_bits[v];
	} else if (strcmp(fname, "count") == 0) {
		if (loader_get_enum(ld, f, count_words, &v))
			rule->count = (enum rate_count)v;
	} else if (strcmp(fname, "limits") == 0) {
		parse_limits(ld, f, &rule->limits);
		seen->limits = true;
	} else if (strcmp(fname, "when") == 0) {
		if (loader_get_enum(ld, f, when_words, &v))
			rule->when = (enum rate_when)v;
	} else if (strcmp(fname, "action") == 0) {
		if (loader_get_enum(ld, f, action_words, &v))
			rule->action = (enum rate_action)v;
	} else if (strcmp(fname, "ipv4_prefix") == 0) {
		if (loader_get_whole(ld, f, 1, 32, &whole))
			rule->ipv4_prefix = (unsigned)whole;
	} else if (strcmp(fname, "ipv6_prefix") == 0) {
		if (loader_get_whole(ld, f, 1, 128, &whole))
			rule->ipv6_prefix = (unsigned)whole;
	} else
		return false;
	return true;
}

/* count = "distinct" and distinct = go together, with few enough limits. */
static void
check_distinct(struct loader *ld, const struct rate_rule *rule, const config_setting_t *g,
	       const struct rule_seen *seen)
{
	size_t	most = rule->limits.count;

	if (rule->count != RATE_COUNT_DISTINCT) {
		if (seen->distinct != NULL)
			loader_error(ld, seen->distinct, "rule \"%s\": distinct needs "
				     "count = \"distinct\"", rule->name);
		return;
	}
	if (seen->distinct == NULL)
		loader_error(ld, g, "rule \"%s\": count = \"distinct\" needs distinct = "
			     "\"helo\", \"recipient\", \"sender\" or \"client_ip\"", rule->name);
	for (size_t i = 0; i < rule->nclasses; i++)
		if (rule->classes[i].limits.count > most)
			most = rule->classes[i].limits.count;
	if (most > CONFIG_DISTINCT_LIMITS_MAX)
		loader_error(ld, g, "rule \"%s\": count = \"distinct\" takes at most %d limits",
			     rule->name, CONFIG_DISTINCT_LIMITS_MAX);
}

/* What a rule needs as a whole, once its fields are read. */
static void
check_rule(struct loader *ld, const struct rate_rule *rule, const config_setting_t *g,
	   const struct rule_seen *seen)
{
	if (rule->name[0] == '\0')
		loader_error(ld, g, "rule: needs a name");
	/* key = [ ] is one global counter; no key setting at all is a mistake. */
	if (!seen->key)
		loader_error(ld, g, "rule \"%s\": needs a key (key = [ ] for one global counter)",
			     rule->name);
	if (!seen->limits && !seen->classes)
		loader_error(ld, g, "rule \"%s\": needs limits or classes", rule->name);
	if (rule->count == RATE_COUNT_CONNECTIONS &&
	    (rule->keys & ~(unsigned)(RATE_KEY_CLIENT_IP | RATE_KEY_HELO)) != 0)
		loader_error(ld, g, "rule \"%s\": count = \"connections\" can only be keyed "
			     "by client_ip and helo", rule->name);
	if (rule->count != RATE_COUNT_RECIPIENTS &&
	    (rule->keys & (RATE_KEY_RECIPIENT | RATE_KEY_RECIPIENT_DOMAIN)) != 0)
		loader_error(ld, g, "rule \"%s\": a recipient key needs count = \"recipients\"",
			     rule->name);
	check_distinct(ld, rule, g, seen);
}

/* One rule { ... }. */
static void
parse_rule(struct loader *ld, struct rate_rule *rule, const config_setting_t *g)
{
	const config_setting_t *classes = NULL;
	struct rule_seen seen = {0};

	rule->ipv4_prefix = 32;
	rule->ipv6_prefix = 64;
	for (int j = 0; j < config_setting_length(g); j++) {
		const config_setting_t *f = config_setting_get_elem(g, (unsigned)j);

		if (strcmp(config_setting_name(f), "classes") == 0)
			classes = f;
		else if (!parse_field(ld, rule, f, &seen))
			loader_error(ld, f, "unknown setting \"%s\" in a rule", config_setting_name(f));
	}
	if (classes)
		parse_classes(ld, rule, classes);
	seen.classes = classes != NULL;
	check_rule(ld, rule, g, &seen);
}

void
ratelimit_config_parse(struct loader *ld, struct config *cfg, const config_setting_t *list)
{
	size_t	n = (size_t)config_setting_length(list);

	if ((cfg->ratelimit.rules = calloc_items(ld, list, sizeof(*cfg->ratelimit.rules))) == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct rate_rule *rule = &cfg->ratelimit.rules[cfg->ratelimit.nrules];

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			loader_error(ld, g, "rules: element %zu is not a group { ... }", i + 1);
			continue;
		}
		cfg->ratelimit.nrules++;
		parse_rule(ld, rule, g);
		for (size_t j = 0; j + 1 < cfg->ratelimit.nrules; j++)
			if (rule->name[0] && strcmp(cfg->ratelimit.rules[j].name, rule->name) == 0)
				loader_error(ld, g, "rule \"%s\": name used twice", rule->name);
	}
}

void
ratelimit_config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->ratelimit.nrules; i++) {
		struct rate_rule *rule = &cfg->ratelimit.rules[i];

		limits_free(&rule->limits);
		for (size_t j = 0; j < rule->nclasses; j++) {
			free(rule->classes[j].match);
			limits_free(&rule->classes[j].limits);
		}
		free(rule->classes);
	}
	free(cfg->ratelimit.rules);
	cfg->ratelimit.rules = NULL;
	cfg->ratelimit.nrules = 0;
}
