/*
 * milter_libmilter.c - engine.h over Sendmail's libmilter, the default
 * run-time: smfi_register with xxfi_negotiate, smfi_setconn and
 * smfi_opensocket, smfi_main.
 *
 * What this file adds to libmilter, so that both engines behave alike:
 *   - a small record per connection as libmilter's private pointer: the
 *     filter's own pointer, and the steps negotiated as no-reply, for which
 *     a callback's answer becomes SMFIS_NOREPLY (libmilter logs "milter
 *     claimed not to reply" on every session otherwise);
 *   - a count of the callbacks in flight: smfi_main() returns when the
 *     listener stops, while its worker threads may still be in a callback
 *     or start one for a connection still open.  milter_run() returns only
 *     once none runs, and from then on a callback does nothing (the MTA
 *     gets a temporary failure), so main() can tear down what they use;
 *   - a guard around smfi_getsymval(): it steps through a macro list two
 *     entries at a time and reads past the end of a list with an odd
 *     number of strings, which only a broken or hostile MTA sends.  A fault
 *     there is caught (SIGSEGV, on the thread that faulted), the macro
 *     reads as absent and the step gets a temporary failure.
 * Stop signals (SIGTERM, SIGHUP: stop; SIGINT: abort the open sessions)
 * are libmilter's own signal thread's; mxgate starts no second one.
 *
 * Thread-safety: the in-flight count is atomic; the guard's state is
 * per thread; a connection's record is touched by its callbacks only,
 * which libmilter runs one at a time.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* libmilter's private pointer: one per connection. */
struct lm_conn {
	void   *priv;			/* the filter's */
	unsigned long steps;		/* SMFIP_* agreed with the MTA */
	bool	macro_fault;		/* smfi_getsymval() faulted in this callback */
};

static const struct milter_callbacks *lm_cb;
static atomic_uint lm_inflight;
static atomic_bool lm_stopping;
static pthread_mutex_t lm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t lm_idle = PTHREAD_COND_INITIALIZER;

/* ---- the guard around smfi_getsymval ----------------------------------- */

static _Thread_local sigjmp_buf *lm_guard;
static struct sigaction lm_old_segv, lm_old_bus;

static void
lm_fault(int sig, siginfo_t *info, void *uc)
{
	const struct sigaction *old = sig == SIGSEGV ? &lm_old_segv : &lm_old_bus;

	if (lm_guard != NULL)
		siglongjmp(*lm_guard, 1);
	/* Not ours: what was there before (a sanitizer's report, or death). */
	if (old->sa_flags & SA_SIGINFO)
		old->sa_sigaction(sig, info, uc);
	else if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL)
		old->sa_handler(sig);
	else {
		signal(sig, SIG_DFL);
		raise(sig);
	}
}

static void
lm_guard_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = lm_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;	/* left by siglongjmp: not blocked after */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &lm_old_segv);
	sigaction(SIGBUS, &sa, &lm_old_bus);
}

/* ---- what callbacks call ---------------------------------------------- */

static SMFICTX *
ctx_of(const struct milter_conn *c)
{
	return (SMFICTX *)(uintptr_t)c;
}

static struct lm_conn *
conn_of(const struct milter_conn *c)
{
	return smfi_getpriv(ctx_of(c));
}

static void *
lm_getpriv(const struct milter_conn *c)
{
	struct lm_conn *w = conn_of(c);

	return w ? w->priv : NULL;
}

static void
lm_setpriv(struct milter_conn *c, void *priv)
{
	struct lm_conn *w = conn_of(c);

	/* Callbacks run only after lm_enter() made the record. */
	if (w != NULL)
		w->priv = priv;
}

static const char *
lm_getsymval(const struct milter_conn *c, const char *name)
{
	struct lm_conn *w = conn_of(c);
	sigjmp_buf env;
	const char *volatile value = NULL;

	if (sigsetjmp(env, 0) == 0) {
		lm_guard = &env;
		value = smfi_getsymval(ctx_of(c), (char *)name);
	} else {
		sigset_t faults;

		/* Left by siglongjmp: the signal may still be blocked on this
		 * thread (SA_NODEFER is not honoured where a sanitizer runs the
		 * handler from its own), and a fault while it is blocked kills. */
		sigemptyset(&faults);
		sigaddset(&faults, SIGSEGV);
		sigaddset(&faults, SIGBUS);
		pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
		value = NULL;
		if (w != NULL)
			w->macro_fault = true;
		log_warning("milter protocol: a macro list libmilter cannot read (odd length?); "
			    "temporary failure");
	}
	lm_guard = NULL;
	return value;
}

static int
lm_setsymlist(struct milter_conn *c, int stage, const char *macros)
{
	return smfi_setsymlist(ctx_of(c), stage, (char *)macros) == MI_SUCCESS ? 0 : -1;
}

static int
lm_setreply(struct milter_conn *c, const char *code, const char *dsn, const char *text)
{
	return smfi_setreply(ctx_of(c), (char *)code, (char *)dsn, (char *)text) == MI_SUCCESS ? 0 : -1;
}

static int
lm_quarantine(struct milter_conn *c, const char *reason)
{
	return smfi_quarantine(ctx_of(c), (char *)reason) == MI_SUCCESS ? 0 : -1;
}

static int
lm_addheader(struct milter_conn *c, const char *name, const char *value)
{
	return smfi_addheader(ctx_of(c), (char *)name, (char *)value) == MI_SUCCESS ? 0 : -1;
}

/* ---- callbacks in flight ------------------------------------------------ */

/* After a callback (or instead of one): the last one out wakes lm_run(). */
static void
lm_leave(void)
{
	if (atomic_fetch_sub(&lm_inflight, 1) == 1 && atomic_load(&lm_stopping)) {
		pthread_mutex_lock(&lm_lock);
		pthread_cond_broadcast(&lm_idle);
		pthread_mutex_unlock(&lm_lock);
	}
}

/*
 * Before a callback: false once milter_run() is returning (do nothing);
 * else *w is the connection's record, made on first use (NULL: out of
 * memory, and the step fails).
 */
static bool
lm_enter(SMFICTX *ctx, struct lm_conn **w)
{
	atomic_fetch_add(&lm_inflight, 1);
	if (atomic_load(&lm_stopping)) {
		lm_leave();
		*w = NULL;
		return false;
	}
	if ((*w = smfi_getpriv(ctx)) == NULL && (*w = calloc(1, sizeof(**w))) != NULL)
		smfi_setpriv(ctx, *w);
	return true;
}

/*
 * Before a step that answers the MTA: the connection's record, or NULL
 * (stopping, or no memory for the record: the step is refused) with
 * nothing left to undo.
 */
static struct lm_conn *
lm_begin(SMFICTX *ctx)
{
	struct lm_conn *w;

	if (!lm_enter(ctx, &w))
		return NULL;
	if (w == NULL)
		lm_leave();
	return w;
}

/*
 * A step's answer to libmilter: nothing for a step agreed as no-reply, a
 * temporary failure for one whose macros faulted.
 */
static sfsistat
lm_answer(struct lm_conn *w, unsigned long nr_bit, sfsistat r)
{
	bool	fault = w->macro_fault;

	w->macro_fault = false;
	lm_leave();
	if (nr_bit != 0 && (w->steps & nr_bit))
		return SMFIS_NOREPLY;
	return fault ? SMFIS_TEMPFAIL : r;
}

/* ---- the xxfi_* shells -------------------------------------------------- */

#define CONN(ctx)	((struct milter_conn *)(void *)(ctx))

/* The SMTP steps that hand the filter a string, an argv, or nothing. */
enum lm_step { LM_CONNECT, LM_HELO, LM_ENVFROM, LM_ENVRCPT, LM_DATA, LM_HEADER, LM_BODY, LM_EOM };

/* What libmilter handed a step's shell. */
struct lm_args {
	const char *s;			/* connect: the host name; helo: the name; header: its name */
	const struct sockaddr *addr;	/* connect */
	char  **argv;			/* envfrom, envrcpt */
	const char *value;		/* header */
	const unsigned char *chunk;	/* body */
	size_t	len;
};

/* The filter's callback for step, SMFIS_CONTINUE when it has none. */
static sfsistat
lm_call(struct milter_conn *c, enum lm_step step, const struct lm_args *a)
{
	const struct milter_callbacks *cb = lm_cb;

	switch (step) {
	case LM_CONNECT:
		return cb->connect ? cb->connect(c, a->s, a->addr) : SMFIS_CONTINUE;
	case LM_HELO:
		return cb->helo ? cb->helo(c, a->s) : SMFIS_CONTINUE;
	case LM_ENVFROM:
		return cb->envfrom ? cb->envfrom(c, a->argv) : SMFIS_CONTINUE;
	case LM_ENVRCPT:
		return cb->envrcpt ? cb->envrcpt(c, a->argv) : SMFIS_CONTINUE;
	case LM_DATA:
		return cb->data ? cb->data(c) : SMFIS_CONTINUE;
	case LM_HEADER:
		return cb->header ? cb->header(c, a->s, a->value) : SMFIS_CONTINUE;
	case LM_BODY:
		return cb->body ? cb->body(c, a->chunk, a->len) : SMFIS_CONTINUE;
	case LM_EOM:
		return cb->eom ? cb->eom(c) : SMFIS_CONTINUE;
	}
	assert(!"unknown step");
	return SMFIS_TEMPFAIL;
}

/*
 * Every shell of a step that answers: the record, the callback, the answer
 * (with the SMFIP_NR_* bit that waives it; EOM always has one).
 */
static sfsistat
lm_step(SMFICTX *ctx, enum lm_step step, struct lm_args a)
{
	static const unsigned long nr_bit[] = {
		[LM_CONNECT] = SMFIP_NR_CONN, [LM_HELO] = SMFIP_NR_HELO, [LM_ENVFROM] = SMFIP_NR_MAIL,
		[LM_ENVRCPT] = SMFIP_NR_RCPT, [LM_DATA] = SMFIP_NR_DATA, [LM_HEADER] = SMFIP_NR_HDR,
		[LM_BODY] = SMFIP_NR_BODY, [LM_EOM] = 0,
	};
	struct lm_conn *w = lm_begin(ctx);

	if (w == NULL)
		return SMFIS_TEMPFAIL;
	return lm_answer(w, nr_bit[step], lm_call(CONN(ctx), step, &a));
}

static sfsistat
xx_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
	     unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct lm_conn *w = lm_begin(ctx);
	unsigned long actions = 0, steps = 0;
	sfsistat r = SMFIS_CONTINUE;

	(void)f2, (void)f3;
	if (w == NULL)
		return SMFIS_REJECT;
	if (lm_cb->negotiate != NULL)
		r = lm_cb->negotiate(CONN(ctx), f0, f1, &actions, &steps);
	*pf0 = actions & f0;
	*pf1 = steps & f1;
	*pf2 = *pf3 = 0;
	w->steps = *pf1;
	return lm_answer(w, 0, r);
}

static sfsistat
xx_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	return lm_step(ctx, LM_CONNECT, (struct lm_args){.s = hostname, .addr = addr});
}

static sfsistat
xx_helo(SMFICTX *ctx, char *name)
{
	return lm_step(ctx, LM_HELO, (struct lm_args){.s = name});
}

static sfsistat
xx_envfrom(SMFICTX *ctx, char **argv)
{
	return lm_step(ctx, LM_ENVFROM, (struct lm_args){.argv = argv});
}

static sfsistat
xx_envrcpt(SMFICTX *ctx, char **argv)
{
	return lm_step(ctx, LM_ENVRCPT, (struct lm_args){.argv = argv});
}

static sfsistat
xx_data(SMFICTX *ctx)
{
	return lm_step(ctx, LM_DATA, (struct lm_args){.s = NULL});
}

static sfsistat
xx_header(SMFICTX *ctx, char *name, char *value)
{
	return lm_step(ctx, LM_HEADER, (struct lm_args){.s = name, .value = value});
}

static sfsistat
xx_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	return lm_step(ctx, LM_BODY, (struct lm_args){.chunk = chunk, .len = len});
}

static sfsistat
xx_eom(SMFICTX *ctx)
{
	return lm_step(ctx, LM_EOM, (struct lm_args){.s = NULL});
}

/* Abort and close answer nothing; without a record there is nothing to end. */
static sfsistat
xx_abort(SMFICTX *ctx)
{
	struct lm_conn *w;

	if (!lm_enter(ctx, &w))
		return SMFIS_CONTINUE;
	if (w != NULL && lm_cb->abort != NULL)
		lm_cb->abort(CONN(ctx));
	lm_leave();
	return SMFIS_CONTINUE;
}

static sfsistat
xx_close(SMFICTX *ctx)
{
	struct lm_conn *w;

	if (!lm_enter(ctx, &w))
		return SMFIS_CONTINUE;
	if (w != NULL) {
		if (lm_cb->close != NULL)
			lm_cb->close(CONN(ctx));
		smfi_setpriv(ctx, NULL);
		free(w);
	}
	lm_leave();
	return SMFIS_CONTINUE;
}

/* In smfiDesc's order, as libmilter's own sample filter writes it. */
static struct smfiDesc lm_desc = {
	"mxgate",			/* filter name */
	SMFI_VERSION,			/* version code */
	SMFIF_ADDHDRS | SMFIF_QUARANTINE, /* actions it may take */
	xx_connect,			/* connection info */
	xx_helo,			/* SMTP HELO */
	xx_envfrom,			/* envelope sender */
	xx_envrcpt,			/* envelope recipient */
	xx_header,			/* header: only when negotiated */
	NULL,				/* end of header: not used */
	xx_body,			/* body block: only when negotiated */
	xx_eom,				/* end of message */
	xx_abort,			/* message aborted */
	xx_close,			/* connection cleanup */
	NULL,				/* unknown SMTP command: not used */
	xx_data,			/* DATA */
	xx_negotiate,			/* option negotiation */
};

/* ---- listening and running ---------------------------------------------- */

static int
lm_listen(const struct milter_socket *sock)
{
	char	spec[MILTER_SOCKET_PATH_MAX + MILTER_SOCKET_HOST_MAX + 16];

	if (sock->family == MILTER_SOCKET_UNIX && milter_socket_unix_claim(sock->path) != 0)
		return -1;
	milter_socket_format(sock, spec, sizeof(spec));
	if (smfi_setconn(spec) != MI_SUCCESS || smfi_register(lm_desc) != MI_SUCCESS ||
	    smfi_setbacklog(SOMAXCONN) != MI_SUCCESS) {
		log_error("libmilter refused the milter socket %s", spec);
		return -1;
	}
	/* A stale unix socket is gone already, a busy one refused above. */
	if (smfi_opensocket(false) != MI_SUCCESS) {
		log_error("milter socket %s: libmilter cannot open it", spec);
		return -1;
	}
	return 0;
}

static int
lm_run(const struct milter_callbacks *cb, unsigned idle_timeout)
{
	int	r;

	lm_cb = cb;
	lm_guard_install();
	smfi_settimeout((int)idle_timeout);
	r = smfi_main();
	/* No callback from here on; wait for those still running. */
	pthread_mutex_lock(&lm_lock);
	atomic_store(&lm_stopping, true);
	while (atomic_load(&lm_inflight) > 0) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&lm_idle, &lm_lock, &until);
	}
	pthread_mutex_unlock(&lm_lock);
	return r == MI_SUCCESS ? 0 : -1;
}

static void
lm_stop(void)
{
	smfi_stop();
}

const struct milter_engine milter_engine_libmilter = {
	.name = "libmilter",
	.conn = {lm_getpriv, lm_setpriv, lm_getsymval},
	.mta = {lm_setsymlist, lm_setreply, lm_quarantine, lm_addheader},
	.serve = {.listen = lm_listen, .run = lm_run, .stop = lm_stop, .own_stop_signals = true},
};
