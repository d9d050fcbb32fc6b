// new/delete, std::vector, std::string and std::map across threads on
// libslabpool.so: producers build strings and vectors that consumers check
// and destroy (cross-thread frees), plus aligned new and arrays. Prints
// the library providing malloc and a checksum that does not depend on the
// allocator ("containers: ok <sum>"); exit 1 on a mismatch.
#include <dlfcn.h>

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Message {
    std::string text;
    std::vector<std::uint64_t> values;
    std::map<int, std::string> tags;
};

class Channel {
  public:
    void push(std::unique_ptr<Message> m) {
        std::lock_guard<std::mutex> g(lock_);
        queue_.push_back(std::move(m));
        ready_.notify_one();
    }
    std::unique_ptr<Message> pop() {
        std::unique_lock<std::mutex> g(lock_);
        ready_.wait(g, [&] { return !queue_.empty(); });
        auto m = std::move(queue_.front());
        queue_.pop_front();
        return m;
    }

  private:
    std::mutex lock_;
    std::condition_variable ready_;
    std::deque<std::unique_ptr<Message>> queue_;
};

std::string make_text(std::uint64_t i) {
    std::string s = "message-" + std::to_string(i) + ":";
    for (std::uint64_t k = 0; k < i % 97; ++k)
        s += static_cast<char>('a' + (i + k) % 26);
    return s;
}

void fail(const char *what) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    std::exit(1);
}

constexpr int kProducers = 2;
constexpr int kPerProducer = 60000;

void produce(Channel &ch, int id) {
    for (int n = 0; n < kPerProducer; ++n) {
        std::uint64_t i = static_cast<std::uint64_t>(id) * kPerProducer + n;
        auto m = std::make_unique<Message>();
        m->text = make_text(i);
        m->values.reserve(1);
        for (std::uint64_t k = 0; k < i % 300; ++k)
            m->values.push_back(i * k);  // grows by reallocation
        for (int k = 0; k < static_cast<int>(i % 5); ++k)
            m->tags[k] = std::to_string(i + k);
        ch.push(std::move(m));
    }
    ch.push(nullptr);
}

std::uint64_t consume(Channel &ch) {
    std::uint64_t sum = 0;
    int done = 0;
    while (done < kProducers) {
        auto m = ch.pop();
        if (!m) {
            ++done;
            continue;
        }
        auto colon = m->text.find(':');
        std::uint64_t i = std::stoull(m->text.substr(8, colon - 8));
        if (m->text != make_text(i))
            fail("string contents");
        if (m->values.size() != i % 300)
            fail("vector size");
        for (std::uint64_t k = 0; k < m->values.size(); ++k)
            if (m->values[k] != i * k)
                fail("vector contents");
        for (auto &[k, v] : m->tags)
            if (v != std::to_string(i + static_cast<std::uint64_t>(k)))
                fail("map contents");
        sum += i + m->text.size() + m->values.size() + m->tags.size();
    }
    return sum;
}

struct alignas(256) Wide {
    unsigned char bytes[256];
};

}  // namespace

int main() {
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (!m || !dladdr(m, &info))
        fail("dladdr");
    std::printf("malloc from: %s\n", info.dli_fname);

    Channel ch;
    std::uint64_t sum = 0;
    std::thread consumer([&] { sum = consume(ch); });
    std::vector<std::thread> producers;
    for (int id = 0; id < kProducers; ++id)
        producers.emplace_back(produce, std::ref(ch), id);
    for (auto &t : producers)
        t.join();
    consumer.join();

    // Arrays and over-aligned objects (operator new[] and aligned new).
    for (int round = 0; round < 1000; ++round) {
        auto *a = new std::uint32_t[1 + round * 7];
        for (int k = 0; k < 1 + round * 7; ++k)
            a[k] = static_cast<std::uint32_t>(k * round);
        auto *w = new Wide[3];
        if (reinterpret_cast<std::uintptr_t>(w) % alignof(Wide) != 0)
            fail("aligned new");
        w[2].bytes[255] = 1;
        for (int k = 0; k < 1 + round * 7; ++k)
            if (a[k] != static_cast<std::uint32_t>(k * round))
                fail("array contents");
        delete[] a;
        delete[] w;
    }
    std::printf("containers: ok %llu\n", static_cast<unsigned long long>(sum));
    return 0;
}
