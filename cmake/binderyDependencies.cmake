# binderyDependencies.cmake — imported targets for the dependencies that have no CMake package of
# their own on Debian/Ubuntu (OpenBLAS, utf8proc, stb), found on THIS machine.
#
# Included twice: by bindery's CMakeLists.txt (building bindery) and by the installed
# binderyConfig.cmake (configuring a project that uses bindery). The exported bindery targets name
# only the imported targets below (bindery_deps::...), never a library path, so an installed bindery
# can be moved or copied to another machine: the consumer's configure step finds the libraries again
# where they are there.
#
# Each function creates its target if the dependency is found and sets <out_var> to TRUE or FALSE;
# the cache variables (BINDERY_CBLAS_INCLUDE, ...) can be set by hand to point elsewhere.
include_guard(GLOBAL)

# OpenBLAS (the CPU GEMM when bindery was built with BINDERY_BLAS): cblas.h + libopenblas.
function(bindery_find_openblas out_var)
  if(NOT TARGET bindery_deps::OpenBLAS)
    find_path(BINDERY_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas openblas-pthread)
    find_library(BINDERY_OPENBLAS_LIBRARY NAMES openblas)
    if(NOT BINDERY_CBLAS_INCLUDE OR NOT BINDERY_OPENBLAS_LIBRARY)
      set(${out_var} FALSE PARENT_SCOPE)
      return()
    endif()
    add_library(bindery_deps::OpenBLAS INTERFACE IMPORTED)
    set_target_properties(bindery_deps::OpenBLAS PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${BINDERY_CBLAS_INCLUDE}"
      INTERFACE_LINK_LIBRARIES "${BINDERY_OPENBLAS_LIBRARY}")
  endif()
  set(${out_var} TRUE PARENT_SCOPE)
endfunction()

# utf8proc (the text stack: Unicode classes, case mappings, NFC): utf8proc.h + libutf8proc.
function(bindery_find_utf8proc out_var)
  if(NOT TARGET bindery_deps::utf8proc)
    find_path(BINDERY_UTF8PROC_INCLUDE utf8proc.h)
    find_library(BINDERY_UTF8PROC_LIBRARY NAMES utf8proc)
    if(NOT BINDERY_UTF8PROC_INCLUDE OR NOT BINDERY_UTF8PROC_LIBRARY)
      set(${out_var} FALSE PARENT_SCOPE)
      return()
    endif()
    add_library(bindery_deps::utf8proc INTERFACE IMPORTED)
    set_target_properties(bindery_deps::utf8proc PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${BINDERY_UTF8PROC_INCLUDE}"
      INTERFACE_LINK_LIBRARIES "${BINDERY_UTF8PROC_LIBRARY}")
  endif()
  set(${out_var} TRUE PARENT_SCOPE)
endfunction()

# stb (image decoding and PNG writing: <stb/stb_image.h>, <stb/stb_image_write.h>,
# <stb/stb_easy_font.h>; headers only, Debian's libstb-dev).
function(bindery_find_stb out_var)
  if(NOT TARGET bindery_deps::stb)
    find_path(BINDERY_STB_INCLUDE stb/stb_image.h)
    if(NOT BINDERY_STB_INCLUDE)
      set(${out_var} FALSE PARENT_SCOPE)
      return()
    endif()
    add_library(bindery_deps::stb INTERFACE IMPORTED)
    set_target_properties(bindery_deps::stb PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${BINDERY_STB_INCLUDE}")
  endif()
  set(${out_var} TRUE PARENT_SCOPE)
endfunction()
