/* Shared by the hardening probe's files (see hardening.c): the report a
 * case writes on fd 3 without allocating, the bookkeeping of live blocks,
 * and the table of cases. */
#ifndef HARDENING_H
#define HARDENING_H

#include <stddef.h>
#include <stdint.h>

enum { REPORT_FD = 3 };

/* ---- a report line, built on the stack (hardening_report.c) ---- */

struct msg {
    char b[480];
    size_t n;
};

void m_s(struct msg *m, const char *s); /* appends a string */
void m_u(struct msg *m, uint64_t v);    /* ... a decimal number */
void m_x(struct msg *m, uintptr_t v);   /* ... 0x and hex digits */
void m_send(struct msg *m);             /* writes the line to the report */

/* The effect of the bad operation, seen by the case ("effect TEXT"). */
void effect(struct msg *m);
void effect_s(const char *s);
/* The program's own bad access starts ("B") / has completed ("A"). */
void bad_begin(void);
void bad_end(void);
/* The harness itself failed: "end error", exit 2. */
_Noreturn void harness_error(const char *why);

/* Where reports go: fd 3, or stdout when fd 3 is not open. */
extern int report_fd;
/* The first effect seen, and an outcome the case's own rule sets. */
extern int effect_seen;
extern char effect_text[480];
extern const char *outcome;

/* ---- helpers ---- */

/* p, hidden from the optimiser. */
void *opaque(void *p);
/* malloc(n), aborting the harness on NULL. */
char *xmalloc(size_t n);

/* Live blocks the case holds. */
struct blk {
    uintptr_t at;
    size_t len;
};
enum { MAX_TRACKED = 20000 };
extern struct blk tracked[MAX_TRACKED];
extern size_t ntracked;
void track(const void *p, size_t len);
/* Effect if two tracked blocks are the same or overlap. */
void check_overlaps(void);
/* Takes and tracks `count` blocks of `size`. */
void take(size_t size, size_t count);
/* After an invalid free of [lo, lo + len): takes blocks of several sizes;
 * effect if one lies in that region or overlaps another live block. */
void probe_handout(uintptr_t lo, size_t len);

/* Runs case `index` in this process and writes its "end" line. */
int run_case(int index);

/* ---- the cases (hardening_cases.c) ---- */

struct probe {
    const char *name;
    /* What the case does and when it counts as missed. */
    const char *rule;
    void (*run)(void);
};
extern const struct probe probes[];
extern const int nprobes;

#endif
