// Model loading: hyper-parameters from metadata, tensors bound and checked by name, shape and type.
#include "inference/model.h"

#include <cmath>
#include <limits>

namespace spark {
namespace {

std::string dims_text(const std::vector<uint64_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

class binder {
public:
    explicit binder(const gguf::gguf_file& f) : f_(f) {}

    result<weight_matrix> matrix(const std::string& name, int64_t n_cols, int64_t n_rows) {
        const auto* t = f_.find_tensor(name);
        if (!t) return fail("tensor '", name, "' is missing");
        const auto& tr = traits(t->type);
        if (!tr.supported)
            return fail("tensor '", name, "' has type ", tr.name, ", which spark-ls does not support");
        if (t->dims.size() != 2 || int64_t(t->dims[0]) != n_cols || int64_t(t->dims[1]) != n_rows)
            return fail("tensor '", name, "' has dims ", dims_text(t->dims), ", expected [", n_cols, ", ", n_rows, "]");
        weight_matrix m;
        m.info = t;
        m.data = f_.tensor_data(*t).data();
        m.type = t->type;
        m.n_cols = n_cols;
        m.n_rows = n_rows;
        m.row_bytes = row_bytes(t->type, uint64_t(n_cols));
        ++n_bound_;
        return m;
    }

    // A 1-D tensor decoded to f32; `optional` tensors that are absent give an empty vector.
    result<std::vector<float>> vector(const std::string& name, int64_t n, bool optional = false) {
        const auto* t = f_.find_tensor(name);
        if (!t) {
            if (optional) return std::vector<float>{};
            return fail("tensor '", name, "' is missing");
        }
        if (t->dims.size() != 1 || int64_t(t->dims[0]) != n)
            return fail("tensor '", name, "' has dims ", dims_text(t->dims), ", expected [", n, "]");
        const auto& tr = traits(t->type);
        if (!tr.supported)
            return fail("tensor '", name, "' has type ", tr.name, ", which spark-ls does not support");
        std::vector<float> out(static_cast<size_t>(n));
        dequantize_row(t->type, f_.tensor_data(*t).data(), out.data(), n);
        for (float x : out)
            if (!std::isfinite(x)) return fail("tensor '", name, "' holds a non-finite value");
        ++n_bound_;
        return out;
    }

    size_t n_bound() const { return n_bound_; }

private:
    const gguf::gguf_file& f_;
    size_t n_bound_ = 0;
};

// Reads `{arch}.{key}` as a positive integer within [1, max].
result<int32_t> positive(const gguf::gguf_file& f, const std::string& key, std::optional<int64_t> fallback,
                         int64_t max = int64_t(1) << 20) {
    auto v = f.get_int(key);
    if (!v) return std::unexpected(v.error());
    std::optional<int64_t> x = *v ? *v : fallback;
    if (!x) return fail("metadata '", key, "' is missing");
    if (*x < 1 || *x > max) return fail("metadata '", key, "' = ", *x, " is out of range [1, ", max, "]");
    return int32_t(*x);
}

}  // namespace

result<std::shared_ptr<const model>> model::load(const std::string& path) {
    auto f = gguf::gguf_file::open(path);
    if (!f) return std::unexpected(f.error());
    return from_file(std::move(*f), path);
}

result<std::shared_ptr<const model>> model::from_file(gguf::gguf_file file, std::string origin) {
    std::shared_ptr<model> m(new model(std::move(file), std::move(origin)));
    if (auto ok = m->bind(); !ok) return fail(m->origin_, ": ", ok.error().message);
    return std::shared_ptr<const model>(std::move(m));
}

result<void> model::bind() {
    const auto& f = file_;
    auto arch = f.get_string("general.architecture");
    if (!arch) return std::unexpected(arch.error());
    if (!*arch) return fail("metadata 'general.architecture' is missing");
    auto& hp = hparams_;
    hp.arch = **arch;
    if (hp.arch == "llama") {
        hp.rope = rope_style::normal;
    } else if (hp.arch == "qwen2") {
        hp.rope = rope_style::neox;
    } else {
        return fail("architecture '", hp.arch, "' is not supported (llama and qwen2 are)");
    }
    if (auto name = f.get_string("general.name"); name && *name) hp.name = **name;
    const std::string a = hp.arch + ".";

#define SPARK_TRY_ASSIGN(lhs, expr)                          \
    do {                                                     \
        auto r_ = (expr);                                    \
        if (!r_) return std::unexpected(r_.error());         \
        lhs = *r_;                                           \
    } while (0)

    SPARK_TRY_ASSIGN(hp.n_embd, positive(f, a + "embedding_length", std::nullopt));
    SPARK_TRY_ASSIGN(hp.n_layer, positive(f, a + "block_count", std::nullopt, 4096));
    SPARK_TRY_ASSIGN(hp.n_ff, positive(f, a + "feed_forward_length", std::nullopt));
    SPARK_TRY_ASSIGN(hp.n_head, positive(f, a + "attention.head_count", std::nullopt, 4096));
    SPARK_TRY_ASSIGN(hp.n_head_kv, positive(f, a + "attention.head_count_kv", hp.n_head, 4096));
    SPARK_TRY_ASSIGN(hp.n_ctx_train, positive(f, a + "context_length", 4096, int64_t(1) << 24));
    if (hp.n_head % hp.n_head_kv != 0)
        return fail("attention.head_count ", hp.n_head, " is not a multiple of head_count_kv ", hp.n_head_kv);
    const int64_t default_head_dim = hp.n_embd % hp.n_head == 0 ? hp.n_embd / hp.n_head : 0;
    SPARK_TRY_ASSIGN(hp.head_dim, positive(f, a + "attention.key_length",
                                           default_head_dim ? std::optional<int64_t>(default_head_dim) : std::nullopt,
                                           4096));
    {
        int32_t value_length = 0;
        SPARK_TRY_ASSIGN(value_length, positive(f, a + "attention.value_length", hp.head_dim, 4096));
        if (value_length != hp.head_dim)
            return fail("attention.value_length ", value_length, " differs from key_length ", hp.head_dim,
                        " (not supported)");
    }
    SPARK_TRY_ASSIGN(hp.n_rot, positive(f, a + "rope.dimension_count", hp.head_dim, hp.head_dim));
    if (hp.n_rot % 2) return fail("rope.dimension_count ", hp.n_rot, " is odd");

    auto base = f.get_float(a + "rope.freq_base");
    if (!base) return std::unexpected(base.error());
    if (*base) hp.rope_base = float(**base);
    if (!(hp.rope_base > 0) || !std::isfinite(hp.rope_base)) return fail("rope.freq_base must be positive");
    auto eps = f.get_float(a + "attention.layer_norm_rms_epsilon");
    if (!eps) return std::unexpected(eps.error());
    if (*eps) hp.rms_eps = float(**eps);
    if (!(hp.rms_eps > 0) || !std::isfinite(hp.rms_eps)) return fail("layer_norm_rms_epsilon must be positive");
    auto scaling = f.get_string(a + "rope.scaling.type");
    if (!scaling) return std::unexpected(scaling.error());
    if (*scaling && **scaling != "none") {
        if (**scaling != "linear") return fail("RoPE scaling '", **scaling, "' is not supported (none, linear are)");
        auto factor = f.get_float(a + "rope.scaling.factor");
        if (!factor) return std::unexpected(factor.error());
        if (*factor && **factor > 0) hp.rope_freq_scale = float(1.0 / **factor);
    }

    // Tensors.
    binder b(f);
    auto* embd = f.find_tensor("token_embd.weight");
    if (!embd) return fail("tensor 'token_embd.weight' is missing");
    if (embd->dims.size() != 2 || embd->dims[1] > uint64_t(std::numeric_limits<int32_t>::max()))
        return fail("tensor 'token_embd.weight' has dims ", dims_text(embd->dims), ", expected [n_embd, n_vocab]");
    hp.n_vocab = int32_t(embd->dims[1]);
    auto& w = weights_;
    SPARK_TRY_ASSIGN(w.token_embd, b.matrix("token_embd.weight", hp.n_embd, hp.n_vocab));
    SPARK_TRY_ASSIGN(w.output_norm, b.vector("output_norm.weight", hp.n_embd));
    if (f.find_tensor("output.weight")) {
        SPARK_TRY_ASSIGN(w.output, b.matrix("output.weight", hp.n_embd, hp.n_vocab));
    } else {
        hp.tied_output = true;
        w.output = w.token_embd;
    }
    hp.has_qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
    w.layers.resize(size_t(hp.n_layer));
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        auto& l = w.layers[size_t(i)];
        SPARK_TRY_ASSIGN(l.attn_norm, b.vector(p + "attn_norm.weight", hp.n_embd));
        SPARK_TRY_ASSIGN(l.wq, b.matrix(p + "attn_q.weight", hp.n_embd, hp.n_embd_q()));
        SPARK_TRY_ASSIGN(l.wk, b.matrix(p + "attn_k.weight", hp.n_embd, hp.n_embd_kv()));
        SPARK_TRY_ASSIGN(l.wv, b.matrix(p + "attn_v.weight", hp.n_embd, hp.n_embd_kv()));
        SPARK_TRY_ASSIGN(l.wo, b.matrix(p + "attn_output.weight", hp.n_embd_q(), hp.n_embd));
        const bool required = hp.has_qkv_bias;
        SPARK_TRY_ASSIGN(l.bq, b.vector(p + "attn_q.bias", hp.n_embd_q(), !required));
        SPARK_TRY_ASSIGN(l.bk, b.vector(p + "attn_k.bias", hp.n_embd_kv(), !required));
        SPARK_TRY_ASSIGN(l.bv, b.vector(p + "attn_v.bias", hp.n_embd_kv(), !required));
        SPARK_TRY_ASSIGN(l.ffn_norm, b.vector(p + "ffn_norm.weight", hp.n_embd));
        SPARK_TRY_ASSIGN(l.w_gate, b.matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff));
        SPARK_TRY_ASSIGN(l.w_up, b.matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff));
        SPARK_TRY_ASSIGN(l.w_down, b.matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd));
    }
#undef SPARK_TRY_ASSIGN

    auto tok = tokenizer::load(f);
    if (!tok) return std::unexpected(tok.error());
    if (tok->n_tokens() > hp.n_vocab)
        return fail("the tokenizer has ", tok->n_tokens(), " tokens but the embedding only ", hp.n_vocab, " rows");
    tokenizer_ = std::make_unique<tokenizer>(std::move(*tok));
    return {};
}

uint64_t model::weight_bytes() const {
    uint64_t n = 0;
    for (const auto& t : file_.tensors()) n += t.n_bytes;
    return n;
}

}  // namespace spark
