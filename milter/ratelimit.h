/*
 * ratelimit.h - sliding-window rate limits over a counter store: window
 * arithmetic, counter keys, class matching, and charge-first
 * admission.  check_ratelimit.c decides which rules apply when; this
 * module counts.
 *
 * Windows.  A limit "N/PERIOD" counts in fixed windows of PERIOD seconds
 * of wall-clock time (window = floor(unix_ms / (PERIOD * 1000)), the same
 * on every host of a fleet).  An event is admitted when
 *
 *     current + previous * (PERIOD - elapsed) / PERIOD  <=  N
 *
 * where current counts this window (the event included), previous the
 * window before, and elapsed the time since this window began: the
 * previous window weighs what still overlaps a sliding PERIOD, so there is
 * no burst of 2N across a window edge.  Admission charges first: the
 * counter is incremented (atomic create-or-increment), and when the result
 * is over any of the rule's limits every counter the event incremented is
 * decremented again.  So a burst of N+k on a fresh key admits exactly N,
 * however many hosts and threads take part, and a refused event is never
 * charged.
 *
 * Keys.  A counter's key is
 *
 *     PREFIX RULE ":" PERIOD ":" WINDOW ":" DIGEST
 *
 * e.g. "mxgate:client:60:29561234:" followed by 64 hex digits: PREFIX is
 * memcached.key_prefix, RULE the rule's name, PERIOD the window's length in
 * seconds, WINDOW its number, and DIGEST the lower-case hex SHA-256 of the
 * key value, so no byte a client sent ever reaches the memcached protocol.
 * The key value (check_ratelimit.c builds it) is, for each part of the rule's `key` in the order
 * client_ip, sender, sender_domain, sasl_user, recipient, recipient_domain,
 * helo: NAME ":" LENGTH ":" VALUE (LENGTH in decimal bytes).  Values are
 * normalised so that trivial variations share a counter: addresses lose
 * one pair of enclosing <>, and addresses, domains, SASL user names and
 * HELO names are lower-cased (ASCII); client_ip is the client's network
 * after prefix grouping, "ADDRESS/PREFIX" (e.g. "192.0.2.7/32",
 * "2001:db8:1:2::/64").  In replies and logs the key is shown as the values
 * joined with ",", a full-length client address without its "/PREFIX".
 *
 * Distinct values.  A count = "distinct" rule's counter (the key above)
 * counts the different values of its distinct field.  For each window, a
 * value has a marker
 *
 *     PREFIX RULE "/v:" PERIOD ":" WINDOW ":" VALUE-DIGEST
 *
 * where VALUE-DIGEST is the hex SHA-256 of the key value's digest and the
 * value's "NAME:LENGTH:VALUE" (check_ratelimit.c), living until its window
 * ends.  An event adds the marker (atomic: memcached's add, or the
 * in-process store's); only the event whose add created it increments the
 * counter and is checked against the limits.  A value whose marker was
 * there already passes without being counted again (for a rule with
 * keep_over, hold and warn, it is over while the count is: one read).  A
 * new value over the limit is refused, and its count and marker taken
 * back.
 *
 * Thread-safety: the functions without a store are pure.  The stores are
 * process-wide, set up by ratelimit_start() before milter_run(), replaced
 * on reload when the memcached settings change (a store in use stays alive
 * until its last user is done), and freed by ratelimit_stop().  The
 * in-process store lives from start to stop, so its counters survive
 * reloads.
 */
#ifndef MXGATE_RATELIMIT_H
#define MXGATE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "config.h"

#define RATELIMIT_DIGEST_SIZE 32
/* A key value's text: up to six parts of an RFC 5321 path each (check_ratelimit.c asserts it). */
#define RATELIMIT_TEXT_MAX (6 * 1024)

/* Events charged to one rule's counters, to give back if they are not kept. */
struct rate_charge {
	uint64_t time_ms;		/* when charged: gives each window */
	uint64_t count;			/* charged to these counters: events, or bytes */
	uint16_t rule;			/* index in cfg->ratelimit.rules */
	int16_t class_index;		/* -1: the rule's own limits */
	bool local;			/* in the in-process store (on_error = "local") */
	uint8_t digest[RATELIMIT_DIGEST_SIZE];	/* of the key value */
};

/* Where "now" falls among the windows of one period. */
struct rate_window {
	uint64_t index;	     /* window number */
	uint64_t elapsed_ms; /* since it began, < period_ms */
	uint64_t period_ms;
};

/* The value a rule counts by: digest for the counter key, text for people. */
struct rate_value {
	uint8_t digest[RATELIMIT_DIGEST_SIZE];
	size_t len;
	char text[RATELIMIT_TEXT_MAX]; /* may hold any byte but NUL */
};

enum rate_outcome {
	RATE_ADMIT, /* charged */
	RATE_OVER,  /* over a limit: not charged (unless keep_over) */
	RATE_ERROR, /* the store could not answer; nothing charged */
};

/* The window of period seconds that now_ms (Unix time) falls in. */
void ratelimit_window(uint64_t now_ms, unsigned long period, struct rate_window *w);

/* True when current + the overlapping part of previous is within limit. */
bool ratelimit_within(uint64_t current, uint64_t previous, const struct rate_window *w,
		      unsigned long limit);

/* current + previous weighted by overlap, rounded down (for logs and tests). */
uint64_t ratelimit_estimate(uint64_t current, uint64_t previous, const struct rate_window *w);

/* Seconds a window's counter must live: until its successor has ended. */
unsigned ratelimit_ttl(const struct rate_window *w);

/* Seconds a distinct value's marker must live: until its own window has ended. */
unsigned ratelimit_marker_ttl(const struct rate_window *w);

/*
 * Group addr by prefix (ipv4_prefix or ipv6_prefix as its family says):
 * *out is the network; text (INET6_ADDRSTRLEN + 4 bytes at least) is
 * "NETWORK/PREFIX".  Returns the prefix length used.
 */
unsigned ratelimit_group(const struct ipaddr *addr, unsigned ipv4_prefix, unsigned ipv6_prefix,
			 struct ipaddr *out, char *text, size_t size);

/*
 * The counter key for one window into buf: "PREFIX RULE:PERIOD:WINDOW:HEX".
 * Returns its length, or 0 when it would not fit in size.
 */
size_t ratelimit_key_name(char *buf, size_t size, const char *prefix, const char *rule,
			  unsigned long period, uint64_t window,
			  const uint8_t digest[RATELIMIT_DIGEST_SIZE]);

/*
 * A distinct value's marker for one window into buf:
 * "PREFIX RULE/v:PERIOD:WINDOW:HEX" (HEX: of value).  Its length, or 0 when
 * it would not fit in size.
 */
size_t ratelimit_marker_name(char *buf, size_t size, const char *prefix, const char *rule,
			     unsigned long period, uint64_t window,
			     const uint8_t value[RATELIMIT_DIGEST_SIZE]);

/*
 * The limits for key: those of the first class whose match fits (a CIDR
 * against the client address, else a glob against the key text, case
 * ignored), else the rule's own.  *class_index is the class, or -1.
 * A result with count 0 means unlimited.
 */
const struct rate_limits *ratelimit_limits(const struct rate_rule *rule,
					   const struct rate_value *key,
					   const struct ipaddr *client, int *class_index);

/* The limits a recorded charge was made under. */
const struct rate_limits *ratelimit_charge_limits(const struct config *cfg,
						  const struct rate_charge *c);

/* Create the process-wide stores; false (logged) when mxgate cannot count. */
bool ratelimit_start(const struct config *cfg);

/* A new configuration: a new memcached store if servers or timeout changed. */
void ratelimit_reload(const struct config *cfg);

/* Free the stores (no session may be running). */
void ratelimit_stop(void);

/*
 * Charge one event, counting amount (1, or a count = "bytes" rule's
 * bytes), to every window of limits for rule number rule_index of cfg, at
 * now_ms (Unix time).  On RATE_ADMIT, *charge records what to
 * give back.  On RATE_OVER, *over is the limit that did not hold, and
 * nothing stays charged unless keep_over (an event that is let through
 * anyway, for hold and warn: then *charge is filled as for RATE_ADMIT).
 * A store failure under on_error = "local" charges the in-process store
 * instead; RATE_ERROR only when no store could count.
 */
enum rate_outcome ratelimit_charge(const struct config *cfg, size_t rule_index,
				   const struct rate_limits *limits, int class_index,
				   const struct rate_value *key, uint64_t amount, uint64_t now_ms,
				   bool keep_over, struct rate_charge *charge,
				   const struct rate_limit **over);

/*
 * count = "distinct": the value (value: its digest, see "Distinct values")
 * shown by key, at now_ms.  RATE_ADMIT both for a new value, counted, and
 * for one counted already in every window.  RATE_OVER when a new value
 * takes the key over a limit (*over): then nothing stays counted unless
 * keep_over.  Nothing is recorded to give back: a value that was counted
 * stays counted for its window.  Stores as for ratelimit_charge().
 */
enum rate_outcome ratelimit_charge_distinct(const struct config *cfg, size_t rule_index,
					    const struct rate_limits *limits,
					    const struct rate_value *key,
					    const uint8_t value[RATELIMIT_DIGEST_SIZE],
					    uint64_t now_ms, bool keep_over,
					    const struct rate_limit **over);

/* Give a recorded charge back to its counters (failures are logged at debug level). */
void ratelimit_give_back(const struct config *cfg, const struct rate_charge *charge);

/* The count a counter key holds (local: the in-process store); false on error. */
bool ratelimit_peek(const char *counter_key, bool local, uint64_t *value);

/*
 * Delete a counter key (local: in the in-process store, else where
 * ratelimit_peek() reads), and any count of it ratelimit.c keeps as a
 * finished window's; *deleted is true when the store held it.  False on
 * a store error.  For mxgatectl ratelimit reset.
 */
bool ratelimit_delete(const char *counter_key, bool local, bool *deleted);

/* Unix time in milliseconds. */
uint64_t ratelimit_now_ms(void);

#define RATELIMIT_STATUS_SERVERS 16	/* memcached servers a status lists */

/* What the stores are doing, for the control socket's status. */
struct ratelimit_status {
	size_t nservers;		/* memcached servers (0: counters in process) */
	struct {
		char name[128];		/* "host:port", as stats.h names its slot */
		bool breaker_open;
	} servers[RATELIMIT_STATUS_SERVERS];
	bool counting_locally;		/* on_error = "local" is in effect */
	size_t local_entries;		/* in-process counters */
	size_t cached_windows;		/* finished windows' counts kept from memcached */
};

/* Fill out (zeroes before ratelimit_start and after ratelimit_stop). */
void ratelimit_status(struct ratelimit_status *out);

#endif
