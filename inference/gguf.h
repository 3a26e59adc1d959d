// GGUF files: a validating reader (versions 2 and 3) and a writer.
//
// Reader contract: `gguf_file::open` maps the file read-only and validates the whole header, metadata and tensor
// table against the file size before anything else may look at it: every count, string length, array length,
// dimension, product of dimensions, type id, alignment, offset and overlap. A corrupt, truncated or hostile file
// yields an error that names the problem; it never causes an over-read, a crash or an allocation larger than the
// file could justify. After a successful open, every accessor is safe and the tensor data spans are in bounds.
// A gguf_file is immutable after open and may be read from any thread.
#pragma once

#include "accel/tensor_types.h"
#include "support/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace spark::gguf {

enum class value_type : uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(value_type t);

struct value;
struct array {
    value_type element_type = value_type::u8;
    std::vector<value> items;  // each item holds element_type (arrays may nest)
};

// One metadata value; the variant index follows value_type's order.
struct value {
    std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string, array, uint64_t,
                 int64_t, double>
        data;

    value_type type() const { return static_cast<value_type>(data.index()); }
    // Any integer type whose value fits in int64 (bools excluded); nullopt otherwise.
    std::optional<int64_t> as_int() const;
    // f32 or f64 (and integers, converted); nullopt otherwise.
    std::optional<double> as_float() const;
    const std::string* as_string() const { return std::get_if<std::string>(&data); }
    const array* as_array() const { return std::get_if<array>(&data); }
    const bool* as_bool() const { return std::get_if<bool>(&data); }
};

struct key_value {
    std::string key;
    value val;
};

struct tensor_info {
    std::string name;
    std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) length
    ggml_type type = ggml_type::f32;
    uint64_t offset = 0;          // relative to the start of the data section, aligned
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    uint64_t rows() const { return dims.empty() ? 0 : n_elements / dims[0]; }
};

class gguf_file {
public:
    // Maps and validates a file. Errors start with the path.
    static result<gguf_file> open(const std::string& path);
    // Validates an in-memory image (copied). Used by tests and the fuzzer.
    static result<gguf_file> parse(std::span<const uint8_t> bytes);

    gguf_file(gguf_file&&) noexcept;
    gguf_file& operator=(gguf_file&&) noexcept;
    ~gguf_file();

    uint32_t version() const;
    uint64_t alignment() const;   // general.alignment or 32
    uint64_t data_offset() const; // start of the tensor data section in the file
    uint64_t file_size() const;

    const std::vector<key_value>& metadata() const;
    const value* find(std::string_view key) const;
    // Typed lookups: nullopt when the key is absent, an error when it is present with the wrong type.
    result<std::optional<int64_t>> get_int(std::string_view key) const;
    result<std::optional<double>> get_float(std::string_view key) const;
    result<std::optional<std::string>> get_string(std::string_view key) const;
    result<std::optional<bool>> get_bool(std::string_view key) const;
    // An array of the given element type (integers of any width are accepted for integer requests).
    result<const array*> get_array(std::string_view key) const;  // nullptr when absent

    const std::vector<tensor_info>& tensors() const;
    const tensor_info* find_tensor(std::string_view name) const;
    // The tensor's bytes (n_bytes long), inside the mapping.
    std::span<const uint8_t> tensor_data(const tensor_info& t) const;

private:
    struct impl;
    explicit gguf_file(std::unique_ptr<impl> p);
    std::unique_ptr<impl> impl_;
};

// Writer: collects metadata and tensors, then writes a version-3 file. Tensor data is copied on add.
class gguf_writer {
public:
    explicit gguf_writer(uint64_t alignment = 32);

    void set(std::string key, value v);  // replaces an existing key, keeps first-insertion order
    void set_u32(std::string key, uint32_t v) { set(std::move(key), value{v}); }
    void set_i32(std::string key, int32_t v) { set(std::move(key), value{v}); }
    void set_u64(std::string key, uint64_t v) { set(std::move(key), value{v}); }
    void set_f32(std::string key, float v) { set(std::move(key), value{v}); }
    void set_bool(std::string key, bool v) { set(std::move(key), value{v}); }
    void set_string(std::string key, std::string v) { set(std::move(key), value{std::move(v)}); }
    void set_strings(std::string key, const std::vector<std::string>& v);
    void set_f32s(std::string key, const std::vector<float>& v);
    void set_i32s(std::string key, const std::vector<int32_t>& v);

    // dims in ggml order; data.size() must equal row_bytes(type, dims[0]) * rows.
    result<void> add_tensor(std::string name, std::vector<uint64_t> dims, ggml_type type,
                            std::span<const uint8_t> data);
    // Quantises f32 values into `type` with quantize_row.
    result<void> add_tensor_f32(std::string name, std::vector<uint64_t> dims, ggml_type type,
                                std::span<const float> values);

    std::vector<uint8_t> serialize() const;
    result<void> write(const std::string& path) const;

private:
    struct pending_tensor {
        std::string name;
        std::vector<uint64_t> dims;
        ggml_type type;
        std::vector<uint8_t> data;
    };
    uint64_t alignment_;
    std::vector<key_value> kv_;
    std::vector<pending_tensor> tensors_;
};

}  // namespace spark::gguf
