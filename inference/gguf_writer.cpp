// GGUF writer (version 3): used by tests, tools and the model exporter.
#include "inference/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace spark::gguf {
namespace {

struct out_buffer {
    std::vector<uint8_t> bytes;
    template <class T>
    void put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    void put_string(std::string_view s) {
        put<uint64_t>(s.size());
        bytes.insert(bytes.end(), s.begin(), s.end());
    }
    void pad_to(uint64_t alignment) {
        while (bytes.size() % alignment) bytes.push_back(0);
    }
};

void put_value(out_buffer& out, const value& v) {
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) {
                out.put_string(x);
            } else if constexpr (std::is_same_v<T, array>) {
                out.put<uint32_t>(static_cast<uint32_t>(x.element_type));
                out.put<uint64_t>(x.items.size());
                for (const auto& item : x.items) put_value(out, item);
            } else if constexpr (std::is_same_v<T, bool>) {
                out.put<uint8_t>(x ? 1 : 0);
            } else {
                out.put<T>(x);
            }
        },
        v.data);
}

}  // namespace

gguf_writer::gguf_writer(uint64_t alignment) : alignment_(alignment) {
    if (alignment_ != 32) set_u32("general.alignment", uint32_t(alignment_));
}

void gguf_writer::set(std::string key, value v) {
    for (auto& kv : kv_)
        if (kv.key == key) {
            kv.val = std::move(v);
            return;
        }
    kv_.push_back({std::move(key), std::move(v)});
}

void gguf_writer::set_strings(std::string key, const std::vector<std::string>& v) {
    array a{value_type::string, {}};
    a.items.reserve(v.size());
    for (const auto& s : v) a.items.push_back(value{s});
    set(std::move(key), value{std::move(a)});
}

void gguf_writer::set_f32s(std::string key, const std::vector<float>& v) {
    array a{value_type::f32, {}};
    a.items.reserve(v.size());
    for (float f : v) a.items.push_back(value{f});
    set(std::move(key), value{std::move(a)});
}

void gguf_writer::set_i32s(std::string key, const std::vector<int32_t>& v) {
    array a{value_type::i32, {}};
    a.items.reserve(v.size());
    for (int32_t i : v) a.items.push_back(value{i});
    set(std::move(key), value{std::move(a)});
}

result<void> gguf_writer::add_tensor(std::string name, std::vector<uint64_t> dims, ggml_type type,
                                     std::span<const uint8_t> data) {
    if (dims.empty() || dims.size() > 4) return fail("tensor '", name, "': 1 to 4 dimensions required");
    const auto& tr = traits(type);
    if (dims[0] % tr.block_size) return fail("tensor '", name, "': row length not a multiple of the block size");
    uint64_t rows = 1;
    for (size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
    if (data.size() != row_bytes(type, dims[0]) * rows)
        return fail("tensor '", name, "': ", data.size(), " bytes given, ", row_bytes(type, dims[0]) * rows,
                    " expected");
    for (const auto& t : tensors_)
        if (t.name == name) return fail("tensor '", name, "' added twice");
    tensors_.push_back({std::move(name), std::move(dims), type, {data.begin(), data.end()}});
    return {};
}

result<void> gguf_writer::add_tensor_f32(std::string name, std::vector<uint64_t> dims, ggml_type type,
                                         std::span<const float> values) {
    if (dims.empty()) return fail("tensor '", name, "': no dimensions");
    const auto& tr = traits(type);
    if (!tr.supported || dims[0] % tr.block_size)
        return fail("tensor '", name, "': cannot quantise rows of ", dims[0], " to ", tr.name);
    uint64_t n = 1;
    for (auto d : dims) n *= d;
    if (values.size() != n) return fail("tensor '", name, "': ", values.size(), " values for ", n, " elements");
    const uint64_t rows = n / dims[0];
    const uint64_t rb = row_bytes(type, dims[0]);
    std::vector<uint8_t> data(rows * rb);
    for (uint64_t r = 0; r < rows; ++r)
        quantize_row(type, values.data() + r * dims[0], data.data() + r * rb, int64_t(dims[0]));
    return add_tensor(std::move(name), std::move(dims), type, data);
}

// Header, metadata, tensor table and the padding up to the data section.
static std::vector<uint8_t> header_bytes(const std::vector<key_value>& kv, uint64_t alignment, uint64_t n_tensors,
                                         const auto& tensors) {
    out_buffer out;
    for (char c : {'G', 'G', 'U', 'F'}) out.bytes.push_back(uint8_t(c));
    out.put<uint32_t>(3);
    out.put<uint64_t>(n_tensors);
    out.put<uint64_t>(kv.size());
    for (const auto& e : kv) {
        out.put_string(e.key);
        out.put<uint32_t>(static_cast<uint32_t>(e.val.type()));
        put_value(out, e.val);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        out.put_string(t.name);
        out.put<uint32_t>(uint32_t(t.dims.size()));
        for (auto d : t.dims) out.put<uint64_t>(d);
        out.put<uint32_t>(static_cast<uint32_t>(t.type));
        out.put<uint64_t>(offset);
        offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    out.pad_to(alignment);
    return std::move(out.bytes);
}

std::vector<uint8_t> gguf_writer::serialize() const {
    std::vector<uint8_t> bytes = header_bytes(kv_, alignment_, tensors_.size(), tensors_);
    for (const auto& t : tensors_) {
        bytes.insert(bytes.end(), t.data.begin(), t.data.end());
        bytes.resize((bytes.size() + alignment_ - 1) / alignment_ * alignment_, 0);
    }
    return bytes;
}

// Streams tensor data to the file instead of building the whole image in memory (models reach gigabytes).
result<void> gguf_writer::write(const std::string& path) const {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) return fail(path, ": cannot create: ", std::strerror(errno));
    auto put = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, f.get()) == n; };
    const auto header = header_bytes(kv_, alignment_, tensors_.size(), tensors_);
    bool ok = put(header.data(), header.size());
    static const uint8_t zeros[256] = {};
    for (const auto& t : tensors_) {
        if (!ok) break;
        ok = put(t.data.data(), t.data.size());
        const uint64_t pad = (alignment_ - t.data.size() % alignment_) % alignment_;
        for (uint64_t left = pad; ok && left > 0; left -= std::min<uint64_t>(left, sizeof zeros))
            ok = put(zeros, size_t(std::min<uint64_t>(left, sizeof zeros)));
    }
    if (!ok || std::fflush(f.get()) != 0) return fail(path, ": write failed: ", std::strerror(errno));
    return {};
}

}  // namespace spark::gguf
