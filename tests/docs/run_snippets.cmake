# The docs_snippets CTest (tests/docs/snippets.cmake): lists which blocks are compiled and which are
# not (and why), then builds the snippet targets; a block that does not compile fails the test, with
# the compiler's message pointing at its Markdown or header line.
file(READ ${SUMMARY} summary)
message("Code blocks of README.md, docs/*.md and the headers' comments:\n${summary}")
string(REPLACE "," ";" targets "${TARGETS}")
set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} ${config_args} --parallel 2 --target ${targets}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "a documented code block does not compile:\n${out}\n${err}")
endif()
message("every compiled block compiles")
