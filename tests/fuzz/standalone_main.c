/*
 * standalone_main.c - replay a fuzz corpus without libFuzzer.
 *
 * Linked with a fuzz target built by an ordinary compiler, it runs
 * LLVMFuzzerTestOneInput() once on each file named on the command line,
 * descending one level into directories, and prints TAP: "ok N - FILE"
 * per input and the plan at the end.  Without arguments it runs the
 * directory CORPUS_DIR, if the build defines it (as automake's test
 * harness runs a test program without arguments).  An input that crashes or fails an
 * assertion aborts the run, which the TAP driver reports.  A file that
 * cannot be read is "not ok".  Exit status 0 only if every file was run.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int tests, failures;

/* Read a whole file into a heap buffer of exactly its size (ASan-friendly). */
static uint8_t *
read_file(const char *path, size_t *size)
{
	FILE   *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	long	n;

	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0) {
		buf = malloc(n > 0 ? (size_t)n : 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*size = (size_t)n;
	}
	fclose(fp);
	return buf;
}

/* Run the target on one file and print its TAP line. */
static void
run_file(const char *path)
{
	size_t	size = 0;
	uint8_t *buf = read_file(path, &size);

	tests++;
	if (buf == NULL) {
		failures++;
		printf("not ok %d - %s (cannot read)\n", tests, path);
		return;
	}
	fflush(stdout);		/* keep earlier lines if the target aborts */
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	printf("ok %d - %s\n", tests, path);
}

/* Compare two directory entries by name, for a stable order. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file in dir, in name order. */
static void
run_dir(const char *dir)
{
	DIR    *dp = opendir(dir);
	struct dirent *de;
	char  **names = NULL;
	size_t	n = 0, i;

	if (dp == NULL) {
		tests++;
		failures++;
		printf("not ok %d - %s (cannot open)\n", tests, dir);
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		char  **grown;

		if (de->d_name[0] == '.')
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (grown == NULL)
			abort();
		names = grown;
		if ((names[n] = malloc(strlen(dir) + strlen(de->d_name) + 2)) == NULL)
			abort();
		sprintf(names[n], "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(dp);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			run_file(names[i]);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	int	i;

#ifdef CORPUS_DIR
	/* Built as a test program: with no argument, its own seed corpus. */
	if (argc < 2)
		run_dir(CORPUS_DIR);
#endif
	for (i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			run_dir(argv[i]);
		else
			run_file(argv[i]);
	}
	printf("1..%d\n", tests);
	return failures == 0 && tests > 0 ? 0 : 1;
}
