/* Sampled guarded allocations under the preload, one case per run:
 * `guard MODE [ARG]`, normally with SLABPOOL_GUARD_SAMPLE=1 (every
 * allocation guarded). The misused block is printed as "pointer %p"
 * (flushed) before the bad access, which must fault (SIGSEGV, with
 * slabpool's one-line report) or abort (SIGABRT, with its message);
 * reaching the end of such a case prints "not detected" and exits 0.
 * The other cases check what they do and exit 0 ("ok"), or 1 with a
 * message. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static char *announce(void *p) {
    printf("pointer %p\n", p);
    fflush(stdout);
    return opaque(p);
}

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__);      \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

/* Whether `p`, of `usable` bytes, ends at a page boundary (a guarded block). */
static int ends_at_page(void *p, size_t usable) {
    return ((uintptr_t)p + usable) % PAGE == 0;
}

/* ---- realloc, malloc_usable_size, calloc and aligned allocation ---- */

static void api(void) {
    char *p = malloc(10);
    CHECK(malloc_usable_size(p) == 16 && ends_at_page(p, 16));
    for (int i = 0; i < 10; i++)
        p[i] = (char)i;
    size_t len = 10;
    size_t sizes[] = {100, 700, 5000, 40000, 300000, 33, 3};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t size = sizes[k];
        char *q = realloc(p, size);
        CHECK(q != NULL && q != p);
        size_t usable = size <= 8 ? 8 : (size + 15) & ~(size_t)15;
        CHECK(malloc_usable_size(q) == usable && ends_at_page(q, usable));
        size_t keep = len < size ? len : size;
        for (size_t i = 0; i < keep; i++)
            CHECK(q[i] == (char)i);
        for (size_t i = keep; i < size; i++)
            q[i] = (char)i;
        p = q;
        len = size;
    }
    free(p);
    char *z = calloc(100, 30);
    CHECK(malloc_usable_size(z) == 3008 && ends_at_page(z, 3008));
    for (int i = 0; i < 3000; i++)
        CHECK(z[i] == 0);
    memset(z, 0xAB, 3008);
    free(z);
    z = calloc(100, 30); /* maybe the same slot again: zero still */
    for (int i = 0; i < 3000; i++)
        CHECK(z[i] == 0);
    free(z);
    size_t aligns[] = {32, 256, 4096};
    for (int k = 0; k < 3; k++) {
        void *a = NULL;
        CHECK(posix_memalign(&a, aligns[k], 100) == 0);
        CHECK((uintptr_t)a % aligns[k] == 0);
        size_t usable = (100 + aligns[k] - 1) & ~(aligns[k] - 1);
        CHECK(malloc_usable_size(a) == usable && ends_at_page(a, usable));
        free(a);
    }
    char *big = aligned_alloc(64, 100000);
    CHECK((uintptr_t)big % 64 == 0 && malloc_usable_size(big) == 100032);
    free(big);
    puts("ok");
}

/* ---- the program's own SIGSEGV handler ---- */

static char *own_page;
static volatile int own_faults;

static void own_handler(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    char *addr = info->si_addr;
    if (addr >= own_page && addr < own_page + PAGE) {
        own_faults++;
        mprotect(own_page, PAGE, PROT_READ | PROT_WRITE);
        return;
    }
    _exit(42);
}

static void handler(void) {
    struct sigaction before;
    sigaction(SIGSEGV, NULL, &before);
    /* slabpool installs its handler with its first guarded block. */
    CHECK(before.sa_handler == SIG_DFL);
    own_page = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(own_page != MAP_FAILED);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_sigaction = own_handler;
    act.sa_flags = SA_SIGINFO;
    sigemptyset(&act.sa_mask);
    CHECK(sigaction(SIGSEGV, &act, NULL) == 0);
    char *p = malloc(40);
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    CHECK(now.sa_sigaction != own_handler); /* slabpool's, in front */
    *(volatile char *)own_page = 5;
    CHECK(own_faults == 1 && *(volatile char *)own_page == 5);
    puts("own fault handled");
    announce(p)[48] = 1;
    puts("not detected");
}

/* ---- threads ---- */

enum { THREADS = 4, LIVE = 48, OPS = 4000, ALL = THREADS * LIVE };

static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t ranges[ALL][2];
static int nranges;
static volatile int failed;

static void add_range(void *p, size_t n) {
    uintptr_t a = (uintptr_t)p, b = a + n;
    pthread_mutex_lock(&ranges_lock);
    for (int i = 0; i < nranges; i++)
        if (!(b <= ranges[i][0] || ranges[i][1] <= a)) {
            fprintf(stderr, "overlap: %p+%zu\n", p, n);
            failed = 1;
        }
    ranges[nranges][0] = a;
    ranges[nranges][1] = b;
    nranges++;
    pthread_mutex_unlock(&ranges_lock);
}

static void remove_range(void *p) {
    pthread_mutex_lock(&ranges_lock);
    for (int i = 0; i < nranges; i++)
        if (ranges[i][0] == (uintptr_t)p) {
            ranges[i][0] = ranges[nranges - 1][0];
            ranges[i][1] = ranges[nranges - 1][1];
            nranges--;
            break;
        }
    pthread_mutex_unlock(&ranges_lock);
}

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static unsigned char tag(void *p, size_t i) {
    return (unsigned char)(((uintptr_t)p >> 4) + i * 7);
}

static void fill(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = tag(p, i);
}

static void verify(unsigned char *p, size_t n, void *as) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != tag(as, i)) {
            fprintf(stderr, "corrupted: %p byte %zu\n", (void *)p, i);
            failed = 1;
            return;
        }
}

static void *worker(void *arg) {
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (uintptr_t)arg;
    unsigned char *blocks[LIVE] = {0};
    size_t sizes[LIVE] = {0};
    for (int op = 0; op < OPS; op++) {
        int k = (int)(next(&x) % LIVE);
        uint64_t r = next(&x);
        size_t size = (r & 7) == 0 ? 1 + (r >> 8) % 200000 : 1 + (r >> 8) % 2000;
        if (blocks[k]) {
            verify(blocks[k], sizes[k], blocks[k]);
            remove_range(blocks[k]);
            if (r & 16) {
                unsigned char *q = realloc(blocks[k], size);
                size_t keep = sizes[k] < size ? sizes[k] : size;
                verify(q, keep, blocks[k]);
                if ((uintptr_t)q % (size <= 8 ? 8 : 16)) {
                    fprintf(stderr, "misaligned realloc %p\n", (void *)q);
                    failed = 1;
                }
                fill(q, size);
                add_range(q, size);
                blocks[k] = q;
                sizes[k] = size;
                continue;
            }
            free(blocks[k]);
            blocks[k] = NULL;
            continue;
        }
        unsigned char *p = (r & 32) ? calloc(1, size) : malloc(size);
        if (!p || (uintptr_t)p % (size <= 8 ? 8 : 16)) {
            fprintf(stderr, "bad block %p for %zu\n", (void *)p, size);
            failed = 1;
            return NULL;
        }
        if (r & 32)
            for (size_t i = 0; i < size; i++)
                if (p[i]) {
                    fprintf(stderr, "calloc not zero: %p\n", (void *)p);
                    failed = 1;
                    break;
                }
        fill(p, size);
        add_range(p, size);
        blocks[k] = p;
        sizes[k] = size;
    }
    for (int k = 0; k < LIVE; k++)
        if (blocks[k]) {
            verify(blocks[k], sizes[k], blocks[k]);
            remove_range(blocks[k]);
            free(blocks[k]);
        }
    return NULL;
}

static void threads(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(i + 1)) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(!failed && nranges == 0);
    puts("ok");
}

/* ---- how many blocks are guarded ---- */

/* Keeps `n` blocks of 700 bytes live and counts the guarded ones (704
 * usable bytes at a page's end; a block of the 768-byte class otherwise). */
static void count(long n) {
    char **blocks = calloc((size_t)n, sizeof *blocks);
    long guarded = 0;
    for (long i = 0; i < n; i++) {
        blocks[i] = malloc(700);
        size_t usable = malloc_usable_size(blocks[i]);
        CHECK(usable == 704 || usable == 768);
        if (usable == 704) {
            CHECK(ends_at_page(blocks[i], 704));
            guarded++;
        } else {
            memset(blocks[i], 1, 768); /* the whole class block is usable */
        }
    }
    for (long i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    printf("guarded %ld of %ld\n", guarded, n);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    if (strcmp(mode, "handler") == 0) {
        handler(); /* first: before any allocation of its own */
        return 0;
    }
    printf("mode %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "overflow") == 0) {
        char *p = malloc(40);
        CHECK(malloc_usable_size(p) == 48);
        p = announce(p);
        p[47] = 1;
        p[48] = 1;
    } else if (strcmp(mode, "overflow-large") == 0) {
        char *p = announce(malloc(100000));
        p[99999] = 1;
        p[100000] = 1;
    } else if (strcmp(mode, "underflow") == 0) {
        char *p = announce(malloc(40));
        char *page = (char *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1));
        page[0] = 1;
        page[-1] = 1;
    } else if (strcmp(mode, "uaf-read") == 0) {
        char *p = announce(malloc(200));
        free(p);
        printf("read %d\n", ((volatile char *)p)[10]);
    } else if (strcmp(mode, "uaf-write") == 0) {
        char *p = announce(calloc(1, 3000));
        free(p);
        ((volatile char *)p)[2999] = 1;
    } else if (strcmp(mode, "double-free") == 0) {
        void *p = announce(malloc(64));
        free(p);
        free(p);
    } else if (strcmp(mode, "double-free-later") == 0) {
        /* Freed, then many other blocks come and go: the slot stays freed. */
        void *p = announce(malloc(64));
        free(p);
        for (int i = 0; i < 1000; i++)
            free(opaque(malloc(64)));
        free(p);
    } else if (strcmp(mode, "realloc-freed") == 0) {
        void *p = announce(malloc(64));
        free(p);
        p = realloc(opaque(p), 100);
    } else if (strcmp(mode, "usable-freed") == 0) {
        void *p = announce(malloc(64));
        free(p);
        printf("%zu\n", malloc_usable_size(opaque(p)));
    } else if (strcmp(mode, "interior") == 0) {
        char *p = malloc(64);
        free(announce(p + 16));
    } else if (strcmp(mode, "api") == 0) {
        api();
        return 0;
    } else if (strcmp(mode, "threads") == 0) {
        threads();
        return 0;
    } else if (strcmp(mode, "count") == 0) {
        count(argc > 2 ? atol(argv[2]) : 1000);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    puts("not detected");
    return 0;
}
