// The embedded default models, loaded for tests (a missing or broken model fails the test that needs it).
#pragma once

#include "inference/default_models.h"
#include "inference/model.h"

#include <catch2/catch.hpp>

#include <memory>

namespace spark::test {

inline std::shared_ptr<const model> load_default(const char* file) {
    auto path = find_default_model(file);
    INFO((path ? *path : path.error().message));
    REQUIRE(path);
    auto m = model::load(*path);
    INFO((m ? "" : m.error().message));
    REQUIRE(m);
    return *m;
}

}  // namespace spark::test
