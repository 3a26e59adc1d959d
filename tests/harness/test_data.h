// Where tests find their data: the repository's tests/data and the shared tokenizer vectors beside the checkout.
// A missing folder fails the test that needs it; nothing is skipped silently.
#pragma once

#include <cstdlib>
#include <string>

namespace spark::test {

inline std::string data_dir() {
    if (const char* e = std::getenv("SPARK_TEST_DATA")) return e;
    return SPARK_TEST_DATA;
}

inline std::string shared_testdata_dir() {
    if (const char* e = std::getenv("SPARK_SHARED_TESTDATA")) return e;
    return SPARK_SHARED_TESTDATA;
}

inline std::string data_path(const std::string& name) { return data_dir() + "/" + name; }

// Set SPARK_REGENERATE=1 to rewrite committed fixtures from their generators instead of comparing with them.
inline bool regenerate() {
    const char* e = std::getenv("SPARK_REGENERATE");
    return e && std::string(e) == "1";
}

}  // namespace spark::test
