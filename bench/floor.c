/*
 * The floor under job starts: one loop doing, job after job, only the
 * kernel work that a job the server starts needs, in C, with nothing else
 * (bench/floor.py builds it, runs several at once, and says what it did).
 *
 * Per job, step by step as the server's spawner does it
 * (worker/executor/spawn.c: clone_job, child, run_init, become_command):
 * its stdin, output and report pipes; its cgroup directories made and their
 * limits written; clone3 with a pidfd, born in its v2 cgroup, in new PID and
 * mount namespaces; in the child its OOM score, its mounts made private,
 * /proc and a tmpfs /tmp mounted, its v1 cgroups joined; the namespace's
 * init (a session, its name, death with its parent, every signal blocked,
 * its descriptors closed) clones the command, which takes a session and
 * its stdio, closes the rest, resets its signals, becomes another uid,
 * changes to / and execs /bin/true with a one-variable environment; the
 * init reports the start and the exit status on the report pipe and reaps
 * until nothing is left. Then the loop awaits the exit on the pidfd, reaps
 * it, reads the report to its end, reads the counters and removes the
 * directories.
 *
 * Usage: floor SECONDS LOOP UID NAMESPACES SPEC...
 *   UID -1: no uid switch; NAMESPACES 0 or 1
 *   SPEC born=DIR  a directory made under DIR per job, the child born in it
 *        join=DIR  a directory made under DIR per job, joined by the child
 *        set=FILE=VALUE  written to the last directory's FILE before the start
 *        read=FILE       read from the last directory's FILE after the end
 * Prints the number of jobs started; at the first failure, says what failed
 * on stderr and exits 1, its directories removed where they can be.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define W_CLONE_NEWNS 0x00020000ULL
#define W_CLONE_NEWPID 0x20000000ULL
#define W_CLONE_PIDFD 0x00001000ULL
#define W_CLONE_INTO_CGROUP 0x200000000ULL

#define MAX_DIRS 8
#define MAX_FILES 16

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

struct dir {
    const char *base;
    int born, made;
    const char *set[MAX_FILES], *read[MAX_FILES];
    int sets, reads;
    char path[512];
};

static struct dir dirs[MAX_DIRS];
static int ndirs, uid = -1, namespaces;
static char *env[] = {"PATH=/usr/bin:/bin", NULL};

static void clean_up(void) {
    for (int i = ndirs - 1; i >= 0; i--)
        if (dirs[i].made) rmdir(dirs[i].path);
}

static _Noreturn void die(const char *what, const char *where) {
    fprintf(stderr, "floor: %s %s: %s\n", what, where, strerror(errno));
    clean_up();
    exit(1);
}

static int put(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n < 0 ? -1 : 0;
}

/* Close every descriptor above 2 but a and b (each above 2, or -1). */
static void close_all_but(int a, int b) {
    int low = a < b ? a : b, high = a < b ? b : a;
    unsigned next = 3;
    for (int keep = low < 3 ? high : low; keep >= 3; keep = keep == high ? -1 : high) {
        if ((unsigned)keep > next) syscall(SYS_close_range, next, (unsigned)keep - 1, 0);
        next = (unsigned)keep + 1;
    }
    syscall(SYS_close_range, next, ~0U, 0);
}

static _Noreturn void command(int in, int out, int report) {
    setsid();
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(121);
    close_all_but(report, -1);
    fcntl(report, F_SETFD, FD_CLOEXEC);
    for (int sig = 1; sig < 32; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (uid >= 0 && (syscall(SYS_setgroups, 0, NULL) != 0 ||
                     syscall(SYS_setresgid, uid, uid, uid) != 0 ||
                     syscall(SYS_setresuid, uid, uid, uid) != 0))
        _exit(122);
    if (chdir("/") != 0) _exit(123);
    char *argv[] = {"/bin/true", NULL};
    execve(argv[0], argv, env);
    _exit(127);
}

static _Noreturn void init(int in, int out, int report) {
    setsid();
    prctl(PR_SET_NAME, "worker-init", 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t every;
    sigfillset(&every);
    sigprocmask(SIG_BLOCK, &every, NULL);
    int errors[2];
    if (pipe2(errors, O_CLOEXEC) != 0) _exit(124);
    struct clone_args_ args = {.exit_signal = SIGCHLD};
    long main_pid = syscall(SYS_clone3, &args, sizeof args);
    if (main_pid < 0) _exit(125);
    if (main_pid == 0) {
        close(errors[0]);
        command(in, out, errors[1]);
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    close(null);
    close_all_but(report, errors[0]); /* only the job may hold its pipes */
    char said[512];
    ssize_t got = read(errors[0], said, sizeof said); /* EOF: the exec happened */
    close(errors[0]);
    if (write(report, got > 0 ? "E\n" : "S\n", 2) != 2) _exit(126);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&every, &info);
        if (sig != SIGCHLD) continue;
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid < 0) _exit(0); /* nothing of the job is left */
            if (pid == 0) break;
            if (pid == main_pid) {
                char line[32];
                int n = snprintf(line, sizeof line, "X%d\n", status);
                if (write(report, line, (size_t)n) != n) _exit(126);
            }
        }
    }
}

static _Noreturn void child(int in, int out, int report) {
    if (put("/proc/self/oom_score_adj", "500") != 0) _exit(120);
    if (namespaces) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
            _exit(120);
    }
    char procs[600], me[32];
    snprintf(me, sizeof me, "%d", (int)getpid());
    for (int i = 0; i < ndirs; i++) {
        if (dirs[i].born) continue;
        snprintf(procs, sizeof procs, "%s/cgroup.procs", dirs[i].path);
        if (put(procs, me) != 0) _exit(120);
    }
    if (namespaces) init(in, out, report);
    command(in, out, report);
}

static void rmdir_when_empty(struct dir *d) {
    /* A cgroup can stay busy for a moment after its last process is reaped. */
    for (int tries = 0; rmdir(d->path) != 0; tries++) {
        if (errno != EBUSY || tries == 1000) die("cannot remove", d->path);
        usleep(1000);
    }
    d->made = 0;
}

static void one(int loop, long n) {
    char file[600], buffer[4096];
    int born = -1;
    for (int i = 0; i < ndirs; i++) {
        struct dir *d = &dirs[i];
        snprintf(d->path, sizeof d->path, "%s/floor-%d-%ld", d->base, loop, n);
        if (mkdir(d->path, 0755) != 0) die("cannot make", d->path);
        d->made = 1;
        for (int k = 0; k < d->sets; k++) {
            const char *eq = strchr(d->set[k], '=');
            snprintf(file, sizeof file, "%s/%.*s", d->path, (int)(eq - d->set[k]), d->set[k]);
            if (put(file, eq + 1) != 0) die("cannot write", file);
        }
        if (d->born && (born = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            die("cannot open", d->path);
    }
    int in[2], out[2], report[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0)
        die("cannot make", "pipes");
    int pidfd = -1;
    struct clone_args_ args = {.flags = W_CLONE_PIDFD, .pidfd = (uint64_t)(uintptr_t)&pidfd,
                               .exit_signal = SIGCHLD};
    if (namespaces) args.flags |= W_CLONE_NEWPID | W_CLONE_NEWNS;
    if (born >= 0) {
        args.flags |= W_CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)born;
    }
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) die("cannot", "clone3");
    if (pid == 0) child(in[0], out[1], report[1]);
    close(in[0]);
    close(out[1]);
    close(report[1]);
    struct pollfd exited = {pidfd, POLLIN, 0};
    while (poll(&exited, 1, -1) < 0)
        if (errno != EINTR) die("cannot poll", "a pidfd");
    int status;
    if (waitpid((pid_t)pid, &status, 0) < 0) die("cannot", "reap");
    size_t got = 0;
    for (ssize_t r; got < sizeof buffer - 1 &&
                    (r = read(report[0], buffer + got, sizeof buffer - 1 - got)) != 0;) {
        if (r < 0 && errno != EINTR) die("cannot read", "a report");
        if (r > 0) got += (size_t)r;
    }
    buffer[got] = 0;
    const char *want = namespaces ? "S\nX0\n" : "";
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strcmp(buffer, want) != 0) {
        fprintf(stderr, "floor: a job failed (wait status %d, report \"%s\")\n", status, buffer);
        clean_up();
        exit(1);
    }
    close(pidfd);
    close(in[1]);
    close(out[0]);
    close(report[0]);
    if (born >= 0) close(born);
    for (int i = 0; i < ndirs; i++) {
        struct dir *d = &dirs[i];
        for (int k = 0; k < d->reads; k++) {
            snprintf(file, sizeof file, "%s/%s", d->path, d->read[k]);
            int fd = open(file, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || read(fd, buffer, sizeof buffer) < 0) die("cannot read", file);
            close(fd);
        }
    }
    for (int i = ndirs - 1; i >= 0; i--) rmdir_when_empty(&dirs[i]);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: floor SECONDS LOOP UID NAMESPACES SPEC...\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    int loop = atoi(argv[2]);
    uid = atoi(argv[3]);
    namespaces = atoi(argv[4]);
    for (int i = 5; i < argc; i++) {
        char *spec = argv[i];
        struct dir *last = ndirs ? &dirs[ndirs - 1] : NULL;
        if (!strncmp(spec, "born=", 5) || !strncmp(spec, "join=", 5)) {
            if (ndirs == MAX_DIRS) return 2;
            dirs[ndirs].base = spec + 5;
            dirs[ndirs++].born = spec[0] == 'b';
        } else if (!strncmp(spec, "set=", 4) && last && last->sets < MAX_FILES &&
                   strchr(spec + 4, '=')) {
            last->set[last->sets++] = spec + 4;
        } else if (!strncmp(spec, "read=", 5) && last && last->reads < MAX_FILES) {
            last->read[last->reads++] = spec + 5;
        } else {
            fprintf(stderr, "floor: bad spec %s\n", spec);
            return 2;
        }
    }
    struct timespec begin, now;
    clock_gettime(CLOCK_MONOTONIC, &begin);
    long n = 0;
    do {
        one(loop, n++);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - begin.tv_sec) + (now.tv_nsec - begin.tv_nsec) / 1e9 < seconds);
    printf("%ld\n", n);
    return 0;
}
