#include "lsp/prompt.h"

#include <algorithm>

namespace spark::lsp {
namespace {

constexpr size_t npos = std::string_view::npos;

// The start of the line containing offset p.
size_t line_start_at(std::string_view t, size_t p) {
    p = std::min(p, t.size());
    const size_t nl = p == 0 ? npos : t.rfind('\n', p - 1);
    return nl == npos ? 0 : nl + 1;
}

// The first line start at or after p (t.size() when none).
size_t next_line_start(std::string_view t, size_t p) {
    if (p == 0 || p >= t.size()) return std::min(p, t.size());
    if (t[p - 1] == '\n') return p;
    const size_t nl = t.find('\n', p);
    return nl == npos ? t.size() : nl + 1;
}

// The end of the line containing p, after its "\n" (t.size() when none).
size_t line_end_at(std::string_view t, size_t p) {
    if (p >= t.size()) return t.size();
    const size_t nl = t.find('\n', p);
    return nl == npos ? t.size() : nl + 1;
}

// The longest window [cursor, end) ending at a line end whose tokens fit `budget` (the cursor's own line at least,
// truncated by tokens if even that does not fit).
std::vector<token_id> suffix_window(const tokenizer& tok, std::string_view text, size_t cursor, int32_t budget,
                                    size_t& end) {
    end = cursor;
    if (budget <= 0 || cursor >= text.size()) return {};
    size_t guess = std::min(text.size(), cursor + size_t(budget) * 4);
    end = line_end_at(text, guess == text.size() ? guess : guess);
    std::vector<token_id> t = tok.tokenize(text.substr(cursor, end - cursor));
    for (int i = 0; i < 6 && int32_t(t.size()) > budget; ++i) {
        const double keep = double(budget) / double(t.size()) * 0.95;
        const size_t shorter = cursor + size_t(double(end - cursor) * keep);
        const size_t ls = line_start_at(text, shorter);
        end = ls > cursor ? ls : line_end_at(text, cursor);
        t = tok.tokenize(text.substr(cursor, end - cursor));
        if (end == line_end_at(text, cursor)) break;
    }
    if (int32_t(t.size()) > budget) t.resize(size_t(budget));
    return t;
}

// Tokens of [start, cursor); start moves forward (to line starts) until they fit `budget`; as a last resort the
// window loses tokens at its front.
std::vector<token_id> prefix_from(const tokenizer& tok, std::string_view text, size_t& start, size_t cursor,
                                  int32_t budget) {
    std::vector<token_id> t = tok.tokenize(text.substr(start, cursor - start));
    for (int i = 0; i < 6 && int32_t(t.size()) > budget; ++i) {
        const double drop = 1.0 - double(budget) / double(t.size()) * 0.95;
        const size_t later = next_line_start(text, start + size_t(double(cursor - start) * drop));
        if (later >= cursor || later <= start) break;
        start = later;
        t = tok.tokenize(text.substr(start, cursor - start));
    }
    if (int32_t(t.size()) > budget) {
        t.erase(t.begin(), t.end() - budget);
        start = npos;  // not a line start any more: no anchor for the next call
    }
    return t;
}

}  // namespace

std::string_view comment_leader(std::string_view id) {
    if (id == "python" || id == "ruby" || id == "shellscript" || id == "perl" || id == "r" || id == "yaml" ||
        id == "toml" || id == "makefile" || id == "cmake" || id == "dockerfile" || id == "elixir")
        return "#";
    if (id == "lua" || id == "sql" || id == "haskell") return "--";
    if (id == "html" || id == "xml" || id == "markdown" || id == "plaintext") return "";
    return "//";
}

built_prompt build_prompt(const tokenizer& tok, std::string_view text, size_t cursor, std::string_view language_id,
                          const prompt_options& options, std::span<const context_document> others, size_t anchor) {
    built_prompt out;
    const special_tokens& sp = tok.special();
    cursor = std::min(cursor, text.size());
    out.fim = sp.fim_pre >= 0 && sp.fim_suf >= 0 && sp.fim_mid >= 0;
    const bool bos = sp.add_bos && sp.bos >= 0;
    const int32_t budget = std::max<int32_t>(8, options.budget - int32_t(bos) - (out.fim ? 3 : 0));
    const double ratio = std::clamp(options.fim_ratio, 0.0, 1.0);

    // The suffix first (its share only); whatever it leaves goes to the prefix.
    const int32_t suffix_budget = out.fim ? int32_t(double(budget) * (1.0 - ratio)) : 0;
    out.suffix = out.fim ? suffix_window(tok, text, cursor, suffix_budget, out.suffix_end) : std::vector<token_id>{};
    if (!out.fim) out.suffix_end = cursor;
    const int32_t prefix_budget = budget - int32_t(out.suffix.size());

    // The prefix: from the anchor while that fits and still fills at least half the budget, else a fresh start that
    // leaves a quarter of the budget to grow into.
    std::vector<token_id> prefix;
    bool anchored = false;
    if (anchor != npos && anchor <= cursor && (anchor == 0 || text[anchor - 1] == '\n')) {
        prefix = tok.tokenize(text.substr(anchor, cursor - anchor));
        if (int32_t(prefix.size()) <= prefix_budget && (anchor == 0 || 2 * int32_t(prefix.size()) >= prefix_budget)) {
            out.prefix_start = anchor;
            anchored = true;
        }
    }
    if (!anchored) {
        const int32_t target = std::max<int32_t>(1, prefix_budget * 3 / 4);
        size_t start = line_start_at(text, cursor > size_t(target) * 3 ? cursor - size_t(target) * 3 : 0);
        prefix = prefix_from(tok, text, start, cursor, target);
        // Room left (dense tokens): reach further back a line at a time, a few times.
        for (int i = 0; i < 4 && start != npos && start > 0 && int32_t(prefix.size()) < target * 4 / 5; ++i) {
            size_t earlier = line_start_at(text, start > size_t(target) ? start - size_t(target) : 0);
            auto wider = tok.tokenize(text.substr(earlier, cursor - earlier));
            if (int32_t(wider.size()) > target) break;
            start = earlier;
            prefix = std::move(wider);
        }
        out.prefix_start = start;
    }

    // Other documents while room is left (at least 48 tokens for a chunk to be worth it).
    std::vector<token_id> context;
    int32_t room = prefix_budget - int32_t(prefix.size());
    if (options.context_files)
        for (const context_document& d : others) {
            if (room < 48) break;
            std::string chunk;
            const std::string_view lead = comment_leader(language_id);
            if (!lead.empty()) chunk.append(lead).append(" ").append(d.name).append("\n");
            std::string_view body = d.text.substr(0, std::min(d.text.size(), options.max_context_bytes));
            if (body.size() < d.text.size()) body = body.substr(0, line_start_at(body, body.size()));
            chunk.append(body);
            if (!chunk.empty() && chunk.back() != '\n') chunk.push_back('\n');
            auto t = tok.tokenize(chunk);
            if (int32_t(t.size()) > room) {
                // Keep the chunk's beginning: cut at a line start in proportion, once.
                std::string_view c(chunk);
                const size_t cut = line_start_at(c, size_t(double(c.size()) * double(room) / double(t.size()) * 0.9));
                if (cut == 0) continue;
                t = tok.tokenize(c.substr(0, cut));
                if (int32_t(t.size()) > room) continue;
            }
            room -= int32_t(t.size());
            context.insert(context.end(), t.begin(), t.end());
            ++out.context_chunks;
        }

    if (bos) out.tokens.push_back(sp.bos);
    if (out.fim) out.tokens.push_back(sp.fim_pre);
    out.tokens.insert(out.tokens.end(), context.begin(), context.end());
    out.tokens.insert(out.tokens.end(), prefix.begin(), prefix.end());
    if (out.fim) {
        out.tokens.push_back(sp.fim_suf);
        out.tokens.insert(out.tokens.end(), out.suffix.begin(), out.suffix.end());
        out.tokens.push_back(sp.fim_mid);
    }
    return out;
}

}  // namespace spark::lsp
