// The layer check's executables (CMakeLists.txt, SPTRAIN_CHECK_LAYERS): one
// library's objects and what it declares, nothing else. Linking is the check.
int main() { return 0; }
