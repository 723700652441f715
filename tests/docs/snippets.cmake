# Docs that compile (included from tests/CMakeLists.txt).
#
# Every ```cpp block of README.md and docs/*.md, and every ```cpp block written inside the // comments
# of a header (include/bindery/**/*.hpp, kernels/*.cuh), is extracted at configure time into
# ${CMAKE_CURRENT_BINARY_DIR}/docs_snippets/ and compiled by the CTest `docs_snippets`, which builds
# the targets bindery_doc_snippets (and bindery_doc_snippets_cuda in CUDA builds); they are not part
# of the default build. The fence's info string says how a block is compiled (a Markdown renderer
# reads only its first word):
#   ```cpp                    a whole translation unit (a program), compiled as it is
#   ```cpp body               statements, compiled inside a function after bindery's headers and
#                             `using namespace bindery; namespace ib = bindery::models::imagebind;`
#   ```cpp cuda [body]        the same for a .cu file (nvcc, bindery::cuda): CUDA builds only
#   ```cpp fragment <why>     not compiled (an excerpt, with names from around it); the reason is
#                             listed in the test's output
#   ```cpp same-as <path>     a whole translation unit that must also equal <path> byte for byte
# A block may include repository files by their path from the root ("examples/04_write_your_op/...").
# A #line directive points compiler errors at the Markdown or header line of the block.

set(bindery_snippet_dir ${CMAKE_CURRENT_BINARY_DIR}/docs_snippets)
file(MAKE_DIRECTORY ${bindery_snippet_dir})

file(GLOB bindery_snippet_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/*.md)
file(GLOB_RECURSE bindery_snippet_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/bindery/*.hpp
     ${PROJECT_SOURCE_DIR}/kernels/*.cuh)
# Editing a Markdown file, or a header that has a block, reruns the extraction. Headers without one
# are not dependencies (an edit to any header would otherwise rerun CMake): a block added to such a
# header is picked up at the next configure.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${bindery_snippet_docs})

set(bindery_snippet_prelude
    "#include <bindery/bindery.hpp>\n#include <bindery/data/all.hpp>\n#include <bindery/models/imagebind/imagebind.hpp>\n"
    "using namespace bindery;\nnamespace ib = bindery::models::imagebind;\n"
    "[[maybe_unused]] static void bindery_doc_snippet() {\n")
set(bindery_snippet_cuda_prelude "#include <bindery/cuda.hpp>\n#include <bindery/models/imagebind/imagebind.hpp>\n"
    "using namespace bindery;\nnamespace ib = bindery::models::imagebind;\n"
    "[[maybe_unused]] static void bindery_doc_snippet() {\n")
set(bindery_snippet_sources "")
set(bindery_snippet_cuda_sources "")
set(bindery_snippet_summary "")

# Scans one file; appends to the source lists and the summary in the parent scope.
function(bindery_scan_snippets path)
  file(RELATIVE_PATH relative ${PROJECT_SOURCE_DIR} ${path})
  file(READ ${path} text)
  string(FIND "${text}" "```cpp" any)
  if(any EQUAL -1)
    return()
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
  if(NOT relative MATCHES "\\.md$")
    # A header: keep the text of its // comments (indentation does not matter to a compiler).
    string(REGEX REPLACE "\n[ \t]*//[ \t]?" "\n" text "\n${text}")
    string(REGEX REPLACE "\n[ \t]+```" "\n```" text "${text}")
    string(SUBSTRING "${text}" 1 -1 text)
  endif()
  string(MAKE_C_IDENTIFIER "${relative}" stem)
  set(rest "\n${text}")
  set(line 0)  # the line `rest` starts on (0: the "\n" put in front)
  set(index 0)
  set(sources ${bindery_snippet_sources})
  set(cuda_sources ${bindery_snippet_cuda_sources})
  set(summary "${bindery_snippet_summary}")
  while(TRUE)
    string(FIND "${rest}" "\n```cpp" open)
    if(open EQUAL -1)
      break()
    endif()
    string(SUBSTRING "${rest}" 0 ${open} before)
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines count)
    math(EXPR fence_line "${line} + ${count} + 1")
    math(EXPR skip "${open} + 7")
    string(SUBSTRING "${rest}" ${skip} -1 rest)
    string(FIND "${rest}" "\n" end_of_info)
    string(SUBSTRING "${rest}" 0 ${end_of_info} info)
    string(STRIP "${info}" info)
    math(EXPR skip "${end_of_info} + 1")
    string(SUBSTRING "${rest}" ${skip} -1 rest)
    string(FIND "${rest}" "\n```" close)
    if(close EQUAL -1)
      message(FATAL_ERROR "${relative}:${line}: a ```cpp block is not closed")
    endif()
    math(EXPR code_length "${close} + 1")
    string(SUBSTRING "${rest}" 0 ${code_length} code)
    string(REGEX MATCHALL "\n" newlines "${code}")
    list(LENGTH newlines count)
    math(EXPR first_code_line "${fence_line} + 1")
    math(EXPR line "${first_code_line} + ${count}")  # `rest` now starts on the closing fence's line
    math(EXPR skip "${close} + 1")
    string(SUBSTRING "${rest}" ${skip} -1 rest)
    math(EXPR index "${index} + 1")
    set(where "${relative}:${first_code_line}")

    if(info MATCHES "^fragment")
      string(REGEX REPLACE "^fragment[ :]*" "" reason "${info}")
      if(reason STREQUAL "")
        message(FATAL_ERROR "${where}: say why a ```cpp fragment is not compiled: ```cpp fragment <why>")
      endif()
      string(APPEND summary "  not compiled  ${where}: ${reason}\n")
      continue()
    endif()
    set(directive "#line ${first_code_line} \"${relative}\"\n")
    set(cuda OFF)
    if(info MATCHES "(^| )cuda( |$)")
      set(cuda ON)
    endif()
    if(info MATCHES "(^| )body( |$)")
      if(cuda)
        set(content "${bindery_snippet_cuda_prelude}${directive}${code}}\n")
      else()
        set(content "${bindery_snippet_prelude}${directive}${code}}\n")
      endif()
    else()
      set(content "${directive}${code}")
    endif()
    if(info MATCHES "^same-as ")
      string(REGEX REPLACE "^same-as +" "" original "${info}")
      set(original_path ${PROJECT_SOURCE_DIR}/${original})
      set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${original_path})
      if(EXISTS ${original_path})
        file(READ ${original_path} original_text)
      else()
        set(original_text "")
      endif()
      if(NOT original_text STREQUAL code)
        set(content "#error \"${where}: this block differs from ${original}; keep the two equal\"\n")
      endif()
    elseif(NOT info STREQUAL "" AND NOT info MATCHES "^(cuda|body|cuda body|body cuda)$")
      message(FATAL_ERROR "${where}: unknown ```cpp info '${info}' (use body, cuda, fragment <why> or same-as <path>)")
    endif()
    if(cuda)
      set(file ${bindery_snippet_dir}/${stem}_${index}.cu)
      if(BINDERY_CUDA)
        list(APPEND cuda_sources ${file})
        string(APPEND summary "  nvcc          ${where}\n")
      else()
        string(APPEND summary "  not compiled  ${where}: CUDA (BINDERY_CUDA=OFF)\n")
      endif()
    else()
      set(file ${bindery_snippet_dir}/${stem}_${index}.cpp)
      list(APPEND sources ${file})
      string(APPEND summary "  c++           ${where}\n")
    endif()
    file(WRITE ${file}.new "${content}")
    configure_file(${file}.new ${file} COPYONLY)  # rewritten only when it changed: no needless rebuilds
  endwhile()
  set(bindery_snippet_sources ${sources} PARENT_SCOPE)
  set(bindery_snippet_cuda_sources ${cuda_sources} PARENT_SCOPE)
  set(bindery_snippet_summary "${summary}" PARENT_SCOPE)
endfunction()

foreach(path IN LISTS bindery_snippet_docs bindery_snippet_headers)
  bindery_scan_snippets(${path})
endforeach()
file(WRITE ${bindery_snippet_dir}/summary.txt "${bindery_snippet_summary}")

set(bindery_snippet_targets "")
if(bindery_snippet_sources)
  add_library(bindery_doc_snippets OBJECT EXCLUDE_FROM_ALL ${bindery_snippet_sources})
  target_link_libraries(bindery_doc_snippets PRIVATE bindery::bindery)
  target_include_directories(bindery_doc_snippets PRIVATE ${PROJECT_SOURCE_DIR})  # "examples/..." includes
  # -O0: the point is that they compile; a body snippet may leave a variable unused.
  target_compile_options(bindery_doc_snippets PRIVATE ${BINDERY_WARNINGS} -O0 -Wno-unused-variable
                                                      -Wno-unused-but-set-variable)
  list(APPEND bindery_snippet_targets bindery_doc_snippets)
endif()
if(BINDERY_CUDA AND bindery_snippet_cuda_sources)
  add_library(bindery_doc_snippets_cuda OBJECT EXCLUDE_FROM_ALL ${bindery_snippet_cuda_sources})
  target_link_libraries(bindery_doc_snippets_cuda PRIVATE bindery::cuda)
  target_include_directories(bindery_doc_snippets_cuda PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(bindery_doc_snippets_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror,-Wno-unused-variable,-Wno-unused-but-set-variable>)
  list(APPEND bindery_snippet_targets bindery_doc_snippets_cuda)
endif()
if(bindery_snippet_targets)
  string(REPLACE ";" "," bindery_snippet_targets "${bindery_snippet_targets}")  # one argument
  add_test(NAME docs_snippets
           COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DTARGETS=${bindery_snippet_targets}
                   -DCONFIG=$<CONFIG> -DSUMMARY=${bindery_snippet_dir}/summary.txt
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/docs/run_snippets.cmake)
  set_tests_properties(docs_snippets PROPERTIES LABELS docs)
endif()
