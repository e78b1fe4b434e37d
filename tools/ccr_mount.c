/*
 * ccr_mount.c - `ccr mount` and `ccr unmount`: option mapping onto
 * ccr_mount_run and ccr_unmount, and turning the mount into a daemon once it is
 * ready.
 *
 * Daemon: without --foreground the command forks before anything opens a store
 * or starts a thread (fork copies only the calling thread); the parent waits on
 * a pipe and exits 0 when the child says the mount is ready, or with the
 * child's exit code when it fails before that (its messages went to the
 * terminal). The child detaches (setsid), and when ready points its standard
 * streams at --log-file (or /dev/null), so that whoever ran `ccr mount ... &&
 * job` is not held by a pipe the daemon keeps open.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ccr/mount.h"
#include "ccr_tool.h"

static const char mount_help[] =
    "Usage: ccr mount NAME MOUNTPOINT [options]\n"
    "\n"
    "Mounts datastore NAME at directory MOUNTPOINT as a file system: directories are blob-name\n"
    "prefixes, files are blobs with their plaintext sizes, and reads decrypt and authenticate on the\n"
    "fly (a tampered region reads as EIO; the rest of the file still reads). Read-only unless\n"
    "--read-write.\n"
    "\n"
    "With --read-write, files can be created, written, truncated, renamed and deleted, and directories\n"
    "created and removed. A file is encrypted with the datastore's key and stored when it is closed\n"
    "(or fsync'd): close() returns an error if storing it failed, and nothing partial is ever visible\n"
    "in the store. Sequential writes upload while the application writes; other writes are staged in\n"
    "--spill-dir. chmod, chown and touch succeed and change nothing; links are refused (EPERM); a\n"
    "directory cannot be renamed (EXDEV: mv copies instead).\n"
    "\n"
    "Without --foreground, ccr mount returns once the mount is ready and keeps serving it in the\n"
    "background, so that `ccr mount ... && job` works. The mount ends with `ccr unmount MOUNTPOINT`,\n"
    "or when the daemon gets SIGTERM or SIGINT: it then unmounts and stores every file still open for\n"
    "writing.\n"
    "\n"
    "Options:\n"
    "  -w, --read-write       allow writes (a datasink); default read-only\n"
    "  -M, --memory SIZE      memory budget for the cache, prefetch and write buffers (default:\n"
    "                         $CCR_MEMORY, else 512M); the daemon's resident memory stays within it\n"
    "                         plus about 64M\n"
    "      --prefetch SIZE    bytes fetched ahead of a sequential reader (default 64M, within\n"
    "                         --memory)\n"
    "      --list-ttl SECONDS how long listings, names and sizes are trusted before the store is asked\n"
    "                         again (default 60; 0: ask every time; 'forever': list once). Read-write\n"
    "                         mounts cache names and sizes in the kernel for 1 s whatever this says\n"
    "  -p, --prefix P         mount only the blobs under P/\n"
    "      --allow-other      let other users use the mount (root, or user_allow_other in\n"
    "                         /etc/fuse.conf)\n"
    "  -f, --foreground       stay attached: serve until unmounted or interrupted, then exit\n"
    "      --ready-file PATH  once mounted, write {\"pid\":N,\"mountpoint\":\"...\"} to PATH (atomically)\n"
    "      --stats-file PATH  write live statistics to PATH every second, one JSON object, replaced\n"
    "                         atomically: bytes_read, bytes_fetched, over_read (fetched / read),\n"
    "                         cache_hits, cache_misses, prefetches, auth_failures, bytes_written,\n"
    "                         bytes_uploaded, commits, commit_failures, list_requests, memory_peak,\n"
    "                         open_files, fuse_requests, store_requests, store_retries, seconds, pid,\n"
    "                         mountpoint, mounted\n"
    "      --log-file PATH    the daemon's messages (appended, time-stamped); default: discarded once\n"
    "                         in the background\n"
    "      --spill-dir DIR    where non-sequential writes are staged (default: $TMPDIR, else /tmp)\n"
    "  -t, --threads N        FUSE worker threads, i.e. requests served at once (default 16)\n"
    "      --readahead SIZE   the kernel's readahead for the mount (default: 1/32 of --memory, 128K\n"
    "                         to 4M; applied as root only)\n"
    "  -c, --config FILE      the config file\n" TOOL_STORE_HELP "  -h, --help             show this help\n"
    "\n"
    "Examples:\n"
    "  ccr mount owner1 /mnt/owner1 --ready-file /run/owner1.ready && python train.py /mnt/owner1\n"
    "  ccr mount results /mnt/out --read-write --memory 1G --foreground\n"
    "  ccr unmount /mnt/out\n"
    "\n"
    "Exit codes: 0 mounted (in the background), or unmounted cleanly (--foreground; also after SIGTERM\n"
    "or SIGINT); 1 usage error; 2 I/O or key error (unknown datastore, bad key, the store cannot be\n"
    "listed, the mount point is missing or still holds a dead mount, mounting is not permitted, or\n"
    "storing a file at unmount failed).\n";

static const char unmount_help[] =
    "Usage: ccr unmount MOUNTPOINT [--lazy] [--timeout SECONDS]\n"
    "\n"
    "Unmounts a ccr mount (umount as root, fusermount3 -u otherwise) and waits until it is gone.\n"
    "Files were stored when they were closed; the daemon then exits. A mount whose daemon died\n"
    "(\"Transport endpoint is not connected\") is unmounted the same way.\n"
    "\n"
    "Options:\n"
    "  -l, --lazy             detach even if files under it are open (they keep working until\n"
    "                         closed; the daemon exits after the last one)\n"
    "      --timeout SECONDS  wait at most this long for the mount to go (default 30)\n"
    "  -h, --help             show this help\n"
    "\n"
    "Exit codes: 0 unmounted; 1 usage error; 2 not a FUSE mount point, busy (files are open: close\n"
    "them or use --lazy), not permitted, or still mounted after the timeout.\n";

enum {
    OPT_PREFETCH = 1000,
    OPT_LIST_TTL,
    OPT_ALLOW_OTHER,
    OPT_READY,
    OPT_STATS,
    OPT_LOG,
    OPT_SPILL,
    OPT_READAHEAD,
    OPT_TIMEOUT,
};

static const struct option mount_longopts[] = {
    {"read-write", no_argument, NULL, 'w'},
    {"memory", required_argument, NULL, 'M'},
    {"prefetch", required_argument, NULL, OPT_PREFETCH},
    {"list-ttl", required_argument, NULL, OPT_LIST_TTL},
    {"prefix", required_argument, NULL, 'p'},
    {"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
    {"foreground", no_argument, NULL, 'f'},
    {"ready-file", required_argument, NULL, OPT_READY},
    {"stats-file", required_argument, NULL, OPT_STATS},
    {"log-file", required_argument, NULL, OPT_LOG},
    {"spill-dir", required_argument, NULL, OPT_SPILL},
    {"threads", required_argument, NULL, 't'},
    {"readahead", required_argument, NULL, OPT_READAHEAD},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    TOOL_STORE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

/* An absolute version of path (relative to the current directory), for a daemon
 * that chdirs to "/". */
static char *absolute(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    char *p = NULL;
    if (asprintf(&p, "%s/%s", cwd, path) < 0)
        p = NULL;
    free(cwd);
    return p;
}

static int parse_seconds(const char *cmd, const char *opt, const char *s, bool allow_forever, double *out)
{
    if (allow_forever && strcmp(s, "forever") == 0) {
        *out = -1;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !end || *end || end == s || !isfinite(v) || v < 0 || v > 1e9)
        return tool_usage(cmd, "invalid %s value '%s' (seconds, a number >= 0%s)", opt, s,
                          allow_forever ? ", or 'forever'" : "");
    *out = v;
    return 0;
}

static int parse_size_opt(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    uint64_t n = 0;
    int rc = ccr_parse_size(s, &n);
    if (rc)
        return tool_usage(cmd, "invalid %s value '%s' (bytes, or a number with K, M or G, e.g. 64M)", opt, s);
    *out = n;
    return 0;
}

/* -----------------------------------------------------------------------------------------------------
 */
/* the daemon's side */
/* -----------------------------------------------------------------------------------------------------
 */

struct daemon_ctl {
    bool daemon;
    int ready_fd; /* write end of the parent's pipe; -1 once used */
    const char *log_file;
};

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static bool log_stamps;

/* Like tool_log_sink, with a time stamp once the messages go to a log file. */
static void mount_log_sink(void *arg, enum ccr_log_level level, const char *msg)
{
    char stamp[40] = "";
    pthread_mutex_lock(&log_mu);
    if (log_stamps) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    fprintf(stderr, "%sccr mount: %s%s\n", stamp,
            level == CCR_LOG_ERROR  ? "error: "
            : level == CCR_LOG_WARN ? "warning: "
                                    : "",
            msg);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
}

/* Called by ccr_mount_run once mounted: detach the standard streams, then
 * release the waiting parent. */
static void on_ready(void *arg)
{
    struct daemon_ctl *d = arg;
    if (!d->daemon || d->ready_fd < 0)
        return;
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = d->log_file ? open(d->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
                          : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0) /* the file was checked before the fork; if it went away, discard */
        out = open("/dev/null", O_WRONLY | O_CLOEXEC);
    pthread_mutex_lock(&log_mu);
    fflush(stdout);
    fflush(stderr);
    if (in >= 0)
        dup2(in, STDIN_FILENO);
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
    }
    log_stamps = d->log_file != NULL;
    pthread_mutex_unlock(&log_mu);
    if (in > STDERR_FILENO)
        close(in);
    if (out > STDERR_FILENO)
        close(out);
    if (chdir("/") != 0) { /* harmless: only keeps a directory busy */
    }
    char c = 'R';
    while (write(d->ready_fd, &c, 1) < 0 && errno == EINTR)
        ;
    close(d->ready_fd);
    d->ready_fd = -1;
}

/* The parent: wait for 'R' (ready) or for the child to exit before that. */
static int wait_ready(pid_t child, int rfd)
{
    char c = 0;
    ssize_t n;
    while ((n = read(rfd, &c, 1)) < 0 && errno == EINTR)
        ;
    close(rfd);
    if (n == 1 && c == 'R')
        return EXIT_OK;
    int st = 0;
    while (waitpid(child, &st, 0) < 0) {
        if (errno != EINTR)
            return EXIT_IO;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st) ? WEXITSTATUS(st) : EXIT_IO;
    fprintf(stderr, "ccr mount: the mount daemon died (signal %d) before the mount was ready\n",
            WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return EXIT_IO;
}

int cmd_mount(int argc, char **argv)
{
    const char *cmd = "mount";
    const char *config = NULL, *memory_arg = NULL, *ready = NULL, *stats = NULL, *log_file = NULL;
    struct ccr_mount_opts o;
    ccr_mount_opts_init(&o);
    struct tool_store_flags sf = {0};
    bool foreground = false;
    uint64_t ra = 0;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;

    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":wM:p:ft:c:h", mount_longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            o.volume.writable = true;
            break;
        case 'M':
            memory_arg = optarg;
            break;
        case OPT_PREFETCH:
            if (parse_size_opt(cmd, "--prefetch", optarg, &o.volume.prefetch))
                return EXIT_USAGE;
            break;
        case OPT_LIST_TTL: {
            double v;
            if (parse_seconds(cmd, "--list-ttl", optarg, true, &v))
                return EXIT_USAGE;
            o.volume.list_ttl = v == 0 ? 1e-3 : v; /* the volume reads 0 as "the default" */
            break;
        }
        case 'p':
            o.volume.prefix = optarg;
            break;
        case OPT_ALLOW_OTHER:
            o.allow_other = true;
            break;
        case 'f':
            foreground = true;
            break;
        case OPT_READY:
            ready = optarg;
            break;
        case OPT_STATS:
            stats = optarg;
            break;
        case OPT_LOG:
            log_file = optarg;
            break;
        case OPT_SPILL:
            o.volume.spill_dir = optarg;
            break;
        case 't': {
            unsigned n;
            if (tool_parse_threads(cmd, optarg, &n))
                return EXIT_USAGE;
            if (n > 256)
                return tool_usage(cmd, "invalid --threads value '%s' (1 to 256)", optarg);
            o.max_threads = n;
            break;
        }
        case OPT_READAHEAD:
            if (parse_size_opt(cmd, "--readahead", optarg, &ra))
                return EXIT_USAGE;
            if (ra < 4096 || ra > ((uint64_t)1 << 30))
                return tool_usage(cmd, "invalid --readahead value '%s' (4K to 1G)", optarg);
            o.readahead_kb = (unsigned)(ra / 1024);
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            fputs(mount_help, stdout);
            return EXIT_OK;
        default:
            if (tool_store_option(cmd, c, optarg, &sf, argv) != EXIT_OK)
                return EXIT_USAGE;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (npos >= 2)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos < 1)
        return tool_usage(cmd, "missing datastore NAME");
    if (npos < 2)
        return tool_usage(cmd, "missing MOUNTPOINT");
    if (tool_parse_memory(cmd, memory_arg, &o.volume.memory) != 0)
        return EXIT_USAGE;

    /* Checks that need no store, before forking: their messages reach the
     * terminal with exit codes. */
    struct stat st;
    if (stat(pos[1], &st) != 0) {
        if (errno == ENOTCONN)
            tool_err(cmd, pos[1],
                     "a dead mount is still there (its daemon exited); unmount it first: ccr unmount %s",
                     pos[1]);
        else
            tool_err(cmd, pos[1], "mount point: %s", strerror(errno));
        return EXIT_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        tool_err(cmd, pos[1], "mount point is not a directory");
        return EXIT_IO;
    }
    if (ccr_is_fuse_mount(pos[1])) {
        tool_err(cmd, pos[1], "already a FUSE mount point (unmount it first: ccr unmount %s)", pos[1]);
        return EXIT_IO;
    }
    char *mp = absolute(pos[1]);
    char *ready_abs = ready ? absolute(ready) : NULL;
    char *stats_abs = stats ? absolute(stats) : NULL;
    char *log_abs = log_file ? absolute(log_file) : NULL;
    char *spill_abs = o.volume.spill_dir ? absolute(o.volume.spill_dir) : NULL;
    int ex = EXIT_OK;
    if (!mp || (ready && !ready_abs) || (stats && !stats_abs) || (log_file && !log_abs) ||
        (o.volume.spill_dir && !spill_abs)) {
        tool_err(cmd, NULL, "out of memory or no current directory");
        ex = EXIT_IO;
        goto out;
    }
    if (log_abs) {
        int fd = open(log_abs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            tool_err(cmd, log_abs, "cannot open the log file: %s", strerror(errno));
            ex = EXIT_IO;
            goto out;
        }
        close(fd);
    }
    o.mountpoint = mp;
    o.ready_file = ready_abs;
    o.stats_file = stats_abs;
    if (spill_abs)
        o.volume.spill_dir = spill_abs;

    struct daemon_ctl d = {.daemon = !foreground, .ready_fd = -1, .log_file = log_abs};
    if (!foreground) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            tool_err(cmd, NULL, "pipe: %s", strerror(errno));
            ex = EXIT_IO;
            goto out;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            tool_err(cmd, NULL, "fork: %s", strerror(errno));
            close(p[0]);
            close(p[1]);
            ex = EXIT_IO;
            goto out;
        }
        if (pid > 0) {
            close(p[1]);
            ex = wait_ready(pid, p[0]);
            goto out;
        }
        close(p[0]);
        d.ready_fd = p[1];
        setsid(); /* no controlling terminal: the shell's hangup and ^C are not ours
                   */
    }

    /* Keep the shutdown signals away from the store's threads (they inherit this
     * mask); ccr_mount_run takes them on the thread that runs the loop. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    ccr_log_set(mount_log_sink, NULL, sf.verbose ? CCR_LOG_DEBUG : CCR_LOG_INFO);

    struct tool_ds t;
    ex = tool_ds_open(cmd, config, pos[0], &sf, &t);
    if (ex)
        goto out;
    o.store = t.store;
    o.ds = t.ds;
    o.key = t.has_key ? &t.key : NULL;
    o.on_ready = on_ready;
    o.on_ready_arg = &d;
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_mount_run(&o, &e);
    if (rc) {
        pthread_mutex_lock(&log_mu);
        tool_err_print(cmd, &e, mp);
        pthread_mutex_unlock(&log_mu);
    }
    tool_ds_close(&t);
    ex = rc == -ECANCELED ? EXIT_IO : tool_exit_code(rc);
out:
    free(mp);
    free(ready_abs);
    free(stats_abs);
    free(log_abs);
    free(spill_abs);
    return ex;
}

/* -----------------------------------------------------------------------------------------------------
 */
/* ccr unmount */
/* -----------------------------------------------------------------------------------------------------
 */

static const struct option unmount_longopts[] = {
    {"lazy", no_argument, NULL, 'l'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_unmount(int argc, char **argv)
{
    const char *cmd = "unmount";
    bool lazy = false;
    double timeout = 30;
    const char *mp = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":lh", unmount_longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            lazy = true;
            break;
        case OPT_TIMEOUT:
            if (parse_seconds(cmd, "--timeout", optarg, false, &timeout))
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(unmount_help, stdout);
            return EXIT_OK;
        default:
            return tool_bad_option(cmd, c, argv);
        }
    }
    for (int i = optind; i < argc; i++) {
        if (mp)
            return tool_usage(cmd, "unexpected argument '%s'", argv[i]);
        mp = argv[i];
    }
    if (!mp)
        return tool_usage(cmd, "missing MOUNTPOINT");
    struct ccr_err e;
    ccr_err_clear(&e);
    int rc = ccr_unmount(mp, lazy, timeout, &e);
    if (rc) {
        tool_err_print(cmd, &e, mp);
        return EXIT_IO;
    }
    return EXIT_OK;
}
