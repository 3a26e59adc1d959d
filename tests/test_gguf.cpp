// GGUF reader and writer: round trips, every value type, and the errors a corrupt file must produce.
#include "inference/gguf.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

using namespace spark;
using namespace spark::gguf;

namespace {

gguf_writer sample_writer() {
    gguf_writer w;
    w.set("t.u8", value{uint8_t(200)});
    w.set("t.i8", value{int8_t(-100)});
    w.set("t.u16", value{uint16_t(60000)});
    w.set("t.i16", value{int16_t(-30000)});
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", -2000000000);
    w.set_f32("t.f32", 1.5f);
    w.set_bool("t.bool", true);
    w.set_string("t.string", "h\xc3\xa9llo");
    w.set_u64("t.u64", 0xfedcba9876543210ull);
    w.set("t.i64", value{int64_t(-5)});
    w.set("t.f64", value{0.125});
    w.set_strings("t.strings", {"a", "", "ccc"});
    array inner1{value_type::i32, {value{int32_t(1)}, value{int32_t(2)}}};
    array inner2{value_type::i32, {}};
    w.set("t.nested", value{array{value_type::array, {value{inner1}, value{inner2}}}});
    std::vector<float> m(64 * 3);
    for (size_t i = 0; i < m.size(); ++i) m[i] = float(i) * 0.25f - 10.0f;
    REQUIRE(w.add_tensor_f32("m.f32", {64, 3}, ggml_type::f32, m));
    REQUIRE(w.add_tensor_f32("m.q8", {64, 3}, ggml_type::q8_0, m));
    REQUIRE(w.add_tensor_f32("v.f16", {64}, ggml_type::f16, std::span<const float>(m).first(64)));
    return w;
}

}  // namespace

TEST_CASE("gguf: writer output reads back with every value type", "[gguf]") {
    const auto bytes = sample_writer().serialize();
    auto f = gguf_file::parse(bytes);
    REQUIRE(f);
    CHECK(f->version() == 3);
    CHECK(f->alignment() == 32);
    CHECK(f->data_offset() % 32 == 0);
    CHECK(std::get<uint8_t>(f->find("t.u8")->data) == 200);
    CHECK(std::get<int8_t>(f->find("t.i8")->data) == -100);
    CHECK(std::get<uint16_t>(f->find("t.u16")->data) == 60000);
    CHECK(std::get<int16_t>(f->find("t.i16")->data) == -30000);
    CHECK(f->get_int("t.u32")->value() == 4000000000ll);
    CHECK(f->get_int("t.i32")->value() == -2000000000);
    CHECK(f->get_float("t.f32")->value() == 1.5);
    CHECK(f->get_bool("t.bool")->value() == true);
    CHECK(f->get_string("t.string")->value() == "h\xc3\xa9llo");
    CHECK(std::get<uint64_t>(f->find("t.u64")->data) == 0xfedcba9876543210ull);
    CHECK_FALSE(f->find("t.u64")->as_int());  // does not fit in int64
    CHECK(f->get_int("t.i64")->value() == -5);
    CHECK(f->get_float("t.f64")->value() == 0.125);
    auto strings = f->get_array("t.strings");
    REQUIRE(strings);
    REQUIRE(*strings);
    REQUIRE((*strings)->items.size() == 3);
    CHECK(*(*strings)->items[2].as_string() == "ccc");
    const array* nested = *f->get_array("t.nested");
    REQUIRE(nested);
    REQUIRE(nested->items.size() == 2);
    CHECK(nested->items[0].as_array()->items[1].as_int() == 2);
    CHECK(nested->items[1].as_array()->items.empty());

    SECTION("typed lookups report absence and type mismatches") {
        CHECK_FALSE(f->get_int("absent")->has_value());
        CHECK_FALSE(f->get_int("t.string"));
        CHECK(f->get_int("t.string").error().message.find("t.string") != std::string::npos);
        CHECK_FALSE(f->get_string("t.u32"));
        CHECK(*f->get_array("absent") == nullptr);
    }
    SECTION("tensors keep names, dims, types and bytes") {
        REQUIRE(f->tensors().size() == 3);
        const auto* q8 = f->find_tensor("m.q8");
        REQUIRE(q8);
        CHECK(q8->type == ggml_type::q8_0);
        CHECK(q8->dims == std::vector<uint64_t>{64, 3});
        CHECK(q8->n_bytes == 3 * 2 * 34);
        CHECK(q8->offset % 32 == 0);
        const auto* m = f->find_tensor("m.f32");
        float first;
        std::memcpy(&first, f->tensor_data(*m).data(), 4);
        CHECK(first == -10.0f);
        CHECK(f->find_tensor("nope") == nullptr);
    }
}

TEST_CASE("gguf: files on disk are mapped and validated", "[gguf]") {
    const auto path = (std::filesystem::temp_directory_path() / "spark-gguf-test.gguf").string();
    REQUIRE(sample_writer().write(path));
    auto f = gguf_file::open(path);
    REQUIRE(f);
    CHECK(f->file_size() == std::filesystem::file_size(path));
    CHECK(f->tensors().size() == 3);

    auto missing = gguf_file::open(path + ".missing");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find(".missing") != std::string::npos);
    std::filesystem::remove(path);
}

TEST_CASE("gguf: version 2 files and custom alignment are accepted", "[gguf]") {
    gguf_writer w(64);
    std::vector<float> v(32, 1.0f);
    REQUIRE(w.add_tensor_f32("a", {32}, ggml_type::f32, v));
    REQUIRE(w.add_tensor_f32("b", {32}, ggml_type::f32, v));
    auto bytes = w.serialize();
    auto f = gguf_file::parse(bytes);
    REQUIRE(f);
    CHECK(f->alignment() == 64);
    CHECK(f->find_tensor("b")->offset == 128);  // 128 bytes of "a", already a multiple of 64
    bytes[4] = 2;  // version 2 has the same layout with 64-bit counts
    CHECK(gguf_file::parse(bytes));
}

namespace {

std::string parse_error(const std::vector<uint8_t>& bytes) {
    auto f = gguf_file::parse(bytes);
    REQUIRE_FALSE(f);
    INFO(f.error().message);
    CHECK_FALSE(f.error().message.empty());
    return f.error().message;
}

template <class T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

// A file with one metadata string and one f32 tensor; offsets of its fields are fixed by the format.
std::vector<uint8_t> small_file() {
    gguf_writer w;
    w.set_string("k", "vv");
    std::vector<float> v(32, 2.0f);
    REQUIRE(w.add_tensor_f32("t", {32}, ggml_type::f32, v));
    return w.serialize();
}
// Layout: magic 0, version 4, n_tensors 8, n_kv 16, key len 24, "k" 32, type 33, str len 37, "vv" 45,
// tensor name len 47, "t" 55, n_dims 56, dim0 60, type 68, offset 72, then padding to 96 and data.

}  // namespace

TEST_CASE("gguf: corrupt headers give errors that name the problem", "[gguf]") {
    const auto good = small_file();
    REQUIRE(gguf_file::parse(good));

    CHECK(parse_error({}).find("truncated") != std::string::npos);
    auto b = good;
    b[0] = 'X';
    CHECK(parse_error(b).find("magic") != std::string::npos);
    b = good;
    poke<uint32_t>(b, 4, 1);
    CHECK(parse_error(b).find("version 1") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 8, ~0ull);
    CHECK(parse_error(b).find("tensor count") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 16, uint64_t(1) << 40);
    CHECK(parse_error(b).find("metadata count") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 24, ~0ull);
    CHECK(parse_error(b).find("claims") != std::string::npos);
    b = good;
    poke<uint32_t>(b, 33, 99);
    CHECK(parse_error(b).find("unknown value type 99") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 37, uint64_t(1) << 62);
    CHECK(parse_error(b).find("claims") != std::string::npos);
    b = good;
    poke<uint32_t>(b, 56, 5);
    CHECK(parse_error(b).find("dimensions") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 60, 0);
    CHECK(parse_error(b).find("invalid dimension") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 60, 33);  // no longer matches the data section; and f32 block size is 1
    CHECK(parse_error(b).find("outside the data section") != std::string::npos);
    b = good;
    poke<uint32_t>(b, 68, 2);  // Q4_0 needs rows in multiples of 32: fine; but 18 bytes, so it fits
    CHECK(gguf_file::parse(b));
    poke<uint64_t>(b, 60, 48);
    CHECK(parse_error(b).find("block size") != std::string::npos);
    b = good;
    poke<uint32_t>(b, 68, 1234);
    CHECK(parse_error(b).find("unknown type id 1234") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 72, 3);
    CHECK(parse_error(b).find("not aligned") != std::string::npos);
    b = good;
    poke<uint64_t>(b, 72, uint64_t(1) << 63);
    CHECK(parse_error(b).find("outside the data section") != std::string::npos);
    b = good;
    b.resize(b.size() - 1);
    CHECK(parse_error(b).find("truncated or corrupt") != std::string::npos);
}

TEST_CASE("gguf: structural errors: duplicates, overlaps, bad alignment, deep nesting", "[gguf]") {
    {
        gguf_writer w;
        w.set_u32("general.alignment", 24);
        CHECK(parse_error(w.serialize()).find("power of two") != std::string::npos);
    }
    {
        gguf_writer w;
        w.set_string("general.alignment", "32");
        CHECK(parse_error(w.serialize()).find("u32") != std::string::npos);
    }
    {
        auto b = small_file();
        // Rename the metadata key "k" to "t" is harmless; make two tensors share a name instead.
        gguf_writer w;
        std::vector<float> v(32, 1.0f);
        REQUIRE(w.add_tensor_f32("aa", {32}, ggml_type::f32, v));
        REQUIRE(w.add_tensor_f32("ab", {32}, ggml_type::f32, v));
        b = w.serialize();
        // Second tensor record: name length at 24, "aa" at 32, n_dims 34, dim 38, type 46, offset 50; next at 58.
        b[58 + 8 + 1] = 'a';
        CHECK(parse_error(b).find("appears twice") != std::string::npos);
        b = w.serialize();
        poke<uint64_t>(b, 58 + 8 + 2 + 4 + 8 + 4, 0);  // second tensor's offset -> overlaps the first
        CHECK(parse_error(b).find("overlap") != std::string::npos);
    }
    {
        array a{value_type::u8, {value{uint8_t(1)}}};
        for (int i = 0; i < 10; ++i) a = array{value_type::array, {value{a}}};
        gguf_writer w;
        w.set("deep", value{a});
        CHECK(parse_error(w.serialize()).find("nested deeper") != std::string::npos);
    }
    {
        gguf_writer w;
        w.set("flag", value{true});
        auto b = w.serialize();
        b[24 + 8 + 4 + 4] = 7;  // header, key length, "flag", value type, then the bool
        CHECK(parse_error(b).find("neither 0 nor 1") != std::string::npos);
    }
}
