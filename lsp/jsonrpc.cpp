#include "lsp/jsonrpc.h"

#include <limits>
#include <new>

#include <nlohmann/json.hpp>

namespace spark::lsp {

using json = nlohmann::json;

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms, surrogates and code
// points above U+10FFFF included), or npos.
std::size_t invalid_utf8_offset(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        std::uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (s.size() - i < len) return i;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (d & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return std::string_view::npos;
}

// Deepest bracket nesting outside strings; stops counting once past `limit`.
int nesting_depth(std::string_view s, int limit) {
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

enum class id_kind { absent, null, valid, invalid };

struct id_read {
    id_kind kind = id_kind::absent;
    std::optional<request_id> id;
};

id_read read_id(const json& message) {
    const auto it = message.find("id");
    if (it == message.end()) return {};
    if (it->is_null()) return {id_kind::null, std::nullopt};
    if (auto id = id_from_json(*it)) return {id_kind::valid, std::move(id)};
    return {id_kind::invalid, std::nullopt};
}

std::unexpected<rpc_error> invalid(std::string message, std::optional<request_id> id, bool reply = true) {
    return std::unexpected(rpc_error{error_code::invalid_request, std::move(message), std::move(id), reply});
}

std::optional<std::int64_t> read_int64(const json& j) {
    if (j.is_number_unsigned()) {
        const auto u = j.get<std::uint64_t>();
        if (u > std::uint64_t(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
        return std::int64_t(u);
    }
    if (j.is_number_integer()) return j.get<std::int64_t>();
    return std::nullopt;
}

rpc_result<incoming> classify_response(json& message, const id_read& id) {
    const auto result = message.find("result");
    const auto error = message.find("error");
    const bool has_result = result != message.end();
    const bool has_error = error != message.end();
    if (has_result && has_error) return invalid("response has both 'result' and 'error'", id.id, false);
    if (id.kind == id_kind::absent) return invalid("response without 'id'", std::nullopt, false);
    if (id.kind == id_kind::invalid) return invalid("response 'id' is not an integer or a string", std::nullopt, false);
    if (id.kind == id_kind::null && !has_error) return invalid("successful response with 'id' null", std::nullopt, false);

    incoming in;
    in.kind = message_kind::response;
    in.id = id.id;
    if (has_result) {
        in.result = std::make_shared<const json>(std::move(*result));
        return in;
    }
    if (!error->is_object()) return invalid("response 'error' is not an object", id.id, false);
    const auto code = error->find("code");
    const auto text = error->find("message");
    std::optional<std::int64_t> code_value;
    if (code != error->end()) code_value = read_int64(*code);
    if (!code_value) return invalid("response error 'code' is not an integer", id.id, false);
    if (text == error->end() || !text->is_string()) {
        return invalid("response error 'message' is not a string", id.id, false);
    }
    response_error e;
    e.code = *code_value;
    e.message = text->get<std::string>();
    if (const auto data = error->find("data"); data != error->end()) {
        e.data = std::make_shared<const json>(std::move(*data));
    }
    in.error = std::move(e);
    return in;
}

rpc_result<incoming> classify(json& message) {
    if (message.is_array()) {
        return invalid("batch messages (JSON arrays) are not supported", std::nullopt);
    }
    if (!message.is_object()) return invalid("message is not a JSON object", std::nullopt);

    const id_read id = read_id(message);
    const auto method = message.find("method");
    const bool has_method = method != message.end();
    const bool is_response = !has_method && (message.contains("result") || message.contains("error"));

    const auto version = message.find("jsonrpc");
    if (version == message.end()) return invalid("missing \"jsonrpc\": \"2.0\"", id.id, !is_response);
    if (!version->is_string() || version->get_ref<const std::string&>() != "2.0") {
        return invalid("\"jsonrpc\" is " + dump(*version) + ", not \"2.0\"", id.id, !is_response);
    }

    if (is_response) return classify_response(message, id);
    if (!has_method) return invalid("message has no 'method', 'result' or 'error'", id.id);
    if (!method->is_string()) return invalid("'method' is not a string", id.id);
    switch (id.kind) {
        case id_kind::null: return invalid("request 'id' is null", std::nullopt);
        case id_kind::invalid: return invalid("request 'id' is not an integer or a string", std::nullopt);
        default: break;
    }

    incoming in;
    in.kind = id.kind == id_kind::valid ? message_kind::request : message_kind::notification;
    in.id = id.id;
    in.method = method->get<std::string>();
    if (const auto params = message.find("params"); params != message.end() && !params->is_null()) {
        if (!params->is_object() && !params->is_array()) {
            return invalid("'params' of " + in.method + " is neither an object nor an array", id.id);
        }
        in.params = std::make_shared<const json>(std::move(*params));
    }
    return in;
}

std::string error_body(const std::optional<request_id>& id, error_code code, std::string_view message,
                       const json* data) {
    std::string out = R"({"jsonrpc":"2.0","id":)";
    out += id ? dump(id_to_json(*id)) : "null";
    out += R"(,"error":{"code":)";
    out += std::to_string(static_cast<std::int32_t>(code));
    out += R"(,"message":)";
    out += dump(json(std::string(message)));
    if (data) {
        out += R"(,"data":)";
        out += dump(*data);
    }
    out += "}}";
    return out;
}

}  // namespace

json id_to_json(const request_id& id) {
    return std::visit([](const auto& v) { return json(v); }, id);
}

std::optional<request_id> id_from_json(const json& j) {
    if (j.is_string()) return request_id(j.get<std::string>());
    if (auto n = read_int64(j)) return request_id(*n);
    return std::nullopt;
}

std::string to_string(const request_id& id) { return dump(id_to_json(id)); }

rpc_result<incoming> parse_message(std::string_view body) {
    const auto parse_failure = [](std::string message) {
        return std::unexpected(rpc_error{error_code::parse_error, std::move(message), std::nullopt, true});
    };
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return parse_failure("empty message body");
    if (const auto bad = invalid_utf8_offset(body); bad != std::string_view::npos) {
        return parse_failure("invalid UTF-8 in message body at byte " + std::to_string(bad));
    }
    if (nesting_depth(body, max_json_depth) > max_json_depth) {
        return parse_failure("JSON nested deeper than " + std::to_string(max_json_depth) + " levels");
    }
    try {
        json message = json::parse(body);
        return classify(message);
    } catch (const json::parse_error& e) {
        return parse_failure(std::string("invalid JSON: ") + e.what());
    } catch (const std::bad_alloc&) {
        return std::unexpected(
            rpc_error{error_code::internal_error, "out of memory parsing message", std::nullopt, true});
    } catch (const std::exception& e) {
        return parse_failure(std::string("invalid JSON: ") + e.what());
    }
}

std::string make_response(const request_id& id, const json& result) {
    std::string out = R"({"jsonrpc":"2.0","id":)";
    out += dump(id_to_json(id));
    out += R"(,"result":)";
    out += dump(result);
    out += '}';
    return out;
}

std::string make_error(const std::optional<request_id>& id, error_code code, std::string_view message) {
    return error_body(id, code, message, nullptr);
}

std::string make_error(const std::optional<request_id>& id, error_code code, std::string_view message,
                       const json& data) {
    return error_body(id, code, message, &data);
}

std::string make_error(const rpc_error& error) { return error_body(error.id, error.code, error.message, nullptr); }

std::string make_request(const request_id& id, std::string_view method, const json& params) {
    std::string out = R"({"jsonrpc":"2.0","id":)";
    out += dump(id_to_json(id));
    out += R"(,"method":)";
    out += dump(json(std::string(method)));
    out += R"(,"params":)";
    out += dump(params);
    out += '}';
    return out;
}

std::string make_notification(std::string_view method, const json& params) {
    std::string out = R"({"jsonrpc":"2.0","method":)";
    out += dump(json(std::string(method)));
    out += R"(,"params":)";
    out += dump(params);
    out += '}';
    return out;
}

std::string make_notification(std::string_view method) {
    std::string out = R"({"jsonrpc":"2.0","method":)";
    out += dump(json(std::string(method)));
    out += '}';
    return out;
}

}  // namespace spark::lsp
