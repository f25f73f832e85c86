# Matrix-vector kernels (engine/kernels*.c): every weight type at every SIMD level the CPU has.
# Real rows come from the generated models when they are there (the quant.models ones too).
chatd_test(test_kernels test_kernels.c)
set_tests_properties(test_kernels PROPERTIES DEPENDS "models.regen;quant.models"
  ENVIRONMENT "${CHATD_TEST_ENV};CHATD_QUANT_MODELS_DIR=${CMAKE_BINARY_DIR}/quant-models")
