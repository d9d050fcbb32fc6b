/* Address space given back, under a `ulimit -v` (RLIMIT_AS) limit set by
 * the caller: allocates blocks of one size until malloc returns NULL,
 * frees them all, and allocates again (without malloc_trim). Blocks are
 * chained through their first word, so the program needs no memory of its
 * own. Every failure must be NULL with errno ENOMEM.
 *
 *   ./ulimit SIZE           two rounds of SIZE-byte blocks
 *   ./ulimit SIZE1 SIZE2    a round of SIZE1, then a round of SIZE2
 *
 * Prints "round1 BYTES", "round2 BYTES" (the bytes requested by the
 * allocations that succeeded) and "failures ENOMEM". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocates `size`-byte blocks until the first NULL; returns their chain
 * and adds their bytes to `*bytes`. */
static void *fill(size_t size, size_t *bytes) {
    void *head = NULL;
    size_t n = 0;
    for (;;) {
        errno = 0;
        void **p = malloc(size);
        if (!p) {
            if (errno != ENOMEM) {
                fprintf(stderr, "FAILED: malloc(%zu) returned NULL with errno %d (%s)\n", size,
                        errno, strerror(errno));
                exit(1);
            }
            break;
        }
        *p = head;
        head = p;
        n++;
    }
    *bytes = n * size;
    return head;
}

static void release(void *head) {
    while (head) {
        void *next = *(void **)head;
        free(head);
        head = next;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SIZE [SIZE2]\n", argv[0]);
        return 2;
    }
    size_t first = strtoull(argv[1], NULL, 10);
    size_t second = argc > 2 ? strtoull(argv[2], NULL, 10) : first;
    if (first < sizeof(void *) || second < sizeof(void *)) {
        fprintf(stderr, "sizes must hold a pointer\n");
        return 2;
    }
    size_t r1, r2;
    release(fill(first, &r1));
    void *kept = fill(second, &r2);
    release(kept);
    printf("round1 %zu\nround2 %zu\nfailures ENOMEM\n", r1, r2);
    return 0;
}
