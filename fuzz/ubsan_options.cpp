// fuzz/ubsan_options.cpp — UBSan's defaults for the fuzz executables (libFuzzer and replay), so a
// run by hand behaves as CTest and scripts/fuzz.sh: every report prints its stack and ends the
// process (the checks are also built -fno-sanitize-recover). UBSAN_OPTIONS in the environment adds
// to or overrides this.
extern "C" const char* __ubsan_default_options();
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}
