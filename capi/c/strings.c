/* realloc and calloc: 512 strings, each grown by appends of 1 to 64 bytes
 * with a realloc per append until it passes 4 KiB, then freed and started
 * again; and 512 arrays of 1 to 256 ints, replaced every fourth step by a
 * fresh calloc, whose zeroes are checked. Each step picks a random slot.
 * Prints a checksum that depends only on n.
 *
 *   cc -O2 strings.c -o strings && LD_PRELOAD=... ./strings 20000000 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 512, LIMIT = 4096 };

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    static char *str[SLOTS];
    static size_t len[SLOTS];
    static unsigned *arr[SLOTS];
    static size_t count[SLOTS];
    uint64_t x = 0x9E3779B97F4A7C15ull, sum = 0;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t s = (size_t)(x >> 20) % SLOTS;
        size_t add = 1 + (size_t)(x >> 40) % 64;
        if (len[s] + add > LIMIT) {
            sum += (unsigned char)str[s][len[s] - 1] + len[s];
            free(str[s]);
            str[s] = NULL;
            len[s] = 0;
        }
        char *p = realloc(str[s], len[s] + add + 1);
        if (!p)
            return 1;
        memset(p + len[s], 'a' + (int)(i % 26), add);
        len[s] += add;
        p[len[s]] = 0;
        str[s] = p;
        if (i % 4 == 0) {
            size_t a = (size_t)(x >> 52) % SLOTS, c = 1 + (size_t)(x >> 8) % 256;
            if (arr[a])
                sum += arr[a][0] + arr[a][count[a] - 1];
            free(arr[a]);
            unsigned *q = calloc(c, sizeof *q);
            if (!q || q[0] != 0 || q[c - 1] != 0 || q[c / 2] != 0)
                return 1;
            q[0] = (unsigned)i;
            q[c - 1] = (unsigned)c;
            arr[a] = q;
            count[a] = c;
        }
    }
    for (size_t s = 0; s < SLOTS; s++) {
        free(str[s]);
        free(arr[s]);
    }
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
