/* Requests the machine cannot back fail at once with NULL and ENOMEM, as
 * glibc's do, rather than succeed and die on first touch: malloc(2^43)
 * (8 TiB), fifteen times in a row (none may succeed, each a reason to keep
 * the last ones), and posix_memalign, aligned_alloc and memalign of 2^43
 * bytes, and of 2^40, at an alignment of 2^40. The caller runs this only
 * where the kernel's overcommit policy refuses such mappings (mode 0 or 2,
 * less than 1 TiB of RAM and swap).
 *
 * Then an alignment of 2^40 for 100 bytes, which can be backed: prints
 * "aligned 2^40 small: ok VMSIZE_GROWTH_KB" when it succeeds (aligned,
 * writable) and "aligned 2^40 small: failed" otherwise (glibc reserves
 * size plus alignment, so it fails there). Prints "impossible: ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAILED: " __VA_ARGS__);                                     \
            fprintf(stderr, " (errno %d)\n", errno);                                     \
            failures++;                                                                  \
        }                                                                                \
    } while (0)

/* Keeps the compiler from folding a request it can see is impossible. */
static size_t opaque(size_t n) {
    volatile size_t v = n;
    return v;
}

static long vm_size_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

int main(void) {
    const size_t tib8 = opaque((size_t)1 << 43), tib = opaque((size_t)1 << 40);
    const size_t align = opaque((size_t)1 << 40);
    void *kept[15];
    int got = 0;
    for (int i = 0; i < 15; i++) {
        errno = 0;
        kept[i] = malloc(tib8);
        got += kept[i] != NULL;
        CHECK(kept[i] == NULL && errno == ENOMEM, "malloc(2^43), attempt %d", i + 1);
    }
    printf("malloc(2^43): %d of 15 succeeded\n", got);
    for (int i = 0; i < 15; i++)
        free(kept[i]);
    size_t sizes[] = {tib8, tib};
    for (int i = 0; i < 2; i++) {
        size_t n = sizes[i];
        void *out = (void *)1;
        int rc = posix_memalign(&out, align, n);
        CHECK(rc == ENOMEM && out == (void *)1, "posix_memalign(2^40, %zu) = %d", n, rc);
        if (rc == 0)
            free(out);
        errno = 0;
        void *p = aligned_alloc(align, n);
        CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(2^40, %zu)", n);
        free(p);
        errno = 0;
        p = memalign(align, n);
        CHECK(p == NULL && errno == ENOMEM, "memalign(2^40, %zu)", n);
        free(p);
        errno = 0;
        p = calloc(1, n);
        CHECK(p == NULL && errno == ENOMEM, "calloc(1, %zu)", n);
        free(p);
    }
    long before = vm_size_kb();
    void *small = NULL;
    if (posix_memalign(&small, align, 100) == 0) {
        long after = vm_size_kb();
        CHECK(((uintptr_t)small & (align - 1)) == 0, "posix_memalign(2^40, 100) misaligned");
        memset(small, 7, 100);
        printf("aligned 2^40 small: ok %ld\n", after - before);
        free(small);
    } else {
        printf("aligned 2^40 small: failed\n");
    }
    if (failures)
        return 1;
    printf("impossible: ok\n");
    return 0;
}
