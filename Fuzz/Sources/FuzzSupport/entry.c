// SwiftPM links an executable target with `--defsym main=<Target>_main` and renames the
// Swift entry point to match. A fuzz target has no Swift entry point (it is built with
// -parse-as-library and libFuzzer runs it), so these hand `main` to libFuzzer's driver.
#include "FuzzSupport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int FuzzBundleReader_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
int FuzzBatchDecode_main(int argc, char **argv) { return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput); }
