# Installs bindery from BINDERY_BUILD_DIR into a scratch prefix, MOVES the installed tree elsewhere
# (the package must be relocatable), then configures, builds and runs two consumer projects against
# the moved copy:
#   tests/consumer       find_package(bindery), bindery::bindery: the README's usage example
#   tests/consumer/core  find_package(bindery COMPONENTS core), bindery::core: a Linear + backward,
#                        configured with nlohmann_json and ZLIB disabled; no compile or link command
#                        line may name zlib, libjpeg, libpng, utf8proc, stb or nlohmann_json
# and checks that the installed CMake files hold no absolute path of the build machine, and that a
# required component whose dependency is missing fails find_package with a message naming it.
# Any failing step fails the CTest case.
file(REMOVE_RECURSE ${WORK_DIR})
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
get_filename_component(source_root ${CONSUMER_SOURCE_DIR}/../.. ABSOLUTE)
get_filename_component(build_root ${BINDERY_BUILD_DIR} ABSOLUTE)

# Install, then move: nothing may point back at the first prefix.
set(staging ${WORK_DIR}/staging)
set(prefix ${WORK_DIR}/moved/bindery-prefix)
run_step(${CMAKE_COMMAND} --install ${BINDERY_BUILD_DIR} --prefix ${staging})
file(MAKE_DIRECTORY ${WORK_DIR}/moved)
file(RENAME ${staging} ${prefix})

# The exported files: install-relative paths and imported-target names only.
file(GLOB_RECURSE package_files ${prefix}/*.cmake)
if(NOT package_files)
  message(FATAL_ERROR "no CMake package files installed under ${prefix}")
endif()
foreach(file IN LISTS package_files)
  file(READ ${file} text)
  foreach(forbidden IN ITEMS "${source_root}" "${build_root}" "${staging}" "/usr/lib" "/usr/include"
                             "/usr/local")
    string(FIND "${text}" "${forbidden}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "${file} holds the absolute path '${forbidden}': the installed package is not "
                          "relocatable (use $<INSTALL_INTERFACE:...> / imported targets found at the "
                          "consumer's configure time)")
    endif()
  endforeach()
endforeach()

# 1. The whole library, against the moved copy.
run_step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step(${WORK_DIR}/build/consumer)

# 2. The core component alone. With nlohmann_json and ZLIB disabled, a core that still looked for
# them could not be configured; the command lines must not name any io or data dependency.
set(core_build ${WORK_DIR}/build-core)
run_step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR}/core -B ${core_build}
         -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
         -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON)
run_step(${CMAKE_COMMAND} --build ${core_build})
file(READ ${core_build}/compile_commands.json commands)
file(GLOB_RECURSE link_files ${core_build}/CMakeFiles/consumer_core.dir/link.txt)
if(NOT link_files)
  message(FATAL_ERROR "no link command found under ${core_build}/CMakeFiles/consumer_core.dir")
endif()
foreach(file IN LISTS link_files)
  file(READ ${file} link)
  string(APPEND commands "\n${link}")
endforeach()
string(REGEX MATCH "[^ \"]*(zlib|libz\\.|-lz( |$)|jpeg|png|utf8proc|nlohmann|stb)[^ \"]*" leaked "${commands}")
if(leaked)
  message(FATAL_ERROR "the core consumer's command lines name '${leaked}', a dependency of another "
                      "component:\n${commands}")
endif()
file(STRINGS ${core_build}/CMakeCache.txt searched REGEX "^BINDERY_(UTF8PROC|STB)_")
if(searched)
  message(FATAL_ERROR "find_package(bindery COMPONENTS core) searched for data's libraries: ${searched}")
endif()
run_step(${core_build}/consumer_core)

# 3. A required component whose dependency is missing: find_package fails and says which and why.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR}/core -B ${WORK_DIR}/build-missing
                        -DCMAKE_PREFIX_PATH=${prefix} -DBINDERY_CONSUMER_COMPONENTS=io
                        -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "component 'io': nlohmann_json")
  message(FATAL_ERROR "find_package(bindery REQUIRED COMPONENTS io) without nlohmann_json should fail "
                      "naming component io (exit ${rc}):\n${out}\n${err}")
endif()
message(STATUS "missing component reported as expected")
