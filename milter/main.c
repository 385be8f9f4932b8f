/*
 * main.c - options, configuration, privileges, signals, then milter_run.
 *
 * Order matters: the configuration is loaded (and rejected with exit 1)
 * before anything is opened; the engine is chosen (`engine`, libmilter by
 * default); the milter socket is opened as root, then the process
 * detaches, writes its pidfile, opens the control socket (control.c) and
 * drops to `user` (a child forked before the drop keeps root only to
 * remove the pidfile and the sockets at stop: see "Files removed at
 * stop").  The control thread starts once the services run, and stops
 * first once the engine has returned.  The signals mxgate
 * handles are blocked before any thread starts, and each has exactly one
 * thread waiting for it: SIGUSR1 the reload thread; SIGTERM, SIGINT and
 * SIGHUP (stop) libmilter's own signal thread under libmilter, mxgate's
 * stop thread under the builtin engine.  Both end milter_run(), and the
 * same teardown follows.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "callbacks.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "milter_socket.h"
#include "reload.h"
#include "services.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/mxgate.conf"

struct options {
	const char *config_path;	/* NULL: embedded defaults */
	const char *socket;		/* -p, or NULL */
	bool	foreground, test_only;
};

static void
usage(void)
{
	fprintf(stderr, "usage: mxgate [-c FILE] [-p SOCKET] [-f] [-t] [-V]\n");
	exit(1);
}

/* Configuration errors go to stderr before logging is set up. */
static void
report_stderr(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "%s\n", message);
}

/* mxgate's version, and that of the libmilter it runs on by default. */
static void
print_version(void)
{
	unsigned major = 0, minor = 0, patch = 0;

	printf("mxgate %s\n", PACKAGE_VERSION);
	if (smfi_version(&major, &minor, &patch) == MI_SUCCESS)
		printf("libmilter %u.%u.%u\n", major, minor, patch);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
	int	ch;

	memset(opt, 0, sizeof(*opt));
	opt->config_path = DEFAULT_CONFIG;
	while ((ch = getopt(argc, argv, "c:p:ftV")) != -1) {
		switch (ch) {
		case 'c':
			opt->config_path = optarg;
			break;
		case 'p':
			opt->socket = optarg;
			break;
		case 'f':	/* stay attached; log to stderr as well */
			opt->foreground = true;
			break;
		case 't':	/* check the configuration, start nothing */
			opt->test_only = true;
			break;
		case 'V':
			print_version();
			exit(0);
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	/* The default file is optional: without it mxgate runs on its defaults. */
	if (strcmp(opt->config_path, DEFAULT_CONFIG) == 0 && access(DEFAULT_CONFIG, F_OK) != 0)
		opt->config_path = NULL;
}

/* Set before the reload thread is woken for the last time at stop. */
static atomic_bool reload_done;

/*
 * The reload thread: waits for SIGUSR1 and reloads (reload.c, which the
 * control socket's "reload" calls too).  At stop it is woken with a
 * SIGUSR1 of its own and returns; it is never cancelled, since a
 * cancellation in the middle of a reload (file reads are cancellation
 * points) would leave the configuration half-loaded.
 */
static void *
reload_main(void *arg)
{
	sigset_t set;
	int	sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (atomic_load(&reload_done))
			break;
		mxgate_reload(NULL, NULL);
	}
	return NULL;
}

/* The builtin engine's stop thread: SIGTERM, SIGINT or SIGHUP ends milter_run(). */
static void *
stop_main(void *arg)
{
	sigset_t set;
	int	sig;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	while (sigwait(&set, &sig) != 0)
		;
	log_info("signal %d: stopping", sig);
	milter_stop();
	return NULL;
}

/* Detach from the terminal. */
static void
daemonize(void)
{
	pid_t	pid;
	int	fd;

	if ((pid = fork()) < 0) {
		log_error("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if ((pid = fork()) < 0)
		exit(1);
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		log_warning("chdir /: %s", strerror(errno));
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

/*
 * Files removed at stop.  mxgate creates its pidfile and unix sockets as
 * root, and they usually sit where only root may remove them (/run, a
 * socket directory owned by root): after the drop to `user` an unlink()
 * there fails.  So before it drops privileges, mxgate forks a keeper: a
 * child that stays root for this one job, as Postfix's master stays root
 * while its workers run unprivileged.  The keeper holds nothing but its
 * end of a socket pair; at stop mxgate asks it, and it removes each file
 * if it is still the one mxgate created (same device and inode), answers,
 * and exits.  When mxgate ends without asking (SIGKILL, a crash) the
 * keeper sees end-of-file and exits without removing anything: the files
 * are then stale, as after any crash, and the next start replaces them.
 * Stop signals do not end the keeper (an init system may signal every
 * process of the service at once); the end of mxgate does.
 */
#define OWN_FILES_MAX 3	/* the pidfile, the milter socket, the control socket */

static struct {
	struct {
		const char *path;
		dev_t	dev;
		ino_t	ino;
	}	file[OWN_FILES_MAX];
	size_t	count;
	pid_t	keeper;			/* the keeper, or 0 */
	int	fd;			/* mxgate's end of its socket pair, or -1 */
} own = {.fd = -1};

/* Remember path, just created by mxgate, as a file to remove at stop. */
static void
own_file_add(const char *path)
{
	struct stat st;

	if (own.count == OWN_FILES_MAX || lstat(path, &st) != 0)
		return;
	own.file[own.count].path = path;
	own.file[own.count].dev = st.st_dev;
	own.file[own.count].ino = st.st_ino;
	own.count++;
}

/* Remove own file i if it is still the one created: 0, or an errno. */
static int
own_file_remove(size_t i)
{
	struct stat st;

	if (lstat(own.file[i].path, &st) != 0)
		return errno == ENOENT ? 0 : errno;
	if (st.st_dev != own.file[i].dev || st.st_ino != own.file[i].ino)
		return 0;	/* replaced since: not mxgate's any more */
	return unlink(own.file[i].path) == 0 || errno == ENOENT ? 0 : errno;
}

/* The keeper (see above); fd is its end of the socket pair. */
static void __attribute__((noreturn))
keeper_main(int fd)
{
	int	err[OWN_FILES_MAX] = {0};
	char	cmd;
	ssize_t n;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	/*
	 * Nothing of mxgate's stays open here, its listening socket least of
	 * all: a socket still open in the keeper would look busy to the next
	 * start, and would queue connections nobody accepts.
	 */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	while ((n = read(fd, &cmd, 1)) < 0 && errno == EINTR)
		;
	if (n == 1) {
		for (size_t i = 0; i < own.count; i++)
			err[i] = own_file_remove(i);
		while (write(fd, err, sizeof(err)) < 0 && errno == EINTR)
			;
	}
	_exit(0);
}

/* As root, before the drop: start the keeper; false (logged) when it cannot. */
static bool
keeper_start(void)
{
	int	sv[2];
	pid_t	pid;

	if (own.count == 0)
		return true;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("socketpair: %s", strerror(errno));
		return false;
	}
	if ((pid = fork()) < 0) {
		log_error("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (pid == 0) {
		close(sv[0]);
		keeper_main(sv[1]);
	}
	close(sv[1]);
	own.keeper = pid;
	own.fd = sv[0];
	return true;
}

/* Ask the keeper to remove the files and end; true when it answered (err[]). */
static bool
keeper_ask(int err[OWN_FILES_MAX])
{
	size_t	got = 0;
	ssize_t n;
	char	cmd = 'r';

	if (write(own.fd, &cmd, 1) == 1) {
		while (got < OWN_FILES_MAX * sizeof(int)) {
			n = read(own.fd, (char *)err + got, OWN_FILES_MAX * sizeof(int) - got);
			if (n > 0)
				got += (size_t)n;
			else if (n == 0 || errno != EINTR)
				break;
		}
	}
	close(own.fd);
	own.fd = -1;
	while (waitpid(own.keeper, NULL, 0) < 0 && errno == EINTR)
		;
	own.keeper = 0;
	return got == OWN_FILES_MAX * sizeof(int);
}

/*
 * At stop, or at a failed start once the pidfile is written: remove the
 * files, through the keeper if there is one.  Without a keeper mxgate kept
 * its rights and removes the pidfile itself (the engine removes its socket).
 */
static void
own_files_remove(void)
{
	int	err[OWN_FILES_MAX] = {0};

	if (own.keeper == 0) {
		for (size_t i = 0; i < own.count; i++)
			err[i] = own_file_remove(i);
	} else if (!keeper_ask(err)) {
		log_warning("the process that removes the pidfile and the socket at stop is gone: "
			    "they are left in place");
		own.count = 0;
		return;
	}
	for (size_t i = 0; i < own.count; i++)
		if (err[i] != 0)
			log_warning("cannot remove %s: %s", own.file[i].path, strerror(err[i]));
	own.count = 0;
}

static bool
write_pidfile(const char *path)
{
	FILE   *fp;
	struct stat st;
	int	fd;

	if (*path == '\0')
		return true;
	/* Written as root, perhaps in a directory user owns: never through a symlink. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
	if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		log_error("pidfile %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0) {
		log_error("pidfile %s: %s", path, strerror(errno));
		return false;
	}
	own_file_add(path);
	return true;
}

/*
 * Started as root with user set: hand the milter socket over, start the keeper,
 * then become user: its uid and gid (real, effective and saved), and the
 * groups initgroups(3) finds for it.
 */
static bool
drop_privileges(const char *user, const struct milter_socket *sock)
{
	struct passwd *pw;
	const char *path = sock->family == MILTER_SOCKET_UNIX ? sock->path : NULL;

	if (*user == '\0' || geteuid() != 0)
		return true;
	if ((pw = getpwnam(user)) == NULL) {
		log_error("user \"%s\" does not exist", user);
		return false;
	}
	if (path != NULL) {
		/* lchown: a symlink swapped in after the bind is changed itself, never its target. */
		if (lchown(path, pw->pw_uid, pw->pw_gid) != 0)
			log_warning("chown %s: %s", path, strerror(errno));
		own_file_add(path);
	}
	if (control_path() != NULL)
		own_file_add(control_path());	/* control_open() gave it to user already */
	if (!keeper_start())
		return false;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		log_error("cannot become user \"%s\": %s", user, strerror(errno));
		return false;
	}
	return true;
}

/* The configuration to start on; -t and a configuration error end here. */
static struct config *
load_or_exit(const struct options *opt)
{
	struct config *cfg = config_load(opt->config_path, report_stderr, NULL);

	if (opt->test_only) {
		if (cfg != NULL)
			printf("%s: configuration OK\n", opt->config_path ? opt->config_path : "(defaults)");
		config_release(cfg);
		exit(cfg ? 0 : 1);
	}
	if (cfg == NULL) {
		fprintf(stderr, "mxgate: configuration error, not started\n");
		exit(1);
	}
	return cfg;
}

/*
 * Blocked from here on, in every thread mxgate or libmilter starts:
 * SIGUSR1 is for the reload thread, SIGTERM/SIGINT/SIGHUP for the one
 * stop thread (one that arrives before it runs waits for it); any other
 * thread would take them with their default action (death).
 */
static void
block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The milter socket, srwxrwx---: the MTA reaches it through the group of `user`. */
static bool
open_socket(const struct milter_socket *sock, const char *spec)
{
	mode_t	old_mask = umask(007);

	if (milter_listen(sock) != 0) {
		umask(old_mask);
		log_error("cannot open milter socket %s", spec);
		return false;
	}
	umask(old_mask);
	return true;
}

/* The threads mxgate starts beside the engine's. */
struct threads {
	pthread_t reloader;
	pthread_t stopper;		/* only for an engine without its own stop signals */
};

/* The reload thread, and the stop thread unless the engine takes stop signals itself. */
static bool
threads_start(struct threads *t, const struct milter_engine *engine)
{
	if (pthread_create(&t->reloader, NULL, reload_main, NULL) != 0 ||
	    (!engine->serve.own_stop_signals && pthread_create(&t->stopper, NULL, stop_main, NULL) != 0)) {
		log_error("cannot start the reload and stop threads");
		return false;
	}
	return true;
}

/* At stop: both threads ended and joined (the reload thread is never cancelled). */
static void
threads_stop(struct threads *t, const struct milter_engine *engine)
{
	if (!engine->serve.own_stop_signals) {
		pthread_cancel(t->stopper);	/* gone already after a signal; not if milter_run failed */
		pthread_join(t->stopper, NULL);
	}
	atomic_store(&reload_done, true);
	pthread_kill(t->reloader, SIGUSR1);
	pthread_join(t->reloader, NULL);
}

/* A start that fails once the pidfile is written. */
static int
start_failed(struct config *cfg)
{
	control_stop();
	metrics_stop();
	own_files_remove();
	config_release(cfg);
	return 1;
}

int
main(int argc, char **argv)
{
	struct options opt;
	struct config *cfg;
	const char *socket_spec;
	struct milter_socket sock;
	char	why[300];
	const struct milter_engine *engine;
	struct threads threads;
	int	status;

	parse_options(argc, argv, &opt);
	cfg = load_or_exit(&opt);
	socket_spec = opt.socket ? opt.socket : cfg->socket;
	if (!milter_socket_parse(socket_spec, &sock, why, sizeof(why))) {
		fprintf(stderr, "mxgate: -p %s\n", why);
		config_release(cfg);
		return 1;
	}
	engine = cfg->engine == ENGINE_BUILTIN ? &milter_engine_builtin : &milter_engine_libmilter;
	milter_use(engine);
	log_open("mxgate", cfg->syslog_facility, opt.foreground);
	log_set_level(cfg->log_level);
	config_install(cfg);
	signal(SIGPIPE, SIG_IGN);
	block_signals();
	if (!open_socket(&sock, socket_spec))
		return 1;
	if (!opt.foreground)
		daemonize();
	cfg = config_current();
	if (!write_pidfile(cfg->pidfile)) {
		config_release(cfg);
		return 1;
	}
	/*
	 * The control socket is made as root and given to user, as the milter
	 * socket is.  The metrics endpoint listens before the drop too, so
	 * that any port serves (one below 1024 too); its thread runs as `user`
	 * after it like every other (setuid applies to the whole process), and
	 * the keeper forked by the drop closes its socket.
	 */
	if (!control_open(cfg) || !metrics_start(cfg) || !drop_privileges(cfg->user, &sock) ||
	    !services_start(cfg) || !threads_start(&threads, engine) || !control_start(cfg))
		return start_failed(cfg);
	log_info("mxgate %s listening on %s (engine %s, configuration %s)", PACKAGE_VERSION,
		 socket_spec, engine->name, opt.config_path ? opt.config_path : "(defaults)");
	/*
	 * How long a connection may wait for the MTA's next command: libmilter's
	 * 7210 s.  The socket is quiet while a client sends a message that still
	 * waits for end of message (hold, warn), and Sendmail allows an hour
	 * per command and per data block; an idle connection costs one
	 * sleeping thread.
	 */
	status = milter_run(&mxgate_callbacks, 7210);
	log_info("mxgate stopping");
	control_stop();
	metrics_stop();
	threads_stop(&threads, engine);
	services_stop();
	own_files_remove();
	config_release(cfg);
	config_shutdown();
	log_close();
	return status == 0 ? 0 : 1;
}
