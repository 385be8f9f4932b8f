/*
 * fixture.h - temporary directory trees for the unit tests and benchmarks.
 */
#ifndef MXGATE_TEST_FIXTURE_H
#define MXGATE_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

/* Create $TMPDIR/NAME.XXXXXX (default /tmp) into buf; false on failure. */
bool	fixture_mkdtemp(char *buf, size_t size, const char *name);

/* Remove a tree, never following symbolic links; 0 on success. */
int	fixture_rmtree(const char *path);

#endif
