// Where the embedded default models live, so spark-ls works with no model configured.
//
// Search order: $SPARK_MODEL_DIR; the models/ folder of the source tree spark-ls was built from; <prefix>/share/
// spark-ls/models next to an installed binary. The first folder holding the file wins.
#pragma once

#include "support/result.h"

#include <string>

namespace spark {

inline constexpr const char* default_target_model = "spark-target.gguf";
inline constexpr const char* default_draft_model = "spark-draft.gguf";

// The path of a default model file, or an error listing the folders searched.
result<std::string> find_default_model(const std::string& file_name);

}  // namespace spark
