// C++'s operator new and delete under libslabpool.so: which library
// defines them, and the C++ semantics of failure (std::bad_alloc after the
// new_handler loop, null from the nothrow forms) for every form, plain,
// array and aligned. Prints "operators: ok" and the library that defines
// operator new; exit 1 on a failed check.
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {

void fail(const char *what) {
    std::printf("operators: FAILED: %s\n", what);
    std::exit(1);
}

// Far more than any machine: every allocator fails it.
const std::size_t HUGE_SIZE = std::size_t(1) << 60;

// Where results go, so that no call is optimised away.
void *volatile sink;

int handler_calls;

void handler() {
    // The second call gives up: the runtime then throws std::bad_alloc.
    if (++handler_calls == 2)
        std::set_new_handler(nullptr);
}

struct alignas(4096) Page {
    unsigned char bytes[4096];
};

template <class F> bool throws_bad_alloc(F f) {
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

} // namespace

int main() {
    Dl_info info;
    void *(*plain)(std::size_t) = &::operator new;
    if (!dladdr(reinterpret_cast<void *>(plain), &info))
        fail("dladdr");
    std::printf("operator new from %s\n", info.dli_fname);

    // Every form allocates, keeps its bytes and frees.
    char *a = new char[100];
    std::memset(a, 1, 100);
    delete[] a;
    long *b = new long(7);
    if (*b != 7)
        fail("new long");
    delete b;
    Page *p = new Page;
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(Page) != 0)
        fail("aligned new");
    p->bytes[4095] = 1;
    delete p;
    Page *q = new Page[3];
    if (reinterpret_cast<std::uintptr_t>(q) % alignof(Page) != 0)
        fail("aligned new[]");
    delete[] q;
    void *r = ::operator new(24, std::align_val_t(64), std::nothrow);
    if (!r || reinterpret_cast<std::uintptr_t>(r) % 64 != 0)
        fail("aligned nothrow new");
    ::operator delete(r, std::align_val_t(64), std::nothrow);
    void *s = ::operator new(40);
    ::operator delete(s, std::size_t(40));
    void *t = ::operator new[](0);
    if (!t)
        fail("new[] of 0 bytes");
    ::operator delete[](t);

    // Failure: bad_alloc from the throwing forms...
    if (!throws_bad_alloc([] { sink = ::operator new(HUGE_SIZE); }))
        fail("new of 2^60 bytes did not throw");
    if (!throws_bad_alloc([] { sink = ::operator new[](HUGE_SIZE); }))
        fail("new[] of 2^60 bytes did not throw");
    if (!throws_bad_alloc([] { sink = ::operator new(HUGE_SIZE, std::align_val_t(64)); }))
        fail("aligned new of 2^60 bytes did not throw");
    if (!throws_bad_alloc([] { sink = ::operator new[](HUGE_SIZE, std::align_val_t(64)); }))
        fail("aligned new[] of 2^60 bytes did not throw");
    // ... after calling the new_handler until it gives up ...
    std::set_new_handler(handler);
    if (!throws_bad_alloc([] { sink = ::operator new(HUGE_SIZE); }))
        fail("new with a handler did not throw");
    if (handler_calls != 2)
        fail("the new_handler was not called twice");
    // ... and null from the nothrow forms.
    if ((sink = ::operator new(HUGE_SIZE, std::nothrow)))
        fail("nothrow new of 2^60 bytes");
    if ((sink = ::operator new[](HUGE_SIZE, std::nothrow)))
        fail("nothrow new[] of 2^60 bytes");
    if ((sink = ::operator new(HUGE_SIZE, std::align_val_t(64), std::nothrow)))
        fail("aligned nothrow new of 2^60 bytes");
    if ((sink = ::operator new[](HUGE_SIZE, std::align_val_t(64), std::nothrow)))
        fail("aligned nothrow new[] of 2^60 bytes");

    // Still allocating after the failures.
    char *u = new char[1000];
    std::memset(u, 2, 1000);
    delete[] u;
    std::printf("operators: ok\n");
    return 0;
}
