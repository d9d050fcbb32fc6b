/* C++ new/delete through a FIFO: n `new char[]` of Pareto-distributed
 * sizes (8 B up, capped at 1 KiB; most small, a long tail), each written
 * at both ends and deleted 10,000 allocations later, checked. Prints a
 * checksum that depends only on n.
 *
 *   c++ -O2 fifo.cc -o fifo && LD_PRELOAD=... ./fifo 30000000 */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    std::deque<std::pair<char *, size_t>> fifo;
    uint64_t x = 88172645463325252ull, sum = 0;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double u = (double)(x >> 11) / 9007199254740992.0;
        size_t size = (size_t)(8.0 / (1.0 - u * 0.99));
        if (size > 1024)
            size = 1024;
        char *p = new char[size];
        p[0] = (char)i;
        p[size - 1] = (char)size;
        fifo.emplace_back(p, size);
        if (fifo.size() > 10000) {
            auto [q, len] = fifo.front();
            fifo.pop_front();
            sum += (unsigned char)q[0] + (unsigned char)q[len - 1];
            delete[] q;
        }
    }
    for (auto [q, len] : fifo)
        delete[] q;
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
