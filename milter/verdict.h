/*
 * verdict.h - what a check decided.
 *
 * A check says one of: no opinion, refuse (with the reply it built), or
 * "could not look" (a backend error).  It never chooses what a backend
 * error means for the mail: policy.c does, from the check's on_error.
 * A check that ran out of memory says VERDICT_ERROR with out_of_memory:
 * that is a temporary failure for the session whatever on_error says
 * (mxgate's worst outcome is a 4xx, and "accept" is for a dead server,
 * not for a check that could not run).
 * hold and warn are refusals that the MTA is told about at end of message
 * instead of at the command.
 */
#ifndef MXGATE_VERDICT_H
#define MXGATE_VERDICT_H

#include <stdbool.h>

#include "reply.h"

enum verdict_kind {
	VERDICT_DUNNO = 0,		/* no opinion: the next check decides */
	VERDICT_REFUSE,			/* reply.code says 4xx or 5xx */
	VERDICT_ERROR,			/* backend failed; subject names what */
	VERDICT_HOLD,			/* accept, quarantine at end of message */
	VERDICT_WARN,			/* accept, add a header at end of message */
};

#define VERDICT_SUBJECT_MAX 512

struct verdict {
	enum verdict_kind kind;
	const char *check;		/* "helo", "quota", ... (static) */
	struct reply reply;		/* VERDICT_REFUSE */
	char	subject[VERDICT_SUBJECT_MAX];	/* VERDICT_ERROR, HOLD, WARN: what it is about */
	bool	out_of_memory;		/* VERDICT_ERROR: always a tempfail */
};

#endif
