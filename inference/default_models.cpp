#include "inference/default_models.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace spark {

result<std::string> find_default_model(const std::string& file_name) {
    namespace fs = std::filesystem;
    std::vector<fs::path> dirs;
    if (const char* e = std::getenv("SPARK_MODEL_DIR"); e && *e) dirs.emplace_back(e);
#ifdef SPARK_SOURCE_MODEL_DIR
    dirs.emplace_back(SPARK_SOURCE_MODEL_DIR);
#endif
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) dirs.push_back(exe.parent_path().parent_path() / "share" / "spark-ls" / "models");
    std::string searched;
    for (const auto& d : dirs) {
        const fs::path p = d / file_name;
        if (fs::is_regular_file(p, ec)) return p.string();
        searched += (searched.empty() ? "" : ", ") + d.string();
    }
    return fail("default model ", file_name, " not found (searched: ", searched,
                "); set SPARK_MODEL_DIR or pass --model");
}

}  // namespace spark
