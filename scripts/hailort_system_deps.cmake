# Debian's libraries in place of the ones HailoRT's CMake fetches (scripts/build_hailort.sh).
#
# Loaded with -DCMAKE_PROJECT_<name>_INCLUDE right after HailoRT's project() call, together with
# HailoRT's own offline switches: HAILO_OFFLINE_COMPILATION=ON (hailort/CMakeLists.txt turns it into
# FETCHCONTENT_FULLY_DISCONNECTED, so nothing is downloaded) and HAILO_EXTERNALS_EXCLUDE_TARGETS=ON
# (every hailort/cmake/external/*.cmake then skips its add_subdirectory). This file defines the
# targets those scripts would have made, under the names HailoRT links against:
#   libprotobuf-lite, protobuf_generate_cpp/_python  <- protobuf.cmake   (Debian libprotobuf-dev 3.21.12 = v21.12)
#   spdlog::spdlog                                    <- spdlog.cmake     (libspdlog-dev 1.10, fmt external)
#   readerwriterqueue, xxhash (header-only)           <- *.cmake          (libreaderwriterqueue-dev, libxxhash-dev)
#   Eigen3::Eigen                                     <- eigen.cmake      (libeigen3-dev 3.4.0)
#   pybind11_add_module                               <- pybind11.cmake   (pybind11-dev 2.10.3)
# hailortcli is configured by HailoRT's CMake but never built (the build script asks only for the
# libhailort and _pyhailort targets); its three libraries and the one function of Hailo's CLI11 fork
# it calls (cli11_install_completion_file) get empty placeholders so the configure step can finish.

if(PROJECT_NAME STREQUAL "HailoRT")
    find_package(Protobuf REQUIRED)          # FindProtobuf: protobuf_generate_cpp, protobuf::libprotobuf-lite
    add_library(libprotobuf-lite INTERFACE)
    target_link_libraries(libprotobuf-lite INTERFACE protobuf::libprotobuf-lite)

    find_package(spdlog CONFIG REQUIRED)     # spdlog::spdlog, with SPDLOG_FMT_EXTERNAL and fmt::fmt

    add_library(readerwriterqueue INTERFACE)
    target_include_directories(readerwriterqueue INTERFACE /usr/include/readerwriterqueue)

    add_library(xxhash INTERFACE)            # common/utils.hpp defines XXH_INLINE_ALL: header only
    find_path(HAILO_XXHASH_INCLUDE xxhash.h REQUIRED)
    target_include_directories(xxhash INTERFACE ${HAILO_XXHASH_INCLUDE})

    find_package(Eigen3 3.4 CONFIG REQUIRED)  # Eigen3::Eigen

    # Three HailoRT sources include fmt through spdlog's bundled copy (spdlog/fmt/bundled/*.h),
    # which Debian's spdlog (+ds) leaves out in favour of libfmt-dev; HAILO_FMT_COMPAT_DIR holds
    # two forwarding headers that the build script writes.
    if(HAILO_FMT_COMPAT_DIR)
        include_directories(BEFORE ${HAILO_FMT_COMPAT_DIR})
    endif()

    foreach(placeholder CLI11::CLI11 nlohmann_json DotWriter)
        add_library(${placeholder} INTERFACE IMPORTED)
    endforeach()
    function(cli11_install_completion_file target)
    endfunction()
elseif(PROJECT_NAME STREQUAL "pyhailort")
    find_package(pybind11 CONFIG REQUIRED)   # pybind11_add_module
endif()
