#include "inference/random_model.h"

#include "inference/gguf.h"

#include <cmath>
#include <string_view>

namespace spark {
namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t hash_name(std::string_view s, uint64_t seed) {
    uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return splitmix64(h);
}

// Uniform in [-1, 1), a pure function of (key, i).
float uniform(uint64_t key, uint64_t i) {
    return float(double(splitmix64(key + i) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

std::vector<float> random_values(std::string_view name, uint64_t seed, uint64_t n, float scale, float offset) {
    const uint64_t key = hash_name(name, seed);
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = offset + scale * uniform(key, i);
    return v;
}

struct vocab_data {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
};

enum : int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// Frequent code fragments, so that tokenisation of real code produces multi-character tokens.
constexpr std::string_view code_pieces[] = {
    "▁t",   "he",     "▁the",  "in",    "er",      "▁a",     "on",    "re",     "▁s",    "at",     "en",
    "or",   "▁def",   "▁return", "▁if",  "▁for",    "▁in",    "▁(",    "):",     "▁=",    "▁int",   "()",
    "self", "▁self",  "__",    "▁print", "▁▁",     "▁▁▁▁",   "st",    "▁i",     "++",    "▁{",     "▁}",
    "ing",  "▁import", "▁from", "▁class", "▁const", "▁else",  "▁while", "▁n",    "▁0",    "▁1",     "\"\"\"",
};

vocab_data spm_vocab() {
    vocab_data v;
    auto add = [&](std::string t, float score, int32_t type) {
        v.tokens.push_back(std::move(t));
        v.scores.push_back(score);
        v.types.push_back(type);
    };
    add("<unk>", 0, unknown);
    add("<s>", 0, control);
    add("</s>", 0, control);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        add(buf, 0, byte);
    }
    add("▁", -1000, normal);
    for (int c = 0x21; c < 0x7f; ++c) add(std::string(1, char(c)), float(-1001 - c), normal);
    float score = -10;
    for (auto p : code_pieces) add(std::string(p), score -= 1, normal);
    add("▁<PRE>", 0, control);
    add("▁<SUF>", 0, control);
    add("▁<MID>", 0, control);
    add("▁<EOT>", 0, control);
    return v;
}

// GPT-2's reversible byte-to-character map used by byte-level BPE vocabularies.
std::string byte_char(int b) {
    int cp = b;
    const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    if (!printable) {
        int n = 0;
        for (int x = 0; x < b; ++x)
            if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff))) ++n;
        cp = 256 + n;
    }
    std::string s;
    if (cp < 0x80) {
        s += char(cp);
    } else {
        s += char(0xc0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3f));
    }
    return s;
}

vocab_data bpe_vocab() {
    vocab_data v;
    for (int b = 0; b < 256; ++b) {
        v.tokens.push_back(byte_char(b));
        v.types.push_back(normal);
    }
    const std::string sp = byte_char(' '), nl = byte_char('\n');
    const std::pair<std::string, std::string> merges[] = {
        {sp, sp},         {sp + sp, sp + sp}, {"i", "n"},   {sp, "t"},    {"h", "e"},     {sp + "t", "he"},
        {"e", "r"},       {"o", "n"},        {"r", "e"},   {sp, "a"},    {"a", "t"},     {"e", "n"},
        {"o", "r"},       {"d", "e"},        {"de", "f"},  {sp, "def"},  {"s", "e"},     {"l", "f"},
        {"se", "lf"},     {sp, "self"},      {"r", "et"},  {"e", "t"},   {"u", "r"},     {"ur", "n"},
        {"ret", "urn"},   {sp, "return"},    {sp, "in"},   {"i", "f"},   {sp, "if"},     {"f", "or"},
        {sp, "for"},      {"(", ")"},        {")", ":"},   {sp, "="},    {nl, sp + sp},  {"_", "_"},
        {"p", "r"},       {"pr", "in"},      {"prin", "t"}, {sp, "print"}, {"+", "+"},   {sp, "{"},
    };
    for (const auto& [a, b] : merges) {
        v.merges.push_back(a + " " + b);
        v.tokens.push_back(a + b);
        v.types.push_back(normal);
    }
    for (std::string s : {"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                          "<|repo_name|>", "<|file_sep|>"}) {
        v.tokens.push_back(s);
        v.types.push_back(control);
    }
    return v;
}

int32_t index_of(const vocab_data& v, std::string_view t) {
    for (size_t i = 0; i < v.tokens.size(); ++i)
        if (v.tokens[i] == t) return int32_t(i);
    return -1;
}

}  // namespace

std::vector<std::string> random_model_preset_names() {
    return {"tiny-llama", "tiny-llama-tied", "tiny-qwen2", "qwen2.5-0.5b", "qwen2.5-1.5b"};
}

result<random_model_spec> random_model_preset(const std::string& name) {
    random_model_spec s;
    s.name = name;
    if (name == "tiny-llama") return s;
    if (name == "tiny-llama-tied") {
        s.tied_output = true;
        s.n_head_kv = 4;  // plain multi-head attention
        s.n_ff = 96;
        s.seed = 2;
        return s;
    }
    if (name == "tiny-qwen2") {
        s.arch = "qwen2";
        s.n_embd = 64;
        s.n_head = 8;
        s.n_head_kv = 2;
        s.n_ff = 160;
        s.rope_base = 1000000.0f;
        s.rms_eps = 1e-6f;
        s.seed = 3;
        return s;
    }
    if (name == "qwen2.5-0.5b" || name == "qwen2.5-1.5b") {
        s.arch = "qwen2";
        s.n_vocab = 151936;
        s.n_ctx = 32768;
        s.rope_base = 1000000.0f;
        s.rms_eps = 1e-6f;
        s.weight_type = ggml_type::q8_0;
        s.n_head_kv = 2;
        if (name == "qwen2.5-0.5b") {
            s.n_embd = 896, s.n_layer = 24, s.n_head = 14, s.n_ff = 4864, s.tied_output = true;
        } else {
            s.n_embd = 1536, s.n_layer = 28, s.n_head = 12, s.n_ff = 8960, s.tied_output = true;
        }
        return s;
    }
    return fail("unknown model preset '", name, "'");
}

result<void> write_random_model(const random_model_spec& s, const std::string& path,
                                const std::function<void(size_t, size_t)>& progress) {
    if (s.arch != "llama" && s.arch != "qwen2") return fail("random model: unknown architecture '", s.arch, "'");
    const int32_t head_dim = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    vocab_data v = s.arch == "llama" ? spm_vocab() : bpe_vocab();
    const int32_t n_vocab = s.n_vocab ? s.n_vocab : int32_t(v.tokens.size());
    if (n_vocab < int32_t(v.tokens.size())) return fail("random model: n_vocab below the vocabulary's ", v.tokens.size());
    for (int32_t i = int32_t(v.tokens.size()); i < n_vocab; ++i) {
        v.tokens.push_back(s.arch == "llama" ? "<unused" + std::to_string(i) + ">" : "<|extra_" + std::to_string(i) + "|>");
        if (!v.scores.empty()) v.scores.push_back(0);
        v.types.push_back(s.arch == "llama" ? unused : control);
    }

    gguf::gguf_writer w;
    const std::string a = s.arch + ".";
    w.set_string("general.architecture", s.arch);
    w.set_string("general.name", s.name);
    w.set_u32(a + "context_length", uint32_t(s.n_ctx));
    w.set_u32(a + "embedding_length", uint32_t(s.n_embd));
    w.set_u32(a + "block_count", uint32_t(s.n_layer));
    w.set_u32(a + "feed_forward_length", uint32_t(s.n_ff));
    w.set_u32(a + "attention.head_count", uint32_t(s.n_head));
    w.set_u32(a + "attention.head_count_kv", uint32_t(s.n_head_kv));
    if (head_dim * s.n_head != s.n_embd) w.set_u32(a + "attention.key_length", uint32_t(head_dim));
    w.set_f32(a + "rope.freq_base", s.rope_base);
    w.set_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);

    w.set_string("tokenizer.ggml.model", s.arch == "llama" ? "llama" : "gpt2");
    w.set_strings("tokenizer.ggml.tokens", v.tokens);
    w.set_i32s("tokenizer.ggml.token_type", v.types);
    if (s.arch == "llama") {
        w.set_f32s("tokenizer.ggml.scores", v.scores);
        w.set_u32("tokenizer.ggml.bos_token_id", 1);
        w.set_u32("tokenizer.ggml.eos_token_id", 2);
        w.set_u32("tokenizer.ggml.unknown_token_id", 0);
        w.set_bool("tokenizer.ggml.add_bos_token", true);
        w.set_u32("tokenizer.ggml.fim_pre_token_id", uint32_t(index_of(v, "▁<PRE>")));
        w.set_u32("tokenizer.ggml.fim_suf_token_id", uint32_t(index_of(v, "▁<SUF>")));
        w.set_u32("tokenizer.ggml.fim_mid_token_id", uint32_t(index_of(v, "▁<MID>")));
        w.set_u32("tokenizer.ggml.eot_token_id", uint32_t(index_of(v, "▁<EOT>")));
    } else {
        w.set_string("tokenizer.ggml.pre", "qwen2");
        w.set_strings("tokenizer.ggml.merges", v.merges);
        w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(index_of(v, "<|endoftext|>")));
        w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(index_of(v, "<|endoftext|>")));
        w.set_bool("tokenizer.ggml.add_bos_token", false);
        w.set_u32("tokenizer.ggml.fim_pre_token_id", uint32_t(index_of(v, "<|fim_prefix|>")));
        w.set_u32("tokenizer.ggml.fim_suf_token_id", uint32_t(index_of(v, "<|fim_suffix|>")));
        w.set_u32("tokenizer.ggml.fim_mid_token_id", uint32_t(index_of(v, "<|fim_middle|>")));
        w.set_u32("tokenizer.ggml.fim_pad_token_id", uint32_t(index_of(v, "<|fim_pad|>")));
        w.set_u32("tokenizer.ggml.fim_rep_token_id", uint32_t(index_of(v, "<|repo_name|>")));
        w.set_u32("tokenizer.ggml.fim_sep_token_id", uint32_t(index_of(v, "<|file_sep|>")));
    }

    struct plan {
        std::string name;
        std::vector<uint64_t> dims;
        bool matrix;
        float scale, offset;
    };
    std::vector<plan> tensors;
    const uint64_t dq = uint64_t(s.n_head) * head_dim, dkv = uint64_t(s.n_head_kv) * head_dim;
    auto mat = [&](std::string name, uint64_t in, uint64_t out) {
        tensors.push_back({std::move(name), {in, out}, true, float(std::sqrt(3.0 / double(in))), 0.0f});
    };
    auto vec = [&](std::string name, uint64_t n, float scale, float offset) {
        tensors.push_back({std::move(name), {n}, false, scale, offset});
    };
    tensors.push_back({"token_embd.weight", {uint64_t(s.n_embd), uint64_t(n_vocab)}, true, 1.0f, 0.0f});
    vec("output_norm.weight", uint64_t(s.n_embd), 0.1f, 1.0f);
    if (!s.tied_output) mat("output.weight", uint64_t(s.n_embd), uint64_t(n_vocab));
    for (int32_t i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        vec(p + "attn_norm.weight", uint64_t(s.n_embd), 0.1f, 1.0f);
        mat(p + "attn_q.weight", uint64_t(s.n_embd), dq);
        mat(p + "attn_k.weight", uint64_t(s.n_embd), dkv);
        mat(p + "attn_v.weight", uint64_t(s.n_embd), dkv);
        if (s.arch == "qwen2") {
            vec(p + "attn_q.bias", dq, 0.1f, 0.0f);
            vec(p + "attn_k.bias", dkv, 0.1f, 0.0f);
            vec(p + "attn_v.bias", dkv, 0.1f, 0.0f);
        }
        mat(p + "attn_output.weight", dq, uint64_t(s.n_embd));
        vec(p + "ffn_norm.weight", uint64_t(s.n_embd), 0.1f, 1.0f);
        mat(p + "ffn_gate.weight", uint64_t(s.n_embd), uint64_t(s.n_ff));
        mat(p + "ffn_up.weight", uint64_t(s.n_embd), uint64_t(s.n_ff));
        mat(p + "ffn_down.weight", uint64_t(s.n_ff), uint64_t(s.n_embd));
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& t = tensors[i];
        uint64_t n = 1;
        for (auto d : t.dims) n *= d;
        const auto values = random_values(t.name, s.seed, n, t.scale, t.offset);
        if (auto ok = w.add_tensor_f32(t.name, t.dims, t.matrix ? s.weight_type : s.norm_type, values); !ok)
            return ok;
        if (progress) progress(i + 1, tensors.size());
    }
    return w.write(path);
}

}  // namespace spark
