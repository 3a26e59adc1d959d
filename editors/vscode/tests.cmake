# Tests of the VS Code extension (editors/vscode), included from tests/CMakeLists.txt.
#
#   vscode.unit     `npm test`: strict tsc build, then node:test unit tests against a stubbed `vscode` module.
#   vscode.package  `npm run package` into the build tree, then checks that the .vsix holds the manifest, the
#                   compiled extension and vscode-languageclient.
#
# The extension's pinned packages (editors/vscode/node_modules) are installed by scripts/fetch-third-party.sh.
# Without them both tests fail, with a message naming that script; they never skip.
find_program(NODE node REQUIRED)
find_program(NPM npm REQUIRED)

set(_spark_vscode_dir "${PROJECT_SOURCE_DIR}/editors/vscode")
if(NOT EXISTS "${_spark_vscode_dir}/node_modules/vscode-languageclient/package.json")
  message(WARNING "editors/vscode/node_modules is missing: the vscode.* tests will fail until "
                  "scripts/fetch-third-party.sh (from any directory) has installed it.")
endif()

add_test(NAME vscode.unit
         COMMAND ${NPM} test
         WORKING_DIRECTORY "${_spark_vscode_dir}")
add_test(NAME vscode.package
         COMMAND ${NODE} "${_spark_vscode_dir}/scripts/package-check.js" "${CMAKE_CURRENT_BINARY_DIR}/vscode-package"
                 ${NPM}
         WORKING_DIRECTORY "${_spark_vscode_dir}")
# Both compile into editors/vscode/out: never run them at the same time.
set_tests_properties(vscode.unit vscode.package PROPERTIES
  TIMEOUT 120
  LABELS vscode
  RESOURCE_LOCK spark_vscode_out)
