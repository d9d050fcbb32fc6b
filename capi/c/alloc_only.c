/* A program that only allocates: n mallocs of 8 to 263 bytes (mixed
 * sizes), each written at its first byte, none freed. Prints a checksum
 * that depends only on n.
 *
 *   cc -O2 alloc_only.c -o alloc_only && LD_PRELOAD=... ./alloc_only 20000000 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
    uint32_t x = 1;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        size_t size = 8 + ((x >> 16) & 255);
        unsigned char *p = malloc(size);
        if (!p)
            return 1;
        p[0] = (unsigned char)size;
        sum += p[0];
    }
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
