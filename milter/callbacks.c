/*
 * callbacks.c - the only file that knows the milter protocol's steps: thin
 * shells around session.c and policy.c, called by either engine (engine.h).
 *
 * Negotiation asks the MTA for as little as the checks need: no unknown
 * commands; headers and body only when a check needs the real size of a
 * message sent without SIZE= (checks_want_message_size()), and then with
 * no reply to each; no reply at connect and HELO (mxgate decides there but
 * speaks at MAIL/RCPT); macros only where they are read.  At DATA a message
 * with nothing left to do is accepted, so the MTA sends no more events for
 * it (no header or body events either, and the TCP delayed-ACK stall
 * doc/PERFORMANCE.md describes never starts).  Thread-safety: all state is in the session on the context.
 */
#include "callbacks.h"

#include <string.h>

#include "config.h"
#include "engine.h"
#include "log.h"
#include "policy.h"
#include "session.h"

/*
 * Macros each stage reads: {daemon_name} for helo.exempt_daemons, and
 * {daemon_addr} and {if_addr} (Sendmail's address of the interface, where
 * its {daemon_addr} is the listener's, maybe 0.0.0.0) for
 * helo.reject_own_names (each asked for only when its list is not empty),
 * {auth_authen} for exemptions, {i}
 * for logs.  Every macro packet costs both sides a read and a poll, so the
 * other stages ask for NO_MACROS, a name no MTA defines: Postfix reads an
 * empty list as "my defaults" (milter_connect_macros and the like, 0.15 ms
 * of CPU per message for macros nobody reads).  {i}, the queue ID, is
 * asked for at MAIL and at RCPT: Sendmail has it at MAIL, Postfix never
 * (it opens the queue file after the milter's MAIL event), but at RCPT once
 * the file is open: for every RCPT with smtpd_delay_open_until_valid_rcpt
 * = no, for those after the first accepted one by default.  Postfix sends
 * no macro packet while it has no value, so an RCPT costs a packet only
 * once there is a queue ID to log.
 */
#define NO_MACROS "{mxgate_none}"

static const struct {
	int	stage;
	const char *macros;
} symlists[] = {
	{SMFIM_CONNECT, NO_MACROS},
	{SMFIM_HELO, NO_MACROS},
	{SMFIM_ENVFROM, "{auth_authen} {i}"},
	{SMFIM_ENVRCPT, "{i}"},
	{SMFIM_DATA, NO_MACROS},
	{SMFIM_EOM, NO_MACROS},
};

/* Protocol steps mxgate never needs (headers and body: unless it counts sizes), and replies it never gives. */
#define WANT_NO_STEPS	(SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN)
#define SIZE_STEPS	(SMFIP_NOHDRS | SMFIP_NOBODY)
#define WANT_NO_REPLIES	(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_EOH | \
			 SMFIP_NR_BODY | SMFIP_NR_UNKN)
#define WANT_ACTIONS	(SMFIF_ADDHDRS | SMFIF_QUARANTINE)

static struct session *
ctx_session(struct milter_conn *ctx)
{
	return milter_getpriv(ctx);
}

/* A printable copy of a macro's value ("" when the MTA did not send it). */
static void
get_macro(struct milter_conn *ctx, const char *name, char *buf, size_t size)
{
	const char *value = milter_getsymval(ctx, name);

	reply_printable(buf, size, value ? value : "", value ? strlen(value) : 0);
}

/* The session of ctx, opened on first use with the current configuration. */
static struct session *
session_of(struct milter_conn *ctx)
{
	struct session *s = ctx_session(ctx);

	if (s == NULL) {
		if ((s = policy_session_open(config_current())) == NULL)
			return NULL;
		milter_setpriv(ctx, s);
	}
	return s;
}

/* The connect stage's macros: those the HELO rules read, or none. */
static const char *
connect_macros(const struct config *cfg, const char *none)
{
	bool	daemon = cfg->helo.exempt_daemons.count > 0;
	bool	own = cfg->helo.reject_own_names.count > 0;

	if (daemon && own)
		return "{daemon_name} {daemon_addr} {if_addr}";
	return daemon ? "{daemon_name}" : own ? "{daemon_addr} {if_addr}" : none;
}

static sfsistat
mx_negotiate(struct milter_conn *ctx, unsigned long actions, unsigned long steps,
	     unsigned long *want_actions, unsigned long *want_steps)
{
	struct session *s = session_of(ctx);

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	*want_actions = actions & WANT_ACTIONS;
	*want_steps = steps & (WANT_NO_STEPS | WANT_NO_REPLIES);
	if (checks_want_message_size(s->cfg))
		*want_steps &= ~(unsigned long)SIZE_STEPS;
	if (actions & SMFIF_SETSYMLIST) {
		*want_actions |= SMFIF_SETSYMLIST;
		for (size_t i = 0; i < sizeof(symlists) / sizeof(symlists[0]); i++) {
			const char *macros = symlists[i].macros;

			if (symlists[i].stage == SMFIM_CONNECT)
				macros = connect_macros(s->cfg, macros);
			if (milter_setsymlist(ctx, symlists[i].stage, macros) != 0)
				log_warning("out of memory for the macro list of stage %d", symlists[i].stage);
		}
	}
	return SMFIS_CONTINUE;
}

static sfsistat
mx_connect(struct milter_conn *ctx, const char *hostname, const struct sockaddr *hostaddr)
{
	struct session *s = session_of(ctx);

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	session_set_client(s, hostname, hostaddr);
	get_macro(ctx, "{daemon_name}", s->daemon_name, sizeof(s->daemon_name));
	if (s->cfg->helo.reject_own_names.count > 0)
		session_set_server(s, milter_getsymval(ctx, "{daemon_addr}"),
				   milter_getsymval(ctx, "{if_addr}"));
	return SMFIS_CONTINUE;
}

static sfsistat
mx_helo(struct milter_conn *ctx, const char *name)
{
	struct session *s = session_of(ctx);

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	session_set_helo(s, name ? name : "");
	return SMFIS_CONTINUE;
}

/* Give the MTA a refusal; SMFIS_CONTINUE for anything else (policy.c kept a hold or warning). */
static sfsistat
apply_verdict(struct milter_conn *ctx, const struct verdict *v)
{
	char	text[REPLY_MAX * 2];

	if (v->kind != VERDICT_REFUSE)
		return SMFIS_CONTINUE;
	reply_escaped(&v->reply, text, sizeof(text));
	if (milter_setreply(ctx, v->reply.code, v->reply.dsn, text) != 0)
		log_warning("invalid reply \"%s %s %s\"", v->reply.code, v->reply.dsn, v->reply.text);
	return v->reply.code[0] == '4' ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

static sfsistat
mx_envfrom(struct milter_conn *ctx, char **argv)
{
	struct session *s = session_of(ctx);
	struct verdict v;

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	policy_transaction_end(s, false);
	session_begin_transaction(s, argv);
	get_macro(ctx, "{auth_authen}", s->tx.auth_user, sizeof(s->tx.auth_user));
	get_macro(ctx, "{i}", s->tx.queue_id, sizeof(s->tx.queue_id));
	policy_run(s, STAGE_MAIL, &v);
	return apply_verdict(ctx, &v);
}

static sfsistat
mx_envrcpt(struct milter_conn *ctx, char **argv)
{
	struct session *s = session_of(ctx);
	struct verdict v;
	sfsistat r;

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	session_set_rcpt(s, argv[0]);
	if (s->tx.queue_id[0] == '\0')
		get_macro(ctx, "{i}", s->tx.queue_id, sizeof(s->tx.queue_id));
	policy_run(s, STAGE_RCPT, &v);
	r = apply_verdict(ctx, &v);
	if (r == SMFIS_CONTINUE)
		s->tx.rcpts_accepted++;
	return r;
}

static sfsistat
mx_data(struct milter_conn *ctx)
{
	struct session *s = session_of(ctx);

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	/* Nothing left to decide: spare the MTA the rest of the message. */
	if (s->tx.needs_eom)
		return SMFIS_CONTINUE;
	policy_transaction_end(s, true);
	return SMFIS_ACCEPT;
}

/* "NAME: VALUE" CRLF, as the message carries it: only the size is kept. */
static sfsistat
mx_header(struct milter_conn *ctx, const char *name, const char *value)
{
	struct session *s = ctx_session(ctx);

	if (s != NULL)
		s->tx.message_size += strlen(name) + 2 + strlen(value) + 2;
	return SMFIS_CONTINUE;
}

static sfsistat
mx_body(struct milter_conn *ctx, const unsigned char *chunk, size_t len)
{
	struct session *s = ctx_session(ctx);

	(void)chunk;
	if (s != NULL)
		s->tx.message_size += len;
	return SMFIS_CONTINUE;
}

/* The checks that waited for the real size judge it; a refusal ends the transaction. */
static sfsistat
eom_checks(struct milter_conn *ctx, struct session *s)
{
	struct verdict v;
	sfsistat r;

	if (s->tx.message_size > 0)
		s->tx.message_size += 2; /* the empty line after the header */
	policy_run(s, STAGE_EOM, &v);
	r = apply_verdict(ctx, &v);
	if (r != SMFIS_CONTINUE)
		policy_transaction_end(s, false);
	return r;
}

static sfsistat
mx_eom(struct milter_conn *ctx)
{
	struct session *s = ctx_session(ctx);
	sfsistat r;

	/* A size was counted (it may correct a SIZE= charge), or a check waits for it. */
	if (s != NULL && (s->tx.count_size || s->tx.message_size > 0) &&
	    (r = eom_checks(ctx, s)) != SMFIS_CONTINUE)
		return r;
	if (s != NULL && s->tx.hold &&
	    milter_quarantine(ctx, s->tx.hold_reason) != 0)
		log_warning("MTA refused to quarantine the message");
	/* For later filters to score; the text is printable ASCII (check_ratelimit.c). */
	if (s != NULL && s->tx.warning[0] != '\0' &&
	    milter_addheader(ctx, "X-Mxgate-Warning", s->tx.warning) != 0)
		log_warning("MTA refused the X-Mxgate-Warning header");
	if (s != NULL)
		policy_transaction_end(s, true);
	return SMFIS_CONTINUE;
}

static void
mx_abort(struct milter_conn *ctx)
{
	struct session *s = ctx_session(ctx);

	if (s != NULL)
		policy_transaction_end(s, false);
}

static void
mx_close(struct milter_conn *ctx)
{
	struct session *s = ctx_session(ctx);

	milter_setpriv(ctx, NULL);
	if (s != NULL)
		policy_transaction_end(s, false);
	session_close(s);
}

const struct milter_callbacks mxgate_callbacks = {
	.negotiate = mx_negotiate,
	.connect = mx_connect,
	.helo = mx_helo,
	.envfrom = mx_envfrom,
	.envrcpt = mx_envrcpt,
	.data = mx_data,
	.header = mx_header,
	.body = mx_body,
	.eom = mx_eom,
	.abort = mx_abort,
	.close = mx_close,
};
