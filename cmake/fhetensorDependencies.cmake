# Finds what the fhetensor headers link against: libsodium (CSPRNG), FFTW3 (reference FFT
# backend) and threads. Shared by the build tree and the installed package config.
include(CMakeFindDependencyMacro)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
if(NOT TARGET fhetensor::sodium)
  pkg_check_modules(FHETENSOR_SODIUM REQUIRED IMPORTED_TARGET GLOBAL libsodium)
  add_library(fhetensor::sodium INTERFACE IMPORTED GLOBAL)
  target_link_libraries(fhetensor::sodium INTERFACE PkgConfig::FHETENSOR_SODIUM)
endif()
if(NOT TARGET fhetensor::fftw3)
  pkg_check_modules(FHETENSOR_FFTW3 REQUIRED IMPORTED_TARGET GLOBAL fftw3)
  add_library(fhetensor::fftw3 INTERFACE IMPORTED GLOBAL)
  target_link_libraries(fhetensor::fftw3 INTERFACE PkgConfig::FHETENSOR_FFTW3)
endif()
# xtensor (clear tensors) is header-only; its package config brings xtl along.
find_dependency(xtensor)
# zlib is optional: only fhetensor::io (gzipped idx datasets) needs it, so the core target
# never depends on it and the io target exists only where zlib is found.
find_package(ZLIB QUIET)
# Boost is optional too: only fhetensor::server (the HTTP transport) needs it, for
# Beast/Asio, which are header-only (so is Boost.System since Boost 1.69): nothing to link.
find_package(Boost 1.74 QUIET)
# libpng and libjpeg are optional in the same way: only fhetensor::image (PNG and JPEG
# decoding) needs them.
find_package(PNG QUIET)
find_package(JPEG QUIET)
