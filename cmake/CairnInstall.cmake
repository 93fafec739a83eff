# Install rules for cairn: the libraries (shared and static), the public
# header, a CMake config package (find_package(cairn) -> cairn::cairn and
# cairn::cairn_static), a pkg-config file (cairn.pc) and the docs. Included
# at the end of the top-level CMakeLists.txt, after every target exists, so
# the dependencies written into the config package and cairn.pc are read
# from the targets themselves and follow them when they change.
#
# Tools install themselves (tools/CMakeLists.txt), and so does the HDF5
# plugin (io/h5zstd, CAIRN_HDF5_PLUGIN_INSTALL_DIR).

include(CMakePackageConfigHelpers)

option(CAIRN_INSTALL_STATIC "Install the static library libcairn.a" ON)
set(CAIRN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/cairn" CACHE STRING
    "Where the CMake config package is installed (relative to the prefix)")
set(CAIRN_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
    "Where cairn.pc is installed (relative to the prefix)")

set(_cairn_install_targets cairn)
if(CAIRN_INSTALL_STATIC)
  list(APPEND _cairn_install_targets cairn_static)
endif()

# A sanitized build links cairn_build_flags (sanitizer options) into the
# static library's interface; such a build is for testing, not installing,
# so it gets no exported config package.
if(CAIRN_SANITIZE)
  set(_cairn_export "")
  message(STATUS "cairn: CAIRN_SANITIZE is set: no CMake config package is installed")
else()
  set(_cairn_export EXPORT cairnTargets)
endif()

install(TARGETS ${_cairn_install_targets} ${_cairn_export}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cairn_Runtime
          NAMELINK_COMPONENT cairn_Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT cairn_Development
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT cairn_Development)

# --------------------------------------------------------------------------
# What a consumer needs to find for each library: read from the targets'
# INTERFACE_LINK_LIBRARIES and turned into CMake code for cairnConfig.cmake
# and into pkg-config Requires.private / Libs.private for cairn.pc.
# --------------------------------------------------------------------------

# _cairn_link_items(<target> <out-var>): the target's interface link items,
# with $<LINK_ONLY:x> unwrapped and build-only items dropped.
function(_cairn_link_items tgt out)
  get_target_property(_items ${tgt} INTERFACE_LINK_LIBRARIES)
  set(_res "")
  if(_items)
    foreach(_i IN LISTS _items)
      if(_i MATCHES "^\\$<LINK_ONLY:(.*)>$")
        set(_i "${CMAKE_MATCH_1}")
      endif()
      if(_i MATCHES "^\\$<BUILD_INTERFACE:" OR _i STREQUAL "cairn_build_flags")
        continue()
      endif()
      if(_i MATCHES "^\\$<")
        message(WARNING "cairn: CairnInstall.cmake does not know how to export '${_i}' "
                        "(interface of ${tgt}); the installed config may miss it")
        continue()
      endif()
      list(APPEND _res "${_i}")
    endforeach()
  endif()
  set(${out} "${_res}" PARENT_SCOPE)
endfunction()

# _cairn_find_code(<items> <required> <out-code>): CMake code that makes
# every imported target among <items> exist in the consumer. <required>
# TRUE: find_dependency (the config fails without it); FALSE: a quiet
# find_package whose failure is recorded in _cairn_static_missing.
function(_cairn_find_code items required out)
  set(_code "")
  set(_seen "")
  foreach(_i IN LISTS items)
    if(NOT _i MATCHES "::")
      continue()  # a plain library name or path: nothing to find
    endif()
    if(_i IN_LIST _seen)
      continue()
    endif()
    list(APPEND _seen "${_i}")
    set(_call "")
    if(_i STREQUAL "MPI::MPI_C")
      set(_call "MPI COMPONENTS C")
    elseif(_i STREQUAL "Threads::Threads")
      set(_call "Threads")
    elseif(_i MATCHES "^hdf5::")
      # FindHDF5 creates hdf5::hdf5 from CMake 3.19 on; older CMake gets an
      # equivalent target made from its variables.
      string(APPEND _code
        "set(_cairn_saved_hdf5_prefer_parallel \"\${HDF5_PREFER_PARALLEL}\")\n"
        "set(HDF5_PREFER_PARALLEL ON)\n")
      if(required)
        string(APPEND _code "find_dependency(HDF5 COMPONENTS C)\n")
      else()
        string(APPEND _code "find_package(HDF5 QUIET COMPONENTS C)\n"
                            "if(NOT HDF5_FOUND)\n  list(APPEND _cairn_static_missing HDF5)\nendif()\n")
      endif()
      string(APPEND _code
        "set(HDF5_PREFER_PARALLEL \"\${_cairn_saved_hdf5_prefer_parallel}\")\n"
        "if(HDF5_FOUND AND NOT TARGET ${_i})\n"
        "  add_library(${_i} INTERFACE IMPORTED)\n"
        "  set_target_properties(${_i} PROPERTIES\n"
        "    INTERFACE_INCLUDE_DIRECTORIES \"\${HDF5_C_INCLUDE_DIRS}\"\n"
        "    INTERFACE_COMPILE_DEFINITIONS \"\${HDF5_C_DEFINITIONS}\"\n"
        "    INTERFACE_LINK_LIBRARIES \"\${HDF5_C_LIBRARIES}\")\n"
        "endif()\n")
      continue()
    elseif(_i MATCHES "^PkgConfig::(.+)$")
      # A pkg-config module found by pkg_check_modules(<prefix> ...) in
      # CairnDependencies.cmake. Made under a private prefix, so the
      # consumer's variables are not touched, and aliased to the name the
      # exported targets use.
      set(_prefix "${CMAKE_MATCH_1}")
      set(_module "${${_prefix}_MODULE_NAME}")
      if(NOT _module)
        message(FATAL_ERROR "cairn: cannot tell which pkg-config module ${_i} is "
                            "(no ${_prefix}_MODULE_NAME); see cmake/CairnInstall.cmake")
      endif()
      string(APPEND _code
        "if(NOT TARGET ${_i})\n"
        "  find_package(PkgConfig QUIET)\n"
        "  if(PKG_CONFIG_FOUND)\n"
        "    pkg_check_modules(_cairn_pc_${_prefix} QUIET IMPORTED_TARGET ${_module})\n"
        "  endif()\n"
        "  if(TARGET PkgConfig::_cairn_pc_${_prefix})\n"
        "    add_library(${_i} INTERFACE IMPORTED)\n"
        "    set_property(TARGET ${_i} PROPERTY INTERFACE_LINK_LIBRARIES PkgConfig::_cairn_pc_${_prefix})\n")
      if(required)
        string(APPEND _code
          "  else()\n"
          "    set(\${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE \"pkg-config module ${_module} not found\")\n"
          "    set(\${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)\n"
          "    return()\n")
      else()
        string(APPEND _code "  else()\n    list(APPEND _cairn_static_missing \"${_module} (pkg-config)\")\n")
      endif()
      string(APPEND _code "  endif()\nendif()\n")
      continue()
    elseif(_i MATCHES "^OpenSSL::(.+)$")
      set(_call "OpenSSL COMPONENTS ${CMAKE_MATCH_1}")
    elseif(_i MATCHES "^([A-Za-z0-9_]+)::")
      # The usual convention: <Pkg>::<target> comes from find_package(<Pkg>).
      set(_call "${CMAKE_MATCH_1}")
    endif()
    if(required)
      string(APPEND _code "find_dependency(${_call})\n")
    else()
      string(REGEX MATCH "^[^ ]+" _pkg "${_call}")
      string(REPLACE "${_pkg}" "${_pkg} QUIET" _quiet "${_call}")
      string(APPEND _code "find_package(${_quiet})\n"
                          "if(NOT TARGET ${_i})\n  list(APPEND _cairn_static_missing ${_pkg})\nendif()\n")
    endif()
  endforeach()
  set(${out} "${_code}" PARENT_SCOPE)
endfunction()

_cairn_link_items(cairn _cairn_shared_items)
_cairn_find_code("${_cairn_shared_items}" TRUE CAIRN_CONFIG_SHARED_DEPS)
if(CAIRN_INSTALL_STATIC)
  _cairn_link_items(cairn_static _cairn_static_items)
  _cairn_find_code("${_cairn_static_items}" FALSE CAIRN_CONFIG_STATIC_DEPS)
  set(CAIRN_CONFIG_HAVE_STATIC ON)
  set(CAIRN_CONFIG_STATIC_COMPONENT ", static")
else()
  set(_cairn_static_items "")
  set(CAIRN_CONFIG_STATIC_DEPS "")
  set(CAIRN_CONFIG_HAVE_STATIC OFF)
  set(CAIRN_CONFIG_STATIC_COMPONENT "")
endif()

# --------------------------------------------------------------------------
# CMake config package
# --------------------------------------------------------------------------
if(_cairn_export)
  install(EXPORT cairnTargets
    NAMESPACE cairn::
    FILE cairnTargets.cmake
    DESTINATION ${CAIRN_INSTALL_CMAKEDIR}
    COMPONENT cairn_Development)

  # For a 0.x version any minor release may break the API (semantic
  # versioning), so a request for 0.1 accepts 0.1.z only; from 1.0 on, the
  # same major version.
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(_cairn_compat SameMinorVersion)
  else()
    set(_cairn_compat SameMajorVersion)
  endif()
  set(CAIRN_CONFIG_HDF5_PLUGIN_DIR "${CAIRN_HDF5_PLUGIN_INSTALL_DIR}")
  configure_package_config_file(
    ${PROJECT_SOURCE_DIR}/cmake/cairnConfig.cmake.in
    ${PROJECT_BINARY_DIR}/cmake/cairnConfig.cmake
    INSTALL_DESTINATION ${CAIRN_INSTALL_CMAKEDIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_BINDIR
              CAIRN_CONFIG_HDF5_PLUGIN_DIR)
  write_basic_package_version_file(
    ${PROJECT_BINARY_DIR}/cmake/cairnConfigVersion.cmake
    VERSION ${PROJECT_VERSION}
    COMPATIBILITY ${_cairn_compat})
  install(FILES
      ${PROJECT_BINARY_DIR}/cmake/cairnConfig.cmake
      ${PROJECT_BINARY_DIR}/cmake/cairnConfigVersion.cmake
    DESTINATION ${CAIRN_INSTALL_CMAKEDIR}
    COMPONENT cairn_Development)
endif()

# --------------------------------------------------------------------------
# pkg-config: cairn.pc
# --------------------------------------------------------------------------
# MPI is left to the MPI compiler wrapper (mpicc), which every MPI user
# already compiles with: MPI implementations disagree on a pkg-config name.
# What libcairn.a needs besides MPI goes to Requires.private (dependencies
# that have a .pc of their own) and Libs.private (the rest), which only
# `pkg-config --static` prints.
set(_pc_requires_private "")
set(_pc_libs_private "")
function(_cairn_pc_libs_from_paths paths out)
  set(_flags "")
  foreach(_p IN LISTS paths)
    if(_p MATCHES "^-")
      list(APPEND _flags "${_p}")
    elseif(IS_ABSOLUTE "${_p}")
      get_filename_component(_dir "${_p}" DIRECTORY)
      get_filename_component(_name "${_p}" NAME)
      if(_name MATCHES "^lib(.+)\\.(so|a|dylib)(\\..*)?$")
        set(_lib "${CMAKE_MATCH_1}")
        if(NOT _dir MATCHES "^(/usr)?/lib(64)?(/[^/]*-linux-gnu)?$")
          list(APPEND _flags "-L${_dir}")
        endif()
        list(APPEND _flags "-l${_lib}")
      else()
        list(APPEND _flags "${_p}")
      endif()
    elseif(_p MATCHES "^[A-Za-z0-9_.+-]+$")
      list(APPEND _flags "-l${_p}")
    endif()
  endforeach()
  set(${out} "${_flags}" PARENT_SCOPE)
endfunction()

foreach(_i IN LISTS _cairn_static_items)
  if(_i MATCHES "^PkgConfig::(.+)$")
    list(APPEND _pc_requires_private "${${CMAKE_MATCH_1}_MODULE_NAME}")
  elseif(_i MATCHES "^OpenSSL::Crypto$")
    list(APPEND _pc_requires_private libcrypto)
  elseif(_i MATCHES "^OpenSSL::SSL$")
    list(APPEND _pc_requires_private libssl)
  elseif(_i MATCHES "^hdf5::")
    _cairn_pc_libs_from_paths("${HDF5_C_LIBRARIES}" _f)
    list(APPEND _pc_libs_private ${_f})
  elseif(_i STREQUAL "Threads::Threads")
    if(CMAKE_THREAD_LIBS_INIT)
      list(APPEND _pc_libs_private ${CMAKE_THREAD_LIBS_INIT})
    endif()
  elseif(_i MATCHES "^MPI::")
    # from mpicc
  elseif(_i MATCHES "::")
    message(WARNING "cairn: cairn.pc does not list ${_i} (unknown to CairnInstall.cmake)")
  else()
    _cairn_pc_libs_from_paths("${_i}" _f)
    list(APPEND _pc_libs_private ${_f})
  endif()
endforeach()
# The HDF5 run-file code uses libm.
list(APPEND _pc_libs_private -lm)
list(REMOVE_DUPLICATES _pc_requires_private)
list(REMOVE_DUPLICATES _pc_libs_private)
string(REPLACE ";" " " CAIRN_PC_REQUIRES_PRIVATE "${_pc_requires_private}")
string(REPLACE ";" " " CAIRN_PC_LIBS_PRIVATE "${_pc_libs_private}")

# Paths relative to the .pc file's own directory (${pcfiledir}), so the
# prefix can be chosen at install time (cmake --install --prefix) or moved.
if(IS_ABSOLUTE "${CAIRN_INSTALL_PKGCONFIGDIR}")
  set(CAIRN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/cairn-prefix/${CAIRN_INSTALL_PKGCONFIGDIR}" "/cairn-prefix")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(CAIRN_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(CAIRN_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(CAIRN_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
if(IS_ABSOLUTE "${CAIRN_HDF5_PLUGIN_INSTALL_DIR}")
  set(CAIRN_PC_HDF5_PLUGIN_DIR "${CAIRN_HDF5_PLUGIN_INSTALL_DIR}")
else()
  set(CAIRN_PC_HDF5_PLUGIN_DIR "\${prefix}/${CAIRN_HDF5_PLUGIN_INSTALL_DIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/cairn.pc.in ${PROJECT_BINARY_DIR}/cmake/cairn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/cairn.pc
  DESTINATION ${CAIRN_INSTALL_PKGCONFIGDIR}
  COMPONENT cairn_Development)

# --------------------------------------------------------------------------
# Documentation and the activation examples
# --------------------------------------------------------------------------
file(GLOB _cairn_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${_cairn_docs}
  DESTINATION ${CMAKE_INSTALL_DOCDIR}
  COMPONENT cairn_Documentation)
foreach(_ex cmake_find_package pkgconfig ld_preload static_link)
  if(EXISTS ${PROJECT_SOURCE_DIR}/examples/${_ex})
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/${_ex}
      DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
      COMPONENT cairn_Documentation)
  endif()
endforeach()
