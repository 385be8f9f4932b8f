/*
 * milter_engine.c - the engine.h functions, passed on to the engine in use.
 *
 * One indirect call per function: the callbacks above do not know which
 * run-time serves them.  The pointer is set once, before any connection.
 */
#include "engine.h"

static const struct milter_engine *current = &milter_engine_builtin;

void
milter_use(const struct milter_engine *engine)
{
	current = engine;
}

const struct milter_engine *
milter_current(void)
{
	return current;
}

void   *
milter_getpriv(const struct milter_conn *c)
{
	return current->conn.getpriv(c);
}

void
milter_setpriv(struct milter_conn *c, void *priv)
{
	current->conn.setpriv(c, priv);
}

const char *
milter_getsymval(const struct milter_conn *c, const char *name)
{
	return current->conn.getsymval(c, name);
}

int
milter_setsymlist(struct milter_conn *c, int stage, const char *macros)
{
	return current->mta.setsymlist(c, stage, macros);
}

int
milter_setreply(struct milter_conn *c, const char *code, const char *dsn, const char *text)
{
	return current->mta.setreply(c, code, dsn, text);
}

int
milter_quarantine(struct milter_conn *c, const char *reason)
{
	return current->mta.quarantine(c, reason);
}

int
milter_addheader(struct milter_conn *c, const char *name, const char *value)
{
	return current->mta.addheader(c, name, value);
}

int
milter_listen(const struct milter_socket *sock)
{
	return current->serve.listen(sock);
}

int
milter_run(const struct milter_callbacks *cb, unsigned idle_timeout)
{
	return current->serve.run(cb, idle_timeout);
}

void
milter_stop(void)
{
	current->serve.stop();
}
