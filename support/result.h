// result<T>: the return type of every fallible call in spark-ls.
//
// A thin alias over std::expected so that errors are values: they never cross a thread or module boundary as
// exceptions. An error carries one human-readable message that names the problem (the file, the tensor, the
// offset), because the person reading it is usually a user with a broken model file, not a debugger.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace spark {

struct error {
    std::string message;
};

template <class T>
using result = std::expected<T, error>;

// Pieces a message is built from: strings, characters and numbers.
inline void append_part(std::string& out, std::string_view s) { out.append(s); }
inline void append_part(std::string& out, const char* s) { out.append(s); }
inline void append_part(std::string& out, const std::string& s) { out.append(s); }
inline void append_part(std::string& out, char c) { out.push_back(c); }
template <class Number>
    requires std::is_arithmetic_v<Number>
void append_part(std::string& out, Number v) {
    out.append(std::to_string(v));
}

template <class... Parts>
[[nodiscard]] std::string concat(Parts&&... parts) {
    std::string message;
    (append_part(message, std::forward<Parts>(parts)), ...);
    return message;
}

// The error side of a result: `return fail("tensor ", name, " has type ", type_name);`
template <class... Parts>
[[nodiscard]] std::unexpected<error> fail(Parts&&... parts) {
    return std::unexpected<error>(error{concat(std::forward<Parts>(parts)...)});
}

}  // namespace spark
