# Writes OUT, a C header defining `static const char NAME[]`: the bytes of IN and a NUL. SQL kept
# in its own file stays readable (and out of clang-format's reach) and is compiled into the binary,
# with no file to find at run time. Run by migrate/CMakeLists.txt at build time:
#   cmake -DIN=x.sql -DOUT=x.sql.h -DNAME=ident -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1', " bytes "${hex}")
string(REPEAT "'[^']+', " 12 line) # CMake's regular expressions have no {12}
string(REGEX REPLACE "(${line})" "\\1\n    " bytes "${bytes}")
string(REPLACE ", \n" ",\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}" "/* Generated from migrate/sql/${name} by migrate/embed.cmake: do not edit. */
static const char ${NAME}[] = {
    ${bytes}'\\0'};
")
