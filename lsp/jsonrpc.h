// JSON-RPC 2.0 as LSP uses it: classify one message body, and build the bodies we send.
//
// The JSON type is only forward-declared here (<nlohmann/json_fwd.hpp>); code that reads params or builds results
// includes <nlohmann/json.hpp> in its .cpp. Bodies are unframed: pass them through frame_message() to send.
//
// Classification (parse_message), following JSON-RPC 2.0 with LSP's narrowing:
// - Not JSON, invalid UTF-8 in a string, an invalid \u escape, or nesting deeper than max_json_depth: parse_error
//   (-32700), id null.
// - A top-level array (a batch, empty or not): one invalid_request (-32600) with id null. JSON-RPC 2.0 allows
//   batches, LSP never sends them, and answering element by element would need an array reply no LSP client reads.
// - Anything but an object, `jsonrpc` missing or not exactly "2.0", `method` not a string, `id` not an integer or a
//   string (null, fractional, boolean, out of int64 range), `params` neither object nor array: invalid_request,
//   carrying the id when it is a valid one so that the reply can name it. `params` that are not structured make
//   the Request object itself invalid (JSON-RPC 2.0 §4.2), hence -32600 rather than -32602, which is left to
//   handlers whose params have the wrong shape. `"params": null` is read as absent: some clients send it for
//   shutdown and exit.
// - With `method` and `id`: a request; with `method` and no `id`: a notification. Without `method` but with
//   `result` or `error`: a response (exactly one of the two; `id` an integer or string, or null with an error;
//   `error` an object with an integer `code` and a string `message`). A response that breaks these rules yields
//   an error with reply = false: answering a response could start an endless exchange.
// - Other members are ignored.
//
// Everything here is a pure function of its arguments: callable from any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

namespace spark::lsp {

// JSON-RPC error codes. The -32000 range is LSP's.
enum class error_code : std::int32_t {
    parse_error = -32700,
    invalid_request = -32600,
    method_not_found = -32601,
    invalid_params = -32602,
    internal_error = -32603,
    server_not_initialized = -32002,
    unknown_error_code = -32001,
    request_failed = -32803,
    server_cancelled = -32802,
    content_modified = -32801,
    request_cancelled = -32800,
};

// A request id: integer or string, compared by type and value (1 and "1" differ, as JSON-RPC requires).
// std::variant supplies ==, < and std::hash, so it keys std::unordered_map directly.
using request_id = std::variant<std::int64_t, std::string>;

nlohmann::json id_to_json(const request_id& id);
// An integer in int64 range or a string; nullopt for anything else (as `$/cancelRequest` params need).
std::optional<request_id> id_from_json(const nlohmann::json& j);
std::string to_string(const request_id& id);  // 7 or "abc" (JSON spelling), for logs

// Nesting deeper than this is refused before parsing: nlohmann::json copies and serialises recursively.
inline constexpr int max_json_depth = 512;

enum class message_kind { request, notification, response };

struct response_error {
    std::int64_t code = 0;
    std::string message;
    std::shared_ptr<const nlohmann::json> data;  // null when absent
};

// One classified message. The JSON parts are shared and immutable, so copying an incoming is cheap.
struct incoming {
    message_kind kind = message_kind::notification;
    std::optional<request_id> id;                   // request: always; response: unless the id was null
    std::string method;                             // request and notification
    std::shared_ptr<const nlohmann::json> params;   // request and notification: object or array, null if absent
    std::shared_ptr<const nlohmann::json> result;   // response: the result (possibly JSON null), or null on error
    std::optional<response_error> error;            // response: the error, when it is an error response
};

// Why a body could not be classified, and how to answer it.
struct rpc_error {
    error_code code = error_code::invalid_request;
    std::string message;
    std::optional<request_id> id;  // the id to answer with; nullopt answers with id null
    bool reply = true;             // false for broken responses, which must not be answered
};

// spark::result carries only a message; a JSON-RPC failure also needs the code and the id to answer with.
template <class T>
using rpc_result = std::expected<T, rpc_error>;

// Classifies one body. Never throws.
rpc_result<incoming> parse_message(std::string_view body);

// Builders: each returns one compact body with "jsonrpc" first. Strings that are not valid UTF-8 are written with
// U+FFFD in place of the bad bytes instead of failing, so a reply is always produced.
std::string make_response(const request_id& id, const nlohmann::json& result);
std::string make_error(const std::optional<request_id>& id, error_code code, std::string_view message);
std::string make_error(const std::optional<request_id>& id, error_code code, std::string_view message,
                       const nlohmann::json& data);
std::string make_error(const rpc_error& error);
std::string make_request(const request_id& id, std::string_view method, const nlohmann::json& params);
std::string make_notification(std::string_view method, const nlohmann::json& params);
std::string make_notification(std::string_view method);  // without params

}  // namespace spark::lsp
