# Dequantization tests (engine/quant.c).
chatd_test(test_fp16 test_fp16.c)

# Every tensor of every public model against gguf-py's dequantization (reference/*/dequant.json).
foreach(model stories260K.gguf qwen2-tiny-q8_0.gguf qwen2-tiny-q4_k_m.gguf qwen3-tiny-q8_0.gguf
        r1-qwen-tiny-q4_0.gguf llama3-tiny-q6_k.gguf llama-spm-tiny-f32.gguf
        llama-spm-tiny-f16.gguf llama-spm-tiny-bf16.gguf)
  chatd_test(test_dequant test_dequant.c ARGS ${model})
endforeach()

# The types no public model holds (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K): the qwen2-tiny weights
# in every recipe, generated once into the build tree, each compared with its F32 build.
set(CHATD_QUANT_MODELS_DIR ${CMAKE_BINARY_DIR}/quant-models)
add_test(NAME quant.models
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/make_quant_models.sh ${CHATD_QUANT_MODELS_DIR}
          ${CHATD_SHARED_DEFAULT})
set_tests_properties(quant.models PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900)
chatd_test(test_quant_error test_quant_error.c)
set_tests_properties(test_quant_error PROPERTIES DEPENDS "models.regen;quant.models"
  ENVIRONMENT "${CHATD_TEST_ENV};CHATD_QUANT_MODELS_DIR=${CHATD_QUANT_MODELS_DIR}")
