# Sourced by the consumer scripts (tests/consumers/run.sh,
# tests/dist/consumer/run.sh), which set $prefix (the install), $libdir
# and $work. find_package_consumer SRC DIR PROG: configures the CMake
# project SRC against the install in $work/DIR, builds it, and runs PROG
# (linked to the shared library, found through $libdir) and PROG_static.
find_package_consumer() {
  cmake -S "$1" -B "$work/$2" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build "$work/$2" >/dev/null
  LD_LIBRARY_PATH="$libdir" "$work/$2/$3"
  "$work/$2/$3_static"
}
