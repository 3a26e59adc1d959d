// The tree-sitter runtime and the nine grammars built by third_party/CMakeLists.txt: each language must be accepted by
// the runtime (ts_parser_set_language() is the only place an ABI mismatch shows), parse a valid snippet without
// errors and flag a broken one.
#include <catch2/catch.hpp>

#include <tree_sitter/api.h>

#include <tree_sitter_languages.h>  // third_party/, a PUBLIC include dir of spark_treesitter

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

struct LanguageCase {
  const char* name;
  const TSLanguage* (*language)();
  const char* valid;
  const char* broken;
};

const LanguageCase kCases[] = {
    {"python", tree_sitter_python,
     "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
     "def add(a, b:\n    return a +\n"},
    {"c", tree_sitter_c,
     "#include <stdio.h>\nint main(void) {\n  printf(\"%d\\n\", 1 + 2);\n  return 0;\n}\n",
     "int main(void) {\n  return (1 + ;\n"},
    {"cpp", tree_sitter_cpp,
     "#include <vector>\ntemplate <typename T> T sum(const std::vector<T>& v) {\n"
     "  T s{};\n  for (const auto& x : v) s += x;\n  return s;\n}\n",
     "template <typename T> T sum(const std::vector<T>& v {\n  return ;\n"},
    {"javascript", tree_sitter_javascript,
     "const add = (a, b) => a + b;\nfunction f(x) { return add(x, 1); }\nconsole.log(f(2));\n",
     "function f(x { return add(x, ; }\n"},
    {"typescript", tree_sitter_typescript,
     "interface P { x: number; y: number }\nfunction len(p: P): number { return Math.hypot(p.x, p.y); }\n",
     "interface P { x: number; y: }\nfunction len(p: P): { return ; \n"},
    {"tsx", tree_sitter_tsx,
     "const App = (props: { name: string }) => <div className=\"a\">Hello {props.name}</div>;\n",
     "const App = (props: { name: string }) => <div>Hello {props.name</span>;\n"},
    {"rust", tree_sitter_rust,
     "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\nfn main() { println!(\"{}\", add(1, 2)); }\n",
     "fn add(a: i32, b: i32 -> i32 {\n    a +\n"},
    {"go", tree_sitter_go,
     "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(1 + 2)\n}\n",
     "package main\n\nfunc main( {\n\tfmt.Println(1 +\n"},
    {"java", tree_sitter_java,
     "class A {\n  int add(int a, int b) { return a + b; }\n}\n",
     "class A {\n  int add(int a, int b { return a + ; }\n"},
};

struct ParserDeleter {
  void operator()(TSParser* p) const { ts_parser_delete(p); }
};
struct TreeDeleter {
  void operator()(TSTree* t) const { ts_tree_delete(t); }
};
using ParserPtr = std::unique_ptr<TSParser, ParserDeleter>;
using TreePtr = std::unique_ptr<TSTree, TreeDeleter>;

TreePtr parse(TSParser* parser, const std::string& text) {
  return TreePtr(ts_parser_parse_string(parser, nullptr, text.data(), static_cast<uint32_t>(text.size())));
}

std::string sexp(TSNode node) {
  char* s = ts_node_string(node);
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

}  // namespace

TEST_CASE("tree-sitter runtime accepts and parses all nine grammars", "[treesitter]") {
  for (const LanguageCase& c : kCases) {
    SECTION(c.name) {
      INFO("language: " << c.name);
      const TSLanguage* lang = c.language();
      REQUIRE(lang != nullptr);
      const uint32_t abi = ts_language_abi_version(lang);
      INFO("grammar ABI " << abi << ", runtime accepts " << TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION << ".."
                          << TREE_SITTER_LANGUAGE_VERSION);

      ParserPtr parser(ts_parser_new());
      REQUIRE(parser);
      // The ABI check happens only here: a refused grammar makes every later parse return NULL.
      REQUIRE(ts_parser_set_language(parser.get(), lang));
      REQUIRE(ts_parser_language(parser.get()) == lang);

      TreePtr good = parse(parser.get(), c.valid);
      REQUIRE(good);
      TSNode root = ts_tree_root_node(good.get());
      REQUIRE_FALSE(ts_node_is_null(root));
      INFO("valid tree: " << sexp(root));
      CHECK(ts_node_child_count(root) > 0);
      CHECK(ts_node_end_byte(root) > 0);
      CHECK_FALSE(ts_node_has_error(root));

      TreePtr bad = parse(parser.get(), c.broken);
      REQUIRE(bad);
      TSNode bad_root = ts_tree_root_node(bad.get());
      REQUIRE_FALSE(ts_node_is_null(bad_root));
      INFO("broken tree: " << sexp(bad_root));
      CHECK(ts_node_has_error(bad_root));
    }
  }
}
