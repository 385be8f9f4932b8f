/*
 * fixture.c - temporary directory trees for the unit tests and benchmarks.
 */
#include "fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

bool
fixture_mkdtemp(char *buf, size_t size, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	int	n = snprintf(buf, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);

	return n > 0 && (size_t)n < size && mkdtemp(buf) != NULL;
}

/* nftw callback: remove one entry (children come first with FTW_DEPTH). */
static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
fixture_rmtree(const char *path)
{
	return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
