/* Language entry points of the tree-sitter grammars compiled into spark_treesitter (third_party/CMakeLists.txt).
 * Usable from C and C++. Always check ts_parser_set_language()'s result: an ABI mismatch only shows there. */
#ifndef SPARK_TREE_SITTER_LANGUAGES_H
#define SPARK_TREE_SITTER_LANGUAGES_H

#include <tree_sitter/api.h>

#ifdef __cplusplus
extern "C" {
#endif

const TSLanguage *tree_sitter_python(void);
const TSLanguage *tree_sitter_c(void);
const TSLanguage *tree_sitter_cpp(void);
const TSLanguage *tree_sitter_javascript(void);
const TSLanguage *tree_sitter_typescript(void);
const TSLanguage *tree_sitter_tsx(void);
const TSLanguage *tree_sitter_rust(void);
const TSLanguage *tree_sitter_go(void);
const TSLanguage *tree_sitter_java(void);

#ifdef __cplusplus
}
#endif

#endif /* SPARK_TREE_SITTER_LANGUAGES_H */
