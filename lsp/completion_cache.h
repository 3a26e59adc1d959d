// The forwarding cache: suggestions already computed, kept with the document text they were computed for, so
// that a user who types the first characters of a shown suggestion gets the rest at once, without an engine run.
//
// An entry (text T, cursor c, completion C) matches a later document text T' and cursor c' when the user typed
// exactly the first k = c' - c bytes of C at c and changed nothing else: T' == T[0, c) + C[0, k) + T[c, end) with
// 0 <= k < |C|, and what is left, C[k, end), is not just whitespace. Prefetched suggestions (computed for the text
// an accept will produce) are entries like any other and match with k = 0.
//
// Plain C++; owned by the protocol thread.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace spark::lsp {

struct cached_completion {
    std::string id;          // "cmpl-7": what accept commands name
    std::string uri;
    std::string text;        // the document when the suggestion was made
    size_t cursor = 0;       // byte offset into text
    std::string completion;  // the suggestion, inserted at cursor
    bool truncated = false;  // generation ended by the token limit or the time budget (it could go on)
};

struct cache_match {
    const cached_completion* entry = nullptr;
    size_t typed = 0;  // bytes of the completion the user has typed since
    std::string_view remainder() const { return std::string_view(entry->completion).substr(typed); }
};

class completion_cache {
public:
    explicit completion_cache(size_t capacity = 64, size_t per_document = 8)
        : capacity_(capacity), per_document_(per_document) {}

    // Adds an entry (newest first). An entry for the same uri, text and cursor is replaced; the oldest entries go
    // when a document or the whole cache is over capacity.
    void put(cached_completion c);
    // The newest entry that matches (see above), or nullopt.
    std::optional<cache_match> find(std::string_view uri, std::string_view text, size_t cursor) const;
    const cached_completion* by_id(std::string_view id) const;
    void erase_document(std::string_view uri);
    size_t size() const { return entries_.size(); }

private:
    size_t capacity_, per_document_;
    std::deque<cached_completion> entries_;
};

}  // namespace spark::lsp
