// The prompt of one completion: fill-in-the-middle with the model's FIM tokens, the text before and after the
// cursor cut to windows that fit a token budget, and text from other open documents when room is left.
//
// Layout (PSM, as Qwen2.5-Coder, DeepSeek-Coder, CodeLlama and the default models were trained):
//   [BOS] <fim_prefix> CONTEXT PREFIX <fim_suffix> SUFFIX <fim_middle>
// where CONTEXT is zero or more "<comment> path\n<text>\n" chunks from other documents. Models without FIM tokens
// get [BOS] CONTEXT PREFIX (prefix only).
//
// Windows start and end at line boundaries. The prefix window keeps its start (the anchor) from one keystroke to
// the next while it still fits, so consecutive prompts share their beginning and the engine reuses its KV cache
// instead of re-reading the prompt; when the window must move it moves by a quarter of the budget at once.
//
// Plain C++ on UTF-8 text and byte offsets; callable from any thread (the tokenizer is immutable).
#pragma once

#include "inference/tokenizer.h"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace spark::lsp {

struct prompt_options {
    int32_t budget = 448;     // tokens for everything but the completion
    double fim_ratio = 0.75;  // share of the budget for the prefix (the rest: suffix); unused room moves over
    bool context_files = true;
    size_t max_context_bytes = 4096;  // per other document
};

struct context_document {
    std::string_view name;      // a path or URI, written into the prompt as a comment
    std::string_view language;  // LSP languageId, picks the comment syntax
    std::string_view text;
};

struct built_prompt {
    std::vector<token_id> tokens;  // the whole prompt
    std::vector<token_id> suffix;  // the suffix window's tokens (for the suffix drafter)
    size_t prefix_start = 0;       // byte offset where the prefix window starts (the next call's anchor)
    size_t suffix_end = 0;         // byte offset where the suffix window ends
    bool fim = false;
    int context_chunks = 0;        // other documents that made it in
};

// The line comment that introduces a context chunk for a languageId ("#", "//", "--", ...).
std::string_view comment_leader(std::string_view language_id);

// Builds the prompt for a cursor at byte offset `cursor` of `text`. anchor: the previous call's prefix_start for
// this document (npos: none); it is kept when it is still a line start before the cursor and the window from it fits.
built_prompt build_prompt(const tokenizer& tok, std::string_view text, size_t cursor, std::string_view language_id,
                          const prompt_options& options, std::span<const context_document> others,
                          size_t anchor = std::string_view::npos);

}  // namespace spark::lsp
