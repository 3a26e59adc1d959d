// GGUF reader: map, then validate everything against the file size before anything else looks at it.
#include "inference/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace spark::gguf {
namespace {

constexpr uint32_t max_dims = 4;           // ggml's GGML_MAX_DIMS
constexpr int max_array_depth = 8;         // nested arrays deeper than this are refused
constexpr uint64_t max_metadata_values = uint64_t(1) << 22;  // real vocabularies use < 1M; bounds memory
constexpr uint64_t max_key_length = 65535;

// Smallest encoded size of one value of a type: bounds how many can fit in the bytes left.
uint64_t min_encoded_size(value_type t) {
    switch (t) {
        case value_type::u8: case value_type::i8: case value_type::boolean: return 1;
        case value_type::u16: case value_type::i16: return 2;
        case value_type::u32: case value_type::i32: case value_type::f32: return 4;
        case value_type::u64: case value_type::i64: case value_type::f64: return 8;
        case value_type::string: return 8;
        case value_type::array: return 12;
    }
    return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(value_type::f64); }

// Bounds-checked little-endian cursor over the file image.
class cursor {
public:
    cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    template <class T>
    result<T> read(const char* what) {
        if (left() < sizeof(T)) return fail("truncated at offset ", pos_, " while reading ", what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    result<std::string> read_string(const char* what) {
        auto len = read<uint64_t>(what);
        if (!len) return std::unexpected(len.error());
        if (*len > left())
            return fail(what, " at offset ", pos_ - 8, " claims ", *len, " bytes but only ", left(), " remain");
        std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(*len));
        pos_ += *len;
        return s;
    }

private:
    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

struct parse_state {
    cursor cur;
    uint64_t n_values = 0;
};

result<value> read_value(parse_state& st, value_type type, int depth, const std::string& key);

result<array> read_array(parse_state& st, int depth, const std::string& key) {
    if (depth >= max_array_depth) return fail("metadata '", key, "': arrays nested deeper than ", max_array_depth);
    auto et = st.cur.read<uint32_t>("array element type");
    if (!et) return std::unexpected(et.error());
    if (!valid_value_type(*et)) return fail("metadata '", key, "': unknown array element type ", *et);
    auto count = st.cur.read<uint64_t>("array length");
    if (!count) return std::unexpected(count.error());
    const auto elem_type = static_cast<value_type>(*et);
    if (*count > st.cur.left() / min_encoded_size(elem_type))
        return fail("metadata '", key, "': array of ", *count, " ", value_type_name(elem_type),
                    " cannot fit in the ", st.cur.left(), " bytes left in the file");
    st.n_values += *count;
    if (st.n_values > max_metadata_values)
        return fail("metadata holds more than ", max_metadata_values, " values (at '", key, "')");
    array arr;
    arr.element_type = elem_type;
    arr.items.reserve(size_t(*count));
    for (uint64_t i = 0; i < *count; ++i) {
        auto v = read_value(st, elem_type, depth + 1, key);
        if (!v) return std::unexpected(v.error());
        arr.items.push_back(std::move(*v));
    }
    return arr;
}

result<value> read_value(parse_state& st, value_type type, int depth, const std::string& key) {
    auto wrap = [](auto r) -> result<value> {
        if (!r) return std::unexpected(r.error());
        return value{*r};
    };
    switch (type) {
        case value_type::u8: return wrap(st.cur.read<uint8_t>("u8 value"));
        case value_type::i8: return wrap(st.cur.read<int8_t>("i8 value"));
        case value_type::u16: return wrap(st.cur.read<uint16_t>("u16 value"));
        case value_type::i16: return wrap(st.cur.read<int16_t>("i16 value"));
        case value_type::u32: return wrap(st.cur.read<uint32_t>("u32 value"));
        case value_type::i32: return wrap(st.cur.read<int32_t>("i32 value"));
        case value_type::f32: return wrap(st.cur.read<float>("f32 value"));
        case value_type::u64: return wrap(st.cur.read<uint64_t>("u64 value"));
        case value_type::i64: return wrap(st.cur.read<int64_t>("i64 value"));
        case value_type::f64: return wrap(st.cur.read<double>("f64 value"));
        case value_type::boolean: {
            auto b = st.cur.read<uint8_t>("bool value");
            if (!b) return std::unexpected(b.error());
            if (*b > 1) return fail("metadata '", key, "': bool value ", int(*b), " is neither 0 nor 1");
            return value{*b == 1};
        }
        case value_type::string: return wrap(st.cur.read_string("string value"));
        case value_type::array: return wrap(read_array(st, depth, key));
    }
    return fail("metadata '", key, "': unknown value type");
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t& out) { return __builtin_mul_overflow(a, b, &out); }

}  // namespace

std::string_view value_type_name(value_type t) {
    static constexpr std::string_view names[] = {"u8",  "i8",   "u16",   "i16", "u32", "i32", "f32",
                                                  "bool", "string", "array", "u64", "i64", "f64"};
    const auto i = static_cast<uint32_t>(t);
    return i < std::size(names) ? names[i] : "unknown";
}

std::optional<int64_t> value::as_int() const {
    return std::visit(
        [](const auto& v) -> std::optional<int64_t> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, uint64_t>) {
                if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
                return int64_t(v);
            } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
                return int64_t(v);
            } else {
                return std::nullopt;
            }
        },
        data);
}

std::optional<double> value::as_float() const {
    if (auto f = std::get_if<float>(&data)) return double(*f);
    if (auto d = std::get_if<double>(&data)) return *d;
    if (auto i = as_int()) return double(*i);
    return std::nullopt;
}

struct gguf_file::impl {
    std::string origin;                // path or "<memory>"
    const uint8_t* data = nullptr;     // the whole file image
    uint64_t size = 0;
    void* mapping = nullptr;           // munmap on destruction when set
    std::vector<uint8_t> owned;        // parse() copies here
    uint32_t version = 0;
    uint64_t alignment = 32;
    uint64_t data_offset = 0;
    std::vector<key_value> kv;
    std::unordered_map<std::string, size_t> kv_index;
    std::vector<tensor_info> tensors;
    std::unordered_map<std::string, size_t> tensor_index;

    ~impl() {
        if (mapping) munmap(mapping, size_t(size));
    }

    result<void> validate();
};

result<void> gguf_file::impl::validate() {
    parse_state st{cursor(data, size)};
    auto& cur = st.cur;

    auto magic = cur.read<uint32_t>("magic");
    if (!magic) return std::unexpected(magic.error());
    if (std::memcmp(data, "GGUF", 4) != 0) return fail("not a GGUF file (bad magic)");
    auto ver = cur.read<uint32_t>("version");
    if (!ver) return std::unexpected(ver.error());
    if (*ver != 2 && *ver != 3)
        return fail("GGUF version ", *ver, " is not supported (versions 2 and 3 are)");
    version = *ver;

    auto n_tensors = cur.read<uint64_t>("tensor count");
    if (!n_tensors) return std::unexpected(n_tensors.error());
    auto n_kv = cur.read<uint64_t>("metadata count");
    if (!n_kv) return std::unexpected(n_kv.error());
    // Each key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor record at least 24.
    if (*n_kv > cur.left() / 13) return fail("metadata count ", *n_kv, " cannot fit in a file of ", size, " bytes");
    if (*n_tensors > cur.left() / 24)
        return fail("tensor count ", *n_tensors, " cannot fit in a file of ", size, " bytes");

    kv.reserve(size_t(*n_kv));
    for (uint64_t i = 0; i < *n_kv; ++i) {
        auto key = cur.read_string("metadata key");
        if (!key) return std::unexpected(key.error());
        if (key->empty() || key->size() > max_key_length)
            return fail("metadata key ", i, " has invalid length ", key->size());
        auto type = cur.read<uint32_t>("metadata value type");
        if (!type) return std::unexpected(type.error());
        if (!valid_value_type(*type)) return fail("metadata '", *key, "' has unknown value type ", *type);
        auto val = read_value(st, static_cast<value_type>(*type), 0, *key);
        if (!val) return std::unexpected(val.error());
        if (!kv_index.emplace(*key, kv.size()).second) return fail("metadata key '", *key, "' appears twice");
        kv.push_back({std::move(*key), std::move(*val)});
    }

    if (auto it = kv_index.find("general.alignment"); it != kv_index.end()) {
        const auto* a = std::get_if<uint32_t>(&kv[it->second].val.data);
        if (!a) return fail("general.alignment must be a u32");
        if (*a == 0 || (*a & (*a - 1)) != 0) return fail("general.alignment ", *a, " is not a power of two");
        alignment = *a;
    }

    tensors.reserve(size_t(*n_tensors));
    for (uint64_t i = 0; i < *n_tensors; ++i) {
        tensor_info t;
        auto name = cur.read_string("tensor name");
        if (!name) return std::unexpected(name.error());
        if (name->empty() || name->size() > max_key_length)
            return fail("tensor ", i, " has a name of invalid length ", name->size());
        t.name = std::move(*name);
        auto n_dims = cur.read<uint32_t>("tensor dimension count");
        if (!n_dims) return std::unexpected(n_dims.error());
        if (*n_dims == 0 || *n_dims > max_dims)
            return fail("tensor '", t.name, "' has ", *n_dims, " dimensions (1 to ", max_dims, " allowed)");
        uint64_t n_elements = 1;
        for (uint32_t d = 0; d < *n_dims; ++d) {
            auto dim = cur.read<uint64_t>("tensor dimension");
            if (!dim) return std::unexpected(dim.error());
            if (*dim == 0 || *dim > uint64_t(std::numeric_limits<int64_t>::max()))
                return fail("tensor '", t.name, "' has invalid dimension ", d, " = ", *dim);
            if (mul_overflows(n_elements, *dim, n_elements) || n_elements > uint64_t(std::numeric_limits<int64_t>::max()))
                return fail("tensor '", t.name, "': element count overflows");
            t.dims.push_back(*dim);
        }
        t.n_elements = n_elements;
        auto type = cur.read<uint32_t>("tensor type");
        if (!type) return std::unexpected(type.error());
        const type_traits* tr = find_type_traits(*type);
        if (!tr) return fail("tensor '", t.name, "' has unknown type id ", *type);
        t.type = static_cast<ggml_type>(*type);
        if (t.dims[0] % tr->block_size != 0)
            return fail("tensor '", t.name, "' (", tr->name, "): row length ", t.dims[0],
                        " is not a multiple of the block size ", tr->block_size);
        // n_bytes = rows * blocks per row * block bytes, all checked for overflow.
        uint64_t row = 0;
        if (mul_overflows(t.dims[0] / tr->block_size, tr->type_size, row) ||
            mul_overflows(row, n_elements / t.dims[0], t.n_bytes))
            return fail("tensor '", t.name, "': byte size overflows");
        auto offset = cur.read<uint64_t>("tensor offset");
        if (!offset) return std::unexpected(offset.error());
        t.offset = *offset;
        if (t.offset % alignment != 0)
            return fail("tensor '", t.name, "': offset ", t.offset, " is not aligned to ", alignment);
        if (!tensor_index.emplace(t.name, tensors.size()).second)
            return fail("tensor name '", t.name, "' appears twice");
        tensors.push_back(std::move(t));
    }

    data_offset = (cur.pos() + alignment - 1) / alignment * alignment;
    if (data_offset > size && !tensors.empty())
        return fail("tensor data section starts at ", data_offset, ", past the end of the file (", size, " bytes)");
    const uint64_t data_size = size > data_offset ? size - data_offset : 0;
    for (const auto& t : tensors) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset)
            return fail("tensor '", t.name, "' data [", t.offset, ", +", t.n_bytes, ") lies outside the data section (",
                        data_size, " bytes); the file is truncated or corrupt");
    }
    // Overlaps: sort by offset and compare neighbours.
    std::vector<const tensor_info*> by_offset;
    by_offset.reserve(tensors.size());
    for (const auto& t : tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const tensor_info* a, const tensor_info* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const auto* a = by_offset[i - 1];
        const auto* b = by_offset[i];
        if (a->offset + a->n_bytes > b->offset)
            return fail("tensors '", a->name, "' and '", b->name, "' overlap in the data section");
    }
    return {};
}

gguf_file::gguf_file(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
gguf_file::gguf_file(gguf_file&&) noexcept = default;
gguf_file& gguf_file::operator=(gguf_file&&) noexcept = default;
gguf_file::~gguf_file() = default;

result<gguf_file> gguf_file::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(path, ": cannot open: ", std::strerror(errno));
    struct stat sb {};
    if (fstat(fd, &sb) != 0) {
        const int e = errno;
        ::close(fd);
        return fail(path, ": cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        ::close(fd);
        return fail(path, ": not a regular file");
    }
    auto p = std::make_unique<impl>();
    p->origin = path;
    p->size = uint64_t(sb.st_size);
    if (p->size > 0) {
        void* m = mmap(nullptr, size_t(p->size), PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            return fail(path, ": cannot map: ", std::strerror(e));
        }
        p->mapping = m;
        p->data = static_cast<const uint8_t*>(m);
    }
    ::close(fd);
    if (p->size == 0) return fail(path, ": empty file, not a GGUF file");
    if (auto ok = p->validate(); !ok) return fail(path, ": ", ok.error().message);
    return gguf_file(std::move(p));
}

result<gguf_file> gguf_file::parse(std::span<const uint8_t> bytes) {
    auto p = std::make_unique<impl>();
    p->origin = "<memory>";
    p->owned.assign(bytes.begin(), bytes.end());
    p->data = p->owned.data();
    p->size = p->owned.size();
    if (auto ok = p->validate(); !ok) return std::unexpected(ok.error());
    return gguf_file(std::move(p));
}

uint32_t gguf_file::version() const { return impl_->version; }
uint64_t gguf_file::alignment() const { return impl_->alignment; }
uint64_t gguf_file::data_offset() const { return impl_->data_offset; }
uint64_t gguf_file::file_size() const { return impl_->size; }
const std::vector<key_value>& gguf_file::metadata() const { return impl_->kv; }
const std::vector<tensor_info>& gguf_file::tensors() const { return impl_->tensors; }

const value* gguf_file::find(std::string_view key) const {
    auto it = impl_->kv_index.find(std::string(key));
    return it == impl_->kv_index.end() ? nullptr : &impl_->kv[it->second].val;
}

const tensor_info* gguf_file::find_tensor(std::string_view name) const {
    auto it = impl_->tensor_index.find(std::string(name));
    return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

std::span<const uint8_t> gguf_file::tensor_data(const tensor_info& t) const {
    return {impl_->data + impl_->data_offset + t.offset, size_t(t.n_bytes)};
}

result<std::optional<int64_t>> gguf_file::get_int(std::string_view key) const {
    const value* v = find(key);
    if (!v) return std::optional<int64_t>{};
    if (auto i = v->as_int()) return std::optional<int64_t>{*i};
    return fail("metadata '", key, "' should be an integer but is ", value_type_name(v->type()));
}

result<std::optional<double>> gguf_file::get_float(std::string_view key) const {
    const value* v = find(key);
    if (!v) return std::optional<double>{};
    if (auto f = v->as_float()) return std::optional<double>{*f};
    return fail("metadata '", key, "' should be a number but is ", value_type_name(v->type()));
}

result<std::optional<std::string>> gguf_file::get_string(std::string_view key) const {
    const value* v = find(key);
    if (!v) return std::optional<std::string>{};
    if (auto s = v->as_string()) return std::optional<std::string>{*s};
    return fail("metadata '", key, "' should be a string but is ", value_type_name(v->type()));
}

result<std::optional<bool>> gguf_file::get_bool(std::string_view key) const {
    const value* v = find(key);
    if (!v) return std::optional<bool>{};
    if (auto b = v->as_bool()) return std::optional<bool>{*b};
    return fail("metadata '", key, "' should be a bool but is ", value_type_name(v->type()));
}

result<const array*> gguf_file::get_array(std::string_view key) const {
    const value* v = find(key);
    if (!v) return static_cast<const array*>(nullptr);
    if (auto a = v->as_array()) return a;
    return fail("metadata '", key, "' should be an array but is ", value_type_name(v->type()));
}

}  // namespace spark::gguf
