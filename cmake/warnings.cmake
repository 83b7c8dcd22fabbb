# Warnings are errors everywhere; hardening flags on every build.
add_compile_options(
  -Wall -Wextra -Wpedantic -Werror
  -Wshadow -Wformat=2 -Wformat-security -Wstrict-prototypes
  -Wmissing-prototypes -Wvla -Wpointer-arith -Wundef -Wcast-align
  -Wwrite-strings -Wimplicit-fallthrough -Wno-unused-parameter
  -fstack-protector-strong -fno-common)
add_compile_definitions(_GNU_SOURCE)
if(LUNA_TESTING)
  add_compile_definitions(LUNA_TESTING=1)
endif()

if(LUNA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT LUNA_FUZZ AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
if(LUNA_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "LUNA_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
