#include "lsp/completion_cache.h"

#include <algorithm>

namespace spark::lsp {

void completion_cache::put(cached_completion c) {
    std::erase_if(entries_, [&](const cached_completion& e) {
        return e.uri == c.uri && e.cursor == c.cursor && e.text == c.text;
    });
    entries_.push_front(std::move(c));
    size_t same = 0;
    const std::string& uri = entries_.front().uri;
    for (auto it = entries_.begin(); it != entries_.end();)
        if (it->uri == uri && ++same > per_document_)
            it = entries_.erase(it);
        else
            ++it;
    while (entries_.size() > capacity_) entries_.pop_back();
}

std::optional<cache_match> completion_cache::find(std::string_view uri, std::string_view text, size_t cursor) const {
    for (const cached_completion& e : entries_) {
        if (e.uri != uri || cursor < e.cursor) continue;
        const size_t k = cursor - e.cursor;
        if (k >= e.completion.size() || text.size() != e.text.size() + k) continue;
        const std::string_view t(e.text), c(e.completion);
        if (text.substr(0, e.cursor) != t.substr(0, e.cursor)) continue;
        if (text.substr(e.cursor, k) != c.substr(0, k)) continue;
        if (text.substr(cursor) != t.substr(e.cursor)) continue;
        const std::string_view rest = c.substr(k);
        if (rest.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
        return cache_match{&e, k};
    }
    return std::nullopt;
}

const cached_completion* completion_cache::by_id(std::string_view id) const {
    for (const cached_completion& e : entries_)
        if (e.id == id) return &e;
    return nullptr;
}

void completion_cache::erase_document(std::string_view uri) {
    std::erase_if(entries_, [&](const cached_completion& e) { return e.uri == uri; });
}

}  // namespace spark::lsp
