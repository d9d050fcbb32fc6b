/* The case's side of the hardening probe (see hardening.c): reports on
 * fd 3 written with write(2) from stack buffers (no stdio, no allocation
 * once the heap may be damaged), the live blocks a case tracks and the
 * search for blocks handed out twice or overlapping (a heap sort: qsort may
 * allocate), and run_case, which runs one case and writes its "end" line. */
#define _GNU_SOURCE
#include "hardening.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* ---- reporting without allocation -------------------------------------- */

int report_fd = REPORT_FD;

void m_s(struct msg *m, const char *s) {
    while (*s && m->n < sizeof m->b - 1)
        m->b[m->n++] = *s++;
}

void m_u(struct msg *m, uint64_t v) {
    char t[24];
    int i = 0;
    do
        t[i++] = (char)('0' + v % 10);
    while ((v /= 10) && i < 24);
    while (i && m->n < sizeof m->b - 1)
        m->b[m->n++] = t[--i];
}

void m_x(struct msg *m, uintptr_t v) {
    char t[20];
    int i = 0;
    do
        t[i++] = "0123456789abcdef"[v & 15];
    while ((v >>= 4) && i < 20);
    m_s(m, "0x");
    while (i && m->n < sizeof m->b - 1)
        m->b[m->n++] = t[--i];
}

void m_send(struct msg *m) {
    m->b[m->n++] = '\n';
    ssize_t done = 0;
    while (done < (ssize_t)m->n) {
        ssize_t w = write(report_fd, m->b + done, m->n - (size_t)done);
        if (w <= 0)
            break;
        done += w;
    }
}

static void say(const char *s) {
    struct msg m = {.n = 0};
    m_s(&m, s);
    m_send(&m);
}

int effect_seen;
char effect_text[480];
const char *outcome;

void effect(struct msg *m) {
    struct msg line = {.n = 0};
    m->b[m->n] = 0;
    m_s(&line, "effect ");
    m_s(&line, m->b);
    m_send(&line);
    if (!effect_seen) {
        effect_seen = 1;
        memcpy(effect_text, m->b, m->n + 1);
    }
}

void effect_s(const char *s) {
    struct msg m = {.n = 0};
    m_s(&m, s);
    effect(&m);
}

/* The program's own bad access starts / has completed. */
void bad_begin(void) {
    say("B");
}

void bad_end(void) {
    say("A");
}

_Noreturn void harness_error(const char *why) {
    struct msg m = {.n = 0};
    m_s(&m, "end error\t");
    m_s(&m, why);
    m_send(&m);
    _exit(2);
}

/* ---- helpers ---------------------------------------------------------- */

void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

char *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p)
        harness_error("malloc returned NULL for a small request");
    return opaque(p);
}

/* Live blocks the case holds, to find a block handed out twice or
 * overlapping another (sorted copies; no qsort, which may allocate). */
struct blk tracked[MAX_TRACKED];
size_t ntracked;
static struct blk sorted[MAX_TRACKED];

void track(const void *p, size_t len) {
    if (ntracked == MAX_TRACKED)
        harness_error("too many tracked blocks");
    tracked[ntracked++] = (struct blk){(uintptr_t)p, len ? len : 1};
}

static void sift(struct blk *a, size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1].at > a[child].at)
            child++;
        if (a[root].at >= a[child].at)
            return;
        struct blk t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void sort_blks(struct blk *a, size_t n) {
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (size_t end = n; end-- > 1;) {
        struct blk t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift(a, 0, end);
    }
}

/* Effect: two tracked (live) blocks are the same or overlap. */
void check_overlaps(void) {
    memcpy(sorted, tracked, ntracked * sizeof *tracked);
    sort_blks(sorted, ntracked);
    for (size_t i = 1; i < ntracked; i++) {
        struct blk a = sorted[i - 1], b = sorted[i];
        if (b.at < a.at + a.len) {
            struct msg m = {.n = 0};
            if (a.at == b.at) {
                m_s(&m, "malloc handed out ");
                m_x(&m, a.at);
                m_s(&m, " twice");
            } else {
                m_s(&m, "live blocks overlap: ");
                m_x(&m, a.at);
                m_s(&m, " (");
                m_u(&m, a.len);
                m_s(&m, " B) and ");
                m_x(&m, b.at);
            }
            effect(&m);
            return;
        }
    }
}

/* Allocates and tracks `count` blocks of `size` (kept live). */
void take(size_t size, size_t count) {
    for (size_t i = 0; i < count; i++)
        track(xmalloc(size), size);
}

/* After an invalid free of [lo, lo + len): takes blocks of several sizes;
 * effect if one lies in that region or overlaps another live block. */
void probe_handout(uintptr_t lo, size_t len) {
    static const size_t sizes[] = {16, 48, 64, 128, 1024};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int i = 0; i < 256; i++) {
            char *p = xmalloc(sizes[s]);
            if ((uintptr_t)p < lo + len && lo < (uintptr_t)p + sizes[s]) {
                struct msg m = {.n = 0};
                m_s(&m, "malloc handed out ");
                m_x(&m, (uintptr_t)p);
                m_s(&m, ", in the region freed by the invalid free");
                effect(&m);
            }
            track(p, sizes[s]);
        }
    check_overlaps();
}

/* ---- one case (in its own process) ------------------------------------- */

/* Reports "from PATH", the file that serves malloc. */
static void report_from(void) {
    void *(*volatile fn)(size_t) = malloc;
    Dl_info info;
    struct msg m = {.n = 0};
    m_s(&m, "from ");
    if (dladdr((void *)fn, &info) && info.dli_fname)
        m_s(&m, info.dli_fname);
    else
        m_s(&m, "?");
    m_send(&m);
}

int run_case(int index) {
    if (fcntl(REPORT_FD, F_GETFD) == -1)
        report_fd = STDOUT_FILENO;
    /* No core files: many cases die on purpose. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    report_from();
    probes[index].run();
    struct msg m = {.n = 0};
    m_s(&m, "end ");
    if (outcome) {
        m_s(&m, outcome);
        m_s(&m, "\t");
    } else if (effect_seen) {
        m_s(&m, "missed\t");
        m_s(&m, effect_text);
    } else {
        m_s(&m, "no effect\t");
    }
    m_send(&m);
    return 0;
}
