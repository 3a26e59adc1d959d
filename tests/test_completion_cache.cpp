// The forwarding cache: which later texts and cursors a stored suggestion answers.
#include "lsp/completion_cache.h"

#include <catch2/catch.hpp>

using namespace spark::lsp;

namespace {

cached_completion entry(std::string id, std::string text, size_t cursor, std::string completion) {
    return {std::move(id), "file:///a.py", std::move(text), cursor, std::move(completion), false};
}

}  // namespace

TEST_CASE("forwarding cache: typing the first characters of a suggestion finds the rest", "[lsp][cache]") {
    completion_cache cache;
    const std::string text = "def f(x):\n    \nprint(1)\n";
    const size_t cursor = 14;  // the indented empty line
    cache.put(entry("cmpl-1", text, cursor, "return x * 2"));

    auto same = cache.find("file:///a.py", text, cursor);
    REQUIRE(same);
    CHECK(same->typed == 0);
    CHECK(same->remainder() == "return x * 2");

    std::string typed = text;
    typed.insert(cursor, "ret");
    auto hit = cache.find("file:///a.py", typed, cursor + 3);
    REQUIRE(hit);
    CHECK(hit->entry->id == "cmpl-1");
    CHECK(hit->typed == 3);
    CHECK(hit->remainder() == "urn x * 2");

    // The cursor must be where the typing ended, the URI the same.
    CHECK_FALSE(cache.find("file:///a.py", typed, cursor + 2));
    CHECK_FALSE(cache.find("file:///b.py", typed, cursor + 3));
}

TEST_CASE("forwarding cache: any other change is a miss", "[lsp][cache]") {
    completion_cache cache;
    const std::string text = "a = 1\n\nb = 2\n";
    cache.put(entry("cmpl-1", text, 6, "c = 3"));

    std::string diverged = text;
    diverged.insert(6, "d");  // not what was suggested
    CHECK_FALSE(cache.find("file:///a.py", diverged, 7));

    std::string elsewhere = text;
    elsewhere.insert(6, "c");
    elsewhere[0] = 'x';  // an edit before the suggestion as well
    CHECK_FALSE(cache.find("file:///a.py", elsewhere, 7));

    std::string after = text;
    after.insert(6, "c");
    after += "#";  // an edit after it
    CHECK_FALSE(cache.find("file:///a.py", after, 7));

    // Typed all of it: nothing left to forward.
    std::string all = text;
    all.insert(6, "c = 3");
    CHECK_FALSE(cache.find("file:///a.py", all, 11));
}

TEST_CASE("forwarding cache: a remainder of whitespace is not served", "[lsp][cache]") {
    completion_cache cache;
    cache.put(entry("cmpl-1", "x\n", 2, "pass\n  "));
    std::string t = "x\npass\n";
    CHECK_FALSE(cache.find("file:///a.py", t, 7));
    t = "x\npas";
    CHECK(cache.find("file:///a.py", t, 5));
}

TEST_CASE("forwarding cache: newest first, bounded per document, by id, erased per document", "[lsp][cache]") {
    completion_cache cache(64, 3);
    const std::string text = "x\n";
    cache.put(entry("cmpl-1", text, 2, "first"));
    cache.put(entry("cmpl-2", text, 2, "second"));  // same text and cursor: replaces the first
    CHECK(cache.size() == 1);
    CHECK(cache.find("file:///a.py", text, 2)->entry->id == "cmpl-2");
    CHECK(cache.by_id("cmpl-1") == nullptr);

    for (int i = 3; i <= 6; ++i) cache.put(entry("cmpl-" + std::to_string(i), "y" + std::to_string(i), 0, "z"));
    CHECK(cache.size() == 3);  // three per document
    CHECK(cache.by_id("cmpl-6") != nullptr);
    CHECK(cache.by_id("cmpl-2") == nullptr);

    cache.erase_document("file:///a.py");
    CHECK(cache.size() == 0);
}
