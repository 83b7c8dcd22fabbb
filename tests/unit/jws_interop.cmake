# unit.jws_interop: JWS/JWT interoperability with the npm `jose` package
# (version pinned in tests/interop/package.json).  The C helper jws_tool
# signs and verifies with the project's code; tests/interop/jws_interop.mjs
# drives it against jose under `node` from PATH.  No node or no
# node_modules/jose is a FAILURE with a message, never a skip: run
# `npm ci` in tests/interop (scripts/test.sh does).
add_executable(test_unit_jws_interop_tool ${CMAKE_CURRENT_SOURCE_DIR}/interop/jws_tool.c)
target_link_libraries(test_unit_jws_interop_tool PRIVATE luna-core)

set(LUNA_JWS_INTEROP_DIR ${CMAKE_CURRENT_SOURCE_DIR}/interop)
# Newlines, not semicolons, separate the commands: a ';' would split the
# string into a CMake list (and the test would run nothing and pass).
set(LUNA_JWS_INTEROP_SH [=[
d="$1"
tool="$2"
if ! command -v node >/dev/null 2>&1
then
  echo "FAIL: node not found in PATH: install Node.js (18 or later) and run npm ci in $d" >&2
  exit 1
fi
if [ ! -f "$d/node_modules/jose/package.json" ]
then
  echo "FAIL: $d/node_modules/jose is missing: run npm ci in $d" >&2
  exit 1
fi
exec node "$d/jws_interop.mjs" "$tool"
]=])
luna_add_script_test(unit jws_interop
  COMMAND sh -c "${LUNA_JWS_INTEROP_SH}" jws_interop
          ${LUNA_JWS_INTEROP_DIR} $<TARGET_FILE:test_unit_jws_interop_tool>
  TIMEOUT 120)
