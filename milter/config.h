/*
 * config.h - mxgate's configuration: every key (contrib/mxgate.conf.example), parsed with
 * libconfig, defaulted and validated from one table of keys (config.c; the
 * rate-limit rules in ratelimit_config.c).
 *
 * Contract: config_load() returns a complete, validated, immutable snapshot
 * with one reference, or NULL after reporting every error as
 * "FILE:LINE: message".  Snapshots are shared between threads through
 * config_current()/config_release(): a session keeps the snapshot it started
 * with even when SIGUSR1 installs a new one.
 */
#ifndef MXGATE_CONFIG_H
#define MXGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cidr.h"
#include "snapshot.h"

#define CONFIG_MAX_RULE_NAME	64

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum on_error { ON_ERROR_ACCEPT, ON_ERROR_TEMPFAIL, ON_ERROR_LOCAL };
enum enforce_stage { ENFORCE_RCPT, ENFORCE_MAIL };
enum multi_target { MULTI_TARGET_ALL, MULTI_TARGET_ANY };
enum queue_format { QUEUE_FORMAT_POSTFIX, QUEUE_FORMAT_SENDMAIL };
/* The milter run-time: Sendmail's libmilter (the default) or mxgate's own. */
enum engine_kind { ENGINE_LIBMILTER, ENGINE_BUILTIN };

enum rate_count {
	RATE_COUNT_CONNECTIONS, RATE_COUNT_MESSAGES, RATE_COUNT_RECIPIENTS,
	RATE_COUNT_BYTES,		/* SIZE= at MAIL, else the real size at end of message */
	RATE_COUNT_DISTINCT,		/* different values of rule->distinct per key */
};
enum rate_when { RATE_WHEN_ANY, RATE_WHEN_AUTHENTICATED, RATE_WHEN_UNAUTHENTICATED };
enum rate_action { RATE_ACTION_TEMPFAIL, RATE_ACTION_REJECT, RATE_ACTION_HOLD, RATE_ACTION_WARN };

/* What a rule counts together: bits of a mask. */
enum rate_key {
	RATE_KEY_CLIENT_IP = 1 << 0,
	RATE_KEY_SENDER = 1 << 1,
	RATE_KEY_SENDER_DOMAIN = 1 << 2,
	RATE_KEY_SASL_USER = 1 << 3,
	RATE_KEY_RECIPIENT = 1 << 4,
	RATE_KEY_RECIPIENT_DOMAIN = 1 << 5,
	RATE_KEY_HELO = 1 << 6,
};

/* Limits a count = "distinct" rule (or one of its classes) may have. */
#define CONFIG_DISTINCT_LIMITS_MAX 16

/* One "N/PERIOD" window. */
struct rate_limit {
	unsigned long count;
	unsigned long period;		/* seconds */
};

struct rate_limits {
	struct rate_limit *items;
	size_t	count;			/* 0 = unlimited */
};

struct rate_class {
	char   *match;			/* glob, or CIDR text when is_cidr */
	bool	is_cidr;
	struct cidr cidr;
	struct rate_limits limits;
};

struct rate_rule {
	char	name[CONFIG_MAX_RULE_NAME];
	unsigned keys;			/* enum rate_key bits */
	enum rate_count count;
	struct rate_limits limits;
	struct rate_class *classes;
	size_t	nclasses;
	enum rate_when when;
	unsigned ipv4_prefix, ipv6_prefix;
	enum rate_action action;
	unsigned distinct;		/* count = "distinct": one enum rate_key bit (helo, recipient, sender, client_ip) */
};

/*
 * The overload group; also the type of the heap copy the overload
 * sampler takes of it (overload.h), so that the two cannot drift apart.
 */
struct overload_settings {
	bool	enabled;
	char   *flag_file, *queue_directory, *loadavg_file;
	enum queue_format queue_format;
	unsigned long queue_high, queue_low;
	double	load_high, load_low;
	unsigned sample_interval;
};

struct string_list {
	char  **items;
	size_t	count;
};

struct config {
	struct snapshot snap;		/* the references (snapshot.h) */
	char   *path;			/* file it came from; "" for defaults */
	unsigned long generation;	/* 1 for the first config_load(), then up */
	time_t	loaded;			/* when config_load() made it */

	char   *socket, *user, *pidfile;
	char   *control_socket;		/* "unix:PATH" for mxgatectl; "" = off (read at start) */
	char   *metrics;		/* "inet:PORT@ADDR" for GET /metrics; "" = off (read at start) */
	enum engine_kind engine;	/* read at start only: a reload keeps the running one */
	int	syslog_facility;	/* LOG_MAIL, ... */
	enum log_level log_level;
	bool	dry_run;
	struct cidr_list trusted_networks;

	struct {
		struct string_list servers;
		char   *key_prefix;
		unsigned timeout_ms;
		enum on_error on_error;
	} memcached;

	struct {
		char   *host, *socket, *user, *password, *database;
		unsigned port, timeout_ms;
		struct string_list servers;	/* "host:port" / "unix:PATH", tried in order; empty: host/port/socket */
		char   *quota_query, *alias_query, *alias_domain_query;
	} mysql;

	struct {
		bool	enabled, reject_non_fqdn, reject_invalid;
		enum enforce_stage enforce_at;
		bool	exempt_authenticated;
		struct string_list exempt_daemons;
		bool	required;		/* MAIL without HELO/EHLO: 503 */
		struct string_list reject_own_names;	/* 554 5.7.1 You are not me */
	} helo;

	struct {
		bool	enabled;
		char   *maildir_root, *maildir_template, *recipient_delimiter;
		bool	use_message_size;
		bool	check_real_size;	/* without SIZE=, count the message; refuse at end of message */
		unsigned grace_percent, cache_ttl;
		enum multi_target multi_target;
		enum on_error on_error;	/* accept | tempfail */
		unsigned reply_code;
		char   *reply_dsn;
	} quota;

	struct {
		bool	enabled;
		struct rate_rule *rules;
		size_t	nrules;
	} ratelimit;

	struct overload_settings overload;
};

/* Receives one "FILE:LINE: message" per error. */
typedef void config_report_fn(void *arg, const char *message);

/*
 * Load and validate path (NULL: the embedded defaults only).  Every error
 * goes to report; the result is NULL if there was any.
 */
struct config *config_load(const char *path, config_report_fn *report, void *arg);

/* One more reference to a snapshot the caller holds. */
void	config_hold(struct config *cfg);

/* Drop one reference (NULL is ignored); the last one frees the snapshot. */
void	config_release(struct config *cfg);

/* Install cfg (taking over its reference) as the current snapshot. */
void	config_install(struct config *cfg);

/* A new reference to the current snapshot (never NULL after install). */
struct config *config_current(void);

/* Drop the current snapshot at shutdown. */
void	config_shutdown(void);

/* Parse "N/PERIOD" (N may end in K, M or G: 2^10, 2^20, 2^30; PERIOD = [K]U, U one of s m h d, at most 30 days). */
bool	config_parse_limit(const char *text, struct rate_limit *out);

/* Name of an enum word, for logs. */
const char *config_on_error_name(enum on_error value);
const char *config_engine_name(enum engine_kind value);

#endif
