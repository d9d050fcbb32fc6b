/* The hardened build's mitigations, one mode per run (capi/tests/hardened.rs
 * runs each under libslabpool-hardened.so and libslabpool.so):
 *
 *   overflow1   writes 1 byte past a malloc(48) block, then frees it
 *   underflow   writes 1 byte before a 48-byte block whose lower neighbour
 *               (another 48-byte block) is live, frees the block, then the
 *               neighbour (prints the neighbour as "pointer")
 *   zeroed      fills a malloc(48) block, frees it, reads it back through
 *               the dangling pointer before any malloc ("zeroed" or "kept
 *               BYTES")
 *   quarantine  frees a malloc(48) block, then mallocs and frees 48 bytes
 *               until malloc returns it ("reused after N frees")
 *   carve       mallocs 16 blocks of 48 bytes in a fresh process and prints
 *               their offsets from the first ("order D1 D2 ...")
 *   sizes       mallocs every size from 1 to 4 KiB (step 7), 64 blocks of
 *               each live at once, fills each whole and checks it before
 *               freeing ("sizes ok"; run with SLABPOOL_GUARD_SAMPLE=1, so
 *               that many are guarded blocks, which hold exactly what was
 *               asked plus the canary)
 *   errno       frees blocks of 16 B to 3 MB with errno set, enough that
 *               frees take the quarantine's and the cache's slow paths,
 *               and checks that no free changed errno ("errno kept")
 *
 * Pointers are printed as "pointer 0x..." before the call that should
 * abort. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the compiler from reasoning about a pointer's block. */
static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void say_pointer(void *p) {
    printf("pointer %p\n", p);
    fflush(stdout);
}

static int overflow1(void) {
    char *p = malloc(48);
    volatile char *v = opaque(p);
    v[48] ^= 1; /* flipped: the tag's byte may already hold any constant */
    say_pointer(p);
    free(p);
    return 0;
}

static int underflow(void) {
    enum { N = 64 };
    char *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(48);
    /* A block whose lower neighbour is one of ours: the blocks of a carve
     * are contiguous, whatever their order. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (blocks[j] + 64 == blocks[i]) {
                volatile char *v = opaque(blocks[i]);
                /* Flipped: the tag's byte may already be any constant. */
                v[-1] ^= (char)0xEE;
                free(blocks[i]);
                say_pointer(blocks[j]);
                free(blocks[j]);
                printf("freed\n");
                return 0;
            }
    printf("no neighbours\n");
    return 1;
}

static int zeroed(void) {
    char *p = malloc(48);
    memset(p, 0x5A, 48);
    free(p);
    volatile unsigned char *v = opaque(p);
    int kept = 0;
    /* The first word is the allocator's (a free block's link). */
    for (int i = 8; i < 48; i++)
        kept += v[i] != 0;
    if (kept)
        printf("kept %d\n", kept);
    else
        printf("zeroed\n");
    return 0;
}

static int quarantine(void) {
    char *p = malloc(48);
    free(p);
    for (int frees = 0; frees <= 1000; frees++) {
        char *q = malloc(48);
        if (q == p) {
            printf("reused after %d frees\n", frees);
            free(q);
            return 0;
        }
        free(q);
    }
    printf("not reused\n");
    return 0;
}

static int carve(void) {
    enum { N = 16 };
    char *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(48);
    printf("order");
    for (int i = 1; i < N; i++)
        printf(" %ld", (long)(blocks[i] - blocks[0]));
    printf("\n");
    return 0;
}

static int sizes(void) {
    enum { N = 64 };
    char *blocks[N];
    for (size_t n = 1; n <= 4096; n += 7) {
        for (int i = 0; i < N; i++) {
            blocks[i] = opaque(malloc(n));
            if (!blocks[i])
                return 1;
            memset(blocks[i], i + 1, n);
        }
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < n; k++)
                if ((unsigned char)blocks[i][k] != i + 1) {
                    printf("size %zu: byte %zu changed\n", n, k);
                    return 1;
                }
            free(blocks[i]);
        }
    }
    printf("sizes ok\n");
    return 0;
}

static int errno_kept(void) {
    static void *blocks[4096];
    size_t sizes[] = {16, 200, 5000, 100000, 3000000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i] <= 5000 ? 4096 : 64;
        for (size_t k = 0; k < n; k++)
            blocks[k] = opaque(malloc(sizes[i]));
        for (size_t k = 0; k < n; k++) {
            errno = 1234;
            free(blocks[k]);
            if (errno != 1234) {
                printf("free of %zu bytes changed errno to %d\n", sizes[i], errno);
                return 1;
            }
        }
    }
    printf("errno kept\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "overflow1"))
        return overflow1();
    if (!strcmp(mode, "underflow"))
        return underflow();
    if (!strcmp(mode, "zeroed"))
        return zeroed();
    if (!strcmp(mode, "quarantine"))
        return quarantine();
    if (!strcmp(mode, "carve"))
        return carve();
    if (!strcmp(mode, "sizes"))
        return sizes();
    if (!strcmp(mode, "errno"))
        return errno_kept();
    return 2;
}
