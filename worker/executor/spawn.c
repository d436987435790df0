/*
 * worker-spawn: the spawner (spawner.py) as a small C program.
 *
 * Why C: a clone of a Python process copies its page tables and then
 * faults in a page of its own for every object it touches on the way to
 * exec; per job that cost about 2-4 ms of CPU, several times what the
 * kernel needs for the namespaces themselves. A clone of this program
 * touches next to nothing. It does exactly what spawner.py and jobinit.py
 * do, speaks the same wire format (spawnwire.py) and is held to the same
 * tests; where it could not be built, spawner.py does the work.
 *
 * Usage: worker-spawn SOCKET_FD JOB_OOM_SCORE_ADJ SERVER_OOM_SCORE_ADJ
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define W_CLONE_NEWNS 0x00020000ULL
#define W_CLONE_NEWPID 0x20000000ULL
#define W_CLONE_NEWNET 0x40000000ULL
#define W_CLONE_PARENT 0x00008000ULL
#define W_CLONE_PIDFD 0x00001000ULL
#define W_CLONE_INTO_CGROUP 0x200000000ULL

/* Request flags: as in spawnwire.py. */
#define F_PID_NS 1u
#define F_MOUNT_NS 2u
#define F_NETWORK_NONE 4u
#define F_IDS 8u
#define F_CWD 16u

#define MAX_MESSAGE (1 << 16)
#define MAX_MEMFD (1L << 30)
#define MAX_FDS 8
#define MAX_STRINGS 65536

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

struct launch {
    uint32_t flags;
    int32_t uid, gid;
    char **argv, **env, **join; /* NULL-terminated */
    char *cwd;
    char *extra_join; /* cgroup.procs, where the child must join by itself */
};

static const char *job_oom = "500";
static char *title; /* our argv's strings, to show as the init's command line */
static size_t title_size;

/* --- the child's side: between clone and exec (jobinit.py) ---------------- */

static void report(int fd, const char *line) {
    ssize_t ignored = write(fd, line, strlen(line));
    (void)ignored;
}

static _Noreturn void fail(int fd, int code, const char *phase, const char *step) {
    char line[512];
    snprintf(line, sizeof line, step[0] ? "E%d %s %s\n" : "E%d %s\n", code ? code : EINVAL,
             phase, step);
    report(fd, line);
    _exit(127);
}

static void write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t ignored = write(fd, data, strlen(data));
    (void)ignored;
    close(fd);
}

static void close_from(unsigned first, unsigned last) {
    if (first > last) return;
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
    /* Before Linux 5.9: what is open, from /proc (we hold few). */
    int open_fds[256], n;
    do {
        DIR *dir = opendir("/proc/self/fd");
        if (!dir) return;
        int mine = dirfd(dir);
        n = 0;
        for (struct dirent *e; (e = readdir(dir)) && n < 256;) {
            long fd = strtol(e->d_name, NULL, 10);
            if (e->d_name[0] != '.' && fd != mine && fd >= first && fd <= last)
                open_fds[n++] = (int)fd;
        }
        closedir(dir);
        for (int i = 0; i < n; i++) close(open_fds[i]);
    } while (n == 256);
}

/* Close every descriptor above 2 but ``a`` and ``b`` (-1: none). */
static void close_all_but(int a, int b) {
    int low = a < b ? a : b, high = a < b ? b : a;
    unsigned next = 3;
    for (int i = 0; i < 2; i++) {
        int keep = i ? high : low;
        if (keep < 3) continue;
        close_from(next, (unsigned)keep - 1);
        next = (unsigned)keep + 1;
    }
    close_from(next, ~0U);
}

static void loopback_up(int report_fd) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (sock < 0 || ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) goto failed;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) goto failed;
    close(sock);
    return;
failed:
    fail(report_fd, errno, "setup", "bringing up its loopback");
}

static void setup_namespaces(const struct launch *l, int report_fd) {
    if (l->flags & F_MOUNT_NS) {
        /* Private, so our mounts never show outside. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            fail(report_fd, errno, "setup", "making its mounts private");
        if ((l->flags & F_PID_NS) &&
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
            fail(report_fd, errno, "setup", "mounting its /proc");
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
            fail(report_fd, errno, "setup", "mounting its /tmp");
    }
    if (l->flags & F_NETWORK_NONE) loopback_up(report_fd);
}

static void join_one(const char *path, int report_fd) {
    char me[32];
    snprintf(me, sizeof me, "%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, me, strlen(me)) < 0) fail(report_fd, errno, "setup", "joining its cgroup");
    close(fd);
}

static const char *env_path(char **env) {
    for (; *env; env++)
        if (strncmp(*env, "PATH=", 5) == 0) return *env + 5;
    return "/bin:/usr/bin"; /* os.defpath */
}

/* execvp(3) with the job's own PATH: the first error other than "not
 * there" wins, else the last. Returns the errno only if nothing ran. */
static int exec_searching(char **argv, char **env) {
    const char *command = argv[0];
    if (strchr(command, '/')) {
        execve(command, argv, env);
        return errno;
    }
    int first = 0, last = ENOENT;
    size_t length = strlen(command);
    const char *dir = env_path(env);
    for (;;) {
        const char *end = strchrnul(dir, ':');
        size_t dlen = (size_t)(end - dir);
        char path[4096 + 256];
        if (dlen == 0) {
            dir = ".";
            dlen = 1;
        }
        if (dlen + 1 + length < sizeof path) {
            memcpy(path, dir, dlen);
            path[dlen] = '/';
            memcpy(path + dlen + 1, command, length + 1);
            execve(path, argv, env);
            last = errno;
            if (last != ENOENT && last != ENOTDIR && !first) first = last;
        } else {
            last = ENAMETOOLONG;
            if (!first) first = last;
        }
        if (!*end) break;
        dir = end + 1;
    }
    return first ? first : last;
}

/* Become the job's command (its main process). */
static _Noreturn void become_command(const struct launch *l, int in, int out, int report_fd) {
    setsid();
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        fail(report_fd, errno, "setup", "setting up its stdio");
    close_all_but(report_fd, -1);
    fcntl(report_fd, F_SETFD, FD_CLOEXEC); /* closes on exec: EOF says "started" */
    for (int sig = 1; sig < 32; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (l->flags & F_IDS) {
        char step[64];
        snprintf(step, sizeof step, "switching to uid %d", l->uid);
        if (syscall(SYS_setgroups, 0, NULL) != 0 ||
            syscall(SYS_setresgid, l->gid, l->gid, l->gid) != 0 ||
            syscall(SYS_setresuid, l->uid, l->uid, l->uid) != 0)
            fail(report_fd, errno, "setup", step);
    }
    if (l->cwd && chdir(l->cwd) != 0) fail(report_fd, errno, "cwd", "");
    fail(report_fd, exec_searching(l->argv, l->env), "exec", "");
}

static void quiet_stdio(void) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return;
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    if (null > 2) close(null);
}

/* PID 1 of the job's namespace: fork the command, report, pass signals on
 * to the whole namespace, reap, exit once nothing is left (as tini). */
static _Noreturn void run_init(const struct launch *l, int in, int out, int report_fd) {
    /* A session of its own: a terminal's signals to the server's group
     * (Ctrl-C, Ctrl-Z) are not passed on to the job. */
    setsid();
    prctl(PR_SET_NAME, "worker-init", 0, 0, 0);
    if (title_size > sizeof "worker-init") { /* ps shows the init as such */
        memset(title, 0, title_size);
        strcpy(title, "worker-init");
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t every;
    sigfillset(&every);
    sigprocmask(SIG_BLOCK, &every, NULL);
    int errors[2];
    if (pipe2(errors, O_CLOEXEC) != 0) fail(report_fd, errno, "setup", "making a pipe");
    struct clone_args_ args = {.exit_signal = SIGCHLD};
    long main_pid = syscall(SYS_clone3, &args, sizeof args);
    if (main_pid < 0 && errno == ENOSYS) main_pid = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
    if (main_pid < 0) fail(report_fd, errno, "setup", "creating its process");
    if (main_pid == 0) {
        close(errors[0]);
        become_command(l, in, out, errors[1]);
    }
    quiet_stdio();
    close_all_but(report_fd, errors[0]); /* only the job may hold its pipes */
    char said[512];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(errors[0], said + got, sizeof said - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof said - 1) break;
    }
    close(errors[0]);
    said[got] = 0;
    report(report_fd, got ? said : "S\n");
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&every, &info);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            kill(-1, sig); /* every process of the namespace but this one */
            continue;
        }
        for (;;) { /* SIGCHLDs coalesce: reap all that ended */
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid < 0 && errno == EINTR) continue;
            if (pid < 0) _exit(0); /* nothing of the job is left */
            if (pid == 0) break;
            if (pid == main_pid) {
                char line[32];
                snprintf(line, sizeof line, "X%d\n", status);
                report(report_fd, line);
            }
        }
    }
}

static _Noreturn void child(const struct launch *l, int in, int out, int report_fd) {
    /* Before anything else: a job, not the server, is the OOM killer's pick. */
    write_file("/proc/self/oom_score_adj", job_oom);
    setup_namespaces(l, report_fd);
    for (char **path = l->join; *path; path++) join_one(*path, report_fd);
    if (l->extra_join) join_one(l->extra_join, report_fd);
    if (l->flags & F_PID_NS) run_init(l, in, out, report_fd);
    become_command(l, in, out, report_fd);
}

/* --- the spawner's side ---------------------------------------------------- */

struct reply {
    int32_t request_id;
    int32_t pid; /* or -errno */
    char message[256];
};

static int refuse(struct reply *r, int code, const char *what, const char *detail) {
    r->pid = -code;
    snprintf(r->message, sizeof r->message, "%s%s", what, detail);
    return -1;
}

static uint32_t u32_at(const char *data) {
    uint32_t v;
    memcpy(&v, data, 4);
    return v;
}

/* Split the request into *l; pointers into data (which must outlive l). */
static int parse(char *data, size_t size, struct launch *l, struct reply *r) {
    if (size >= 4) r->request_id = (int32_t)u32_at(data); /* for a refusal too */
    if (size < 28) return refuse(r, EINVAL, "bad launch request: ", "too short");
    l->flags = u32_at(data + 4);
    l->uid = (int32_t)u32_at(data + 8);
    l->gid = (int32_t)u32_at(data + 12);
    uint32_t argc = u32_at(data + 16), envc = u32_at(data + 20), njoin = u32_at(data + 24);
    uint32_t total = argc + envc + njoin + ((l->flags & F_CWD) ? 1 : 0);
    if (argc < 1 || argc > MAX_STRINGS || envc > MAX_STRINGS || njoin > 16 || total > 2 * MAX_STRINGS)
        return refuse(r, EINVAL, "bad launch request: ", "counts");
    char **strings = calloc(total + 3, sizeof(char *));
    if (!strings) return refuse(r, ENOMEM, "bad launch request: ", "no memory");
    char *at = data + 28, *end = data + size;
    for (uint32_t i = 0; i < total; i++) {
        char *nul = memchr(at, 0, (size_t)(end - at));
        if (!nul) {
            free(strings);
            return refuse(r, EINVAL, "bad launch request: ", "unterminated string");
        }
        strings[i] = at;
        at = nul + 1;
    }
    /* Laid out as argv, NULL, env, NULL, [cwd], join, NULL. */
    char **slots = calloc(total + 3, sizeof(char *));
    if (!slots) {
        free(strings);
        return refuse(r, ENOMEM, "bad launch request: ", "no memory");
    }
    uint32_t s = 0, k = 0;
    l->argv = slots;
    for (uint32_t i = 0; i < argc; i++) slots[k++] = strings[s++];
    slots[k++] = NULL;
    l->env = slots + k;
    for (uint32_t i = 0; i < envc; i++) slots[k++] = strings[s++];
    slots[k++] = NULL;
    l->cwd = (l->flags & F_CWD) ? strings[s++] : NULL;
    l->join = slots + k;
    for (uint32_t i = 0; i < njoin; i++) slots[k++] = strings[s++];
    slots[k] = NULL;
    free(strings);
    return 0;
}

static long clone_job(const struct launch *l, int cgroup_fd, int *pidfd) {
    uint64_t flags = W_CLONE_PARENT | W_CLONE_PIDFD;
    if (l->flags & F_PID_NS) flags |= W_CLONE_NEWPID;
    if (l->flags & F_MOUNT_NS) flags |= W_CLONE_NEWNS;
    if (l->flags & F_NETWORK_NONE) flags |= W_CLONE_NEWNET;
    struct clone_args_ args = {.flags = flags, .pidfd = (uint64_t)(uintptr_t)pidfd};
    if (cgroup_fd >= 0) {
        args.flags |= W_CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    /* With CLONE_PARENT the kernel takes the exit signal from ours. */
    return syscall(SYS_clone3, &args, sizeof args);
}

static long clone_legacy(const struct launch *l, int *pidfd) {
    unsigned long flags = W_CLONE_PARENT | W_CLONE_PIDFD | SIGCHLD;
    if (l->flags & F_PID_NS) flags |= W_CLONE_NEWPID;
    if (l->flags & F_MOUNT_NS) flags |= W_CLONE_NEWNS;
    if (l->flags & F_NETWORK_NONE) flags |= W_CLONE_NEWNET;
    /* (flags, stack, parent_tid: where the pidfd goes, ...) */
    return syscall(SYS_clone, flags, NULL, pidfd, NULL, NULL);
}

static int is_directory(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The reply's pidfd, or -1. */
static int serve(char *data, size_t size, int *fds, int nfds, struct reply *r) {
    char *owned = NULL;
    int pidfd = -1;
    struct launch l;
    memset(&l, 0, sizeof l);
    if (size == 9 && memcmp(data, "memfd", 5) == 0 && nfds > 0) {
        r->request_id = (int32_t)u32_at(data + 5);
        int memfd = fds[--nfds];
        struct stat st;
        if (fstat(memfd, &st) != 0 || st.st_size <= 0 || st.st_size > MAX_MEMFD ||
            !(owned = malloc((size_t)st.st_size)) ||
            pread(memfd, owned, (size_t)st.st_size, 0) != st.st_size) {
            close(memfd);
            refuse(r, EINVAL, "bad launch request: ", "unreadable memfd");
            goto done;
        }
        close(memfd);
        data = owned;
        size = (size_t)st.st_size;
    }
    if (parse(data, size, &l, r) != 0) goto done;
    if (nfds != 4) {
        refuse(r, EINVAL, "bad launch request: ", "expected 4 descriptors");
        goto done;
    }
    int into = is_directory(fds[3]) ? fds[3] : -1;
    long pid = clone_job(&l, into, &pidfd);
    if (pid < 0 && errno == ENOSYS) {
        if (into >= 0) { /* not born in its cgroup: it joins it before it execs */
            char link[64], where[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", into);
            ssize_t n = readlink(link, where, sizeof where - 16);
            if (n <= 0 || (size_t)n >= sizeof where - 16 ||
                (memcpy(where + n, "/cgroup.procs", 14), !(l.extra_join = strdup(where)))) {
                refuse(r, n <= 0 ? errno : ENAMETOOLONG, "creating its process: ",
                       "cannot name its cgroup");
                goto done;
            }
        }
        pid = clone_legacy(&l, &pidfd);
    }
    if (pid == 0) child(&l, fds[0], fds[1], fds[2]);
    if (pid < 0) {
        pidfd = -1;
        refuse(r, errno, "creating its process: ", strerror(errno));
    } else {
        r->pid = (int32_t)pid;
    }
done:
    free(l.argv);
    free(l.extra_join);
    free(owned);
    for (int i = 0; i < nfds; i++) close(fds[i]);
    return pidfd;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: worker-spawn SOCKET_FD JOB_OOM_SCORE_ADJ SERVER_OOM_SCORE_ADJ\n");
        return 2;
    }
    int sock = atoi(argv[1]);
    title = argv[0];
    title_size = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
    job_oom = argv[2];
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    write_file("/proc/self/oom_score_adj", argv[3]);
    signal(SIGINT, SIG_IGN); /* the supervisor's to handle */
    signal(SIGHUP, SIG_IGN);
    static char data[MAX_MESSAGE];
    for (;;) {
        char control[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct iovec iov = {data, sizeof data};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0; /* the executor closed its end */
        int fds[MAX_FDS], nfds = 0;
        int cut = msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (nfds < MAX_FDS) fds[nfds++] = fd;
                else close(fd);
            }
        }
        struct reply r = {0};
        int pidfd = -1;
        if (cut) { /* refused whole: never a launch from part of a request */
            if (n >= 4) r.request_id = (int32_t)u32_at(data);
            refuse(&r, EMSGSIZE, "bad launch request: ", "too long");
            for (int i = 0; i < nfds; i++) close(fds[i]);
        } else {
            pidfd = serve(data, (size_t)n, fds, nfds, &r);
        }
        char out[8 + sizeof r.message];
        size_t length = strlen(r.message);
        memcpy(out, &r.request_id, 4);
        memcpy(out + 4, &r.pid, 4);
        memcpy(out + 8, r.message, length);
        struct iovec oiov = {out, 8 + length};
        char ocontrol[CMSG_SPACE(sizeof(int))];
        struct msghdr reply = {.msg_iov = &oiov, .msg_iovlen = 1};
        if (pidfd >= 0) {
            reply.msg_control = ocontrol;
            reply.msg_controllen = sizeof ocontrol;
            struct cmsghdr *c = CMSG_FIRSTHDR(&reply);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pidfd, sizeof pidfd);
        }
        while (sendmsg(sock, &reply, MSG_NOSIGNAL) < 0 && errno == EINTR) {
        }
        if (pidfd >= 0) close(pidfd);
    }
}
