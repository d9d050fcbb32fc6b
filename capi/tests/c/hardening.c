/* Hardening probes: heap misuse an attacker or an unlucky C
 * programmer commits, one case per process, classified as the allocator
 * under test reacted. Works under any malloc (glibc, slabpool, peers).
 *
 *   hardening list              one line per case: "case\tINDEX\tNAME\tRULE"
 *   hardening run [LIB [RUNS]]  runs every case RUNS times (default 1), each
 *                               in a fresh process (fork, then exec of this
 *                               program) with LD_PRELOAD=LIB (none: glibc),
 *                               and prints "result\tINDEX\tRUN\tNAME\tCLASS
 *                               \tDETAIL" for each run; the driver itself is
 *                               never preloaded
 *   hardening case INDEX        runs one case (reports to fd 3, or stdout)
 *
 * A case reports on fd 3 with write(2) only (no stdio, no allocation once
 * the heap may be damaged): "from PATH" (the file serving malloc), "B" and
 * "A" right before and right after the program's own bad memory access
 * (never around an allocator call), "effect TEXT" when it sees the bad
 * operation's effect (duplicate or overlapping blocks, a static handed
 * out, a neighbour's bytes changed, ...), and last "end CLASS\tDETAIL".
 * The driver classifies each run:
 *   caught (abort)   killed by SIGABRT (or another signal with a message
 *                    from the allocator on stderr)
 *   caught (fault)   SIGSEGV/SIGBUS between "B" and "A": the bad access
 *                    itself faulted
 *   caught (message) ran to the end, but the allocator reported the
 *                    misuse on stderr
 *   caught (delayed), caught (ENOMEM)   the case's own rule (see RULE)
 *   missed           ran to the end, no report, the effect was seen
 *   no effect        ran to the end, no report, no effect seen
 *   crash            SIGSEGV/SIGBUS (or another signal, silently) outside
 *                    the bad access: the allocator fell over
 *   hang             still running after CASE_SECONDS (SIGALRM)
 *   error            the harness failed (malloc not served by LIB, ...)
 * Each case's RULE says what counts as its effect.
 *
 * This file is the driver and main; the cases are in hardening_cases.c,
 * the case's side of the report in hardening_report.c. Build the three
 * with -O2 -fno-builtin -pthread: without builtins the compiler cannot
 * drop or reorder the malloc/free calls and bad accesses under test. */
#define _GNU_SOURCE
#include "hardening.h"

#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CASE_SECONDS = 10 };

/* ---- the driver (never preloaded) ---------------------------------------- */

/* Reads all of fd (from its start) into buf, NUL-terminated. */
static size_t slurp(int fd, char *buf, size_t cap) {
    size_t len = 0;
    ssize_t got;
    lseek(fd, 0, SEEK_SET);
    while (len < cap - 1 && (got = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = 0;
    return len;
}

/* The first line of s (at most 160 characters, tabs made spaces) into out. */
static void first_line(const char *s, char *out, size_t cap) {
    size_t n = 0;
    while (*s == '\n')
        s++;
    while (s[n] && s[n] != '\n' && n < cap - 1 && n < 160) {
        out[n] = s[n] == '\t' ? ' ' : s[n];
        n++;
    }
    out[n] = 0;
}

static int same_file(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

static void classify(const char *lib, int status, char *report, const char *err, char *class,
                     char *detail, size_t cap) {
    char from[PATH_MAX] = "", first_effect[512] = "", end[512] = "", message[256];
    int in_access = 0;
    first_line(err, message, sizeof message);
    for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "from ", 5) == 0)
            snprintf(from, sizeof from, "%s", line + 5);
        else if (strcmp(line, "B") == 0)
            in_access = 1;
        else if (strcmp(line, "A") == 0)
            in_access = 0;
        else if (strncmp(line, "effect ", 7) == 0 && !first_effect[0])
            snprintf(first_effect, sizeof first_effect, "%s", line + 7);
        else if (strncmp(line, "end ", 4) == 0)
            snprintf(end, sizeof end, "%s", line + 4);
    }
    detail[0] = 0;
    if (lib ? !same_file(from, lib) : !strstr(from, "libc.so")) {
        strcpy(class, "error");
        snprintf(detail, cap, "malloc served by '%s', not by %s", from, lib ? lib : "glibc");
        return;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = sigabbrev_np(sig);
        if (sig == SIGALRM) {
            strcpy(class, "hang");
            snprintf(detail, cap, "still running after %d s", CASE_SECONDS);
        } else if (sig == SIGABRT) {
            strcpy(class, "caught (abort)");
            snprintf(detail, cap, "%s", message[0] ? message : "SIGABRT, nothing on stderr");
        } else if ((sig == SIGSEGV || sig == SIGBUS) && in_access) {
            strcpy(class, "caught (fault)");
            snprintf(detail, cap, "SIG%s at the bad access%s%s", name, message[0] ? "; " : "",
                     message);
        } else if (sig != SIGSEGV && sig != SIGBUS && message[0]) {
            strcpy(class, "caught (abort)");
            snprintf(detail, cap, "SIG%s: %s", name ? name : "?", message);
        } else {
            strcpy(class, "crash");
            snprintf(detail, cap, "SIG%s outside the bad access%s%s%s%s", name ? name : "?",
                     first_effect[0] ? ", after: " : "", first_effect, message[0] ? "; " : "",
                     message);
        }
        return;
    }
    char *tab = strchr(end, '\t');
    if (!WIFEXITED(status) || !tab) {
        strcpy(class, "error");
        snprintf(detail, cap, "exit status %d without a result; %s",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, message);
        return;
    }
    *tab = 0;
    if (strcmp(end, "error") == 0) {
        strcpy(class, "error");
        snprintf(detail, cap, "%s", tab + 1);
    } else if (message[0]) {
        strcpy(class, "caught (message)");
        snprintf(detail, cap, "%s%s%s", message, first_effect[0] ? "; then: " : "",
                 first_effect);
    } else {
        strcpy(class, end);
        snprintf(detail, cap, "%s", tab + 1);
    }
}

static int move_high(int fd) {
    int high = fcntl(fd, F_DUPFD, 10);
    close(fd);
    return high;
}

/* Runs case `index` once in a fresh process; 0 with its classification,
 * or -1 when the driver itself failed. */
static int run_one(const char *lib, int index, char *class, char *detail, size_t cap) {
    static char report[1 << 16], err[1 << 16];
    int rep = move_high(memfd_create("hardening-report", 0));
    int errfd = move_high(memfd_create("hardening-stderr", 0));
    if (rep < 0 || errfd < 0) {
        perror("memfd_create");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        int null = move_high(open("/dev/null", O_RDWR));
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(errfd, STDERR_FILENO);
        dup2(rep, REPORT_FD);
        close(null);
        close(rep);
        close(errfd);
        if (lib)
            setenv("LD_PRELOAD", lib, 1);
        else
            unsetenv("LD_PRELOAD");
        setenv("LIBC_FATAL_STDERR_", "1", 1);
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        alarm(CASE_SECONDS);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", index);
        execl("/proc/self/exe", "hardening", "case", arg, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            return -1;
        }
    slurp(rep, report, sizeof report);
    slurp(errfd, err, sizeof err);
    close(rep);
    close(errfd);
    classify(lib, status, report, err, class, detail, cap);
    return 0;
}

/* Every case `runs` times (outcomes that depend on the address layout
 * show as different classes). */
static int run_all(const char *lib, int runs) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("glibc %s\n", gnu_get_libc_version());
    for (int i = 0; i < nprobes; i++)
        for (int r = 0; r < runs; r++) {
            char class[64], detail[1024];
            if (run_one(lib, i, class, detail, sizeof detail))
                return 1;
            printf("result\t%d\t%d\t%s\t%s\t%s\n", i, r, probes[i].name, class, detail);
        }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        for (int i = 0; i < nprobes; i++)
            printf("case\t%d\t%s\t%s\n", i, probes[i].name, probes[i].rule);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "run") == 0) {
        int runs = argc >= 4 ? atoi(argv[3]) : 1;
        if (runs < 1)
            return 2;
        return run_all(argc >= 3 && strcmp(argv[2], "none") != 0 ? argv[2] : NULL, runs);
    }
    if (argc >= 3 && strcmp(argv[1], "case") == 0) {
        int index = atoi(argv[2]);
        if (index < 0 || index >= nprobes)
            return 2;
        return run_case(index);
    }
    fprintf(stderr, "usage: hardening list | run [LIB|none [RUNS]] | case INDEX\n");
    return 2;
}
